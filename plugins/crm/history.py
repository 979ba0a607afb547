"""Purchase history, kept from orders' lifecycle hooks (crm never imports orders).

``order_created`` / ``order_status_changed`` / ``order_returned`` (orders' hookspecs, which
crm implements as optional hooks) upsert one ``crm_purchase`` row per order in the order's
transaction. The customer's ``order_count``, ``total_spent`` and ``last_purchase_at`` are then
moved by the *change* that row brought (its count and spend before and after), written as a
``crm.purchase_stats`` outbox message and applied after commit — no SUM over the customer's
history on the request path. Drafts and cancelled orders are listed but not counted (which
states those are comes from the order workflow's ``cancelled`` mark, not from state names); a
return subtracts its ``returned_amount`` (one call per return, accumulated) or, when the
summary carries a cumulative ``returned_total`` / ``refund_total``, that amount.
:func:`recompute_all` (``dovetail crm recompute-stats``) rebuilds every customer's figures
from ``crm_purchase``.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import case, func, select, text, update

from core import outbox
from core.db import db, is_postgres, lock_for_update, quantize, utcnow
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


#: The outbox kind carrying one purchase row's change to its customer's figures.
STATS_KIND = "crm.purchase_stats"


def _counted(p: Purchase | None, states: tuple[str, ...]) -> tuple[int, Decimal]:
    """What one purchase row adds to its customer's figures: ``(orders, spend)``."""
    if p is None or p.status in states:
        return 0, Decimal("0.00")
    return 1, (p.total or Decimal("0.00")) - (p.returned_total or Decimal("0.00"))


def _stats_delta(customer_id: int, order_id: int, count: int, spent: Decimal, *,
                 last: Any = None, recheck_last: bool = False) -> None:
    """Write the change of one customer's figures as an outbox message (same transaction)."""
    if not count and not spent and last is None and not recheck_last:
        return

    outbox.enqueue(db.session, STATS_KIND, {
        "customer_id": customer_id, "order_id": order_id, "count": count, "spent": str(spent),
        "last": last.isoformat() if last is not None else None, "recheck_last": recheck_last,
        # the handler reads nothing but its own session: the states not counted travel along
        "not_counted": list(not_counted_states()) if recheck_last else []})


def _exists(session: Any, customer_id: int) -> bool:
    """Whether customer ``customer_id`` exists: its id alone, not the row with its joined owner
    and the owner's role grants (what ``session.get`` would load, on every order event)."""
    known = session.identity_map.get(session.identity_key(Customer, customer_id))
    if known is not None and known not in session.deleted:
        return True
    return session.scalar(select(Customer.id).where(Customer.id == customer_id)) is not None


def apply_stats(session: Any, payload: dict[str, Any]) -> None:
    """Outbox handler: move a customer's figures by one purchase row's change.

    Runs after the order's transaction committed, in the outbox's transaction (``session``,
    never ``db.session``), so it is applied exactly once with the message's "done" mark. A
    customer merged away meanwhile passes the change to the customer now holding the order's
    purchase row.
    """
    cid = int(payload["customer_id"])
    if not _rowcount(session.execute(_stats_update(cid, payload))):  # merged away meanwhile
        holder = session.scalar(select(Purchase.customer_id).where(Purchase.order_id == int(payload["order_id"])))
        if holder is None or holder == cid:
            return
        session.execute(_stats_update(holder, payload))


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _stats_update(cid: int, payload: dict[str, Any]) -> Any:
    """The UPDATE moving customer ``cid``'s figures by one :func:`apply_stats` payload."""
    values: dict[str, Any] = {"order_count": Customer.order_count + int(payload.get("count") or 0),
                              "total_spent": Customer.total_spent + Decimal(str(payload.get("spent") or "0"))}
    if payload.get("recheck_last"):
        values["last_purchase_at"] = select(func.max(Purchase.placed_at)).where(
            Purchase.customer_id == cid, Purchase.status.not_in(payload.get("not_counted") or NOT_COUNTED)
        ).scalar_subquery()
    elif payload.get("last"):
        last = parse_iso(payload["last"])
        values["last_purchase_at"] = case(
            (Customer.last_purchase_at.is_(None) | (Customer.last_purchase_at < last), last),
            else_=Customer.last_purchase_at)
    return (update(Customer).where(Customer.id == cid).values(**values)
            .execution_options(synchronize_session=False))


def recompute(customer_id: int) -> None:
    """Recount one customer's purchase figures from ``crm_purchase`` (in the caller's transaction)."""
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


def recompute_all() -> int:
    """Rebuild every customer's purchase figures from ``crm_purchase`` in one transaction and
    return how many customers changed. Pending ``crm.purchase_stats`` messages are superseded
    (their changes are in the rows already); on PostgreSQL the purchase table is locked
    against writers meanwhile so no order change slips between the two. The caller commits."""
    if is_postgres():
        db.session.execute(text("LOCK TABLE crm_purchase IN SHARE MODE"))
    outbox.supersede(db.session, STATS_KIND)
    states = not_counted_states()
    totals = {cid: (int(n), quantize(Decimal(str(s or 0))), last) for cid, n, s, last in db.session.execute(
        select(Purchase.customer_id, func.count(Purchase.id),
               func.coalesce(func.sum(Purchase.total - Purchase.returned_total), 0), func.max(Purchase.placed_at))
        .where(Purchase.status.not_in(states)).group_by(Purchase.customer_id))}
    changed = 0
    for cid, count, spent, last in db.session.execute(
            select(Customer.id, Customer.order_count, Customer.total_spent, Customer.last_purchase_at)).all():
        want = totals.get(cid, (0, Decimal("0.00"), None))
        if (count, spent, last) != want:
            db.session.execute(update(Customer).where(Customer.id == cid).values(
                order_count=want[0], total_spent=want[1], last_purchase_at=want[2])
                .execution_options(synchronize_session=False))
            changed += 1
    db.session.expire_all()
    return changed


def absorb_stats(survivor: Customer, merged: Customer) -> None:
    """Add a merged customer's figures to the survivor's (merge moved its purchase rows);
    changes still in the outbox for the merged customer follow its rows (:func:`apply_stats`)."""
    survivor.order_count = (survivor.order_count or 0) + (merged.order_count or 0)
    survivor.total_spent = (survivor.total_spent or Decimal("0.00")) + (merged.total_spent or Decimal("0.00"))
    if merged.last_purchase_at and (survivor.last_purchase_at is None
                                    or merged.last_purchase_at > survivor.last_purchase_at):
        survivor.last_purchase_at = merged.last_purchase_at


def record_order(payload: dict[str, Any], *, returned_amount: Any = None) -> None:
    """Record one order's state (``payload`` as from :func:`order_summary`), with the amount of
    one return when it is one; orders of customers crm does not know are ignored. The change
    to the customer's figures goes through the outbox (:func:`apply_stats`)."""
    order_id = payload.get("order_id")
    customer_id = payload.get("customer_id")
    if order_id is None:
        return
    order_id = int(order_id)
    states = not_counted_states()
    p = db.session.scalar(lock_for_update(select(Purchase).where(Purchase.order_id == order_id)))
    old_customer, (old_n, old_spent), old_last = (
        (p.customer_id, _counted(p, states), p.placed_at) if p is not None else (None, (0, Decimal("0.00")), None))
    old_counted = bool(old_n)
    if customer_id is None or not _exists(db.session, int(customer_id)):
        if p is not None:  # the order moved to a customer crm does not know
            db.session.delete(p)
            _stats_delta(old_customer, order_id, -old_n, -old_spent, recheck_last=old_counted)
        return
    customer_id = int(customer_id)
    if p is None:
        p = Purchase(order_id=order_id, customer_id=customer_id)
        db.session.add(p)
    elif p.customer_id != customer_id:
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
    new_n, new_spent = _counted(p, states)
    if old_customer is not None and old_customer != customer_id:
        _stats_delta(old_customer, order_id, -old_n, -old_spent, recheck_last=old_counted)
        _stats_delta(customer_id, order_id, new_n, new_spent, last=p.placed_at if new_n else None)
        return
    # the last purchase date can only be recounted (MAX) when a counted order stops counting
    # or changes date; a newly counted order can only move it forward
    recheck = old_counted and (not new_n or p.placed_at != old_last)
    _stats_delta(customer_id, order_id, new_n - old_n, new_spent - old_spent,
                 last=p.placed_at if new_n and not old_counted else None, recheck_last=recheck)


def move_purchases(merged_id: int, survivor_id: int) -> None:
    db.session.execute(update(Purchase).where(Purchase.customer_id == merged_id)
                       .values(customer_id=survivor_id).execution_options(synchronize_session=False))
