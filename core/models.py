"""Core tables: users, teams, role grants, API tokens, web sessions, login attempts, audit
chain and its head, personal-data access log and workflow transition history."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import IdMixin, JSONType, TimestampMixin, db, utcnow


class Team(IdMixin, TimestampMixin, db.Model):
    """A sales team or region; record scope ``team`` means "owned by my team"."""

    __tablename__ = "core_team"
    name: Mapped[str] = mapped_column(String(80), unique=True)
    region: Mapped[str | None] = mapped_column(String(80))
    manager_id: Mapped[int | None] = mapped_column()  # a core_user id; no FK (user↔team cycle)


class User(IdMixin, TimestampMixin, db.Model):
    __tablename__ = "core_user"
    username: Mapped[str] = mapped_column(String(80), unique=True)
    display_name: Mapped[str] = mapped_column(String(120), default="")
    email: Mapped[str | None] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(default=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("core_team.id", ondelete="SET NULL"))
    locale: Mapped[str | None] = mapped_column(String(10))
    last_login_at: Mapped[datetime | None] = mapped_column()

    team: Mapped[Team | None] = relationship(foreign_keys=[team_id])
    role_grants: Mapped[list[UserRole]] = relationship(
        cascade="all, delete-orphan", lazy="selectin")

    @property
    def role_names(self) -> list[str]:
        return sorted(g.role for g in self.role_grants)

    # Flask-Login protocol
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return str(self.id)

    def __repr__(self) -> str:
        return f"<User {self.username}>"


class UserRole(db.Model):
    __tablename__ = "core_user_role"
    user_id: Mapped[int] = mapped_column(ForeignKey("core_user.id", ondelete="CASCADE"),
                                         primary_key=True)
    role: Mapped[str] = mapped_column(String(60), primary_key=True)


class ApiToken(IdMixin, db.Model):
    """A bearer token; only its SHA-256 is stored, so a leaked table leaks no token."""

    __tablename__ = "core_api_token"
    user_id: Mapped[int] = mapped_column(ForeignKey("core_user.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    name: Mapped[str] = mapped_column(String(80), default="api")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column()
    last_used_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()
    user: Mapped[User] = relationship()


class WebSession(IdMixin, db.Model):
    """A signed-in browser session. The session cookie carries a random token; only its
    SHA-256 is kept here, and a cookie opens a session only while its row exists. Signing
    out deletes the row (a copied cookie stops working); a password change or disabling
    the user deletes all of that user's rows."""

    __tablename__ = "core_web_session"
    user_id: Mapped[int] = mapped_column(ForeignKey("core_user.id", ondelete="CASCADE"),
                                         index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class LoginAttempt(IdMixin, db.Model):
    """A failed login, counted per user name and per IP within a sliding window."""

    __tablename__ = "core_login_attempt"
    key: Mapped[str] = mapped_column(String(200), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class AuditEntry(IdMixin, db.Model):
    """Append-only, hash-chained record of a change. Never deleted; updated once, by the sealer.

    Written unsealed (``sealed_seq``, ``prev_hash``, ``hash`` NULL) in the changing
    transaction; ``core.audit.seal`` later gives it its chain position and hashes.
    """

    __tablename__ = "core_audit"
    __table_args__ = (Index("ix_core_audit_entity", "entity", "entity_id"),
                      # the sealer's queue: only unsealed entries, so it stays small
                      Index("ix_core_audit_unsealed", "id", postgresql_where=text("sealed_seq IS NULL"),
                            sqlite_where=text("sealed_seq IS NULL")))
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(80), default="system")
    action: Mapped[str] = mapped_column(String(40))  # create/update/delete/transition/...
    entity: Mapped[str] = mapped_column(String(80))
    entity_id: Mapped[str] = mapped_column(String(40))
    before: Mapped[dict | None] = mapped_column(JSONType)
    after: Mapped[dict | None] = mapped_column(JSONType)
    note: Mapped[str | None] = mapped_column(Text)
    #: Position in the chain (sealing order, which need not be id order); NULL until sealed.
    sealed_seq: Mapped[int | None] = mapped_column(unique=True)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64), unique=True)


class AuditHead(db.Model):
    """The anchor of the audit chain: how many entries it holds and which one is last.

    Moved by the sealer (``core.audit.seal``, under the chain's lock) in the same transaction
    as the entries it seals, so deleting sealed entries at the end of the chain, or this row,
    is reported by ``dovetail audit verify``. One row, ``id`` 1; counts sealed entries only.
    """

    __tablename__ = "core_audit_head"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    entries: Mapped[int] = mapped_column()
    last_id: Mapped[int] = mapped_column()
    last_hash: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ConfigVersion(IdMixin, db.Model):
    """One applied version of the run-time config (``dovetail config apply``).

    ``documents`` holds the text of every file applied (path relative to the config folder
    -> text), so every worker process loads exactly what was checked and applied, never
    what happens to be on disk. ``version`` only grows; workers compare it per request.
    """

    __tablename__ = "core_config_version"
    version: Mapped[int] = mapped_column(unique=True, index=True)
    applied_at: Mapped[datetime] = mapped_column(default=utcnow)
    applied_by: Mapped[str | None] = mapped_column(String(150))
    digest: Mapped[str] = mapped_column(String(64))
    documents: Mapped[dict] = mapped_column(JSONType)
    note: Mapped[str | None] = mapped_column(Text)


class PersonalAccess(IdMixin, db.Model):
    """PIPL: who saw which person's unmasked personal data, when, through what."""

    __tablename__ = "core_personal_access"
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    user_id: Mapped[int | None] = mapped_column(index=True)
    entity: Mapped[str] = mapped_column(String(80))
    entity_ids: Mapped[list] = mapped_column(JSONType)
    channel: Mapped[str] = mapped_column(String(200))


class TransitionLog(IdMixin, db.Model):
    """History of workflow transitions of any entity: from, to, actor, time, comment."""

    __tablename__ = "core_transition"
    __table_args__ = (Index("ix_core_transition_record", "entity", "record_id"),)
    entity: Mapped[str] = mapped_column(String(80))
    record_id: Mapped[int] = mapped_column()
    transition: Mapped[str] = mapped_column(String(80))
    from_state: Mapped[str] = mapped_column(String(80))
    to_state: Mapped[str] = mapped_column(String(80))
    actor_id: Mapped[int | None] = mapped_column()
    at: Mapped[datetime] = mapped_column(default=utcnow)
    comment: Mapped[str | None] = mapped_column(Text)
    inputs: Mapped[dict | None] = mapped_column(JSONType)


class TransitionApproval(IdMixin, db.Model):
    """One user's approval of a pending transition that needs N approvers."""

    __tablename__ = "core_transition_approval"
    __table_args__ = (UniqueConstraint("entity", "record_id", "transition", "user_id",
                                       "round"),)
    entity: Mapped[str] = mapped_column(String(80))
    record_id: Mapped[int] = mapped_column()
    transition: Mapped[str] = mapped_column(String(80))
    user_id: Mapped[int] = mapped_column()
    round: Mapped[int] = mapped_column(default=0)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    comment: Mapped[str | None] = mapped_column(Text)


CORE_MODELS = [Team, User, UserRole, ApiToken, WebSession, LoginAttempt, AuditEntry, AuditHead,
               PersonalAccess, TransitionLog, TransitionApproval, ConfigVersion]
