"""Performance tables (``performance_*``).

Other plugins may read :class:`SellerProfile`, :class:`Target`, :class:`Statement` and
:class:`StatementLine`; they change them only through :mod:`plugins.performance.services`
and :mod:`plugins.performance.commission`.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import AuditedMixin, IdMixin, JSONType, Model, Money, db
from core.models import User

ZERO = Decimal("0.00")
SELLER_STATUSES = ("active", "suspended", "terminated")


class SellerProfile(Model, AuditedMixin, db.Model):
    """A core user as a seller: certificate number (直销员证号) and status."""

    __tablename__ = "performance_seller"
    __label__ = "seller profile"
    __scope_owner__ = "user_id"

    user_id: Mapped[int] = mapped_column(ForeignKey("core_user.id", ondelete="CASCADE"), unique=True)
    certificate_no: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    status: Mapped[str] = mapped_column(String(12), default="active", index=True)
    joined_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    status_changed_at: Mapped[datetime | None] = mapped_column()
    notes: Mapped[str | None] = mapped_column(Text)

    user: Mapped[User] = relationship(foreign_keys=[user_id], lazy="joined")

    __table_args__ = (CheckConstraint("status IN ('active', 'suspended', 'terminated')", name="status"),)

    def __repr__(self) -> str:
        return f"<SellerProfile user={self.user_id} {self.status}>"


class Target(Model, AuditedMixin, db.Model):
    """A monthly target of one rep (``rep_id``) or one team (``team_id``); empty metrics mean
    "no target for that metric"."""

    __tablename__ = "performance_target"
    __label__ = "target"
    __scope_owner__ = "rep_id"  # team targets: see services.target_select

    period: Mapped[str] = mapped_column(String(7), index=True)  # YYYY-MM, the company's month
    rep_id: Mapped[int | None] = mapped_column(ForeignKey("core_user.id", ondelete="CASCADE"),
                                               nullable=True, index=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("core_team.id", ondelete="CASCADE"),
                                                nullable=True, index=True)
    revenue: Mapped[Decimal | None] = Money(nullable=True)
    orders: Mapped[int | None] = mapped_column(Integer, nullable=True)
    new_customers: Mapped[int | None] = mapped_column(Integer, nullable=True)
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    notes: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("period", "rep_id", name="uq_performance_target_period_rep"),
        UniqueConstraint("period", "team_id", name="uq_performance_target_period_team"),
        CheckConstraint("(rep_id IS NULL) <> (team_id IS NULL)", name="one_owner"),
    )


class Statement(Model, AuditedMixin, db.Model):
    """One rep's commission statement for one month; ``status`` is driven by the
    "commission_statement" workflow (draft → approved → paid). Only a statement in the
    workflow's initial state is regenerated; any other state freezes it."""

    __tablename__ = "performance_statement"
    __label__ = "commission statement"
    __scope_owner__ = "rep_id"

    rep_id: Mapped[int] = mapped_column(ForeignKey("core_user.id", ondelete="RESTRICT"), index=True)
    period: Mapped[str] = mapped_column(String(7), index=True)
    status: Mapped[str] = mapped_column(String(40), default="draft", index=True)
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    sales_base: Mapped[Decimal] = Money(default=ZERO)  # sale lines: own net completed sales
    adjustment_base: Mapped[Decimal] = Money(default=ZERO)  # adjustment lines (late returns)
    net_base: Mapped[Decimal] = Money(default=ZERO)
    gross_amount: Mapped[Decimal] = Money(default=ZERO)  # sum of line amounts before the cap
    cap_rate: Mapped[Decimal] = mapped_column(Numeric(5, 4), default=Decimal("0.3000"))
    cap_amount: Mapped[Decimal] = Money(default=ZERO)
    total: Mapped[Decimal] = Money(default=ZERO)  # what is owed: min(gross, cap) — see README
    capped: Mapped[bool] = mapped_column(Boolean, default=False)
    rules_digest: Mapped[str] = mapped_column(String(64), default="")
    warnings: Mapped[list] = mapped_column(JSONType, default=list)
    generated_at: Mapped[datetime | None] = mapped_column()
    approved_at: Mapped[datetime | None] = mapped_column()
    approved_by_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    paid_at: Mapped[datetime | None] = mapped_column()
    payment_reference: Mapped[str | None] = mapped_column(String(120))

    rep: Mapped[User] = relationship(foreign_keys=[rep_id], lazy="joined")
    lines: Mapped[list[StatementLine]] = relationship(
        back_populates="statement", cascade="all, delete-orphan", order_by="StatementLine.id")

    __table_args__ = (UniqueConstraint("rep_id", "period", name="uq_performance_statement_rep_period"),)

    def __repr__(self) -> str:
        return f"<Statement {self.rep_id} {self.period} {self.status}>"


class StatementLine(IdMixin, db.Model):
    """One order line's commission (``sale``), or a later change to it (``adjustment``: a
    return received after the statement holding the sale was frozen)."""

    __tablename__ = "performance_statement_line"
    __scope_via__ = "statement"

    statement_id: Mapped[int] = mapped_column(ForeignKey("performance_statement.id", ondelete="CASCADE"),
                                              index=True)
    kind: Mapped[str] = mapped_column(String(12), default="sale")
    order_id: Mapped[int] = mapped_column(ForeignKey("orders_order.id", ondelete="RESTRICT"), index=True)
    order_line_id: Mapped[int] = mapped_column(ForeignKey("orders_line.id", ondelete="RESTRICT"), index=True)
    order_number: Mapped[str] = mapped_column(String(32))
    completed_at: Mapped[datetime | None] = mapped_column()
    sku: Mapped[str] = mapped_column(String(64))
    product_name: Mapped[str] = mapped_column(String(200))
    category_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    category_name: Mapped[str | None] = mapped_column(String(80))
    quantity: Mapped[int] = mapped_column(Integer)  # net units; negative on adjustments
    base_amount: Mapped[Decimal] = Money()
    rule: Mapped[str] = mapped_column(String(200), default="")
    rate_percent: Mapped[Decimal | None] = mapped_column(Numeric(7, 4), nullable=True)
    per_unit: Mapped[Decimal | None] = Money(nullable=True)
    cap_factor: Mapped[Decimal | None] = mapped_column(Numeric(12, 10), nullable=True)
    amount: Mapped[Decimal] = Money()
    refers_statement_id: Mapped[int | None] = mapped_column(Integer, nullable=True)

    statement: Mapped[Statement] = relationship(back_populates="lines")


MODELS = [SellerProfile, Target, Statement, StatementLine]
