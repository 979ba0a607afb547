"""Purchase history, kept from orders' lifecycle hooks (crm never imports orders).

``order_created`` / ``order_status_changed`` / ``order_returned`` (orders' hookspecs, which
crm implements as optional hooks) upsert one ``crm_purchase`` row per order, then the
customer's ``order_count``, ``total_spent`` and ``last_purchase_at`` are recomputed from
those rows. Drafts and cancelled orders are listed but not counted (which states those are
comes from the order workflow's ``cancelled`` mark, not from state names); a return
subtracts its ``returned_amount`` (one call per return, accumulated) or, when the summary
carries a cumulative ``returned_total`` / ``refund_total``, that amount.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import func, select

from core.db import db, quantize, utcnow
from core.errors import NotFound
from core.statemachine import machine_for
from plugins.crm.models import Customer, Purchase
from plugins.crm.services import parse_iso

#: not counted when the order workflow is not available (orders disabled): the built-in names.
NOT_COUNTED = ("draft", "cancelled")


def not_counted_states() -> tuple[str, ...]:
    """Order states that are history but not spend: the initial state and the states reached
    by transitions marked ``cancelled`` in the order workflow in force."""
    try:
        machine = machine_for("order")
    except NotFound:
        return NOT_COUNTED
    return tuple(sorted({machine.initial} | machine.states_marked("cancelled")))


def order_summary(order: Any) -> dict[str, Any]:
    """The plain values crm keeps of an order passed to orders' hooks (see their docstrings)."""
    promo = sorted({a.promotion_id for a in order.adjustments if a.promotion_id is not None}
                   | {ln.promotion_id for ln in order.lines if ln.promotion_id is not None})
    return {"order_id": order.id, "number": order.number, "customer_id": order.customer_id,
            "status": order.status, "total": order.total, "discount_total": order.discount_total,
            "currency": order.currency, "placed_at": order.placed_at,
            "lines": [{"product_id": ln.product_id, "sku": ln.sku, "quantity": ln.quantity,
                       "line_total": str(ln.line_total)} for ln in order.lines],
            "promotion_ids": promo}


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
        .where(Purchase.customer_id == customer_id, Purchase.status.not_in(not_counted_states()))).one()
    c.order_count = int(count or 0)
    c.total_spent = quantize(Decimal(str(spent or 0)))
    c.last_purchase_at = last


def record_order(payload: dict[str, Any], *, returned_amount: Any = None) -> None:
    """Record one order's state (``payload`` as from :func:`order_summary`), with the amount of
    one return when it is one; orders of customers crm does not know are ignored."""
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
    elif returned_amount is not None:
        # the amount of this one return (orders calls order_returned once per return)
        p.returned_total = min((p.returned_total or Decimal("0.00")) + _money(returned_amount), p.total)
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
