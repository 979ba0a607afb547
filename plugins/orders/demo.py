"""Demo data: 5,000 × scale orders over the last 12 months for the demo customers and products.

Rows are inserted directly (no stock movement, no promotion), with statuses spread the
way a running business has them and state times that follow the order date.
"""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import select

from core.audit import acting_as
from core.db import db, quantize, utcnow
from plugins.catalog.public import Product
from plugins.crm.public import Customer
from plugins.orders.models import ZERO, Order, OrderLine, OrderSequence, Payment, Shipment
from plugins.orders.services import to_local

STATUSES = [("completed", 50), ("shipped", 9), ("paid", 7), ("confirmed", 7), ("draft", 8),
            ("cancelled", 12), ("returned", 4)]
CARRIERS = ["顺丰速运", "中通快递", "圆通速递", "京东物流", "EMS"]
METHODS = ["wechat_pay", "alipay", "bank_transfer", "cash", "card"]
STEP = {"confirmed_at": 0, "paid_at": 1, "shipped_at": 2, "completed_at": 6}


def populate(scale: float, seed: int) -> None:
    rng = random.Random(seed + 3)
    customers = db.session.execute(select(Customer.id, Customer.owner_id)).all()
    products = db.session.execute(select(Product.id, Product.sku, Product.name, Product.category_id,
                                         Product.price, Product.cost).where(Product.active.is_(True))).all()
    if not customers or not products:
        return
    n = max(int(5000 * scale), 1)
    now = utcnow().replace(microsecond=0)
    statuses, weights = zip(*STATUSES, strict=True)
    owners_fallback = [c.owner_id for c in customers if c.owner_id] or [None]
    # numbers are counted here and the per-year counters written once at the end (one writer)
    counters = {s.year: s for s in db.session.scalars(select(OrderSequence).where(OrderSequence.prefix == "SO"))}
    last = {year: seq.last for year, seq in counters.items()}
    with acting_as(None, "demo"), db.session.no_autoflush:
        for i in range(n):
            cust = rng.choice(customers)
            placed = now - timedelta(days=rng.randint(0, 364), minutes=rng.randint(0, 1439))
            status = rng.choices(statuses, weights)[0]
            if status in ("draft", "confirmed", "paid") and (now - placed).days > 20:
                placed = now - timedelta(days=rng.randint(0, 20), minutes=rng.randint(0, 1439))
            year = to_local(placed).year
            last[year] = last.get(year, 0) + 1
            order = Order(number=f"SO-{year}-{last[year]:06d}", customer_id=cust.id,
                          owner_id=cust.owner_id or rng.choice(owners_fallback), status=status,
                          currency="CNY", placed_at=placed, custom={})
            subtotal = ZERO
            for pos, p in enumerate(rng.sample(products, k=min(len(products), rng.choice([1, 1, 2, 2, 3, 4])))):
                qty = rng.choice([1, 1, 1, 2, 2, 3, 5])
                gross = quantize(p.price * qty)
                disc = quantize(gross * rng.choice([0, 0, 0, 0, 5, 10]) / 100)
                subtotal += gross
                order.lines.append(OrderLine(position=pos, product_id=p.id, sku=p.sku, name=p.name,
                                             category_id=p.category_id, quantity=qty, unit_price=p.price,
                                             unit_cost=p.cost or ZERO, line_discount=disc,
                                             line_total=gross - disc,
                                             returned_quantity=qty if status == "returned" else 0))
            order.subtotal = quantize(subtotal)
            order.discount_total = quantize(sum((ln.line_discount for ln in order.lines), ZERO))
            order.total = order.subtotal - order.discount_total
            reached = {"confirmed": 1, "paid": 2, "shipped": 3, "completed": 4, "returned": 3}.get(status, 0)
            for col, days in list(STEP.items())[:reached]:
                setattr(order, col, placed + timedelta(days=days, hours=rng.randint(1, 8)))
            if status == "cancelled":
                order.cancelled_at = placed + timedelta(hours=rng.randint(1, 48))
            if reached >= 2:
                order.payments.append(Payment(kind="payment", amount=order.total, method=rng.choice(METHODS),
                                              paid_at=order.paid_at))
            if reached >= 3:
                order.shipments.append(Shipment(carrier=rng.choice(CARRIERS),
                                                tracking_no=f"SF{rng.randint(10**11, 10**12 - 1)}",
                                                shipped_at=order.shipped_at))
            if status == "returned":
                order.returned_at = order.shipped_at + timedelta(days=rng.randint(2, 10))
                order.payments.append(Payment(kind="refund", amount=order.total, method="wechat_pay",
                                              paid_at=order.returned_at))
            db.session.add(order)
            if i % 500 == 499:
                _save_counters(counters, last)
                db.session.commit()
        _save_counters(counters, last)
        db.session.commit()


def _save_counters(counters: dict, last: dict) -> None:
    for year, value in last.items():
        if year in counters:
            counters[year].last = value
        else:
            counters[year] = OrderSequence(prefix="SO", year=year, last=value)
            db.session.add(counters[year])
