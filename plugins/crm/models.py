"""CRM tables, all named ``crm_*``.

Other plugins may import :class:`Customer` (orders references ``crm_customer.id``);
everything else here is crm's own business.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import AuditedMixin, JSONType, Model, Money, db

PERSONAL_PERMISSION = "crm.customer.read_personal"


class Customer(Model, AuditedMixin, db.Model):
    """A customer (consumer or business) owned by one rep, or by nobody (the pool)."""

    __tablename__ = "crm_customer"
    __label__ = "customer"
    __scope_owner__ = "owner_id"
    __personal_fields__ = {"name": "name", "phone": "phone", "phones": "phone", "email": "email",
                           "address": "address"}
    __personal_permission__ = PERSONAL_PERMISSION

    name: Mapped[str] = mapped_column(String(120), index=True)
    phone: Mapped[str | None] = mapped_column(String(20), index=True)  # normalised primary mobile
    phones: Mapped[list] = mapped_column(JSONType, default=list)  # every normalised number
    email: Mapped[str | None] = mapped_column(String(200), index=True)  # lower-cased
    address: Mapped[str | None] = mapped_column(String(300))
    region: Mapped[str | None] = mapped_column(String(80), index=True)
    tier: Mapped[str] = mapped_column(String(40), default="standard", index=True)
    tags: Mapped[list] = mapped_column(JSONType, default=list)
    source: Mapped[str | None] = mapped_column(String(60))
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("core_user.id", ondelete="SET NULL"), nullable=True, index=True)
    owned_since: Mapped[datetime | None] = mapped_column()
    consent_marketing: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_at: Mapped[datetime | None] = mapped_column()
    notes: Mapped[str | None] = mapped_column(Text)
    external_code: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    custom: Mapped[dict] = mapped_column(JSONType, default=dict)
    last_contact_at: Mapped[datetime | None] = mapped_column()
    pool_entered_at: Mapped[datetime | None] = mapped_column()
    # Purchase history aggregates, kept from orders' domain events (crm_purchase).
    order_count: Mapped[int] = mapped_column(Integer, default=0)
    total_spent: Mapped[Decimal] = Money(default=Decimal("0.00"))
    last_purchase_at: Mapped[datetime | None] = mapped_column(index=True)

    owner = relationship("User", foreign_keys=[owner_id], lazy="joined")

    __table_args__ = (Index("ix_crm_customer_owner_contact", "owner_id", "last_contact_at"),)

    @property
    def owner_name(self) -> str | None:
        return (self.owner.display_name or self.owner.username) if self.owner is not None else None

    def __repr__(self) -> str:
        return f"<Customer {self.id}>"


class Contact(Model, AuditedMixin, db.Model):
    """A person to talk to at a customer (family member, purchasing agent …)."""

    __tablename__ = "crm_contact"
    __label__ = "contact"
    __scope_via__ = "customer"
    __personal_fields__ = {"name": "name", "phone": "phone", "email": "email"}
    __personal_permission__ = PERSONAL_PERMISSION

    customer_id: Mapped[int] = mapped_column(ForeignKey("crm_customer.id", ondelete="CASCADE"),
                                             index=True)
    name: Mapped[str] = mapped_column(String(120))
    title: Mapped[str | None] = mapped_column(String(80))
    phone: Mapped[str | None] = mapped_column(String(20), index=True)
    email: Mapped[str | None] = mapped_column(String(200))
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False)
    notes: Mapped[str | None] = mapped_column(Text)

    customer: Mapped[Customer] = relationship()


ACTIVITY_TYPES = ("call", "visit", "message", "note")


class Activity(Model, AuditedMixin, db.Model):
    """A follow-up: a done interaction (call, visit, message, note) or a task due on a date."""

    __tablename__ = "crm_activity"
    __label__ = "activity"
    __scope_via__ = "customer"

    customer_id: Mapped[int] = mapped_column(ForeignKey("crm_customer.id", ondelete="CASCADE"),
                                             index=True)
    assignee_id: Mapped[int | None] = mapped_column(
        ForeignKey("core_user.id", ondelete="SET NULL"), nullable=True, index=True)
    type: Mapped[str] = mapped_column(String(20), default="call")
    subject: Mapped[str] = mapped_column(String(200))
    due_date: Mapped[date | None] = mapped_column(Date, index=True)
    done: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    done_at: Mapped[datetime | None] = mapped_column()
    outcome: Mapped[str | None] = mapped_column(Text)
    next_step: Mapped[str | None] = mapped_column(Text)
    follow_up_id: Mapped[int | None] = mapped_column(
        ForeignKey("crm_activity.id", ondelete="SET NULL"), nullable=True)

    customer: Mapped[Customer] = relationship()

    __table_args__ = (Index("ix_crm_activity_due", "assignee_id", "done", "due_date"),)


class Purchase(Model, db.Model):
    """One order of a customer as last reported by orders' domain events."""

    __tablename__ = "crm_purchase"
    __label__ = "purchase"
    __scope_via__ = "customer"

    customer_id: Mapped[int] = mapped_column(ForeignKey("crm_customer.id", ondelete="CASCADE"),
                                             index=True)
    order_id: Mapped[int] = mapped_column(Integer, unique=True)  # orders' id; no FK (optional plugin)
    number: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(40))
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    total: Mapped[Decimal] = Money(default=Decimal("0.00"))
    discount_total: Mapped[Decimal] = Money(default=Decimal("0.00"))
    returned_total: Mapped[Decimal] = Money(default=Decimal("0.00"))
    placed_at: Mapped[datetime | None] = mapped_column()
    lines: Mapped[list] = mapped_column(JSONType, default=list)
    promotion_ids: Mapped[list] = mapped_column(JSONType, default=list)

    customer: Mapped[Customer] = relationship()


class Segment(Model, AuditedMixin, db.Model):
    """A saved customer filter; resolves to a customer list at query time."""

    __tablename__ = "crm_segment"
    __label__ = "segment"

    name: Mapped[str] = mapped_column(String(120), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    filters: Mapped[dict] = mapped_column(JSONType, default=dict)


class PoolLog(Model, db.Model):
    """Moves in and out of the public pool: claim, release, recycle, assign."""

    __tablename__ = "crm_pool_log"

    customer_id: Mapped[int] = mapped_column(ForeignKey("crm_customer.id", ondelete="CASCADE"),
                                             index=True)
    user_id: Mapped[int | None] = mapped_column(index=True)  # the rep who claimed / lost it
    action: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(index=True)
    reason: Mapped[str | None] = mapped_column(String(300))


class Lead(Model, AuditedMixin, db.Model):
    """A sales lead / opportunity driven by the ``lead`` workflow (new → … → won/lost)."""

    __tablename__ = "crm_lead"
    __label__ = "lead"
    __scope_owner__ = "owner_id"
    __personal_fields__ = {"contact_name": "name", "phone": "phone", "email": "email"}
    __personal_permission__ = PERSONAL_PERMISSION

    title: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(40), index=True)
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("crm_customer.id", ondelete="SET NULL"), nullable=True, index=True)
    contact_name: Mapped[str | None] = mapped_column(String(120))
    phone: Mapped[str | None] = mapped_column(String(20), index=True)
    email: Mapped[str | None] = mapped_column(String(200))
    source: Mapped[str | None] = mapped_column(String(60))
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("core_user.id", ondelete="SET NULL"), nullable=True, index=True)
    expected_amount: Mapped[Decimal] = Money(default=Decimal("0.00"))
    expected_close: Mapped[date | None] = mapped_column(Date)
    notes: Mapped[str | None] = mapped_column(Text)

    customer: Mapped[Customer | None] = relationship()


MODELS = [Customer, Contact, Activity, Purchase, Segment, PoolLog, Lead]
