"""Audit entries are written unsealed and without a lock; ``audit.seal`` chains them in
sealing order. Writers do not wait for each other, the sealed chain verifies after
concurrent writes, and tampering with sealed entries is still reported."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import event, func, inspect, select, text
from sqlalchemy.orm import Session

from core import audit, migrate
from core.db import db
from core.errors import DovetailError
from core.models import AuditEntry, AuditHead
from core.testing import conformance


@pytest.fixture
def dovetail_plugins():
    return ["probe"]


@pytest.fixture
def dovetail_extra_plugins():
    return {"probe": "core_probe_plugin"}


def postgres_only() -> None:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time; concurrent writers exist on PostgreSQL only")


def chain() -> list[AuditEntry]:
    db.session.expire_all()
    return list(db.session.scalars(select(AuditEntry).order_by(AuditEntry.sealed_seq, AuditEntry.id)))


def verify(runner):
    return runner.invoke(["audit", "verify"], catch_exceptions=True)


def test_a_flush_writes_its_entries_unsealed_in_one_statement_without_a_lock(app):
    from core_probe_plugin import Note

    db.session.connection()  # the transaction is open: only the flush's statements follow
    seen: list[str] = []

    def spy(_conn, _cursor, statement, *_args) -> None:
        seen.append(" ".join(statement.split()))

    event.listen(db.engine, "before_cursor_execute", spy)
    try:
        db.session.add_all([Note(title=f"n{i}") for i in range(3)])
        db.session.flush()
    finally:
        event.remove(db.engine, "before_cursor_execute", spy)
    touching = [s for s in seen if "core_audit" in s or "advisory" in s]
    assert len(touching) == 1 and touching[0].startswith("INSERT INTO core_audit "), touching
    db.session.commit()
    entries = chain()
    assert [(e.action, e.entity) for e in entries] == [("create", "probe_note")] * 3
    assert all(e.sealed_seq is None and e.hash is None and e.prev_hash is None for e in entries)
    assert db.session.get(AuditHead, 1) is None
    assert audit.verify(db.session).unsealed == 3


def test_a_writer_commits_while_another_audited_transaction_is_open(app):
    postgres_only()
    db.session.commit()
    done, errors = threading.Event(), []

    def other_writer() -> None:
        try:
            with app.app_context():
                audit.record(db.session, "note", "core_test", "B")
                db.session.commit()
                db.session.remove()
            done.set()
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    open_tx = Session(db.engine)
    thread = threading.Thread(target=other_writer, daemon=True)
    try:
        audit.record(open_tx, "note", "core_test", "A")  # uncommitted audited write
        thread.start()
        finished = done.wait(20)
        assert not errors
        assert finished, "an audited commit waited for another open audited transaction"
        assert open_tx.in_transaction()
        open_tx.commit()
    finally:
        open_tx.close()
        thread.join(30)
    assert audit.seal(db.session) == 2
    assert sorted(e.entity_id for e in chain()) == ["A", "B"]
    assert audit.verify(db.session).ok


def test_a_late_commit_with_a_smaller_id_is_sealed_after_and_the_chain_verifies(app, runner):
    postgres_only()
    db.session.commit()
    early = Session(db.engine)
    try:
        audit.record(early, "note", "core_test", "small-id")  # id taken, not committed
        db.session.execute(text("SET LOCAL lock_timeout = '10s'"))  # a lock would fail, not hang
        audit.record(db.session, "note", "core_test", "large-id")
        db.session.commit()
        assert audit.seal(db.session) == 1  # the open transaction's entry is invisible
        early.commit()
    finally:
        early.close()
    assert audit.seal(db.session) == 1
    entries = chain()
    assert [(e.entity_id, e.sealed_seq) for e in entries] == [("large-id", 1), ("small-id", 2)]
    assert entries[1].id < entries[0].id and entries[1].prev_hash == entries[0].hash
    result = verify(runner)
    assert result.exit_code == 0, result.output
    assert f"Audit chain intact: 2 entries, the last is entry {entries[1].id}." in result.output
    # the end of the chain is the last sealed entry, not the largest id
    first, last = entries[0].id, entries[1].id
    db.session.execute(text("DELETE FROM core_audit WHERE id = :id"), {"id": last})
    db.session.commit()
    result = verify(runner)
    assert result.exit_code == 1
    assert (f"audit chain truncated: its head records 2 entries ending at entry {last}, "
            f"but 1 are left (ending at entry {first})") in result.output


def test_sealing_during_concurrent_writes_gives_a_chain_that_verifies(app, runner):
    db.session.commit()
    errors: list[Exception] = []
    writing = threading.Event()
    writing.set()

    def writer(k: int) -> None:
        try:
            with app.app_context():
                for i in range(10):
                    audit.record(db.session, "note", "core_test", f"{k}-{i}", after={"i": i})
                    db.session.commit()
                db.session.remove()
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    def sealer() -> None:
        try:
            with app.app_context():
                while writing.is_set():
                    audit.seal(db.session, batch=3)
                db.session.remove()
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    writers = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    sealing = threading.Thread(target=sealer)
    sealing.start()
    for t in writers:
        t.start()
    for t in writers:
        t.join(120)
    writing.clear()
    sealing.join(120)
    assert not errors
    audit.seal(db.session)
    entries = chain()
    assert len(entries) == 40
    assert [e.sealed_seq for e in entries] == list(range(1, 41))
    assert db.session.get(AuditHead, 1).entries == 40
    result = verify(runner)
    assert result.exit_code == 0, result.output
    assert "Audit chain intact: 40 entries" in result.output
    # tampering after the concurrent run: an edited sealed entry, then cut-off last entries
    db.session.execute(text("UPDATE core_audit SET note = 'edited' WHERE id = :id"), {"id": entries[20].id})
    db.session.commit()
    assert f"audit chain broken at entry {entries[20].id} (after 20 good entries): it was altered" \
        in verify(runner).output
    db.session.execute(text("UPDATE core_audit SET note = NULL WHERE id = :id"), {"id": entries[20].id})
    db.session.execute(text("DELETE FROM core_audit WHERE sealed_seq > 38"))
    db.session.commit()
    result = verify(runner)
    assert result.exit_code == 1
    assert "audit chain truncated: its head records 40 entries" in result.output
    assert "but 38 are left" in result.output


def test_verify_seals_the_unsealed_entries_first(app, runner):
    for i in range(3):
        audit.record(db.session, "note", "core_test", i)
        db.session.commit()
    assert all(e.hash is None for e in chain())
    report = audit.verify(db.session)  # read-only: nothing sealed, nothing to walk
    assert (report.ok, report.checked, report.unsealed) == (True, 0, 3)
    result = verify(runner)
    assert result.exit_code == 0, result.output
    assert "Sealed 3 new audit entries." in result.output
    entries = chain()
    assert "Audit chain intact: 3 entries, the last is entry " f"{entries[-1].id}." in result.output
    assert [e.sealed_seq for e in entries] == [1, 2, 3]
    assert entries[0].prev_hash == audit.GENESIS and entries[1].prev_hash == entries[0].hash


def test_the_seal_command_seals_and_says_how_many(app, runner):
    audit.record(db.session, "note", "core_test", 1)
    audit.record(db.session, "note", "core_test", 2)
    db.session.commit()
    result = runner.invoke(["audit", "seal"])
    assert result.exit_code == 0 and "Sealed 2 new audit entries." in result.output
    assert "Sealed 0 new audit entries." in runner.invoke(["audit", "seal"]).output
    assert db.session.get(AuditHead, 1).entries == 2


def test_the_job_entry_point_seals_with_the_apps_session(app):
    audit.record(db.session, "note", "core_test", 1)
    db.session.commit()
    assert (audit.seal_pending(), audit.seal_pending()) == (1, 0)
    assert audit.verify(db.session).checked == 1


def test_a_rolled_back_write_leaves_nothing_to_seal(app):
    audit.record(db.session, "note", "core_test", 1)
    db.session.rollback()
    assert audit.seal(db.session) == 0
    assert db.session.scalar(select(func.count()).select_from(AuditEntry)) == 0


def test_unsealing_a_sealed_entry_to_edit_it_is_reported(app, runner):
    for i in range(3):
        audit.record(db.session, "note", "core_test", i)
    db.session.commit()
    audit.seal(db.session)
    ids = [e.id for e in chain()]
    db.session.execute(text("UPDATE core_audit SET sealed_seq = NULL, hash = NULL, prev_hash = NULL, "
                            "actor = 'mallory' WHERE id = :id"), {"id": ids[1]})
    db.session.commit()
    result = verify(runner)  # seals the "new" entry at the end; the hole stays in the links
    assert result.exit_code == 1
    assert f"audit chain broken at entry {ids[2]} (after 1 good entries): entries before it were deleted" \
        in result.output


def test_an_entry_edited_before_it_was_sealed_cannot_be_told_apart(app, runner):
    """The documented limit: before sealing, an entry is only as safe as the database."""
    audit.record(db.session, "note", "core_test", 1)
    db.session.commit()
    db.session.execute(text("UPDATE core_audit SET actor = 'mallory'"))
    db.session.commit()
    assert verify(runner).exit_code == 0
    assert [e.actor for e in chain()] == ["mallory"]


def _columns() -> set[str]:
    return {c["name"] for c in inspect(db.engine).get_columns("core_audit")}


def test_migration_core_0005_keeps_an_existing_chain_and_refuses_to_drop_unsealed_entries(
        dovetail_config_dir, dovetail_database_url):
    with conformance.built_app([], config_dir=dovetail_config_dir,
                               database_url=dovetail_database_url, tables=False) as app:
        migrate.upgrade_all(app)
        for i in range(3):
            audit.record(db.session, "note", "core_test", i)
        db.session.commit()
        audit.seal(db.session)
        db.session.remove()
        migrate.downgrade(app, "core", "core_0004")  # a chain as the previous release wrote it
        assert "sealed_seq" not in _columns()
        ids = list(db.session.scalars(text("SELECT id FROM core_audit ORDER BY id")))
        db.session.remove()
        migrate.upgrade_all(app)
        assert list(db.session.execute(text("SELECT id, sealed_seq FROM core_audit ORDER BY id"))) == \
            [(i, i) for i in ids]
        audit.record(db.session, "note", "core_test", "after")
        db.session.commit()
        result = audit.verify(db.session)
        assert (result.ok, result.checked, result.unsealed) == (True, 3, 1), result.problem
        db.session.remove()
        with pytest.raises(DovetailError, match="1 audit entries are not sealed yet"):
            migrate.downgrade(app, "core", "core_0004")
        assert "sealed_seq" in _columns()
        assert audit.seal(db.session) == 1
        assert audit.verify(db.session).checked == 4
        db.session.remove()
        migrate.downgrade(app, "core", "core_0004")
        assert "sealed_seq" not in _columns()


def test_the_api_lists_sealed_and_unsealed_entries_as_documented(app, admin_api):
    audit.record(db.session, "note", "core_test", "sealed")
    db.session.commit()
    audit.seal(db.session)
    audit.record(db.session, "note", "core_test", "unsealed")
    db.session.commit()
    r = admin_api.get("/api/v1/audit?entity=core_test&sort=id")
    assert r.status_code == 200, r.json
    assert [(i["entity_id"], i["sealed_seq"], i["hash"] is None) for i in r.json["items"]] == \
        [("sealed", 1, False), ("unsealed", None, True)]
    doc = conformance.closed_schemas(admin_api.get("/api/v1/openapi.json").json)
    schema = doc["paths"]["/api/v1/audit"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert conformance.body_problems(doc, schema, r.json) == []


def test_the_audit_commands_answer_one_line_when_the_chain_cannot_be_read(app, runner):
    db.session.commit()
    with db.engine.begin() as conn:  # a database the chain cannot be read from
        conn.execute(text("ALTER TABLE core_audit RENAME TO core_audit_elsewhere"))
    for command in (["audit", "verify"], ["audit", "seal"]):
        result = runner.invoke(command, catch_exceptions=True)
        assert result.exit_code == 1
        assert "cannot read the audit chain (" in result.output
        assert "run 'dovetail db upgrade'" in result.output
        assert "Traceback" not in result.output
