"""The transactional outbox: written with the business change (and rolled back with it),
processed once, retried with backoff after a handler error, never lost when the processor
dies mid-message, and claimed once per row by concurrent processors (SKIP LOCKED)."""

from __future__ import annotations

import threading
import time
import types
from datetime import timedelta

import pytest
from sqlalchemy import String, func, insert, select, update
from sqlalchemy.orm import Mapped, mapped_column

from core import hookimpl, outbox
from core.db import IdMixin, db, utcnow
from core.outbox import DEAD, DONE, PENDING, OutboxMessage, UnknownOutboxKind
from core.registry import OutboxKind, PluginManifest


class ObxItem(IdMixin, db.Model):
    """A business row the test writes together with a message."""

    __tablename__ = "obx_item"
    name: Mapped[str] = mapped_column(String(40))


class ObxSeen(IdMixin, db.Model):
    """One row per handler run that committed (written on the handler's session)."""

    __tablename__ = "obx_seen"
    n: Mapped[int] = mapped_column()
    kind: Mapped[str] = mapped_column(String(40))


#: How many more times the flaky handler raises; touched only by the test thread.
FAILURES = {"obx.flaky": 0}


def _record(session, payload):
    session.add(ObxSeen(n=payload["n"], kind="record"))


def _flaky(session, payload):
    session.add(ObxSeen(n=payload["n"], kind="flaky"))  # rolled back with the failure
    if FAILURES["obx.flaky"] > 0:
        FAILURES["obx.flaky"] -= 1
        raise RuntimeError("courier API answered 503")


def _broken(session, payload):
    raise ValueError(f"cannot deliver {payload['n']}")


def _slow(session, payload):
    session.add(ObxSeen(n=payload["n"], kind=threading.current_thread().name[:40]))
    session.flush()
    time.sleep(0.02)


def _crash(session, payload):
    raise KeyboardInterrupt  # the process dies mid-message: nothing it did may stay


def _plugin() -> types.ModuleType:
    mod = types.ModuleType("obx_mod")
    mod.plugin_manifest = hookimpl(lambda: PluginManifest(name="obx", version="1.0.0"))
    mod.register_models = hookimpl(lambda: [ObxItem, ObxSeen])
    mod.register_outbox_kinds = hookimpl(lambda: [
        OutboxKind("obx.record", _record), OutboxKind("obx.flaky", _flaky),
        OutboxKind("obx.broken", _broken, max_attempts=2), OutboxKind("obx.slow", _slow),
        OutboxKind("obx.crash", _crash)])
    return mod


@pytest.fixture(autouse=True)
def _no_redis(monkeypatch):
    """These tests are about the inline mode (test_core_jobs covers RQ)."""
    monkeypatch.delenv("DOVETAIL_REDIS_URL", raising=False)


@pytest.fixture
def dovetail_extra_plugins():
    return {"obx": _plugin()}


@pytest.fixture
def dovetail_plugins():
    return ["obx"]


def _messages(kind: str | None = None) -> list[types.SimpleNamespace]:
    """The outbox rows as plain values; ends the read transaction (on SQLite every
    transaction holds the write lock, which the processor needs)."""
    stmt = select(OutboxMessage).order_by(OutboxMessage.id)
    if kind:
        stmt = stmt.where(OutboxMessage.kind == kind)
    rows = [types.SimpleNamespace(id=m.id, status=m.status, attempts=m.attempts, last_error=m.last_error,
                                  available_at=m.available_at, processed_at=m.processed_at)
            for m in db.session.scalars(stmt)]
    db.session.rollback()
    return rows


def _seen(kind: str | None = None) -> list[int]:
    stmt = select(ObxSeen.n).order_by(ObxSeen.n)
    if kind:
        stmt = stmt.where(ObxSeen.kind == kind)
    rows = list(db.session.scalars(stmt))
    db.session.rollback()
    return rows


def _pending_rows(kind: str, count: int) -> None:
    """Messages left pending (as by a crashed process or a Redis-mode commit), written directly."""
    now = utcnow()
    db.session.execute(insert(OutboxMessage), [
        {"kind": kind, "payload": {"n": i}, "status": PENDING, "attempts": 0, "created_at": now,
         "available_at": now} for i in range(count)])
    db.session.commit()


def test_message_is_written_in_the_business_transaction_and_rolled_back_with_it(app):
    db.session.add(ObxItem(name="kept?"))
    outbox.enqueue(db.session, "obx.record", {"n": 1})
    db.session.rollback()
    assert _messages() == []
    assert db.session.scalar(select(func.count(ObxItem.id))) == 0

    db.session.add(ObxItem(name="kept"))
    msg_id = outbox.enqueue(db.session, "obx.record", {"n": 2})
    db.session.commit()
    # without Redis the committed message is processed right after the commit, once
    [msg] = _messages()
    assert (msg.id, msg.status, msg.attempts, msg.processed_at is not None) == (msg_id, DONE, 1, True)
    assert _seen("record") == [2]
    assert outbox.process().total == 0 and _seen("record") == [2]


def test_bad_kind_or_payload_writes_nothing(app):
    with pytest.raises(UnknownOutboxKind, match="obx.nope"):
        outbox.enqueue(db.session, "obx.nope", {"n": 1})
    with pytest.raises(TypeError, match="not JSON"):
        outbox.enqueue(db.session, "obx.record", {"when": object()})
    db.session.commit()
    assert _messages() == []


def test_handler_error_is_recorded_and_retried_with_backoff(app):
    FAILURES["obx.flaky"] = 1
    outbox.enqueue(db.session, "obx.flaky", {"n": 7})
    db.session.commit()
    [msg] = _messages()
    assert (msg.status, msg.attempts) == (PENDING, 1)
    assert msg.last_error == "RuntimeError: courier API answered 503"
    assert msg.available_at >= utcnow() + timedelta(seconds=5)   # not before its backoff
    assert _seen() == []                                          # the failed run left nothing
    assert outbox.process().total == 0                            # not due yet

    db.session.execute(update(OutboxMessage).values(available_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    assert outbox.process().done == 1
    [msg] = _messages()
    assert (msg.status, msg.attempts) == (DONE, 2) and _seen("flaky") == [7]
    assert outbox.backoff(1) == timedelta(seconds=10) and outbox.backoff(3) == timedelta(seconds=40)
    assert outbox.backoff(50) == timedelta(hours=1)


def test_message_is_dead_after_max_attempts_and_can_be_requeued(app):
    outbox.enqueue(db.session, "obx.broken", {"n": 3})
    db.session.commit()
    db.session.execute(update(OutboxMessage).values(available_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    assert outbox.process().dead == 1
    [msg] = _messages()
    assert (msg.status, msg.attempts, msg.last_error) == (DEAD, 2, "ValueError: cannot deliver 3")
    assert outbox.process().total == 0
    assert outbox.requeue_dead() == 1
    [msg] = _messages()
    assert (msg.status, msg.attempts) == (PENDING, 0)


def test_a_processor_dying_mid_message_loses_nothing(app):
    _pending_rows("obx.crash", 1)
    with pytest.raises(KeyboardInterrupt):
        outbox.process()
    [msg] = _messages()
    assert (msg.status, msg.attempts) == (PENDING, 0)   # the claim was never committed


def test_concurrent_processors_run_each_message_once(app):
    _pending_rows("obx.slow", 40)
    counts: dict[str, int] = {}
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with app.app_context():
                counts[threading.current_thread().name] = outbox.process().done
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, name=f"obx-worker-{i}") for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert _seen() == list(range(40))                    # every message ran, none twice
    assert sum(counts.values()) == 40
    assert {m.status for m in _messages()} == {DONE}
    if db.engine.dialect.name == "postgresql":
        # SKIP LOCKED: both claimed rows at the same time instead of one waiting for the other
        assert all(n > 0 for n in counts.values()), counts
        by_thread = dict(db.session.execute(select(ObxSeen.kind, func.count()).group_by(ObxSeen.kind)).all())
        db.session.rollback()
        assert by_thread == {name: n for name, n in counts.items() if n}


def test_outbox_kinds_and_jobs_are_checked_at_start_naming_the_plugin(tmp_path):
    from core.app import create_app
    from core.errors import PluginError
    from core.registry import Job

    def module(name, **hooks):
        mod = types.ModuleType(f"{name}_mod")
        mod.plugin_manifest = hookimpl(lambda: PluginManifest(name=name, version="1.0.0"))
        for hook, fn in hooks.items():
            setattr(mod, hook, hookimpl(fn))
        return mod

    def refused(_tmp, enabled, extra) -> PluginError:
        cfg = tmp_path / "config"
        cfg.mkdir(exist_ok=True)
        (cfg / "roles.yaml").write_text("roles:\n  admin: {permissions: ['*'], scope: all}\n")
        with pytest.raises(PluginError) as info:
            create_app(cfg, plugins=enabled, extra_plugins=extra, testing=True,
                       config={"database_url": f"sqlite:///{tmp_path}/x.db", "secret_key": "x"})
        return info.value

    def kind(name):
        return lambda: [OutboxKind(name, _record)]

    a, b = module("oka", register_outbox_kinds=kind("oka.sms")), module("okb", register_outbox_kinds=kind("oka.sms"))
    exc = refused(tmp_path, ["okb"], {"okb": b})
    assert exc.plugin == "okb" and "outbox kind 'oka.sms' is outside the plugin's namespace" in exc.message
    c = module("okc", register_outbox_kinds=lambda: [OutboxKind("okc.sms", _record), OutboxKind("okc.sms", _flaky)])
    exc = refused(tmp_path, ["oka", "okc"], {"oka": a, "okc": c})
    assert exc.plugin == "okc" and "duplicate outbox kind 'okc.sms'" in exc.message
    j = module("jka", register_jobs=lambda: [Job("jka.remind", print, every=60), Job("jka.remind", print)])
    exc = refused(tmp_path, ["jka"], {"jka": j})
    assert exc.plugin == "jka" and "duplicate job 'jka.remind'" in exc.message
    z = module("jkz", register_jobs=lambda: [Job("jkz.often", print, every=0)])
    assert "runs every 0 s" in refused(tmp_path, ["jkz"], {"jkz": z}).message
