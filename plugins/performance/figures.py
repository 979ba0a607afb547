"""Performance figures per rep and team, on the orders plugin's one definition of revenue.

**Revenue** is the orders plugin's (``plugins.orders.public``: ``is_revenue``,
``net_revenue``, ``refunds_subquery``): orders in a state the order workflow marks as paid,
shipped or completed, at the order ``total`` (after every discount) **minus the refunds
recorded on the order**, dated by ``placed_at`` in the company's local time. The leaderboard,
targets and the sales reports therefore agree to the fen on the same orders. (Commission is
computed separately, per line and net of returned units: ``commission.py``.)

Per rep (the order's ``owner_id``): revenue, orders (counted orders with at least one unit
not returned; an order whose every unit came back still counts what was kept of it in
revenue), units (net units of non-gift lines), customers served (distinct customers of those
orders) and new customers (customers served with no order in the revenue states placed
before the period; credited to the rep owning their first counted order of the period). A
team's figures add up its current members' (customers served are counted once per team).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import case, func, select

from core.db import db, quantize
from core.state import dovetail
from plugins.performance.periods import Period
from plugins.performance.sources import Order, OrderLine, is_revenue, net_revenue, refunds_subquery

ZERO = Decimal("0.00")
METRICS = ("revenue", "orders", "units", "customers", "new_customers")


def settings() -> Any:
    return dovetail().settings("performance")


@dataclass
class Figures:
    revenue: Decimal = ZERO
    orders: int = 0
    units: int = 0
    customer_ids: set[int] = field(default_factory=set)
    new_customers: int = 0

    @property
    def customers(self) -> int:
        return len(self.customer_ids)

    def add(self, other: Figures) -> None:
        self.revenue = quantize(self.revenue + other.revenue)
        self.orders += other.orders
        self.units += other.units
        self.customer_ids |= other.customer_ids
        self.new_customers += other.new_customers

    def as_dict(self) -> dict[str, Any]:
        return {"revenue": str(quantize(self.revenue)), "orders": self.orders, "units": self.units,
                "customers": self.customers, "new_customers": self.new_customers}

    def value(self, metric: str) -> Decimal | int:
        return quantize(self.revenue) if metric == "revenue" else getattr(self, metric)


def _counted_orders(period: Period, rep_ids: Iterable[int] | None) -> Any:
    start, end = period.utc_bounds()
    gift = case((OrderLine.is_gift.is_(True), 0), else_=OrderLine.quantity - OrderLine.returned_quantity)
    agg = (select(OrderLine.order_id.label("order_id"), func.sum(gift).label("units"),
                  func.sum(OrderLine.returned_quantity).label("returned"))
           .group_by(OrderLine.order_id).subquery())
    refunds = refunds_subquery()
    stmt = (select(Order.id, Order.owner_id, Order.customer_id, Order.placed_at,
                   net_revenue(Order.total, refunds.c.refunded).label("revenue"), agg.c.units, agg.c.returned)
            .join(agg, agg.c.order_id == Order.id)
            .outerjoin(refunds, refunds.c.order_id == Order.id)
            .where(is_revenue(), Order.owner_id.is_not(None),
                   Order.placed_at >= start, Order.placed_at < end))
    if rep_ids is not None:
        stmt = stmt.where(Order.owner_id.in_(list(rep_ids)))
    return stmt


def rep_figures(period: Period, rep_ids: Iterable[int] | None = None) -> dict[int, Figures]:
    """Figures per rep (owner) for ``period``; ``rep_ids`` None means every rep with sales."""
    rep_ids = None if rep_ids is None else list(rep_ids)
    rows = db.session.execute(_counted_orders(period, rep_ids)).all()
    out: dict[int, Figures] = defaultdict(Figures)
    first_in_period: dict[int, tuple[Any, int, int]] = {}
    for r in rows:
        units = int(r.units or 0)
        f = out[r.owner_id]
        f.revenue += Decimal(r.revenue or ZERO)  # the orders plugin's revenue, whatever came back
        if units <= 0:
            continue  # every unit came back: no order, units or customer served left of this sale
        f.orders += 1
        f.units += units
        f.customer_ids.add(r.customer_id)
        key = (r.placed_at, r.id)
        if r.customer_id not in first_in_period or key < first_in_period[r.customer_id][:2]:
            first_in_period[r.customer_id] = (r.placed_at, r.id, r.owner_id)
    if rep_ids is not None and first_in_period:
        # Another rep may have sold to the same customer earlier in the period.
        ids = list(first_in_period)
        for i in range(0, len(ids), 500):
            stmt = _counted_orders(period, None).where(Order.customer_id.in_(ids[i:i + 500]))
            for r in db.session.execute(stmt):
                if int(r.units or 0) > 0 and (r.placed_at, r.id) < first_in_period[r.customer_id][:2]:
                    first_in_period[r.customer_id] = (r.placed_at, r.id, r.owner_id)
    # New customers: no counted order (by anyone) before the period starts.
    start, _end = period.utc_bounds()
    candidates = list(first_in_period)
    seen_before: set[int] = set()
    for i in range(0, len(candidates), 500):
        chunk = candidates[i:i + 500]
        seen_before |= set(db.session.scalars(
            select(Order.customer_id).where(Order.customer_id.in_(chunk), Order.placed_at < start,
                                            is_revenue()).distinct()))
    for cid, (_at, _oid, owner) in first_in_period.items():
        if cid not in seen_before and owner in out:
            out[owner].new_customers += 1
    for f in out.values():
        f.revenue = quantize(f.revenue)
    if rep_ids is not None:
        return {rid: out.get(rid, Figures()) for rid in rep_ids}
    return dict(out)


def combine(figures: Iterable[Figures]) -> Figures:
    total = Figures()
    for f in figures:
        total.add(f)
    return total
