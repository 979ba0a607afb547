"""Purchase history, kept from orders' domain events (crm never imports orders).

``order.created`` / ``order.status_changed`` / ``order.returned`` upsert one
``crm_purchase`` row per order, then the customer's ``order_count``, ``total_spent``
and ``last_purchase_at`` are recomputed from those rows. Drafts and cancelled orders
are listed but not counted; a return subtracts its ``returned_amount`` (one event per
return, accumulated) or, when the event carries a cumulative ``returned_total`` /
``refund_total``, that amount.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import func, select

from core.db import db, quantize, utcnow
from plugins.crm.models import Customer, Purchase
from plugins.crm.services import parse_iso

ORDER_EVENTS = ("order.created", "order.status_changed", "order.returned")
NOT_COUNTED = ("draft", "cancelled", "canceled")


def _money(value: Any) -> Decimal:
    try:
        return quantize(Decimal(str(value))) if value not in (None, "") else Decimal("0.00")
    except (InvalidOperation, ValueError):
        return Decimal("0.00")


def recompute(customer_id: int) -> None:
    """Recount a customer's purchase aggregates from ``crm_purchase``."""
    c = db.session.get(Customer, customer_id)
    if c is None:
        return
    db.session.flush()
    count, spent, last = db.session.execute(
        select(func.count(Purchase.id), func.coalesce(func.sum(Purchase.total - Purchase.returned_total), 0),
               func.max(Purchase.placed_at))
        .where(Purchase.customer_id == customer_id, Purchase.status.not_in(NOT_COUNTED))).one()
    c.order_count = int(count or 0)
    c.total_spent = quantize(Decimal(str(spent or 0)))
    c.last_purchase_at = last


def on_order_event(name: str, payload: dict[str, Any]) -> None:
    """Record one order event; events of customers crm does not know are ignored."""
    order_id = payload.get("order_id")
    customer_id = payload.get("customer_id")
    if order_id is None:
        return
    p = db.session.scalar(select(Purchase).where(Purchase.order_id == int(order_id)))
    if customer_id is None or db.session.get(Customer, int(customer_id)) is None:
        if p is not None:  # the order moved to a customer crm does not know
            old = p.customer_id
            db.session.delete(p)
            recompute(old)
        return
    customer_id = int(customer_id)
    old_customer = None
    if p is None:
        p = Purchase(order_id=int(order_id), customer_id=customer_id)
        db.session.add(p)
    elif p.customer_id != customer_id:
        old_customer = p.customer_id
        p.customer_id = customer_id
    p.number = str(payload.get("number") or order_id)[:40]
    p.status = str(payload.get("status") or "unknown")[:40]
    p.currency = str(payload.get("currency") or "CNY")[:3]
    p.total = _money(payload.get("total"))
    p.discount_total = _money(payload.get("discount_total"))
    returned = payload.get("returned_total", payload.get("refund_total"))
    if returned is not None:  # cumulative amount returned on this order
        p.returned_total = min(_money(returned), p.total)
    elif name == "order.returned" and payload.get("returned_amount") is not None:
        # the amount of this one return (orders sends one event per return)
        p.returned_total = min((p.returned_total or Decimal("0.00")) + _money(payload["returned_amount"]), p.total)
    placed = parse_iso(payload.get("placed_at"))
    p.placed_at = placed or p.placed_at or utcnow()
    lines = payload.get("lines")
    if isinstance(lines, list):
        p.lines = [{"product_id": ln.get("product_id"), "sku": ln.get("sku"),
                    "quantity": ln.get("quantity"), "line_total": str(ln.get("line_total"))}
                   for ln in lines if isinstance(ln, dict)]
    if isinstance(payload.get("promotion_ids"), list):
        p.promotion_ids = list(payload["promotion_ids"])
    recompute(customer_id)
    if old_customer is not None:
        recompute(old_customer)


def move_purchases(merged_id: int, survivor_id: int) -> None:
    from sqlalchemy import update

    db.session.execute(update(Purchase).where(Purchase.customer_id == merged_id)
                       .values(customer_id=survivor_id).execution_options(synchronize_session=False))
