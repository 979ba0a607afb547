"""Demo data: orders over the last 12 months for the demo customers and products."""

from __future__ import annotations

from decimal import Decimal


def test_demo_orders_are_consistent(app, runner):
    from sqlalchemy import func, select

    from core.db import db
    from plugins.orders.models import Order, OrderLine

    res = runner.invoke(["demo", "--scale", "0.02", "--seed", "7"])
    assert res.exit_code == 0, res.output
    n = db.session.scalar(select(func.count()).select_from(Order))
    assert n == 100
    statuses = set(db.session.scalars(select(Order.status).distinct()))
    assert {"completed", "cancelled"} <= statuses
    numbers = db.session.scalars(select(Order.number)).all()
    assert len(set(numbers)) == n
    for o in db.session.scalars(select(Order).limit(30)):
        assert o.lines and o.subtotal == sum((ln.quantity * ln.unit_price for ln in o.lines), Decimal("0"))
        assert o.total == o.subtotal - o.discount_total == sum((ln.line_total for ln in o.lines), Decimal("0"))
        if o.status in ("shipped", "completed"):
            assert o.shipped_at and o.paid_at and o.shipments and o.payments
    assert db.session.scalar(select(func.count()).select_from(OrderLine)) >= n
    from plugins.orders.services import allocate_number

    fresh = allocate_number("SO")
    assert fresh not in set(numbers)
