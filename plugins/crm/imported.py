"""Purchase history of historical orders, recorded in bulk (orders' ``orders_imported`` hook).

``dovetail import orders`` saves orders in batches of up to 500; crm records each batch
with one multi-row INSERT into ``crm_purchase`` and one UPDATE (executemany) that moves
each customer's ``order_count``, ``total_spent`` and ``last_purchase_at`` by the batch's
counted orders — the same rows and figures :func:`plugins.crm.history.record_order` leaves
after one call per order, without a query per order. Figures move by increments, like
live orders, so a batch never overwrites a concurrent order's change.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, case, select, update

from core.db import db, quantize, utcnow
from core.importer import bulk_insert
from plugins.crm.history import not_counted_states, order_summary
from plugins.crm.models import Customer, Purchase

ZERO = Decimal("0.00")


def record_imported(orders: list[Any]) -> int:
    """Record a batch of imported orders; returns the purchases written (orders of unknown
    customers and orders crm already has are left out)."""
    summaries = [order_summary(o) for o in orders]
    ids = [s["order_id"] for s in summaries]
    known = set(db.session.scalars(select(Customer.id).where(
        Customer.id.in_({s["customer_id"] for s in summaries}))))
    have = set(db.session.scalars(select(Purchase.order_id).where(Purchase.order_id.in_(ids))))
    skip = not_counted_states()
    now = utcnow()
    rows: list[dict[str, Any]] = []
    moved: dict[int, list[Any]] = defaultdict(lambda: [0, ZERO, None])
    for s in summaries:
        if s["customer_id"] not in known or s["order_id"] in have:
            continue
        total = quantize(s["total"])
        placed: datetime | None = s["placed_at"]
        rows.append({"customer_id": s["customer_id"], "order_id": s["order_id"], "number": str(s["number"])[:40],
                     "status": str(s["status"])[:40], "currency": str(s["currency"] or "CNY")[:3], "total": total,
                     "discount_total": quantize(s["discount_total"]), "returned_total": ZERO, "placed_at": placed,
                     "lines": s["lines"], "promotion_ids": s["promotion_ids"], "created_at": now,
                     "updated_at": now, "created_by_id": None})
        if s["status"] in skip:
            continue
        m = moved[s["customer_id"]]
        m[0] += 1
        m[1] += total
        if placed is not None and (m[2] is None or placed > m[2]):
            m[2] = placed
    bulk_insert(Purchase.__table__, rows)
    if moved:
        c = Customer.__table__.c
        last = bindparam("b_last", type_=c.last_purchase_at.type)
        db.session.execute(
            update(Customer.__table__).where(c.id == bindparam("b_id")).values(
                order_count=c.order_count + bindparam("b_count"),
                total_spent=c.total_spent + bindparam("b_spent", type_=c.total_spent.type),
                last_purchase_at=case((c.last_purchase_at.is_(None), last),
                                      (last.is_not(None) & (last > c.last_purchase_at), last),
                                      else_=c.last_purchase_at)),
            [{"b_id": cid, "b_count": n, "b_spent": spent, "b_last": when} for cid, (n, spent, when) in moved.items()])
    return len(rows)
