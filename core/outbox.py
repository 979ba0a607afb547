"""The transactional outbox: work written with the business change, done after it commits.

A plugin declares message kinds (``register_outbox_kinds``, each with a handler) and writes a
message with :func:`enqueue` on the session of the business transaction, so the message
exists exactly when the change does (a rollback drops both). :func:`process` then claims due
messages in small batches — ``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL, SQLite's write
transaction elsewhere — and runs each handler in a savepoint of that same short transaction:
the handler's database changes and the "done" mark commit together. A handler that raises is rolled back
to a savepoint, the error and attempt are recorded and the message is retried later with
exponential backoff; after ``max_attempts`` it is marked ``dead`` (kept, visible, re-queueable).

Delivery is **at least once**: a crash after a handler's outside effect (an HTTP call) and
before the commit runs it again, so handlers must be idempotent for effects outside the
database. Nothing is lost: an uncommitted claim is released by the database when the process dies.

Without Redis the messages a transaction wrote are processed right after it commits (so
behaviour stays immediate); with Redis, a worker job is queued instead (:mod:`core.jobs`).
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import has_app_context
from sqlalchemy import Index, String, Text, delete, event, func, insert, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.db import IdMixin, JSONType, db, utcnow
from core.registry import OutboxKind
from core.state import dovetail

log = logging.getLogger("dovetail.outbox")

PENDING, DONE, DEAD = "pending", "done", "dead"
#: ``session.info`` key holding the ids of messages written in the open transaction.
_SESSION_KEY = "dovetail_outbox_ids"
#: First retry delay in seconds; doubled per attempt, capped at :data:`MAX_BACKOFF`.
BASE_BACKOFF = 10
MAX_BACKOFF = 3600


class OutboxMessage(IdMixin, db.Model):
    """One unit of after-commit work: ``kind`` names the handler, ``payload`` is plain JSON."""

    __tablename__ = "core_outbox"

    kind: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict] = mapped_column(JSONType, default=dict)
    status: Mapped[str] = mapped_column(String(10), default=PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    available_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_core_outbox_due", "status", "available_at"),)


class UnknownOutboxKind(RuntimeError):
    """A message kind no enabled plugin declared with ``register_outbox_kinds`` (a bug)."""


@functools.cache
def _insert_message() -> Any:
    """The message INSERT, built once (the statement cache then finds it by identity)."""
    table = OutboxMessage.__table__
    return insert(table).returning(table.c.id)


def enqueue(session: Session, kind: str, payload: Mapping[str, Any]) -> int:
    """Write one ``kind`` message in ``session``'s transaction and return its id.

    ``payload`` must be JSON data (convert ``Decimal`` and dates to strings). Raises
    :class:`UnknownOutboxKind` for an undeclared kind and ``TypeError`` for a payload that is
    not JSON, before anything is written.
    """
    if kind not in dovetail().registry.outbox_kinds:
        raise UnknownOutboxKind(f"outbox kind '{kind}' is not declared by any enabled plugin "
                                "(declare it with register_outbox_kinds)")
    try:
        data = json.loads(json.dumps(dict(payload)))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"outbox payload for '{kind}' is not JSON data: {exc}") from None
    now = utcnow()
    msg_id = session.execute(_insert_message(), {"kind": kind, "payload": data, "status": PENDING, "attempts": 0,
                                                "created_at": now, "available_at": now}).scalar_one()
    session.info.setdefault(_SESSION_KEY, []).append(msg_id)
    return int(msg_id)


@dataclass
class Processed:
    """What one :func:`process` call did: messages done, scheduled for retry, given up."""

    done: int = 0
    retried: int = 0
    dead: int = 0

    @property
    def total(self) -> int:
        return self.done + self.retried + self.dead


def backoff(attempts: int) -> timedelta:
    """Delay before retry number ``attempts`` (1-based): 10 s, 20 s, 40 s … at most an hour."""
    return timedelta(seconds=min(BASE_BACKOFF * 2 ** max(attempts - 1, 0), MAX_BACKOFF))


#: Messages claimed per transaction: their handlers run one by one in savepoints and all are
#: marked with one commit (fewer round trips; a crash re-runs the batch, at least once anyway).
BATCH = 20


def _claim(session: Session, kinds: Iterable[str], ids: list[int] | None, now: datetime,
           batch: int) -> list[OutboxMessage]:
    stmt = (select(OutboxMessage)
            .where(OutboxMessage.status == PENDING, OutboxMessage.available_at <= now,
                   OutboxMessage.kind.in_(list(kinds)))
            .order_by(OutboxMessage.id).limit(batch))
    if ids is not None:
        stmt = stmt.where(OutboxMessage.id.in_(ids))
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return list(session.scalars(stmt))


def _run(session: Session, msg: OutboxMessage, kind: OutboxKind, now: datetime, out: Processed) -> None:
    """Run one claimed message's handler in a savepoint and record the outcome on the row."""
    # The attempt is counted after the handler, with its outcome: one UPDATE of the message
    # instead of two (it is the same transaction either way, so a crash loses neither).
    try:
        with session.begin_nested():
            kind.handler(session, msg.payload)
    except Exception as exc:  # noqa: BLE001 - recorded on the message and retried, never lost
        msg.attempts += 1
        log.warning("outbox message %s (%s) failed, attempt %s: %s", msg.id, msg.kind,
                    msg.attempts, exc, exc_info=True)
        msg.last_error = f"{type(exc).__name__}: {exc}"[:2000]
        if msg.attempts >= kind.max_attempts:
            msg.status = DEAD
            out.dead += 1
        else:
            msg.available_at = now + backoff(msg.attempts)
            out.retried += 1
    else:
        msg.attempts += 1
        msg.status, msg.processed_at = DONE, utcnow()
        out.done += 1


def process(limit: int = 500, *, ids: Iterable[int] | None = None, batch: int = BATCH) -> Processed:
    """Run due pending messages (at most ``limit``; only ``ids`` when given). Each claimed batch
    is one transaction; each handler runs in a savepoint of it, so a failing handler is rolled
    back alone and recorded. Messages of kinds no enabled plugin handles are left pending (a
    disabled plugin's work waits for it). Never raises for a handler's error."""
    kinds = dovetail().registry.outbox_kinds
    wanted = sorted(set(ids)) if ids is not None else None
    out = Processed()
    if not kinds or wanted == []:
        return out
    while out.total < limit:
        with Session(db.engine, expire_on_commit=False) as session:
            now = utcnow()
            claimed = _claim(session, kinds, wanted, now, min(batch, limit - out.total))
            if not claimed:
                session.rollback()
                break
            for msg in claimed:
                _run(session, msg, kinds[msg.kind][0], now, out)
            session.commit()
        if wanted is not None:
            wanted = [i for i in wanted if i not in {m.id for m in claimed}]
            if not wanted:
                break
    return out



def _rowcount(result: Any) -> int:
    """Rows an UPDATE/DELETE touched (``CursorResult.rowcount``; the typed ``Result`` lacks it)."""
    return int(getattr(result, "rowcount", 0) or 0)


def supersede(session: Session, kind: str) -> int:
    """Mark every pending ``kind`` message done in ``session``'s transaction, waiting for any
    being processed; for a rebuild from scratch that already covers their effect. Returns
    how many."""
    return _rowcount(session.execute(
        update(OutboxMessage).where(OutboxMessage.kind == kind, OutboxMessage.status == PENDING)
        .values(status=DONE, processed_at=utcnow(), last_error="superseded by a rebuild")))


def pending_count() -> int:
    """Messages still to do (pending, due or not)."""
    return int(db.session.scalar(select(func.count(OutboxMessage.id))
                                 .where(OutboxMessage.status == PENDING)) or 0)


def prune(older_than: timedelta = timedelta(days=7)) -> int:
    """Delete done messages processed before ``older_than`` ago; returns how many."""
    with Session(db.engine) as session:
        n = _rowcount(session.execute(delete(OutboxMessage).where(
            OutboxMessage.status == DONE, OutboxMessage.processed_at < utcnow() - older_than)))
        session.commit()
    return n


def requeue_dead() -> int:
    """Give every dead message a fresh set of attempts (after fixing what made it fail)."""
    with Session(db.engine) as session:
        n = _rowcount(session.execute(update(OutboxMessage).where(OutboxMessage.status == DEAD)
                                      .values(status=PENDING, attempts=0, available_at=utcnow())))
        session.commit()
    return n


def _after_commit(session: Session) -> None:
    if session.in_nested_transaction():  # a savepoint released: the outer transaction goes on
        return
    ids = session.info.pop(_SESSION_KEY, None)
    if not ids or not has_app_context():
        return
    try:
        from core import jobs  # noqa: PLC0415 - core.jobs imports this module

        jobs.outbox_committed(ids)
    except Exception:  # noqa: BLE001 - the business change is committed; the worker retries the rest
        log.exception("outbox: after-commit processing of %s failed; the worker will retry", ids)


def _after_rollback(session: Session) -> None:
    session.info.pop(_SESSION_KEY, None)


def install() -> None:
    """Listen on every ORM session (idempotent): after commit, hand the new messages on."""
    if not event.contains(Session, "after_commit", _after_commit):
        event.listen(Session, "after_commit", _after_commit)
        event.listen(Session, "after_rollback", _after_rollback)


install()
