"""The audit chain: every insert/update/delete of an audited model and every workflow
transition, with actor, time and before/after values.

Entries are append-only and tamper-evident: each carries the SHA-256 of its own
canonical content plus the previous entry's hash. ``dovetail audit verify`` walks
the chain. Personal fields are written as ``"<personal>"`` so erasing a person
never requires rewriting history. Writers serialise on the chain head (an advisory
lock on PostgreSQL; SQLite already has one writer at a time).

The head is anchored: ``core_audit_head`` holds the number of entries and the id and
hash of the last one, updated in the same transaction as each append. The per-entry
links show an entry changed or removed in the middle; the head shows entries removed
at the end (or the head row itself removed), which the links alone cannot.
"""

from __future__ import annotations

import hashlib
import json
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import event, func, insert, inspect, select, text, update
from sqlalchemy.orm import Session

from core.models import AuditEntry, AuditHead

PERSONAL = "<personal>"
GENESIS = "0" * 64
_actor: ContextVar[tuple[int | None, str] | None] = ContextVar("dovetail_actor", default=None)


@contextmanager
def acting_as(user: Any | None, name: str | None = None):
    """Attribute changes made inside the block to ``user`` (CLI, background jobs)."""
    token = _actor.set((getattr(user, "id", None), name or getattr(user, "username", "system")))
    try:
        yield
    finally:
        _actor.reset(token)


def current_actor() -> tuple[int | None, str]:
    forced = _actor.get()
    if forced is not None:
        return forced
    try:
        from core.auth import current_user

        user = current_user()
    except RuntimeError:
        user = None
    if user is not None:
        return user.id, user.username
    return None, "system"


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _values(obj: Any, keys: list[str] | None = None) -> dict[str, Any]:
    personal = getattr(obj, "__personal_fields__", {}) or {}
    mapper = inspect(obj).mapper
    out = {}
    for attr in mapper.column_attrs:
        key = attr.key
        if keys is not None and key not in keys:
            continue
        value = getattr(obj, key)
        out[key] = PERSONAL if key in personal and value not in (None, "", []) else _plain(value)
    return out


def entry_hash(prev: str, row: dict[str, Any]) -> str:
    body = json.dumps({k: row.get(k) for k in (
        "at", "actor_id", "actor", "action", "entity", "entity_id", "before", "after", "note")},
        sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256((prev + body).encode()).hexdigest()


HEAD_ID = 1
_head = AuditHead.__table__


def _append(connection: Any, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(727274)"))
    head = connection.execute(select(_head.c.entries, _head.c.last_hash)
                              .where(_head.c.id == HEAD_ID)).first()
    last = connection.execute(
        select(AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1)).scalar()
    # Link to the anchored head: after entries were cut off the end, the next entry still
    # names the hash of the last one written, so the gap shows in the links too.
    prev = head.last_hash if head is not None else (last or GENESIS)
    from core.db import utcnow

    for row in rows:
        now = utcnow()
        row["at"] = now.replace(microsecond=(now.microsecond // 1000) * 1000)
        row["prev_hash"] = prev
        row["hash"] = entry_hash(prev, {**row, "at": row["at"].isoformat()})
        prev = row["hash"]
    # One executemany (rows keep their order, so ids follow the chain): a flush of
    # thousands of audited rows (imports) costs one round trip batch, not one each.
    connection.execute(insert(AuditEntry.__table__), rows)
    last_id = connection.execute(select(func.max(AuditEntry.id))).scalar()
    moved = {"last_id": last_id, "last_hash": prev, "updated_at": utcnow()}
    if head is not None:
        connection.execute(update(_head).where(_head.c.id == HEAD_ID)
                           .values(entries=_head.c.entries + len(rows), **moved))
    elif last is None:  # the first entries of a new chain
        connection.execute(insert(_head).values(id=HEAD_ID, entries=len(rows), **moved))
    # Entries but no head: the head row was deleted. It is not re-created from what is left
    # (that would vouch for a cut chain); ``verify`` keeps reporting it.


def _row(action: str, entity: str, entity_id: Any, before: Any, after: Any,
         note: str | None = None) -> dict[str, Any]:
    actor_id, actor = current_actor()
    return {"actor_id": actor_id, "actor": actor, "action": action, "entity": entity,
            "entity_id": str(entity_id), "before": before, "after": after, "note": note}


def record(session: Session, action: str, entity: str, entity_id: Any, *,
           before: Any = None, after: Any = None, note: str | None = None) -> None:
    """Append one explicit entry (transitions, merges, logins) in the session's transaction."""
    _append(session.connection(), [_row(action, entity, entity_id, _plain(before),
                                        _plain(after), note)])


def _after_flush(session: Session, _ctx: Any) -> None:
    rows = []
    for obj in session.new:
        if getattr(obj, "__audited__", False):
            rows.append(_row("create", obj.__tablename__, obj.id, None, _values(obj)))
    for obj in session.dirty:
        if not getattr(obj, "__audited__", False) or not session.is_modified(obj):
            continue
        state = inspect(obj)
        changed, before = [], {}
        personal = getattr(obj, "__personal_fields__", {}) or {}
        for attr in state.mapper.column_attrs:
            hist = state.attrs[attr.key].history
            if hist.has_changes() and attr.key != "updated_at":
                changed.append(attr.key)
                old = hist.deleted[0] if hist.deleted else None
                before[attr.key] = PERSONAL if attr.key in personal and old not in (
                    None, "", []) else _plain(old)
        if changed:
            rows.append(_row("update", obj.__tablename__, obj.id, before, _values(obj, changed)))
    for obj in session.deleted:
        if getattr(obj, "__audited__", False):
            rows.append(_row("delete", obj.__tablename__, obj.id, _values(obj), None))
    if rows:
        _append(session.connection(), rows)


def install() -> None:
    """Listen on every ORM session (idempotent)."""
    if not event.contains(Session, "after_flush", _after_flush):
        event.listen(Session, "after_flush", _after_flush)


@dataclass(frozen=True)
class ChainReport:
    """What :func:`verify` found: ``problem`` is None when the chain is intact."""

    checked: int
    last_id: int | None = None
    broken_at: int | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def verify(session: Session, batch: int = 5000) -> ChainReport:
    """Walk the chain from the first entry, then compare its end with the anchored head.

    Reports the first entry whose hash or link is wrong, entries missing at the end (the
    head records more than there are), entries the head does not know of, and a missing
    head row.
    """
    prev = GENESIS
    checked = 0
    last_id = 0
    while True:
        rows = session.execute(select(AuditEntry).where(AuditEntry.id > last_id)
                               .order_by(AuditEntry.id).limit(batch)).scalars().all()
        if not rows:
            break
        for e in rows:
            row = {"at": e.at.isoformat(), "actor_id": e.actor_id, "actor": e.actor,
                   "action": e.action, "entity": e.entity, "entity_id": e.entity_id,
                   "before": e.before, "after": e.after, "note": e.note}
            if e.prev_hash != prev or entry_hash(prev, row) != e.hash:
                why = ("entries before it were deleted" if e.prev_hash != prev and
                       entry_hash(e.prev_hash, row) == e.hash else "it was altered")
                return ChainReport(checked, last_id or None, e.id,
                                   f"audit chain broken at entry {e.id} (after {checked} good "
                                   f"entries): {why}")
            prev = e.hash
            checked += 1
            last_id = e.id
    end = last_id or None
    head = session.execute(select(AuditHead).where(AuditHead.id == HEAD_ID)).scalar_one_or_none()
    if head is None:
        if checked == 0:
            return ChainReport(0)
        return ChainReport(checked, end, None,
                           f"audit chain head missing (core_audit_head): {checked} entries up to "
                           f"entry {end} are anchored by nothing, so entries deleted at the end "
                           f"cannot be ruled out")
    if head.entries > checked:
        found = f"ending at entry {end}" if end else "none left"
        return ChainReport(checked, end, None,
                           f"audit chain truncated: its head records {head.entries} entries "
                           f"ending at entry {head.last_id}, but {checked} are left ({found}); "
                           f"{head.entries - checked} or more entries were deleted at the end")
    if head.entries != checked or head.last_hash != prev:
        return ChainReport(checked, end, None,
                           f"audit chain does not match its head: the head records "
                           f"{head.entries} entries ending at entry {head.last_id}, the chain "
                           f"has {checked} ending at entry {end} (entries written outside "
                           f"the audit log)")
    return ChainReport(checked, end)
