"""Catalog tables: ``catalog_category`` and ``catalog_product``.

Other plugins (inventory, orders, marketing) may import :class:`Product` and
:class:`Category` and reference ``catalog_product.id`` / ``catalog_category.id``.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Boolean, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import AuditedMixin, JSONType, Model, Money, db


class Category(Model, AuditedMixin, db.Model):
    """A product category; categories may nest one under another (``parent_id``)."""

    __tablename__ = "catalog_category"
    __label__ = "category"

    name: Mapped[str] = mapped_column(String(80), unique=True)
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("catalog_category.id", ondelete="RESTRICT"), nullable=True, index=True)
    description: Mapped[str | None] = mapped_column(Text)

    parent: Mapped[Category | None] = relationship(remote_side="Category.id")

    def __repr__(self) -> str:
        return f"<Category {self.id} {self.name}>"


class Product(Model, AuditedMixin, db.Model):
    """A sellable product. Prices are ``Decimal`` (2 places) in the company currency."""

    __tablename__ = "catalog_product"
    __label__ = "product"

    sku: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    category_id: Mapped[int | None] = mapped_column(
        ForeignKey("catalog_category.id", ondelete="RESTRICT"), nullable=True, index=True)
    unit: Mapped[str] = mapped_column(String(20), default="件")
    price: Mapped[Decimal] = Money(default=Decimal("0.00"))
    cost: Mapped[Decimal] = Money(default=Decimal("0.00"))
    active: Mapped[bool] = mapped_column(Boolean, default=True, index=True)
    barcode: Mapped[str | None] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(Text)
    custom: Mapped[dict] = mapped_column(JSONType, default=dict)

    category: Mapped[Category | None] = relationship(lazy="joined")

    __table_args__ = (Index("ix_catalog_product_active_name", "active", "name"),)

    @property
    def category_name(self) -> str | None:
        return self.category.name if self.category is not None else None

    def __repr__(self) -> str:
        return f"<Product {self.id} {self.sku}>"


MODELS = [Category, Product]
