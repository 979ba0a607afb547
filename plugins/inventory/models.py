"""Inventory tables.

* ``inventory_warehouse`` — where stock is kept (code ``WH-SH``).
* ``inventory_stock`` — one row per product and warehouse: ``on_hand``, ``reserved``
  and an optional warehouse-specific ``reorder_point``; ``available = on_hand - reserved``.
* ``inventory_movement`` — the append-only ledger; per product and warehouse the sum of
  ``quantity`` always equals ``on_hand``.
* ``inventory_reservation`` — stock promised to a source document (``source_type`` /
  ``source_id``, e.g. ``order`` 42; no FK so inventory never depends on orders).
* ``inventory_reorder_point`` — a product's default reorder point (used for every
  warehouse whose stock row has none of its own).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint, event
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from core.db import AuditedMixin, IdMixin, Model, Money, db, utcnow
from core.errors import Conflict
from plugins.catalog.public import Product

MOVEMENT_KINDS = ("receipt", "issue", "adjustment", "transfer", "return")


class Warehouse(Model, AuditedMixin, db.Model):
    __tablename__ = "inventory_warehouse"
    __label__ = "warehouse"

    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    address: Mapped[str | None] = mapped_column(String(300))
    active: Mapped[bool] = mapped_column(default=True)

    def __repr__(self) -> str:
        return f"<Warehouse {self.code}>"


class StockLevel(IdMixin, db.Model):
    """Stock of one product in one warehouse. Changed only through :mod:`plugins.inventory.services`."""

    __tablename__ = "inventory_stock"
    __label__ = "stock level"

    product_id: Mapped[int] = mapped_column(ForeignKey("catalog_product.id", ondelete="RESTRICT"))
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("inventory_warehouse.id", ondelete="RESTRICT"),
                                              index=True)
    on_hand: Mapped[int] = mapped_column(Integer, default=0)
    reserved: Mapped[int] = mapped_column(Integer, default=0)
    reorder_point: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    product: Mapped[Product] = relationship(lazy="joined")
    warehouse: Mapped[Warehouse] = relationship(lazy="joined")

    __table_args__ = (UniqueConstraint("product_id", "warehouse_id"),
                      CheckConstraint("reserved >= 0", name="reserved_not_negative"))

    @property
    def available(self) -> int:
        return (self.on_hand or 0) - (self.reserved or 0)


class Movement(IdMixin, db.Model):
    """One ledger row. Never updated or deleted (enforced in the session)."""

    __tablename__ = "inventory_movement"
    __label__ = "stock movement"

    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("catalog_product.id", ondelete="RESTRICT"))
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("inventory_warehouse.id", ondelete="RESTRICT"))
    quantity: Mapped[int] = mapped_column(Integer)  # signed: + in, - out
    balance_after: Mapped[int] = mapped_column(Integer)  # on_hand of the pair after this row
    reason: Mapped[str | None] = mapped_column(String(200))
    reference: Mapped[str | None] = mapped_column(String(100))
    unit_cost: Mapped[Decimal | None] = Money(nullable=True)
    source_type: Mapped[str | None] = mapped_column(String(32))
    source_id: Mapped[int | None] = mapped_column(Integer)
    transfer_id: Mapped[str | None] = mapped_column(String(36), index=True)  # pairs the two transfer rows
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("core_user.id", ondelete="SET NULL"))

    product: Mapped[Product] = relationship(lazy="joined")
    warehouse: Mapped[Warehouse] = relationship(lazy="joined")

    __table_args__ = (Index("ix_inventory_movement_pair", "product_id", "warehouse_id"),
                      Index("ix_inventory_movement_source", "source_type", "source_id"))


class Reservation(IdMixin, db.Model):
    """Stock promised to a document line; ``active`` until released or issued."""

    __tablename__ = "inventory_reservation"
    __label__ = "reservation"

    source_type: Mapped[str] = mapped_column(String(32))
    source_id: Mapped[int] = mapped_column(Integer)
    product_id: Mapped[int] = mapped_column(ForeignKey("catalog_product.id", ondelete="RESTRICT"))
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("inventory_warehouse.id", ondelete="RESTRICT"))
    quantity: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="active", index=True)  # active/released/issued
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column()

    product: Mapped[Product] = relationship(lazy="joined")
    warehouse: Mapped[Warehouse] = relationship(lazy="joined")

    __table_args__ = (Index("ix_inventory_reservation_source", "source_type", "source_id"),
                      CheckConstraint("quantity > 0", name="quantity_positive"))


class ReorderPoint(IdMixin, db.Model):
    """A product's default reorder point (warehouse-specific ones live on the stock row)."""

    __tablename__ = "inventory_reorder_point"

    product_id: Mapped[int] = mapped_column(ForeignKey("catalog_product.id", ondelete="CASCADE"), unique=True)
    reorder_point: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


MODELS = [Warehouse, StockLevel, Movement, Reservation, ReorderPoint]


@event.listens_for(Session, "before_flush")
def _ledger_is_append_only(session: Session, _ctx, _instances) -> None:
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, Movement) and (obj in session.deleted or session.is_modified(obj)):
            raise Conflict("The stock ledger is append-only: post a correcting adjustment instead.")
