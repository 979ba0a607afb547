"""Throughput against worker count: Dovetail under gunicorn, driven over HTTP by client threads.

For each worker count: a fresh database with the benchmark's seed (two products kept
scarce so confirmations run out of stock and the never-oversell path is exercised),
``gunicorn -w N 'core.app:create_app()'`` with ``DOVETAIL_CONFIG`` / ``DOVETAIL_DATABASE_URL``
/ ``DOVETAIL_SECRET_KEY`` in the environment (the production command), then K client
threads doing create + confirm pairs as the rep for T seconds. One create in 20 is sent
twice with the same Idempotency-Key (a client retry) and must return the same order.
Afterwards :mod:`check_invariants` checks the database.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from check_invariants import check
from dataset import REPO, SEED, Seeded, make_app, order_body, seed


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gunicorn_command(workers: int, port: int) -> list[str]:
    return [sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{port}",
            "--timeout", "120", "--log-level", "warning", "core.app:create_app()"]


def start_server(workers: int, config_dir: Path, database_url: str, log: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {**os.environ, "DOVETAIL_CONFIG": str(config_dir), "DOVETAIL_DATABASE_URL": database_url,
           "DOVETAIL_SECRET_KEY": "bench-secret"}
    proc = subprocess.Popen(gunicorn_command(workers, port), cwd=REPO, env=env, stdout=log.open("wb"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited ({proc.returncode}); see {log}:\n{log.read_text()[-2000:]}")
        try:
            status, _ = request(port, "GET", "/healthz")
            if status == 200:
                return proc, port
        except OSError:
            pass
        time.sleep(0.3)
    stop_server(proc)
    raise RuntimeError(f"gunicorn did not answer /healthz within 90 s; see {log}")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)  # the session we started: gunicorn and its workers
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def request(port: int, method: str, path: str, body: Any = None,
            headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        data = json.dumps(body).encode() if body is not None else None
        h = {"Content-Type": "application/json", **(headers or {})} if data is not None else dict(headers or {})
        conn.request(method, path, body=data, headers=h)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)  # seconds per create+confirm pair
    pairs: int = 0
    rejected: int = 0  # confirm answered 409 (out of stock): correct, not an error
    errors: int = 0
    samples: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def error(self, what: str) -> None:
        with self.lock:
            self.errors += 1
            if len(self.samples) < 5:
                self.samples.append(what[:300])


def client(port: int, s: Seeded, stop_at: float, measure_from: float, tally: Tally, n: int) -> None:
    rnd = random.Random(SEED + 100 + n)
    auth = {"Authorization": f"Bearer {s.rep_token}"}
    i = 0
    while time.monotonic() < stop_at:
        i += 1
        body, key = order_body(rnd, s), uuid.uuid4().hex
        t0 = time.monotonic()
        try:
            status, data = request(port, "POST", "/api/v1/orders", body, {**auth, "Idempotency-Key": key})
            if status != 201:
                tally.error(f"create {status}: {data[:200]!r}")
                continue
            oid = json.loads(data)["id"]
            status, data = request(port, "POST", f"/api/v1/orders/{oid}/transitions", {"transition": "confirm"},
                                   auth)
            took = time.monotonic() - t0
            if status not in (200, 409):
                tally.error(f"confirm {status}: {data[:200]!r}")
                continue
            if t0 >= measure_from:
                with tally.lock:
                    tally.pairs += 1
                    tally.rejected += status == 409
                    tally.latencies.append(took)
            if i % 20 == 0:  # a client retry (not timed): the same key and body must give the same order
                st2, d2 = request(port, "POST", "/api/v1/orders", body, {**auth, "Idempotency-Key": key})
                if st2 != 200 or json.loads(d2)["id"] != oid:
                    tally.error(f"retry {st2}: {d2[:200]!r}")
        except (OSError, http.client.HTTPException, ValueError, KeyError) as exc:
            tally.error(f"{type(exc).__name__}: {exc}")


class LockSampler(threading.Thread):
    """On PostgreSQL: every 0.2 s, what the server's sessions (``application_name``) that are in a
    transaction wait on; the share waiting on ``Lock:advisory`` is the audit chain's global lock."""

    def __init__(self, database_url: str, app_name: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.url, self.app_name, self.stop = database_url, app_name, stop
        self.active = 0  # samples of sessions in a transaction
        self.waits: dict[str, int] = {}  # "Lock:advisory" → samples

    def run(self) -> None:
        import sqlalchemy as sa

        engine = sa.create_engine(self.url)
        try:
            with engine.connect() as conn:
                while not self.stop.wait(0.2):
                    rows = conn.execute(sa.text(
                        "SELECT wait_event_type, wait_event FROM pg_stat_activity WHERE application_name = :a "
                        "AND state IN ('active', 'idle in transaction')"), {"a": self.app_name}).all()
                    conn.rollback()
                    self.active += len(rows)
                    for kind, event in rows:
                        if kind in ("Lock", "LWLock", "IO"):
                            key = f"{kind}:{event}"
                            self.waits[key] = self.waits.get(key, 0) + 1
        finally:
            engine.dispose()

    def summary(self) -> str:
        if not self.active:
            return "no session seen in a transaction"
        top = sorted(self.waits.items(), key=lambda kv: -kv[1])[:2]
        return ", ".join(f"{k} {v * 100 / self.active:.0f}%" for k, v in top) or "no lock waits"


@dataclass
class WorkersResult:
    workers: int
    pairs_per_s: float
    p50_ms: float
    p99_ms: float
    pairs: int
    rejected: int
    errors: int
    samples: list[str]
    problems: list[str]
    facts: dict[str, Any]
    waits: str = ""  # PostgreSQL: share of active server sessions waiting on a lock


def run_one(workers: int, *, dbs: Any, config_dir: Path, tmp: Path, threads: int, seconds: float,
            warmup: float = 3.0) -> WorkersResult:
    url = dbs.new(f"w{workers}")
    app = make_app(config_dir, url)
    s = seed(app, scarce=2)
    with app.app_context():
        from core.db import db

        db.engine.dispose()
    pg = url.startswith("postgresql")
    app_name = f"dovetail_bench_{os.getpid()}_w{workers}"
    server_url = f"{url}&application_name={app_name}" if pg else url
    proc, port = start_server(workers, config_dir, server_url, tmp / f"gunicorn-w{workers}.log")
    tally, stop = Tally(), threading.Event()
    sampler = LockSampler(url, app_name, stop) if pg else None
    try:
        start = time.monotonic()
        measure_from, stop_at = start + warmup, start + warmup + seconds
        pool = [threading.Thread(target=client, args=(port, s, stop_at, measure_from, tally, n), daemon=True)
                for n in range(threads)]
        for t in pool:
            t.start()
        if sampler is not None:
            time.sleep(warmup)
            sampler.start()
        for t in pool:
            t.join()
    finally:
        stop.set()
        stop_server(proc)
        if sampler is not None and sampler.is_alive():
            sampler.join()
    problems, facts = check(url, audit=True)
    lat = sorted(tally.latencies)
    p50 = statistics.median(lat) * 1000 if lat else float("nan")
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000 if lat else float("nan")
    return WorkersResult(workers, tally.pairs / seconds, p50, p99, tally.pairs, tally.rejected, tally.errors,
                         tally.samples, problems, facts, sampler.summary() if sampler else "")
