"""The version of the definitions in force, kept so a change can be compared with it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import IdMixin, JSONType, db, utcnow


class AcceptedVersion(IdMixin, db.Model):
    """One accepted state of ``config/custom_fields.yaml`` (append-only; the newest is in force).

    The YAML file is the source of truth people edit; this row records what the system
    accepted from it (and whether a type change was forced), so a later edit that strands
    stored values is caught even across restarts and several workers.
    """

    __tablename__ = "customfields_version"

    sha256: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    definitions: Mapped[list] = mapped_column(JSONType, nullable=False)
    forced: Mapped[bool] = mapped_column(default=False, nullable=False)
    accepted_at: Mapped[datetime] = mapped_column(default=utcnow, nullable=False)
    accepted_by: Mapped[str | None] = mapped_column(String(150), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
