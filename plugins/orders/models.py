"""Orders tables (``orders_*``).

Other plugins may import :class:`Order`, :class:`OrderLine`, :class:`OrderAdjustment`,
:class:`Payment`, :class:`Shipment`, :class:`ReturnRequest` and :class:`ReturnLine`
and read them; they change them only through :mod:`plugins.orders.services`.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import AuditedMixin, JSONType, Model, Money, db

ZERO = Decimal("0.00")


class OrderSequence(db.Model):
    """The last order number handed out per (prefix, year); row-locked while allocating."""

    __tablename__ = "orders_sequence"

    prefix: Mapped[str] = mapped_column(String(8), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last: Mapped[int] = mapped_column(Integer, default=0, nullable=False)


class Order(Model, AuditedMixin, db.Model):
    """A sales order. ``status`` is driven by the "order" workflow."""

    __tablename__ = "orders_order"
    __label__ = "order"
    __scope_owner__ = "owner_id"

    number: Mapped[str] = mapped_column(String(32), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("crm_customer.id", ondelete="RESTRICT"),
                                             index=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("core_user.id", ondelete="SET NULL"),
                                                 nullable=True, index=True)
    status: Mapped[str] = mapped_column(String(40), default="draft", index=True)
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    subtotal: Mapped[Decimal] = Money(default=ZERO)
    discount_total: Mapped[Decimal] = Money(default=ZERO)
    total: Mapped[Decimal] = Money(default=ZERO)
    coupon_code: Mapped[str | None] = mapped_column(String(64))
    placed_at: Mapped[datetime] = mapped_column(index=True)
    confirmed_at: Mapped[datetime | None] = mapped_column()
    paid_at: Mapped[datetime | None] = mapped_column()
    shipped_at: Mapped[datetime | None] = mapped_column()
    completed_at: Mapped[datetime | None] = mapped_column()
    cancelled_at: Mapped[datetime | None] = mapped_column()
    returned_at: Mapped[datetime | None] = mapped_column()
    external_number: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(128), nullable=True)
    idempotency_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    stock_state: Mapped[str | None] = mapped_column(String(12), nullable=True)
    notes: Mapped[str | None] = mapped_column(Text)
    custom: Mapped[dict] = mapped_column(JSONType, default=dict)

    lines: Mapped[list[OrderLine]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="OrderLine.position")
    adjustments: Mapped[list[OrderAdjustment]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="OrderAdjustment.id")
    payments: Mapped[list[Payment]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="Payment.id")
    shipments: Mapped[list[Shipment]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="Shipment.id")

    __table_args__ = (
        UniqueConstraint("created_by_id", "idempotency_key", name="uq_orders_order_creator_idem"),
        Index("ix_orders_order_owner_placed", "owner_id", "placed_at"),
    )

    def __repr__(self) -> str:
        return f"<Order {self.number} {self.status}>"


class OrderLine(Model, db.Model):
    __tablename__ = "orders_line"
    __label__ = "order line"
    __scope_via__ = "order"

    order_id: Mapped[int] = mapped_column(ForeignKey("orders_order.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    product_id: Mapped[int] = mapped_column(ForeignKey("catalog_product.id", ondelete="RESTRICT"),
                                            index=True)
    sku: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    category_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[Decimal] = Money()
    unit_cost: Mapped[Decimal] = Money(default=ZERO)
    line_discount: Mapped[Decimal] = Money(default=ZERO)
    line_total: Mapped[Decimal] = Money()
    is_gift: Mapped[bool] = mapped_column(Boolean, default=False)
    promotion_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    returned_quantity: Mapped[int] = mapped_column(Integer, default=0)

    order: Mapped[Order] = relationship(back_populates="lines")


class OrderAdjustment(Model, db.Model):
    """A discount a promotion applied (order level, or on line ``line_index``)."""

    __tablename__ = "orders_adjustment"
    __scope_via__ = "order"

    order_id: Mapped[int] = mapped_column(ForeignKey("orders_order.id", ondelete="CASCADE"), index=True)
    promotion_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    campaign_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    code: Mapped[str] = mapped_column(String(64), default="")
    label: Mapped[str] = mapped_column(String(200), default="")
    amount: Mapped[Decimal] = Money(default=ZERO)
    line_index: Mapped[int | None] = mapped_column(Integer, nullable=True)
    coupon_code: Mapped[str | None] = mapped_column(String(64))

    order: Mapped[Order] = relationship(back_populates="adjustments")


class Payment(Model, AuditedMixin, db.Model):
    """Money in (``kind`` payment) or back out (``kind`` refund); amounts are positive."""

    __tablename__ = "orders_payment"
    __scope_via__ = "order"

    order_id: Mapped[int] = mapped_column(ForeignKey("orders_order.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(10), default="payment")
    amount: Mapped[Decimal] = Money()
    method: Mapped[str] = mapped_column(String(40), default="")
    reference: Mapped[str | None] = mapped_column(String(120))
    return_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    paid_at: Mapped[datetime] = mapped_column()

    order: Mapped[Order] = relationship(back_populates="payments")


class Shipment(Model, AuditedMixin, db.Model):
    __tablename__ = "orders_shipment"
    __scope_via__ = "order"

    order_id: Mapped[int] = mapped_column(ForeignKey("orders_order.id", ondelete="CASCADE"), index=True)
    carrier: Mapped[str] = mapped_column(String(80))
    tracking_no: Mapped[str] = mapped_column(String(64))
    shipped_at: Mapped[datetime] = mapped_column()

    order: Mapped[Order] = relationship(back_populates="shipments")


class ReturnRequest(Model, AuditedMixin, db.Model):
    """An after-sales return of some lines of a shipped order; driven by the "return" workflow."""

    __tablename__ = "orders_return"
    __label__ = "return"
    __scope_via__ = "order"

    number: Mapped[str] = mapped_column(String(32), unique=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders_order.id", ondelete="RESTRICT"), index=True)
    status: Mapped[str] = mapped_column(String(40), default="requested", index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    refund_amount: Mapped[Decimal] = Money(default=ZERO)
    requested_at: Mapped[datetime] = mapped_column()
    received_at: Mapped[datetime | None] = mapped_column()
    refunded_at: Mapped[datetime | None] = mapped_column()

    order: Mapped[Order] = relationship()
    lines: Mapped[list[ReturnLine]] = relationship(back_populates="request", cascade="all, delete-orphan",
                                                   order_by="ReturnLine.id")


class ReturnLine(Model, db.Model):
    __tablename__ = "orders_return_line"

    return_id: Mapped[int] = mapped_column(ForeignKey("orders_return.id", ondelete="CASCADE"), index=True)
    order_line_id: Mapped[int] = mapped_column(ForeignKey("orders_line.id", ondelete="RESTRICT"))
    quantity: Mapped[int] = mapped_column(Integer)
    amount: Mapped[Decimal] = Money(default=ZERO)

    request: Mapped[ReturnRequest] = relationship(back_populates="lines")
    order_line: Mapped[OrderLine] = relationship()


MODELS = [OrderSequence, Order, OrderLine, OrderAdjustment, Payment, Shipment, ReturnRequest, ReturnLine]
