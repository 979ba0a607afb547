"""The audit chain: every insert/update/delete of an audited model and every workflow
transition, with actor, time and before/after values.

Entries are append-only and tamper-evident, in two steps:

* **Writing** takes no lock. An entry is inserted *unsealed* (``sealed_seq``, ``prev_hash``
  and ``hash`` NULL) in the user's own transaction, one INSERT executemany per flush, so
  audited writes in different transactions never wait for each other.
* **Sealing** (:func:`seal`) is the one sequencer. Under the chain's lock (an advisory lock
  on PostgreSQL, the write lock on SQLite) it takes the committed unsealed entries in id
  order, gives each the next ``sealed_seq`` (its position in the chain), the previous
  entry's hash and the SHA-256 of its own canonical content plus that hash, and moves the
  anchored head, in batches. ``dovetail audit verify`` seals first, then walks the chain by
  ``sealed_seq``; the job worker (or ``dovetail audit seal`` from cron) seals periodically.

Chain order is sealing order, not id order: on PostgreSQL ids are handed out at insert time,
so a transaction that commits late may hold a smaller id than entries sealed already; it is
simply sealed later. An entry of a transaction still open is invisible to the sealer.

The head is anchored: ``core_audit_head`` holds the number of sealed entries and the id and
hash of the last one, moved by the sealer in the same transaction as the entries it seals.
The per-entry links show a sealed entry changed or removed in the middle; the head shows
entries removed at the end (or the head row itself removed), which the links alone cannot.
An entry edited *before* it was sealed cannot be told apart from one written that way.

Personal fields are written as ``"<personal>"`` so erasing a person never requires
rewriting history.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, event, func, insert, inspect, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, scoped_session

from core.db import db, utcnow
from core.models import AuditEntry, AuditHead

PERSONAL = "<personal>"
GENESIS = "0" * 64
HEAD_ID = 1
#: Key of the PostgreSQL advisory lock the sealer holds until its batch commits.
SEAL_LOCK_KEY = 727274
#: Entries sealed per transaction by :func:`seal`.
SEAL_BATCH = 1000
#: The fields an entry's hash covers, in its canonical JSON.
HASHED = ("at", "actor_id", "actor", "action", "entity", "entity_id", "before", "after", "note")

_actor: ContextVar[tuple[int | None, str] | None] = ContextVar("dovetail_actor", default=None)
_entries = AuditEntry.__table__
_head = AuditHead.__table__


@contextmanager
def acting_as(user: Any | None, name: str | None = None) -> Iterator[None]:
    """Attribute changes made inside the block to ``user`` (CLI, background jobs)."""
    token = _actor.set((getattr(user, "id", None), str(name or getattr(user, "username", "system"))))
    try:
        yield
    finally:
        _actor.reset(token)


def current_actor() -> tuple[int | None, str]:
    """The ``(user id, name)`` changes are attributed to: forced, signed in, or system."""
    forced = _actor.get()
    if forced is not None:
        return forced
    try:
        from core.auth import current_user  # noqa: PLC0415 - core.auth -> core.state -> core.app imports this module

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
    """SHA-256 of ``prev`` followed by the entry's canonical JSON (``at`` as ISO text)."""
    body = json.dumps({k: row.get(k) for k in HASHED},
                      sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256((prev + body).encode()).hexdigest()


#: Built once: SQLAlchemy then finds its compiled form in the statement cache by identity
#: instead of building and hashing a new construct on every append.
_INSERT = insert(_entries)


def _append(connection: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` unsealed: no lock, no head row, one INSERT executemany."""
    if not rows:
        return

    now = utcnow()
    # Milliseconds: the value hashed at sealing is the one read back, on every backend.
    at = now.replace(microsecond=(now.microsecond // 1000) * 1000)
    for row in rows:
        row["at"] = at
    # One executemany: SQLite loops one prepared statement in C, psycopg pipelines the rows in
    # one round trip. A literal multi-row INSERT ... VALUES (...), (...) measured 4-9x slower
    # for 20,000 rows (compiling and binding thousands of parameters); see docs/decisions.md.
    connection.execute(_INSERT, rows)


def _row(action: str, entity: str, entity_id: Any, before: Any, after: Any,
         note: str | None = None) -> dict[str, Any]:
    actor_id, actor = current_actor()
    return {"actor_id": actor_id, "actor": actor, "action": action, "entity": entity,
            "entity_id": str(entity_id), "before": before, "after": after, "note": note}


def record(session: Session | scoped_session[Any], action: str, entity: str, entity_id: Any, *,
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


# ---------------------------------------------------------------------------
# Sealing: the one place that takes the chain's lock
# ---------------------------------------------------------------------------


def _take_chain_lock(connection: Connection) -> None:
    """Serialise sealers until this transaction ends (writers never take this lock)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text(f"SELECT pg_advisory_xact_lock({SEAL_LOCK_KEY})"))
    else:
        # A write statement takes SQLite's write lock now, even in a deferred transaction,
        # so head and entries are read by the one writer (no lock upgrade half-way).
        connection.execute(update(_head).where(_head.c.id == HEAD_ID).values(id=_head.c.id))


def _hashed_fields(entry: Any) -> dict[str, Any]:
    return {"at": entry.at.isoformat(), "actor_id": entry.actor_id, "actor": entry.actor,
            "action": entry.action, "entity": entry.entity, "entity_id": entry.entity_id,
            "before": entry.before, "after": entry.after, "note": entry.note}


def _seal_batch(connection: Connection, batch: int) -> int:
    """Seal up to ``batch`` committed entries in the current transaction; how many were sealed."""
    _take_chain_lock(connection)
    pending = connection.execute(
        select(_entries.c.id, *(_entries.c[k] for k in HASHED))
        .where(_entries.c.sealed_seq.is_(None)).order_by(_entries.c.id).limit(batch)).all()
    if not pending:
        return 0
    head = connection.execute(select(_head.c.entries, _head.c.last_hash)
                              .where(_head.c.id == HEAD_ID)).first()
    last = connection.execute(select(_entries.c.sealed_seq, _entries.c.hash)
                              .where(_entries.c.sealed_seq.is_not(None))
                              .order_by(_entries.c.sealed_seq.desc()).limit(1)).first()
    # Link to the anchored head: after entries were cut off the end, the next entry still
    # names the hash of the last one sealed, so the gap shows in the links too.
    prev = head.last_hash if head is not None else (last.hash if last is not None else GENESIS)
    seq = last.sealed_seq if last is not None else 0
    sealed = []
    for entry in pending:
        seq += 1
        digest = entry_hash(prev, _hashed_fields(entry))
        sealed.append({"b_id": entry.id, "b_seq": seq, "b_prev": prev, "b_hash": digest})
        prev = digest
    connection.execute(update(_entries).where(_entries.c.id == bindparam("b_id"))
                       .values(sealed_seq=bindparam("b_seq"), prev_hash=bindparam("b_prev"),
                               hash=bindparam("b_hash")), sealed)

    moved = {"last_id": pending[-1].id, "last_hash": prev, "updated_at": utcnow()}
    if head is not None:
        connection.execute(update(_head).where(_head.c.id == HEAD_ID)
                           .values(entries=_head.c.entries + len(pending), **moved))
    elif last is None:  # the first entries of a new chain
        connection.execute(insert(_head).values(id=HEAD_ID, entries=len(pending), **moved))
    # Sealed entries but no head: the head row was deleted. It is not re-created from what
    # is left (that would vouch for a cut chain); ``verify`` keeps reporting it.
    return len(pending)


def seal(session: Session | scoped_session[Any], batch: int = SEAL_BATCH) -> int:
    """Seal every committed unsealed entry into the chain; returns how many were sealed.

    Each batch is its own transaction (lock, read, hash, write entries and head, commit),
    so the lock is held briefly and a crash loses no sealed batch. Entries of transactions
    still open are left for the next call. Call it with no pending work in ``session``:
    it commits. Safe to run from several processes at once (they queue on the lock).
    """
    if batch < 1:
        raise ValueError("batch must be at least 1")
    total = 0
    while True:
        try:
            done = _seal_batch(session.connection(), batch)
            session.commit()
        except BaseException:
            session.rollback()
            raise
        total += done
        if done < batch:
            return total


def seal_pending() -> int:
    """Seal with the app's own session: the entry point for a scheduled job (no arguments)."""
    return seal(db.session)


# ---------------------------------------------------------------------------
# Verification
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ChainReport:
    """What :func:`verify` found: ``problem`` is None when the chain is intact.

    ``checked`` counts sealed entries walked; ``unsealed`` the entries not sealed yet (not
    part of the chain, so not verified).
    """

    checked: int
    last_id: int | None = None
    broken_at: int | None = None
    problem: str | None = None
    unsealed: int = 0

    @property
    def ok(self) -> bool:
        return self.problem is None


def verify(session: Session | scoped_session[Any], batch: int = 5000) -> ChainReport:
    """Walk the sealed chain by ``sealed_seq``, then compare its end with the anchored head.

    Reports the first entry whose hash or link is wrong, entries missing at the end (the
    head records more than there are), entries the head does not know of, and a missing
    head row. Read-only: it does not seal (``dovetail audit verify`` calls :func:`seal` first).
    """
    unsealed = session.scalar(select(func.count()).select_from(_entries)
                              .where(_entries.c.sealed_seq.is_(None))) or 0
    prev = GENESIS
    checked = 0
    last_id = 0
    last_seq: int | None = 0
    while True:
        rows = session.execute(select(AuditEntry).where(AuditEntry.sealed_seq > last_seq)
                               .order_by(AuditEntry.sealed_seq).limit(batch)).scalars().all()
        if not rows:
            break
        for e in rows:
            row = _hashed_fields(e)
            if e.prev_hash != prev or entry_hash(prev, row) != e.hash:
                why = ("entries before it were deleted" if e.prev_hash != prev and e.prev_hash
                       and entry_hash(e.prev_hash, row) == e.hash else "it was altered")
                return ChainReport(checked, last_id or None, e.id,
                                   f"audit chain broken at entry {e.id} (after {checked} good "
                                   f"entries): {why}", unsealed)
            prev = e.hash
            checked += 1
            last_id = e.id
            last_seq = e.sealed_seq
    end = last_id or None
    head = session.execute(select(AuditHead).where(AuditHead.id == HEAD_ID)).scalar_one_or_none()
    if head is None:
        if checked == 0:
            return ChainReport(0, unsealed=unsealed)
        return ChainReport(checked, end, None,
                           f"audit chain head missing (core_audit_head): {checked} entries up to "
                           f"entry {end} are anchored by nothing, so entries deleted at the end "
                           f"cannot be ruled out", unsealed)
    if head.entries > checked:
        found = f"ending at entry {end}" if end else "none left"
        return ChainReport(checked, end, None,
                           f"audit chain truncated: its head records {head.entries} entries "
                           f"ending at entry {head.last_id}, but {checked} are left ({found}); "
                           f"{head.entries - checked} or more entries were deleted at the end",
                           unsealed)
    if head.entries != checked or head.last_hash != prev:
        return ChainReport(checked, end, None,
                           f"audit chain does not match its head: the head records "
                           f"{head.entries} entries ending at entry {head.last_id}, the chain "
                           f"has {checked} ending at entry {end} (entries written outside "
                           f"the audit log)", unsealed)
    return ChainReport(checked, end, unsealed=unsealed)
