"""The cart the orders plugin prices and other plugins adjust (plain data, Decimal money).

``order_price`` implementations (marketing) read the cart and append
:class:`Adjustment` objects, gift lines and :class:`Consideration` notes; orders then
computes totals with :meth:`Cart.totals`. Nothing here touches the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from core.db import quantize

ZERO = Decimal("0.00")


@dataclass
class CartLine:
    product_id: int
    sku: str
    name: str
    category_id: int | None
    quantity: int
    unit_price: Decimal
    line_discount: Decimal = ZERO
    is_gift: bool = False
    promotion_id: int | None = None

    @property
    def gross(self) -> Decimal:
        return quantize(self.unit_price * self.quantity)

    @property
    def line_total(self) -> Decimal:
        return quantize(self.gross - self.line_discount)


@dataclass
class Adjustment:
    """A discount applied by a promotion: on one line (``line_index``) or on the order."""

    promotion_id: int | None
    code: str
    label: str
    amount: Decimal
    line_index: int | None = None
    coupon_code: str | None = None
    campaign_id: int | None = None


@dataclass
class Consideration:
    """A promotion looked at while pricing: applied or not, and why."""

    promotion_id: int | None
    label: str
    applied: bool
    reason: str
    amount: Decimal = ZERO


@dataclass
class Cart:
    customer: dict[str, Any]  # id, tier, tags, region, owner_id (plain data)
    lines: list[CartLine]
    currency: str = "CNY"
    coupon_code: str | None = None
    at: datetime | None = None
    adjustments: list[Adjustment] = field(default_factory=list)
    considered: list[Consideration] = field(default_factory=list)

    @property
    def subtotal(self) -> Decimal:
        return quantize(sum((ln.gross for ln in self.lines if not ln.is_gift), ZERO))

    def totals(self) -> dict[str, Decimal]:
        """Subtotal, discount total and total, rounded half-up to the fen; never negative."""
        line_disc = sum((ln.line_discount for ln in self.lines if not ln.is_gift), ZERO)
        order_disc = sum((a.amount for a in self.adjustments if a.line_index is None), ZERO)
        discount = quantize(min(line_disc + order_disc, self.subtotal))
        return {"subtotal": self.subtotal, "discount_total": discount,
                "total": quantize(self.subtotal - discount)}
