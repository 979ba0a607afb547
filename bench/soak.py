"""Soak test (issue 9, acceptance 1 and 2): a mixed load on gunicorn + PostgreSQL + an RQ worker,
one gunicorn worker SIGKILLed midway, then every invariant checked.

What runs: a fresh schema with the benchmark's seed (two products scarce, so confirmations run
out of stock), ``gunicorn -w 4 'core.app:create_app()'`` (the production command; gunicorn
restarts a killed worker) and ``dovetail worker`` on Redis (``DOVETAIL_REDIS_URL``), both with
the same environment. 50 client threads for 60 s: most are reps (create with an
Idempotency-Key, one in four sent twice; confirm; then an operations user pays and ships about
half of them), one in ten is a manager (list orders, run a report).

Then, exit status 1 on any violation:

* 0 server errors (5xx). A request cut off by the SIGKILL is a connection error, counted apart;
  its order must be either fully there (all its lines) or not there at all;
* ``check_invariants``: nothing oversold, reserved = reservations, ledger = stock, no duplicate
  order per Idempotency-Key, no order without lines;
* every order the client got a 201/200 for is in the database with all its lines, in the last
  state the client saw (or the next one, if a later request was cut off);
* ``dovetail audit verify`` passes (it seals first), and after one sealed entry is edited in
  SQL it fails with a one-line message (no traceback).

Usage::

    python bench/soak.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sqlalchemy as sa  # noqa: E402
from check_invariants import check  # noqa: E402
from dataset import REPO, SEED, Databases, Seeded, config_copy, make_app, order_body, seed  # noqa: E402
from load import request, start_server, stop_server  # noqa: E402

NEXT = {"draft": "confirmed", "confirmed": "paid", "paid": "shipped"}


@dataclass
class Ledger:
    """What the clients saw, shared by all threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    calls: dict[str, int] = field(default_factory=dict)  # "create 201" → count
    server_errors: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)  # 4xx other than the expected 409
    cut: list[str] = field(default_factory=list)  # connection errors (the SIGKILL)
    orders: dict[int, dict[str, Any]] = field(default_factory=dict)  # id → {key, lines, status, cut_next}
    cut_creates: list[tuple[str, int]] = field(default_factory=list)  # (Idempotency-Key, lines sent)
    duplicates: list[str] = field(default_factory=list)  # a replayed key that gave another order

    def count(self, what: str, status: int, data: bytes) -> None:
        with self.lock:
            self.calls[f"{what} {status}"] = self.calls.get(f"{what} {status}", 0) + 1
            if status >= 500:
                self.server_errors.append(f"{what} {status}: {data[:200]!r}")
            elif status >= 400 and status != 409:
                self.unexpected.append(f"{what} {status}: {data[:200]!r}")


def call(led: Ledger, port: int, what: str, method: str, path: str, body: Any = None,
         headers: dict[str, str] | None = None) -> tuple[int, bytes] | None:
    """One request; ``None`` when the connection was cut (counted as such, not as a server error)."""
    try:
        status, data = request(port, method, path, body, headers)
    except (OSError, http.client.HTTPException) as exc:
        with led.lock:
            led.cut.append(f"{what}: {type(exc).__name__}: {exc}")
        return None
    led.count(what, status, data)
    return status, data


def rep_client(port: int, s: Seeded, ops_token: str, stop_at: float, led: Ledger, n: int) -> None:
    """Create → confirm (rep), then pay → ship about half (operations user)."""
    rnd = random.Random(SEED + 500 + n)
    rep = {"Authorization": f"Bearer {s.rep_token}"}
    ops = {"Authorization": f"Bearer {ops_token}"}
    i = 0
    while time.monotonic() < stop_at:
        i += 1
        body, key = order_body(rnd, s, rnd.randint(1, 5)), uuid.uuid4().hex
        res = call(led, port, "create", "POST", "/api/v1/orders", body, {**rep, "Idempotency-Key": key})
        if res is None:
            with led.lock:
                led.cut_creates.append((key, len(body["lines"])))
            continue
        if res[0] != 201:
            continue
        oid = json.loads(res[1])["id"]
        with led.lock:
            led.orders[oid] = {"key": key, "lines": len(body["lines"]), "status": "draft", "cut_next": False}
        if i % 4 == 1:  # a client retry: the same key must give the same order (200, not a new one)
            res = call(led, port, "create retry", "POST", "/api/v1/orders", body, {**rep, "Idempotency-Key": key})
            if res is not None and (res[0] != 200 or json.loads(res[1])["id"] != oid):
                with led.lock:
                    led.duplicates.append(f"key {key}: order {oid}, the replay answered {res[0]} {res[1][:80]!r}")
        steps = [("confirm", rep, {})]
        if rnd.random() < 0.5:
            steps += [("pay", ops, {"method": "cash"}),
                      ("ship", ops, {"carrier": "SF", "tracking_no": f"SF{oid:010d}"})]
        for name, who, inputs in steps:
            res = call(led, port, name, "POST", f"/api/v1/orders/{oid}/transitions",
                       {"transition": name, "inputs": inputs}, who)
            if res is None:
                with led.lock:
                    led.orders[oid]["cut_next"] = True
                break
            if res[0] != 200:
                break
            with led.lock:
                led.orders[oid]["status"] = json.loads(res[1])["order"]["status"]


def manager_client(port: int, token: str, stop_at: float, led: Ledger, n: int) -> None:
    """List orders and run reports, as a manager."""
    rnd = random.Random(SEED + 900 + n)
    auth = {"Authorization": f"Bearer {token}"}
    reports = ["orders.sales_by_day", "orders.sales_by_rep", "orders.sales_by_product", "orders.profit"]
    while time.monotonic() < stop_at:
        if rnd.random() < 0.6:
            call(led, port, "list", "GET", f"/api/v1/orders?page={rnd.randint(1, 3)}", None, auth)
        else:
            call(led, port, "report", "GET", f"/api/v1/reports/{rnd.choice(reports)}", None, auth)


def gunicorn_workers(master: int) -> list[int]:
    """The worker pids of a gunicorn master (its children)."""
    try:
        text = Path(f"/proc/{master}/task/{master}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def audit_verify(env: dict[str, str]) -> tuple[int, str]:
    proc = subprocess.run([str(Path(sys.executable).with_name("dovetail")), "audit", "verify"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    return proc.returncode, (proc.stdout + proc.stderr).strip()


def verify_orders(url: str, led: Ledger) -> list[str]:
    """Every order the clients saw committed is there with all its lines in the state they saw;
    every create cut off is either fully there or absent."""
    problems: list[str] = []
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = {r[0]: (r[1], r[2], r[3]) for r in conn.execute(sa.text(
                "SELECT o.id, o.status, o.idempotency_key, (SELECT count(*) FROM orders_line l "
                "WHERE l.order_id = o.id) FROM orders_order o"))}
            by_key = {k: (oid, n) for oid, (_st, k, n) in rows.items() if k}
            for oid, seen in led.orders.items():
                got = rows.get(oid)
                if got is None:
                    problems.append(f"order {oid} answered 201 but is not in the database")
                    continue
                status, key, nlines = got
                if key != seen["key"] or nlines != seen["lines"]:
                    problems.append(f"order {oid}: key/lines {key}/{nlines}, client sent {seen['key']}/{seen['lines']}")
                allowed = {seen["status"]} | ({NEXT.get(seen["status"])} if seen["cut_next"] else set())
                if status not in allowed:
                    problems.append(f"order {oid}: status {status}, client last saw {seen['status']}")
            for key, lines in led.cut_creates:
                if key in by_key and by_key[key][1] != lines:
                    problems.append(f"cut-off create {key}: order {by_key[key][0]} has {by_key[key][1]} of "
                                    f"{lines} lines (partial)")
    finally:
        engine.dispose()
    return problems


def tamper(url: str) -> int:
    """Edit one sealed audit entry in SQL (as an attacker with database access would)."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            aid = conn.execute(sa.text("SELECT id FROM core_audit WHERE sealed_seq IS NOT NULL "
                                       "ORDER BY sealed_seq LIMIT 1 OFFSET 10")).scalar()
            conn.execute(sa.text("UPDATE core_audit SET note = 'edited' WHERE id = :i"), {"i": aid})
    finally:
        engine.dispose()
    return aid


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--database-url", required=True, help="PostgreSQL server URL; a fresh schema is used")
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/9")
    ap.add_argument("--workers", type=int, default=4, help="gunicorn workers (default 4)")
    ap.add_argument("--clients", type=int, default=50, help="client threads (default 50)")
    ap.add_argument("--seconds", type=float, default=60.0, help="load duration (default 60)")
    ap.add_argument("--keep", action="store_true", help="keep the schema afterwards")
    args = ap.parse_args()
    print(f"Soak {time.strftime('%Y-%m-%d %H:%M')}: {args.workers} gunicorn workers, dovetail worker on "
          f"{args.redis_url}, {args.clients} clients, {args.seconds:g} s; load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}, {os.cpu_count()} CPUs", flush=True)
    with tempfile.TemporaryDirectory(prefix="dovetail-soak-") as d:
        tmp = Path(d)
        dbs = Databases(args.database_url, tmp, keep=args.keep)
        cfg = config_copy(tmp)
        try:
            sys.exit(run(args, dbs.new("soak"), cfg, tmp))
        finally:
            dbs.drop_all()


def run(args: argparse.Namespace, url: str, cfg: Path, tmp: Path) -> int:
    from core.auth import create_user, issue_token
    from core.db import db

    app = make_app(cfg, url)
    s = seed(app, scarce=2)
    with app.app_context():
        manager = create_user("manager1", "bench-password-1", ["manager"])
        ops = create_user("ops1", "bench-password-1", ["finance", "warehouse"])
        db.session.flush()
        manager_token, ops_token = issue_token(manager, "soak"), issue_token(ops, "soak")
        db.session.commit()
        db.engine.dispose()
    env = {**os.environ, "DOVETAIL_CONFIG": str(cfg), "DOVETAIL_DATABASE_URL": url,
           "DOVETAIL_SECRET_KEY": "bench-secret", "DOVETAIL_REDIS_URL": args.redis_url}
    os.environ["DOVETAIL_REDIS_URL"] = args.redis_url  # start_server passes os.environ on
    worker_log = (tmp / "worker.log").open("wb")
    worker = subprocess.Popen([str(Path(sys.executable).with_name("dovetail")), "worker"], cwd=REPO, env=env,
                              stdout=worker_log, stderr=subprocess.STDOUT, start_new_session=True)
    server, port = start_server(args.workers, cfg, url, tmp / "gunicorn.log")
    led, killed = Ledger(), None
    try:
        stop_at = time.monotonic() + args.seconds
        threads = [threading.Thread(target=manager_client if n % 10 == 0 else rep_client, daemon=True,
                                    args=(port, manager_token, stop_at, led, n) if n % 10 == 0
                                    else (port, s, ops_token, stop_at, led, n)) for n in range(args.clients)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        time.sleep(args.seconds / 2)
        pids = gunicorn_workers(server.pid)
        if pids:
            killed = pids[0]
            os.kill(killed, signal.SIGKILL)
            print(f"  {time.monotonic() - t0:.0f} s: SIGKILL gunicorn worker {killed} "
                  f"(of {len(pids)})", flush=True)
        for t in threads:
            t.join()
        elapsed = time.monotonic() - t0
        after = gunicorn_workers(server.pid)
    finally:
        stop_server(server)
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
        worker_log.close()

    problems, facts = check(url)
    order_problems = verify_orders(url, led)
    code, out = audit_verify(env)
    tampered = tamper(url)
    code2, out2 = audit_verify(env)
    total = sum(led.calls.values())
    print(f"\n  requests answered: {total} in {elapsed:.0f} s ({total / elapsed:.1f}/s); "
          f"workers after the kill: {len(after)}")
    for k in sorted(led.calls):
        print(f"    {k:<22} {led.calls[k]:>6}")
    print(f"  orders: {facts.get('orders')} {facts.get('by_status')}")
    rows = [
        ("server errors (5xx)", len(led.server_errors), not led.server_errors),
        ("unexpected 4xx", len(led.unexpected), not led.unexpected),
        ("connection errors (SIGKILL)", len(led.cut), True),
        ("  of them creates, all whole or absent", len(led.cut_creates),
         not any("cut-off" in p for p in order_problems)),
        ("oversold / ledger / duplicates / partial (check_invariants)", len(problems), not problems),
        ("replays (same key) not answering 200 with the same order", len(led.duplicates), not led.duplicates),
        ("committed orders checked (lines, state)", len(led.orders),
         not [p for p in order_problems if "cut-off" not in p]),
        ("audit verify after the load", code, code == 0),
        (f"audit verify after editing entry {tampered}", code2, code2 != 0 and "Traceback" not in out2),
    ]
    print(f"\n  {'check':<62} {'count':>6}  result")
    for what, n, ok in rows:
        print(f"  {what:<62} {n:>6}  {'OK' if ok else 'FAIL'}")
    print(f"  audit verify: {out.splitlines()[-1] if out else ''}")
    print(f"  after tamper: {out2.splitlines()[-1] if out2 else ''}")
    for p in (led.server_errors[:5] + led.unexpected[:5] + led.cut[:5] + problems + order_problems[:10]
              + led.duplicates[:5]):
        print(f"    {p}")
    return 0 if all(ok for _w, _n, ok in rows) else 1


if __name__ == "__main__":
    main()
