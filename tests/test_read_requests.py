"""Read requests do not take SQLite's write lock, and their personal-data accesses are still
all recorded: queued during the request, written in one INSERT before the response goes out."""

from __future__ import annotations

import pytest
from sqlalchemy import event, func, select

from core import accesslog
from core.db import db, reads_only, write_transaction
from core.models import PersonalAccess


def _begins(fn) -> list[str]:
    seen: list[str] = []

    def watch(_conn, _cursor, statement, *_args):
        if statement.startswith("BEGIN"):
            seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", watch)
    try:
        fn()
    finally:
        event.remove(db.engine, "before_cursor_execute", watch)
    return seen


def _accesses() -> int:
    return db.session.scalar(select(func.count()).select_from(PersonalAccess))


def test_only_read_methods_read_only(app):
    for method, expected in (("GET", True), ("HEAD", True), ("POST", False), ("PATCH", False)):
        with app.test_request_context("/api/v1/x", method=method):
            assert reads_only() is expected
            with write_transaction():
                assert reads_only() is False
    assert reads_only() is False  # outside requests (CLI, workers)


def test_sqlite_read_requests_begin_deferred_and_writes_immediate(app):
    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's transaction modes")
    db.session.commit()
    for method, begin in (("GET", "BEGIN"), ("POST", "BEGIN IMMEDIATE")):
        with app.test_request_context("/api/v1/x", method=method):
            assert _begins(lambda: db.session.execute(select(1))) == [begin]
            db.session.rollback()
    with app.test_request_context("/api/v1/x", method="GET"), write_transaction():
        assert _begins(lambda: db.session.execute(select(1))) == ["BEGIN IMMEDIATE"]
        db.session.rollback()


def test_a_read_queues_its_accesses_and_writes_them_once(app):
    db.session.commit()
    with app.test_request_context("/api/v1/customers", method="GET"):
        accesslog.record(None, "crm_customer", [1, 2], "GET /api/v1/customers")
        accesslog.record(None, "crm_customer", [3], "GET /api/v1/customers/3")
        assert len(accesslog.pending()) == 2 and not db.session.new
        accesslog.write_pending(200)
        assert accesslog.pending() == []
    rows = db.session.scalars(select(PersonalAccess).order_by(PersonalAccess.id)).all()
    assert [(r.entity, r.entity_ids, r.channel) for r in rows] == [
        ("crm_customer", [1, 2], "GET /api/v1/customers"), ("crm_customer", [3], "GET /api/v1/customers/3")]


def test_a_failed_read_records_nothing(app):
    db.session.commit()
    with app.test_request_context("/api/v1/customers", method="GET"):
        accesslog.record(None, "crm_customer", [1], "GET /api/v1/customers")
        accesslog.write_pending(404)
    assert _accesses() == 0


def test_a_write_request_records_in_its_own_transaction(app):
    db.session.commit()
    with app.test_request_context("/api/v1/orders", method="POST"):
        accesslog.record(None, "crm_customer", [7], "POST /api/v1/orders")
        assert accesslog.pending() == [] and len(db.session.new) == 1
        db.session.rollback()  # the request failed: its access goes with it
    assert _accesses() == 0


def test_a_streamed_body_records_each_access_before_it_is_yielded(app):
    db.session.commit()
    with app.test_request_context("/api/v1/customers/export", method="GET"):
        accesslog.write_pending(200)  # the view returned; the body is generated while it is sent
        accesslog.record(None, "crm_customer", [1, 2], "GET /api/v1/customers/export")
        assert accesslog.pending() == [] and not db.session.new
        assert _accesses() == 1
        db.session.rollback()
    rows = db.session.scalars(select(PersonalAccess)).all()
    assert [(r.entity, r.entity_ids) for r in rows] == [("crm_customer", [1, 2])]
