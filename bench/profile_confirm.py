"""Profile order creates and confirms in-process through the test client (cProfile).

Sets up Dovetail with the shipped plugins exactly as bench/run.py does, warms up, then profiles
``--orders`` creates and confirms and prints the top functions by cumulative and own time::

    python bench/profile_confirm.py --orders 100 --what confirm --top 40
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dataset import SEED, Databases, config_copy, make_app, order_body, seed  # noqa: E402
from run import Side, engine_of  # noqa: E402


def main() -> None:
    """Profile one phase (create or confirm) of ``--orders`` orders and print the hot spots."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--orders", type=int, default=100)
    p.add_argument("--what", choices=("create", "confirm"), default="confirm")
    p.add_argument("--top", type=int, default=40)
    p.add_argument("--sort", default="cumulative")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        dbs = Databases(None, Path(tmp))
        app = make_app(config_copy(Path(tmp)), dbs.new("dovetail"))
        side = Side("dovetail", app, seed(app), "/api/v1/orders", "/api/v1/orders/{id}/transitions",
                    {"transition": "confirm"}, engine_of(app, "sqlalchemy"))
        rnd = random.Random(SEED)
        side.timed_confirms(side.timed_creates([order_body(rnd, side.s) for _ in range(5)])[1])
        bodies = [order_body(rnd, side.s) for _ in range(args.orders)]
        prof = cProfile.Profile()
        if args.what == "create":
            prof.enable()
            secs, _ = side.timed_creates(bodies)
            prof.disable()
        else:
            _, ids = side.timed_creates(bodies)
            prof.enable()
            secs = side.timed_confirms(ids)
            prof.disable()
        print(f"{args.orders} {args.what}s: {args.orders / secs:.1f}/s (under the profiler)")
        pstats.Stats(prof).sort_stats(args.sort).print_stats(args.top)
        side.counter.close()


if __name__ == "__main__":
    main()
