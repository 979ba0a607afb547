"""Benchmark: Dovetail's order writes against a bare Flask + SQLAlchemy floor, same machine, same run.

Prints, in one run (see docs/performance.md for what each number means):

1. orders created/s and confirmed/s through the API (Flask test client, in-process) as a rep
   with a bearer token, Dovetail with the shipped plugins and config/ against the floor
   (bench/floor.py) writing the same rows into the same tables; rounds alternate which app
   goes first so machine noise hits both; medians and the ratio Dovetail/floor [min–max];
2. SQL statements per create and per confirm with 1, 10 and 50 lines;
3. order import lines/s (``dovetail import orders``'s function on a generated CSV);
4. each registered report's time over ``--report-lines`` order lines;
5. with ``--workers 1,2,4``: create+confirm pairs/s under gunicorn against worker count,
   and the invariant check (bench/check_invariants.py) after each load.

Usage::

    python bench/run.py --quick                       # SQLite, under a minute
    python bench/run.py                               # SQLite, the default sizes
    python bench/run.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test --workers 1,2,4
    python bench/run.py --database-url ... --report-lines 1000000 --skip-writes --skip-import
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dataset import (  # noqa: E402 - bench/ is not a package; its modules import each other by name
    SEED,
    Databases,
    Seeded,
    StatementCounter,
    bulk_order_lines,
    config_copy,
    import_csv,
    make_app,
    order_body,
    seed,
)
from floor import floor_app  # noqa: E402

from core.state import dovetail


class Side:
    """One app under test, driven through its Flask test client."""

    def __init__(self, name: str, app: Any, s: Seeded, create_url: str, confirm_url: str,
                 confirm_body: Any, engine: Any) -> None:
        self.name, self.app, self.s = name, app, s
        self.client = app.test_client()
        self.headers = {"Authorization": f"Bearer {s.rep_token}"}
        self.create_url, self.confirm_url, self.confirm_body = create_url, confirm_url, confirm_body
        self.counter = StatementCounter(engine)
        self.sql_create: list[str] = []
        self.sql_confirm: list[str] = []

    def create(self, body: dict[str, Any]) -> int:
        resp = self.client.post(self.create_url, json=body,
                                headers={**self.headers, "Idempotency-Key": uuid.uuid4().hex})
        if resp.status_code != 201:
            raise RuntimeError(f"{self.name} create: {resp.status_code} {resp.get_data(as_text=True)[:500]}")
        return resp.get_json()["id"]

    def confirm(self, oid: int) -> None:
        resp = self.client.post(self.confirm_url.format(id=oid), json=self.confirm_body, headers=self.headers)
        if resp.status_code != 200:
            raise RuntimeError(f"{self.name} confirm: {resp.status_code} {resp.get_data(as_text=True)[:500]}")

    def timed_creates(self, bodies: list[dict[str, Any]]) -> tuple[float, list[int]]:
        t0 = time.perf_counter()
        ids = [self.create(b) for b in bodies]
        return time.perf_counter() - t0, ids

    def timed_confirms(self, ids: list[int]) -> float:
        t0 = time.perf_counter()
        for oid in ids:
            self.confirm(oid)
        return time.perf_counter() - t0

    def statements(self, lines: int) -> tuple[int, int]:
        """Statements of one create and one confirm of an order with ``lines`` lines (second try:
        first-use work such as a new number sequence row is not counted)."""
        out = (0, 0)
        for attempt in range(2):
            body = order_body(random.Random(SEED + 7 + attempt), self.s, lines)
            with self.counter.counting() as c:
                oid = self.create(body)
            created, self.sql_create = c.count, c.statements
            with self.counter.counting() as c:
                self.confirm(oid)
            out, self.sql_confirm = (created, c.count), c.statements
        return out


def engine_of(app: Any, ext: str) -> Any:
    with app.app_context():
        return app.extensions[ext].engine


def rate_row(label: str, floor_rates: list[float], dv_rates: list[float]) -> dict[str, Any]:
    ratios = [d / f for d, f in zip(dv_rates, floor_rates, strict=True)]
    return {"what": label, "floor_per_s": statistics.median(floor_rates), "dovetail_per_s": statistics.median(dv_rates),
            "ratio": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios)}


def bench_writes(args: argparse.Namespace, dbs: Databases, cfg: Path, out: dict[str, Any]) -> Side:
    print(f"\n== Writes through the API, in-process ({dbs.kind}; {args.rounds} rounds × {args.orders} orders "
          "of 3 lines; rounds alternate which app goes first)")
    dv_app = make_app(cfg, dbs.new("dovetail"))
    dv = Side("dovetail", dv_app, seed(dv_app), "/api/v1/orders", "/api/v1/orders/{id}/transitions",
              {"transition": "confirm"}, engine_of(dv_app, "sqlalchemy"))
    fl_url = dbs.new("floor")
    seeder = make_app(cfg, fl_url)  # the same tables and seed as Dovetail's database
    fl_seed = seed(seeder)
    with seeder.app_context():
        seeder.extensions["sqlalchemy"].engine.dispose()
    fapp = floor_app(fl_url)
    fl = Side("floor", fapp, fl_seed, "/orders", "/orders/{id}/confirm", None, engine_of(fapp, "floor_db"))
    for side in (fl, dv):  # warm up: imports, caches, first number of the year
        rnd = random.Random(SEED - 1)
        side.timed_confirms(side.timed_creates([order_body(rnd, side.s) for _ in range(5)])[1])
    rates: dict[str, dict[str, list[float]]] = {"create": {"floor": [], "dovetail": []},
                                                "confirm": {"floor": [], "dovetail": []}}
    for r in range(args.rounds):
        order = (fl, dv) if r % 2 == 0 else (dv, fl)
        ids: dict[str, list[int]] = {}
        for side in order:
            rnd = random.Random(SEED + r)  # the same orders for both apps
            secs, ids[side.name] = side.timed_creates([order_body(rnd, side.s) for _ in range(args.orders)])
            rates["create"][side.name].append(args.orders / secs)
        for side in order:
            secs = side.timed_confirms(ids[side.name])
            rates["confirm"][side.name].append(args.orders / secs)
        print(f"  round {r + 1}: create floor {rates['create']['floor'][-1]:7.1f}/s dovetail "
              f"{rates['create']['dovetail'][-1]:6.1f}/s | confirm floor {rates['confirm']['floor'][-1]:7.1f}/s "
              f"dovetail {rates['confirm']['dovetail'][-1]:6.1f}/s", flush=True)
    rows = [rate_row("orders created/s", rates["create"]["floor"], rates["create"]["dovetail"]),
            rate_row("orders confirmed/s", rates["confirm"]["floor"], rates["confirm"]["dovetail"])]
    print(f"\n  {'':<20} {'floor/s':>9} {'dovetail/s':>11} {'dovetail/floor':>15} {'[min–max]':>14}")
    for row in rows:
        print(f"  {row['what']:<20} {row['floor_per_s']:>9.1f} {row['dovetail_per_s']:>11.1f} "
              f"{row['ratio'] * 100:>14.1f}% [{row['ratio_min'] * 100:.1f}–{row['ratio_max'] * 100:.1f}%]")
    out["writes"] = {"rows": rows, "rounds": rates}

    print("\n== SQL statements per call (before_cursor_execute events; an executemany counts once)")
    print(f"  {'lines':>5} {'create floor':>13} {'create dovetail':>16} {'confirm floor':>14} {'confirm dovetail':>17}")
    stmts = []
    for n in (1, 10, 50):
        fc, fk = fl.statements(n)
        dc, dk = dv.statements(n)
        stmts.append({"lines": n, "create_floor": fc, "create_dovetail": dc, "confirm_floor": fk,
                      "confirm_dovetail": dk})
        print(f"  {n:>5} {fc:>13} {dc:>16} {fk:>14} {dk:>17}")
    out["statements"] = stmts
    if args.show_statements:
        dv.statements(3)  # the benchmark's own order size
        for name, sql in (("create", dv.sql_create), ("confirm", dv.sql_confirm)):
            print(f"\n  Dovetail's {len(sql)} statements for one {name} of a 3-line order:")
            for i, text in enumerate(sql, 1):
                print(f"  {i:>3}. {text[:150]}")
    fl.counter.close()
    dv.counter.close()
    with fapp.app_context():
        fapp.extensions["floor_db"].engine.dispose()
    return dv


def bench_import(args: argparse.Namespace, dv: Side, tmp: Path, out: dict[str, Any]) -> None:
    from plugins.orders.cli import import_orders

    path = tmp / "orders-import.csv"
    lines = import_csv(path, args.import_orders)
    print(f"\n== Order import (plugins/orders/cli.py import_orders, the function behind "
          f"'dovetail import orders'): {args.import_orders} orders, {lines} lines")
    with dv.app.app_context():
        t0 = time.perf_counter()
        counts, errors = import_orders(path)
        secs = time.perf_counter() - t0
    if errors or counts["imported"] != args.import_orders:
        raise RuntimeError(f"import: {counts}, first errors: {[str(e) for e in errors[:3]]}")
    print(f"  {counts['lines'] / secs:,.0f} lines/s ({counts['imported'] / secs:,.1f} orders/s, {secs:.1f} s)")
    out["import"] = {"orders": counts["imported"], "lines": counts["lines"], "seconds": secs,
                     "lines_per_s": counts["lines"] / secs}


def bench_reports(args: argparse.Namespace, dbs: Databases, cfg: Path, out: dict[str, Any]) -> None:
    app = make_app(cfg, dbs.new("reports"))
    seed(app)
    print(f"\n== Reports over {args.report_lines:,} order lines ({dbs.kind}), through GET /api/v1/reports/<key> "
          "as an administrator (scope all)")
    secs = bulk_order_lines(app, args.report_lines)
    print(f"  (generated the order lines with INSERT … SELECT in {secs:.1f} s)")
    reports = sorted(dovetail(app).registry.reports)
    client = app.test_client()
    with app.app_context():  # an administrator: every report, whichever permission it needs (crm's need crm.*)
        from core.auth import create_user, issue_token
        from core.db import db

        admin_token = issue_token(create_user("admin1", "bench-password-1", ["admin"]), "bench")
        db.session.commit()
    headers = {"Authorization": f"Bearer {admin_token}"}
    repeat = 3 if args.report_lines <= 200_000 else 1
    client.get("/api/v1/reports", headers=headers)  # warm up: the first request's one-off work is not a report's
    rows = []
    for key in reports:
        times, nrows = [], 0
        for _ in range(repeat):
            t0 = time.perf_counter()
            resp = client.get(f"/api/v1/reports/{key}", headers=headers)
            times.append(time.perf_counter() - t0)
            if resp.status_code != 200:
                raise RuntimeError(f"report {key}: {resp.status_code} {resp.get_data(as_text=True)[:300]}")
            nrows = len(resp.get_json()["rows"])
        rows.append({"report": key, "seconds": statistics.median(times), "rows": nrows})
        print(f"  {key:<34} {statistics.median(times) * 1000:>9.0f} ms  ({nrows} rows)", flush=True)
    out["reports"] = {"lines": args.report_lines, "rows": rows}
    with app.app_context():
        app.extensions["sqlalchemy"].engine.dispose()


def bench_workers(args: argparse.Namespace, dbs: Databases, cfg: Path, tmp: Path, out: dict[str, Any]) -> None:
    from load import gunicorn_command, run_one

    counts = sorted({int(w) for w in args.workers.split(",") if w.strip()})
    print(f"\n== Under gunicorn ({dbs.kind}): {args.threads} client threads, create+confirm pairs for "
          f"{args.seconds:g} s after a 3 s warm-up, {os.cpu_count()} CPUs on this machine")
    print(f"  server: {' '.join(gunicorn_command(counts[0], 0)[1:])}  (DOVETAIL_CONFIG, DOVETAIL_DATABASE_URL set)")
    print(f"  {'workers':>7} {'pairs/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'pairs':>6} {'409 stock':>9} "
          f"{'errors':>6} {f'× {counts[0]}w':>10}  invariants  in-transaction sessions waiting (PostgreSQL)")
    rows, base = [], None
    for w in counts:
        res = run_one(w, dbs=dbs, config_dir=cfg, tmp=tmp, threads=args.threads, seconds=args.seconds)
        base = base or res.pairs_per_s
        ok, waits = "OK" if not res.problems else "FAIL", res.waits or "—"
        print(f"  {w:>7} {res.pairs_per_s:>8.1f} {res.p50_ms:>8.0f} {res.p99_ms:>8.0f} {res.pairs:>6} "
              f"{res.rejected:>9} {res.errors:>6} {res.pairs_per_s / base:>9.2f}×  {ok:<10}  {waits}", flush=True)
        for p in res.problems:
            print(f"          FAIL {p}")
        for e in res.samples:
            print(f"          error: {e}")
        rows.append({**asdict(res), "ratio_to_first": res.pairs_per_s / base})
    out["workers"] = {"threads": args.threads, "seconds": args.seconds, "rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description="Dovetail write benchmark against a bare Flask + SQLAlchemy floor.")
    ap.add_argument("--rounds", type=int, help="interleaved rounds (default 5; --quick 3)")
    ap.add_argument("--orders", type=int, help="orders created and confirmed per app per round (default 60; quick 20)")
    ap.add_argument("--import-orders", type=int, help="orders of 3 lines in the import file (default 300; quick 60)")
    ap.add_argument("--report-lines", type=int,
                    help="order lines the reports run over (default 20000; quick 5000; the issue's target is 1000000)")
    ap.add_argument("--database-url", help="a PostgreSQL server URL (postgresql+psycopg://…); each part of the "
                                           "benchmark gets a fresh schema there. Default: SQLite files in a temp dir")
    ap.add_argument("--workers", help="comma list of gunicorn worker counts, e.g. 1,2,4 (off by default)")
    ap.add_argument("--threads", type=int, default=8, help="client threads for --workers (default 8)")
    ap.add_argument("--seconds", type=float, help="measured seconds per worker count (default 20; quick 5)")
    ap.add_argument("--quick", action="store_true", help="small numbers: the whole run in about a minute")
    ap.add_argument("--show-statements", action="store_true",
                    help="print the SQL of one Dovetail create and confirm (3 lines)")
    ap.add_argument("--skip-writes", action="store_true", help="skip the in-process writes and statement counts")
    ap.add_argument("--skip-import", action="store_true")
    ap.add_argument("--skip-reports", action="store_true")
    ap.add_argument("--json", type=Path, help="also write the results to this JSON file")
    ap.add_argument("--keep", action="store_true", help="keep the PostgreSQL schemas (bench_<pid>_*)")
    args = ap.parse_args()
    q = args.quick
    args.rounds = args.rounds or (3 if q else 5)
    args.orders = args.orders or (20 if q else 60)
    args.import_orders = args.import_orders or (60 if q else 300)
    args.report_lines = args.report_lines or (5_000 if q else 20_000)
    args.seconds = args.seconds or (5.0 if q else 20.0)

    import sqlalchemy

    print(f"Dovetail benchmark {datetime.now():%Y-%m-%d %H:%M} · Python {platform.python_version()} · "
          f"SQLAlchemy {sqlalchemy.__version__} · {os.cpu_count()} CPUs · {platform.platform()}")
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"Load average at start: {load}. Shared, noisy machines: quote the ratios and medians, "
          "not single numbers.")
    out: dict[str, Any] = {"date": datetime.now().isoformat(timespec="minutes"), "args": {
        k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}}
    with tempfile.TemporaryDirectory(prefix="dovetail-bench-") as d:
        tmp = Path(d)
        dbs = Databases(args.database_url, tmp, keep=args.keep)
        out["database"] = dbs.kind
        cfg = config_copy(tmp)
        try:
            dv = None
            if not args.skip_writes:
                dv = bench_writes(args, dbs, cfg, out)
            if not args.skip_import:
                if dv is None:
                    app = make_app(cfg, dbs.new("import"))
                    dv = Side("dovetail", app, seed(app), "", "", None, engine_of(app, "sqlalchemy"))
                bench_import(args, dv, tmp, out)
            if dv is not None:
                with dv.app.app_context():
                    dv.app.extensions["sqlalchemy"].engine.dispose()
            if not args.skip_reports:
                bench_reports(args, dbs, cfg, out)
            if args.workers:
                bench_workers(args, dbs, cfg, tmp, out)
        finally:
            dbs.drop_all()
    out["loadavg"] = {"start": load, "end": " ".join(f"{x:.1f}" for x in os.getloadavg())}
    print(f"\nLoad average at the end: {out['loadavg']['end']}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, default=str), encoding="utf-8")


if __name__ == "__main__":
    main()
