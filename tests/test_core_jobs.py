"""Background jobs: inline without Redis, on RQ with it (a real Redis and an in-process RQ
SimpleWorker), the schedule kept in the database, ``dovetail worker --burst``, the shipped
reminder jobs, and ``dovetail serve`` answering through gunicorn."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import types
import urllib.request
import uuid
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import insert, select
from sqlalchemy.orm import Mapped, mapped_column

from core import hookimpl, jobs, outbox
from core.db import IdMixin, db, utcnow
from core.jobs import JobRun, UnknownJob
from core.outbox import DONE, PENDING, OutboxMessage
from core.registry import Job, OutboxKind, PluginManifest

REDIS_URL = "redis://127.0.0.1:6379/15"


class JbxRun(IdMixin, db.Model):
    """One row per job or outbox handler run."""

    __tablename__ = "jbx_run"
    n: Mapped[int] = mapped_column()


def _note(n: int) -> int:
    db.session.add(JbxRun(n=n))
    db.session.commit()
    return n


def _record(session, payload):
    session.add(JbxRun(n=payload["n"]))


def _plugin() -> types.ModuleType:
    mod = types.ModuleType("jbx_mod")
    mod.plugin_manifest = hookimpl(lambda: PluginManifest(name="jbx", version="1.0.0"))
    mod.register_models = hookimpl(lambda: [JbxRun])
    mod.register_jobs = hookimpl(lambda: [Job("jbx.note", _note),
                                          Job("jbx.tick", lambda: _note(-1), every=60)])
    mod.register_outbox_kinds = hookimpl(lambda: [OutboxKind("jbx.record", _record)])
    return mod


@pytest.fixture
def dovetail_extra_plugins():
    return {"jbx": _plugin()}


@pytest.fixture
def dovetail_plugins():
    return ["jbx"]


@pytest.fixture
def no_redis(monkeypatch):
    monkeypatch.delenv("DOVETAIL_REDIS_URL", raising=False)


@pytest.fixture
def with_redis(monkeypatch):
    """The app gets the local Redis (a database number of its own) and a queue of its own;
    everything the test left in Redis is deleted afterwards."""
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.exceptions.ConnectionError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    name = f"dovetail-test-{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("DOVETAIL_REDIS_URL", REDIS_URL)
    monkeypatch.setenv("DOVETAIL_QUEUE", name)
    yield types.SimpleNamespace(client=client, queue=name)
    _forget_queue(client, name)
    client.close()


def _forget_queue(client, name: str) -> None:
    """Delete a test queue's jobs, results, worker records and registries from Redis."""
    for key in client.scan_iter("rq:job:*"):
        if client.type(key) == b"hash" and client.hget(key, "origin") == name.encode():
            job_id = key.decode().split(":")[2]
            client.delete(key, f"rq:results:{job_id}", f"rq:job:{job_id}:dependents")
    for key in client.scan_iter("rq:worker:*"):
        if client.type(key) == b"hash" and client.hget(key, "queues") == name.encode():
            client.srem("rq:workers", key)
            client.delete(key)
    client.srem("rq:queues", f"rq:queue:{name}")
    for key in client.scan_iter(f"*{name}*"):
        client.delete(key)


def _runs() -> list[int]:
    rows = sorted(db.session.scalars(select(JbxRun.n)))
    db.session.rollback()  # SQLite: a read transaction holds the write lock the jobs need
    return rows


def _statuses() -> list[str]:
    rows = list(db.session.scalars(select(OutboxMessage.status).order_by(OutboxMessage.id)))
    db.session.rollback()
    return rows


def test_inline_enqueue_runs_the_job_at_once(no_redis, app):
    assert jobs.get_queue() is None
    done = jobs.enqueue("jbx.note", n=3)
    assert (done.queued, done.job_id, done.result) == (False, None, 3)
    assert _runs() == [3]
    with pytest.raises(UnknownJob, match="jbx.nope"):
        jobs.enqueue("jbx.nope")


def test_schedule_runs_each_due_job_once_and_remembers_in_the_database(no_redis, app):
    now = utcnow()
    first = jobs.tick(now)
    assert {"jbx.tick", "core.outbox_process", "core.outbox_prune", "core.audit_seal"} <= set(first)
    assert "jbx.note" not in first                       # not scheduled: only when enqueued
    assert _runs() == [-1]
    assert jobs.tick(now) == []                          # a second scheduler (or a restart) finds all done
    assert "jbx.tick" not in jobs.tick(now + timedelta(seconds=30))  # every 60 s: not yet
    later = jobs.tick(now + timedelta(seconds=61))
    assert "jbx.tick" in later and "core.outbox_prune" not in later
    assert _runs() == [-1, -1]
    assert db.session.get(JobRun, "jbx.tick").last_run_at == now + timedelta(seconds=61)
    db.session.rollback()


def test_worker_burst_processes_pending_work(no_redis, app, runner):
    now = utcnow()
    db.session.execute(insert(OutboxMessage), [
        {"kind": "jbx.record", "payload": {"n": i}, "status": PENDING, "attempts": 0, "created_at": now,
         "available_at": now} for i in (10, 11)])
    db.session.commit()
    res = runner.invoke(["worker", "--burst"])
    assert res.exit_code == 0, res.output
    assert "2 outbox message(s) done" in res.output and "jbx.tick" in res.output
    assert _statuses() == [DONE, DONE]
    assert _runs() == [-1, 10, 11]


def test_rq_mode_queues_jobs_and_a_simpleworker_runs_them(with_redis, app):
    queue = jobs.get_queue()
    assert queue is not None and queue.name == with_redis.queue
    queued = jobs.enqueue("jbx.note", n=5)
    assert queued.queued and queued.result is None and queue.count == 1
    assert _runs() == []                                  # nothing ran in this process yet

    # a committed outbox message is not run in the request: an outbox job is queued
    outbox.enqueue(db.session, "jbx.record", {"n": 6})
    db.session.commit()
    assert _statuses() == [PENDING]
    assert queue.count == 2

    report = jobs.work(burst=True)                       # an RQ SimpleWorker, in this process
    assert report.mode == "rq" and "jbx.tick" in report.scheduled
    assert queue.count == 0
    assert _runs() == [-1, 5, 6]
    assert _statuses() == [DONE]
    assert queue.fetch_job(queued.job_id).return_value() == 5


def test_reminder_jobs_emit_their_events(no_redis, tmp_path, dovetail_config_dir, dovetail_database_url):
    """crm's follow-up and inventory's low-stock reminders, run as scheduled jobs."""
    from core.app import create_app, create_tables
    from core.registry import EventType

    seen: list = []
    spy = types.ModuleType("spy_mod")
    spy.plugin_manifest = hookimpl(lambda: PluginManifest(name="spy", version="1.0.0"))
    spy.register_event_types = hookimpl(lambda: [EventType("spy.nothing")])
    spy.on_event = hookimpl(lambda event: seen.append(event))
    app = create_app(dovetail_config_dir, plugins=["crm", "catalog", "inventory", "spy"], extra_plugins={"spy": spy},
                     testing=True, config={"database_url": dovetail_database_url, "secret_key": "x"})
    create_tables(app)
    with app.app_context():
        from core.auth import create_user
        from plugins.catalog.models import Product
        from plugins.crm.models import Activity, Customer
        from plugins.crm.services import today_local
        from plugins.inventory import services as inv
        from plugins.inventory.models import Warehouse

        rep = create_user("remind_rep", "password123", roles=["rep"])
        customer = Customer(name="王芳", phone="13800000009", phones=["13800000009"], owner_id=rep.id)
        db.session.add(customer)
        db.session.flush()
        today = today_local()
        db.session.add_all([
            Activity(customer_id=customer.id, assignee_id=rep.id, subject="回访", due_date=today - timedelta(days=2)),
            Activity(customer_id=customer.id, assignee_id=rep.id, subject="报价", due_date=today),
            Activity(customer_id=customer.id, assignee_id=rep.id, subject="下周", due_date=today + timedelta(days=7)),
            Activity(customer_id=customer.id, assignee_id=rep.id, subject="完成", due_date=date(2020, 1, 1),
                     done=True)])
        product = Product(sku="TEA-9", name="普洱", price=Decimal("99.00"))
        wh = Warehouse(code="WH-1", name="主仓")
        db.session.add_all([product, wh])
        db.session.flush()
        inv.receive(product.id, wh.id, 3)
        inv.set_reorder_point(product.id, 10)
        rep_id, product_id = rep.id, product.id
        db.session.commit()  # and no lazy loads after it: on SQLite they would hold the write lock
        seen.clear()

        assert jobs.enqueue("crm.followup_reminder").result == 1
        [due] = [e for e in seen if e.name == "crm.followup.due"]
        assert (due.payload["assignee_id"], due.payload["due_today"], due.payload["overdue"]) == (rep_id, 1, 1)
        assert len(due.payload["activity_ids"]) == 2

        assert jobs.enqueue("inventory.low_stock_reminder").result == 1
        [low] = [e for e in seen if e.name == "inventory.stock.low_reminder"]
        assert low.payload["count"] == 1
        assert low.payload["items"] == [{"product_id": product_id, "sku": "TEA-9", "product_name": "普洱",
                                         "warehouse": "WH-1", "available": 3, "reorder_point": 10}]
        db.session.remove()
        db.engine.dispose()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_runs_gunicorn_with_the_app_factory(no_redis, app, dovetail_config_dir, dovetail_database_url):
    port = _free_port()
    (dovetail_config_dir / "dovetail.yaml").write_text("plugins: {enabled: []}\nlocale: en\n", encoding="utf-8")
    env = {**os.environ, "DOVETAIL_DATABASE_URL": dovetail_database_url, "DOVETAIL_SECRET_KEY": "serve-test"}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from core.cli import main; main()", "--config", str(dovetail_config_dir),
         "serve", "--port", str(port), "--workers", "2"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        body = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and body is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    body = (r.status, r.read())
            except OSError:
                if proc.poll() is not None:
                    break
                time.sleep(0.3)
        assert body is not None, proc.communicate(timeout=5)[0].decode(errors="replace")[-2000:]
        assert body[0] == 200 and b'"status":"ok"' in body[1].replace(b" ", b"")
    finally:
        proc.terminate()
        out = proc.communicate(timeout=30)[0].decode(errors="replace")
    assert "Booting worker" in out and out.count("Booting worker") >= 2


def test_outbox_status_and_retry_commands(no_redis, app, runner):
    now = utcnow()
    db.session.execute(insert(OutboxMessage), [
        {"kind": "jbx.record", "payload": {"n": 1}, "status": "dead", "attempts": 10, "created_at": now,
         "available_at": now, "last_error": "ValueError: no such courier"}])
    db.session.commit()
    res = runner.invoke(["outbox", "status"])
    assert res.exit_code == 0, res.output
    assert "jbx.record" in res.output and "dead" in res.output and "no such courier" in res.output
    assert "job jbx.tick" in res.output and "never" in res.output
    res = runner.invoke(["outbox", "retry"])
    assert res.exit_code == 0 and "1 dead message(s) queued again" in res.output
    assert _statuses() == [PENDING]
    assert runner.invoke(["worker", "--burst"]).exit_code == 0
    assert _statuses() == [DONE] and 1 in _runs()
