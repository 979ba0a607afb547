"""All four business plugins: a gift line consumes stock like any other line."""

from __future__ import annotations

import pytest

from core.db import db


@pytest.fixture
def dovetail_plugins():
    return ["crm", "catalog", "inventory", "orders", "marketing"]


def test_gift_line_is_reserved_and_a_short_gift_refuses_confirmation(admin_api, shop, make_customer):
    from plugins.inventory import services as inv

    wh = inv.create_warehouse({"code": "SH", "name": "上海仓"})
    inv.receive(shop["cream"].id, wh.id, 10)
    inv.receive(shop["sample"].id, wh.id, 1)
    db.session.commit()
    cream, sample, wid = shop["cream"].id, shop["sample"].id, wh.id
    r = admin_api.post("/api/v1/promotions", json={"name": "买二送小样", "kind": "gift", "buy_quantity": 2,
                                                   "gift_product_id": sample, "product_ids": [cream]})
    assert r.status_code == 201, r.json
    a, b = make_customer(), make_customer()
    body = {"lines": [{"product_id": cream, "quantity": 2}]}
    first = admin_api.post("/api/v1/orders", json={"customer_id": a.id, **body}).json
    assert [(ln["sku"], ln["is_gift"], ln["line_total"]) for ln in first["lines"]] == [
        ("CREAM", False, "398.00"), ("SAMPLE", True, "0.00")]
    assert first["total"] == "398.00"
    r = admin_api.post(f"/api/v1/orders/{first['id']}/transitions", json={"transition": "confirm"})
    assert r.status_code == 200, r.json
    db.session.expire_all()
    assert (inv.stock_of(sample, wid).reserved, inv.stock_of(cream, wid).reserved) == (1, 2)
    second = admin_api.post("/api/v1/orders", json={"customer_id": b.id, **body}).json
    r = admin_api.post(f"/api/v1/orders/{second['id']}/transitions", json={"transition": "confirm"})
    assert r.status_code == 409, r.json
    db.session.expire_all()
    assert (inv.stock_of(sample, wid).reserved, inv.stock_of(cream, wid).reserved) == (1, 2)
