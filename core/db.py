"""Storage: one Flask-SQLAlchemy ``db``, shared mixins, engine setup per backend.

SQLite runs in WAL mode with foreign keys on. A transaction begins IMMEDIATE (racing
writers queue on the lock instead of failing mid-way), except in a read request (GET, HEAD,
OPTIONS), whose transactions begin deferred so readers never wait for, or hold up, writers;
code that must write during a read request does so inside :func:`write_transaction`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from flask import has_request_context, request
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import JSON, ForeignKey, MetaData, Numeric, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

from core.errors import Conflict

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


db = SQLAlchemy(model_class=Base)

#: JSON everywhere, JSONB on PostgreSQL (indexable, comparable).
JSONType = JSON().with_variant(JSONB(), "postgresql")

CENT = Decimal("0.01")


def Money(**kw: Any) -> Any:  # noqa: N802 - reads like a column type
    """A money column: NUMERIC(14, 2), returned as ``Decimal``."""
    return mapped_column(Numeric(14, 2, asdecimal=True), **kw)


def quantize(value: Decimal | int | str) -> Decimal:
    """Round money half-up to the fen (0.01)."""
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class IdMixin:
    id: Mapped[int] = mapped_column(primary_key=True)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, nullable=False)


class CreatedByMixin:
    @declared_attr
    def created_by_id(cls) -> Mapped[int | None]:  # noqa: N805

        return mapped_column(ForeignKey("core_user.id", ondelete="SET NULL"), nullable=True)


class AuditedMixin:
    """Mark a model as audited: every insert/update/delete goes to the audit chain.

    ``__personal_fields__`` (shared with masking) never enter the audit text; a
    change to them is recorded as ``"<personal>"`` so erasure needs no history rewrite.
    """

    __audited__ = True


class Model(IdMixin, TimestampMixin, CreatedByMixin):
    """Convenience base for business models: id, created/updated at, created by."""


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    try:
        cur.execute("PRAGMA journal_mode=WAL")
    except Exception:  # noqa: BLE001 - in-memory databases have no WAL; that is fine
        pass
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


#: Methods whose requests only read: their SQLite transactions begin deferred.
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_writing: ContextVar[bool] = ContextVar("dovetail_writing", default=False)


def reads_only() -> bool:
    """True inside a read request (GET/HEAD/OPTIONS) outside :func:`write_transaction`."""
    if _writing.get():
        return False

    return has_request_context() and request.method in READ_METHODS


@contextmanager
def write_transaction() -> Iterator[None]:
    """Transactions begun inside the block are write transactions (SQLite: ``BEGIN IMMEDIATE``)
    even in a read request. End the request's read transaction before entering: a deferred
    transaction that has read and then writes fails at once if another writer committed
    meanwhile, where an IMMEDIATE one waits its turn."""
    token = _writing.set(True)
    try:
        yield
    finally:
        _writing.reset(token)


def _sqlite_begin(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN" if reads_only() else "BEGIN IMMEDIATE")


def configure_engine(engine: Engine) -> None:
    """Install the per-backend listeners on a fresh engine (idempotent)."""
    if engine.dialect.name == "sqlite" and not event.contains(engine, "connect", _sqlite_connect):
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)


#: Seconds after which a pooled server connection is replaced (before firewalls, PgBouncer or
#: the server drop idle ones); together with ``pool_pre_ping`` no request meets a dead connection.
POOL_RECYCLE = 1800


def engine_options(url: str) -> dict[str, Any]:
    """Engine settings per backend: SQLite shares connections across threads and waits on the
    write lock; server databases check a pooled connection before use and recycle old ones."""
    if url.startswith("sqlite"):
        return {"connect_args": {"check_same_thread": False, "timeout": 30}}
    return {"pool_pre_ping": True, "pool_recycle": POOL_RECYCLE}


@contextmanager
def savepoint_or_conflict(message: str, *, fields: dict[str, Any] | None = None) -> Iterator[None]:
    """Run the block and a flush in a savepoint; a row the database refuses becomes ``Conflict(message)``.

    For writes that a unique key or a foreign key may refuse (a name taken at the same moment, a row
    still referenced elsewhere): only the savepoint is rolled back, so the session stays usable and
    the user gets a 409 with ``message`` (and ``fields``) instead of a database error.
    """
    try:
        with db.session.begin_nested():
            yield
            db.session.flush()
    except sa_exc.IntegrityError:
        raise Conflict(message, fields=fields) from None


def is_postgres() -> bool:
    return db.engine.dialect.name == "postgresql"


def lock_for_update(query: Any) -> Any:
    """Row locks on PostgreSQL; SQLite already serialises writers (BEGIN IMMEDIATE outside
    read requests)."""
    return query.with_for_update() if is_postgres() else query


def database_unreachable(exc: BaseException) -> bool:
    """True when ``exc`` means the database cannot be reached now (server down, connection
    refused or lost, file not openable, pool exhausted), not that it refused one query.

    An ``OperationalError``/``InterfaceError`` covers both (SQLite's "no such table" is
    one too), so unless SQLAlchemy already saw the connection drop, one fresh connection
    running ``SELECT 1`` decides (a bare DBAPI cursor: no transaction, so no wait on
    SQLite's write lock). Only called on the error path.
    """
    if isinstance(exc, sa_exc.TimeoutError):  # the pool is exhausted
        return True
    if not isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
        return False
    if exc.connection_invalidated:
        return True
    try:
        conn = db.engine.raw_connection()
        try:
            cursor = conn.cursor()
            cursor.execute("SELECT 1")
            cursor.close()
        finally:
            conn.close()
    except Exception:  # noqa: BLE001 - any failure to connect is the answer
        return True
    return False
