"""The audit chain's anchored head: sealed entries deleted at the end of the chain (or the
head row itself) are reported by ``dovetail audit verify``, which the per-entry links alone
cannot show. The head moves when entries are sealed (``audit.seal``), not when written."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select, text

from core import audit, migrate
from core.db import db
from core.models import AuditEntry, AuditHead
from core.testing import conformance


def append(n: int, start: int = 0) -> list[int]:
    """Write ``n`` entries, one transaction each, and seal them."""
    for i in range(start, start + n):
        audit.record(db.session, "note", "core_test", i, after={"i": i})
        db.session.commit()
    assert audit.seal(db.session) == n
    return list(db.session.scalars(select(AuditEntry.id).order_by(AuditEntry.id)))


def verify(runner):
    return runner.invoke(["audit", "verify"], catch_exceptions=True)


def test_an_untouched_chain_verifies_and_its_head_follows_every_seal(runner):
    assert "intact: 0 entries" in verify(runner).output
    ids = append(5)
    head = db.session.get(AuditHead, 1)
    last = db.session.get(AuditEntry, ids[-1])
    assert (head.entries, head.last_id, head.last_hash) == (5, ids[-1], last.hash)
    result = verify(runner)
    assert result.exit_code == 0, result.output
    assert f"Audit chain intact: 5 entries, the last is entry {ids[-1]}." in result.output


def test_deleting_the_last_entries_is_reported_as_truncation(runner):
    ids = append(5)
    db.session.execute(text("DELETE FROM core_audit WHERE id > :id"), {"id": ids[2]})
    db.session.commit()
    result = verify(runner)
    assert result.exit_code == 1
    assert (f"audit chain truncated: its head records 5 entries ending at entry {ids[-1]}, "
            f"but 3 are left (ending at entry {ids[2]})") in result.output


def test_deleting_every_entry_is_reported(runner):
    ids = append(2)
    db.session.execute(text("DELETE FROM core_audit"))
    db.session.commit()
    result = verify(runner)
    assert result.exit_code == 1
    assert f"head records 2 entries ending at entry {ids[-1]}, but 0 are left (none left)" \
        in result.output


def test_deleting_the_head_row_is_reported_and_not_papered_over(runner):
    ids = append(3)
    db.session.execute(text("DELETE FROM core_audit_head"))
    db.session.commit()
    result = verify(runner)
    assert result.exit_code == 1
    assert f"audit chain head missing (core_audit_head): 3 entries up to entry {ids[-1]}" \
        in result.output
    append(1, start=3)  # the sealer does not re-anchor a chain whose head vanished
    assert db.session.get(AuditHead, 1) is None
    assert "audit chain head missing" in verify(runner).output


def test_cutting_the_tail_then_writing_on_shows_the_gap(runner):
    ids = append(4)
    db.session.execute(text("DELETE FROM core_audit WHERE id = :id"), {"id": ids[-1]})
    db.session.commit()
    new_ids = append(1, start=4)
    result = verify(runner)
    assert result.exit_code == 1
    assert (f"audit chain broken at entry {new_ids[-1]} (after 3 good entries): entries before "
            f"it were deleted") in result.output


def test_altering_an_entry_is_still_reported_at_that_entry(runner):
    ids = append(3)
    db.session.execute(text("UPDATE core_audit SET actor = 'mallory' WHERE id = :id"),
                       {"id": ids[1]})
    db.session.commit()
    result = verify(runner)
    assert result.exit_code == 1
    assert f"audit chain broken at entry {ids[1]} (after 1 good entries): it was altered" \
        in result.output


def test_a_rolled_back_transaction_leaves_chain_and_head_in_step(runner):
    append(2)
    audit.record(db.session, "note", "core_test", 99)
    db.session.rollback()
    assert db.session.get(AuditHead, 1).entries == 2
    assert verify(runner).exit_code == 0


def test_concurrent_writers_keep_the_head_exact(app, runner):
    errors = []

    def writer(k: int) -> None:
        try:
            with app.app_context():
                for i in range(5):
                    audit.record(db.session, "note", "core_test", f"{k}-{i}")
                    db.session.commit()
                db.session.remove()
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    db.session.commit()
    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert db.session.scalar(select(func.count()).select_from(AuditEntry)) == 20
    assert audit.seal(db.session) == 20
    db.session.expire_all()
    assert db.session.get(AuditHead, 1).entries == 20
    assert verify(runner).exit_code == 0


@pytest.mark.parametrize("entries", [0, 3])
def test_migration_anchors_an_existing_chain(dovetail_config_dir, dovetail_database_url,
                                             entries):
    with conformance.built_app([], config_dir=dovetail_config_dir,
                               database_url=dovetail_database_url, tables=False) as app:
        migrate.upgrade_all(app)
        ids = append(entries)
        db.session.remove()  # SQLite: no open transaction while the migration writes
        migrate.downgrade(app, "core", "core_0001")  # a chain written before the head existed
        migrate.upgrade_all(app)
        head = db.session.get(AuditHead, 1)
        if entries:
            assert (head.entries, head.last_id) == (entries, ids[-1])
        else:
            assert head is None
        report = audit.verify(db.session)
        assert report.ok and report.checked == entries, report.problem
        db.session.remove()
