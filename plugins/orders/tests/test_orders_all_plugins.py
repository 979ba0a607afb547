"""Every plugin enabled: promotions price orders (满减 to the fen), a used-up coupon refuses the
order with nothing half-saved, stock is reserved on confirm, and the quote shows every promotion."""

from __future__ import annotations

from datetime import date, timedelta

import pytest


@pytest.fixture
def dovetail_plugins():
    return None  # every available plugin


@pytest.fixture
def shop(app, make_product, make_customer):
    from core.db import db
    from plugins.inventory import services as inv
    from plugins.marketing import services as mk

    p = make_product("120.00", cost="70.00")
    wh = inv.create_warehouse({"code": "MAIN", "name": "主仓"})
    inv.receive(p.id, wh.id, 10)
    today = date.today()
    camp = mk.save_campaign(None, {"name": "双十一", "starts_on": str(today - timedelta(days=1)),
                                   "ends_on": str(today + timedelta(days=10))})
    camp.status = "active"  # launched (the campaign's own workflow is marketing's business)
    db.session.flush()
    mk.save_promotion(None, {"name": "满300减30 满500减60", "kind": "tiered", "campaign_id": camp.id,
                             "tiers": "300:30, 500:60", "stackable": True})
    coupon_promo = mk.save_promotion(None, {"name": "新客券 10 元", "kind": "amount", "amount": "10",
                                            "requires_coupon": True, "stackable": True,
                                            "campaign_id": camp.id})
    db.session.flush()
    mk.generate_coupons(coupon_promo, code="HELLO10", usage_limit=1, per_customer_limit=1)
    db.session.commit()
    return {"product": p, "warehouse": wh, "customer": make_customer(), "customer2": make_customer()}


def _post(api, customer, product, qty, **extra):
    return api.post("/api/v1/orders", json={"customer_id": customer.id,
                                            "lines": [{"product_id": product.id, "quantity": qty}], **extra})


def test_tiered_promotion_and_coupon_to_the_fen(admin_api, shop):
    p, c = shop["product"], shop["customer"]
    q = admin_api.post("/api/v1/orders/quote", json={"customer_id": c.id, "coupon_code": "HELLO10",
                                                     "lines": [{"product_id": p.id, "quantity": 3}]})
    assert q.status_code == 200, q.json
    assert (q.json["subtotal"], q.json["discount_total"], q.json["total"]) == ("360.00", "40.00", "320.00")
    assert {c["label"] for c in q.json["considered"]} >= {"满300减30 满500减60", "新客券 10 元"}
    assert q.json["lines"][0]["available"] == 10
    r = _post(admin_api, c, p, 5, coupon_code="HELLO10")
    assert r.status_code == 201, r.json
    assert (r.json["subtotal"], r.json["discount_total"], r.json["total"]) == ("600.00", "70.00", "530.00")
    assert {a["label"] for a in r.json["adjustments"]} == {"满300减30 满500减60", "新客券 10 元"}


def test_used_up_coupon_refuses_the_order_with_nothing_saved(admin_api, shop):
    p = shop["product"]
    assert _post(admin_api, shop["customer"], p, 1, coupon_code="HELLO10").status_code == 201
    before = admin_api.get("/api/v1/orders").json["total"]
    r = _post(admin_api, shop["customer2"], p, 1, coupon_code="HELLO10")
    assert r.status_code == 409 and "used up" in r.json["error"]["message"]
    assert admin_api.get("/api/v1/orders").json["total"] == before


def test_confirm_reserves_and_cancel_releases(admin_api, shop):
    from core.db import db
    from plugins.inventory import services as inv

    p, wh = shop["product"], shop["warehouse"]
    o = _post(admin_api, shop["customer"], p, 4).json
    short = _post(admin_api, shop["customer"], p, 7).json
    assert admin_api.post(f"/api/v1/orders/{o['id']}/transitions", json={"transition": "confirm"}).status_code == 200
    r = admin_api.post(f"/api/v1/orders/{short['id']}/transitions", json={"transition": "confirm"})
    assert r.status_code == 409
    assert admin_api.get(f"/api/v1/orders/{short['id']}").json["status"] == "draft"
    db.session.expire_all()
    assert (inv.stock_of(p.id, wh.id).on_hand, inv.stock_of(p.id, wh.id).reserved) == (10, 4)
    assert admin_api.post(f"/api/v1/orders/{o['id']}/transitions", json={"transition": "cancel"}).status_code == 200
    db.session.expire_all()
    assert inv.stock_of(p.id, wh.id).reserved == 0 and inv.check_ledger() == []


def test_deleting_a_draft_gives_the_coupon_back(admin_api, shop):
    p = shop["product"]
    first = _post(admin_api, shop["customer"], p, 1, coupon_code="HELLO10")
    assert first.status_code == 201 and first.json["discount_total"] == "10.00"
    assert admin_api.delete(f"/api/v1/orders/{first.json['id']}").status_code == 204
    again = _post(admin_api, shop["customer2"], p, 1, coupon_code="HELLO10")
    assert again.status_code == 201, again.json


def test_cancelling_gives_the_coupon_back(admin_api, shop):
    p = shop["product"]
    first = _post(admin_api, shop["customer"], p, 1, coupon_code="HELLO10").json
    r = admin_api.post(f"/api/v1/orders/{first['id']}/transitions", json={"transition": "cancel"})
    assert r.status_code == 200
    assert _post(admin_api, shop["customer2"], p, 1, coupon_code="HELLO10").status_code == 201
