"""A customer's purchase figures move by each order change through the outbox (no SUM over
the history per order event), agree with the orders plugin's revenue, and equal a rebuild."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select, update

from core.db import db
from core.outbox import DONE, OutboxMessage
from plugins.crm.history import STATS_KIND
from plugins.crm.models import Customer


@pytest.fixture
def dovetail_plugins():
    return ["crm", "catalog", "orders"]


@pytest.fixture(autouse=True)
def _no_redis(monkeypatch):
    monkeypatch.delenv("DOVETAIL_REDIS_URL", raising=False)


@pytest.fixture
def shop(app):
    from plugins.catalog.models import Product

    customer = Customer(name="李娜", phone="13900000001", phones=["13900000001"], tags=[], custom={})
    other = Customer(name="赵敏", phone="13900000002", phones=["13900000002"], tags=[], custom={})
    product = Product(sku="TEA-50", name="白茶", unit="盒", price=Decimal("50.00"), cost=Decimal("20.00"),
                      custom={})
    db.session.add_all([customer, other, product])
    db.session.commit()
    return {"customer": customer.id, "other": other.id, "product": product.id}


def _order(api, customer_id, product_id, qty):
    r = api.post("/api/v1/orders", json={"customer_id": customer_id,
                                         "lines": [{"product_id": product_id, "quantity": qty}]})
    assert r.status_code == 201, r.json
    return r.json["id"]


def _go(api, oid, key, **kw):
    r = api.post(f"/api/v1/orders/{oid}/transitions", json={"transition": key, **kw})
    assert r.status_code == 200, r.json
    return r.json


def _sell(api, oid):
    for key, inputs in [("confirm", {}), ("pay", {"method": "cash"}),
                        ("ship", {"carrier": "EMS", "tracking_no": f"E{oid}"})]:
        _go(api, oid, key, inputs=inputs)


def _figures(cid):
    db.session.expire_all()
    c = db.session.get(Customer, cid)
    out = (c.order_count, c.total_spent, c.last_purchase_at)
    db.session.rollback()
    return out


def _revenue(cid) -> Decimal:
    from plugins.orders.models import Order
    from plugins.orders.revenue import is_revenue, net_revenue, refunds_subquery

    refunds = refunds_subquery()
    value = db.session.scalar(select(func.coalesce(func.sum(net_revenue(Order.total, refunds.c.refunded)), 0))
                              .outerjoin(refunds, refunds.c.order_id == Order.id)
                              .where(Order.customer_id == cid, is_revenue()))
    db.session.rollback()
    return Decimal(str(value)).quantize(Decimal("0.01"))


def test_paid_and_returned_orders_move_the_figures_through_the_outbox(app, admin_api, shop, runner):
    cid = shop["customer"]
    a = _order(admin_api, cid, shop["product"], 2)       # 100.00
    assert _figures(cid)[:2] == (0, Decimal("0.00"))     # a draft is history, not spend
    _sell(admin_api, a)
    assert _figures(cid)[:2] == (1, Decimal("100.00"))
    b = _order(admin_api, cid, shop["product"], 3)       # 150.00
    _sell(admin_api, b)
    assert _figures(cid)[:2] == (2, Decimal("250.00"))
    assert _revenue(cid) == Decimal("250.00")

    order_b = admin_api.get(f"/api/v1/orders/{b}").json
    r = admin_api.post("/api/v1/returns", json={"order_id": b, "reason": "破损", "lines": [
        {"order_line_id": order_b["lines"][0]["id"], "quantity": 1}]})
    assert r.status_code == 201, r.json
    for key, inputs in [("approve", {}), ("receive", {}), ("refund", {"method": "cash"})]:
        assert admin_api.post(f"/api/v1/returns/{r.json['id']}/transitions",
                              json={"transition": key, "inputs": inputs}).status_code == 200
    assert _figures(cid)[:2] == (2, Decimal("200.00"))   # a refund of 50.00 comes off
    _go(admin_api, a, "return", comment="不喜欢")          # the whole order back: 100.00 off
    count, spent, last = _figures(cid)
    assert spent == Decimal("100.00") == _revenue(cid)   # the same figure as every sales report
    assert last is not None

    kinds = db.session.execute(select(OutboxMessage.status, func.count()).where(OutboxMessage.kind == STATS_KIND)
                               .group_by(OutboxMessage.status)).all()
    db.session.rollback()
    assert dict(kinds).keys() == {DONE} and dict(kinds)[DONE] >= 4   # each processed, none left
    assert _figures(shop["other"])[:2] == (0, Decimal("0.00"))

    # a rebuild from the purchase rows gives exactly the incremental figures
    before = _figures(cid)
    res = runner.invoke(["crm", "recompute-stats"])
    assert res.exit_code == 0 and "0 customer(s) corrected" in res.output, res.output
    db.session.execute(update(Customer).where(Customer.id == cid).values(order_count=9, total_spent=Decimal("1.00")))
    db.session.commit()
    res = runner.invoke(["crm", "recompute-stats"])
    assert res.exit_code == 0 and "1 customer(s) corrected" in res.output, res.output
    assert _figures(cid) == before


def test_cancelling_a_counted_order_takes_it_off_and_recounts_the_last_purchase(app, admin_api, shop):
    cid = shop["customer"]
    first = _order(admin_api, cid, shop["product"], 1)
    _go(admin_api, first, "confirm")
    _, _, first_last = _figures(cid)
    second = _order(admin_api, cid, shop["product"], 1)
    _go(admin_api, second, "confirm")
    count, spent, last = _figures(cid)
    assert (count, spent) == (2, Decimal("100.00")) and last >= first_last
    _go(admin_api, second, "cancel", comment="客户取消")
    assert _figures(cid) == (1, Decimal("50.00"), first_last)
