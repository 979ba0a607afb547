"""Purchase history from orders' lifecycle hooks (crm never imports orders)."""

from decimal import Decimal

import pytest

from core.db import db
from plugins.crm.history import record_order
from plugins.crm.models import Customer, Purchase


def report(_hook: str, returned_amount=None, **order):
    """What crm's order_created / order_status_changed / order_returned hooks record."""
    record_order(order, returned_amount=returned_amount)


def _order(order_id, customer_id, status="confirmed", total="199.90", **kw):
    payload = {"order_id": order_id, "number": f"SO-2026-{order_id:06d}", "customer_id": customer_id,
               "owner_id": None, "status": status, "total": total, "discount_total": "10.00",
               "currency": "CNY", "placed_at": "2026-03-01T10:00:00+08:00",
               "lines": [{"product_id": 1, "sku": "A-1", "quantity": 2, "line_total": total}],
               "promotion_ids": [7]}
    payload.update(kw)
    return payload


@pytest.fixture
def customer(app, org, new_customer):
    return new_customer(org.rep1)


def test_events_build_history_and_aggregates(app, org, customer):
    cid = customer["id"]
    report("order_created", **_order(1, cid, status="draft", total="100.00"))
    db.session.commit()
    c = db.session.get(Customer, cid)
    assert (c.order_count, c.total_spent) == (0, Decimal("0.00"))  # drafts are history, not spend
    report("order_status_changed", **_order(1, cid, status="confirmed", total="100.00"))
    report("order_created", **_order(2, cid, status="paid", total="199.90",
                                   placed_at="2026-04-02T09:30:00+08:00"))
    report("order_created", **_order(3, cid, status="cancelled", total="50.00",
                                   placed_at="2026-02-01T10:00:00+08:00"))
    db.session.commit()
    db.session.refresh(c)
    assert c.order_count == 2
    assert c.total_spent == Decimal("299.90")
    assert c.last_purchase_at.isoformat() == "2026-04-02T01:30:00"  # stored as UTC
    report("order_returned", **_order(2, cid, status="returned", total="199.90", returned_total="59.97",
                                    placed_at="2026-04-02T09:30:00+08:00"))
    db.session.commit()
    db.session.refresh(c)
    assert c.total_spent == Decimal("239.93")
    r = org.rep1.get(f"/api/v1/customers/{cid}/purchases")
    assert r.status_code == 200
    assert [(i["number"], i["status"], i["total"]) for i in r.json["items"]] == [
        ("SO-2026-000002", "returned", "199.90"), ("SO-2026-000001", "confirmed", "100.00"),
        ("SO-2026-000003", "cancelled", "50.00")]
    assert r.json["items"][0]["returned_total"] == "59.97"
    assert db.session.query(Purchase).count() == 3


def test_order_moving_to_another_customer_moves_history(app, org, customer, new_customer):
    other = new_customer(org.rep1, name="李四", phone="13900000000")
    report("order_created", **_order(5, customer["id"], total="80.00"))
    report("order_status_changed", **_order(5, other["id"], total="80.00", status="paid"))
    db.session.commit()
    assert db.session.get(Customer, customer["id"]).total_spent == Decimal("0.00")
    assert db.session.get(Customer, other["id"]).total_spent == Decimal("80.00")


def test_unknown_customer_or_bad_values_never_break_the_order(app, customer):
    report("order_created", **_order(9, 424242))
    report("order_created", **_order(10, customer["id"], total="not money", placed_at="yesterday"))
    db.session.commit()
    assert db.session.query(Purchase).filter_by(order_id=9).count() == 0
    p = db.session.query(Purchase).filter_by(order_id=10).one()
    assert p.total == Decimal("0.00") and p.placed_at is not None


def test_partial_returns_accumulate(app, org, customer):
    cid = customer["id"]
    report("order_created", **_order(20, cid, status="completed", total="300.00"))
    report("order_returned", **_order(20, cid, status="completed", total="300.00"), returned_amount="100.00")
    report("order_returned", **_order(20, cid, status="completed", total="300.00"), returned_amount="50.50")
    db.session.commit()
    assert db.session.get(Customer, cid).total_spent == Decimal("149.50")
    report("order_returned", **_order(20, cid, status="returned", total="300.00"), returned_amount="999.00")
    db.session.commit()
    assert db.session.get(Customer, cid).total_spent == Decimal("0.00")  # never below zero
