"""The order lifecycle through the workflow: transitions, inputs, payments, shipments, returns,
history, timestamps, events, and rollback when a hook refuses."""

from __future__ import annotations

import sys
import types
from datetime import timedelta

import pytest

from core import hookimpl
from core.errors import Conflict


def _order(api, customer, *products, qty=1):
    body = {"customer_id": customer.id, "lines": [{"product_id": p.id, "quantity": qty} for p in products]}
    r = api.post("/api/v1/orders", json=body)
    assert r.status_code == 201, r.json
    return r.json


def _go(api, oid, key, **kw):
    return api.post(f"/api/v1/orders/{oid}/transitions", json={"transition": key, **kw})


def test_full_lifecycle_with_payment_shipment_and_history(admin_api, make_customer, make_product):
    c, p = make_customer(), make_product("88.80")
    o = _order(admin_api, c, p, qty=2)
    avail = admin_api.get(f"/api/v1/orders/{o['id']}/transitions").json
    assert avail["status"] == "draft"
    assert {t["key"]: t["allowed"] for t in avail["items"]} == {"confirm": True, "cancel": True}
    assert _go(admin_api, o["id"], "confirm").status_code == 200
    r = _go(admin_api, o["id"], "pay", inputs={"method": "bitcoin"})
    assert r.status_code == 422 and "method" in r.json["error"]["fields"]
    r = _go(admin_api, o["id"], "pay", inputs={"method": "alipay", "amount": "100.00"})
    assert r.status_code == 422 and r.json["error"]["fields"]["amount"] == ["Must be 177.60."]
    r = _go(admin_api, o["id"], "pay", inputs={"method": "alipay", "amount": "177.60", "reference": "T1"})
    assert r.status_code == 200 and r.json["order"]["paid_amount"] == "177.60"
    r = _go(admin_api, o["id"], "ship", inputs={"carrier": "顺丰"})
    assert r.status_code == 422 and "tracking_no" in r.json["error"]["fields"]
    r = _go(admin_api, o["id"], "ship", inputs={"carrier": "顺丰", "tracking_no": "SF123"})
    assert r.status_code == 200
    order = r.json["order"]
    assert order["status"] == "shipped" and order["shipments"][0]["tracking_no"] == "SF123"
    assert order["confirmed_at"] and order["paid_at"] and order["shipped_at"]
    assert _go(admin_api, o["id"], "complete").status_code == 200
    hist = admin_api.get(f"/api/v1/orders/{o['id']}/history").json["items"]
    assert [(h["from"], h["to"]) for h in hist] == [("draft", "confirmed"), ("confirmed", "paid"),
                                                   ("paid", "shipped"), ("shipped", "completed")]
    assert hist[0]["actor"] == "admin"
    assert _go(admin_api, o["id"], "cancel").status_code == 409
    assert _go(admin_api, o["id"], "fly").status_code == 404


def test_rep_permissions_on_transitions(api_client, make_user, make_customer, make_product):
    rep = make_user("rep1", role="rep")
    api = api_client(rep)
    o = _order(api, make_customer(rep), make_product())
    assert _go(api, o["id"], "confirm").status_code == 200
    items = {t["key"]: t for t in api.get(f"/api/v1/orders/{o['id']}/transitions").json["items"]}
    assert items["pay"]["allowed"] is False and "orders.order.pay" in items["pay"]["reason"]
    r = _go(api, o["id"], "pay", inputs={"method": "cash"})
    assert r.status_code == 403
    assert api.get(f"/api/v1/orders/{o['id']}").json["status"] == "confirmed"


def test_return_within_window_refunds_what_was_paid(admin_api, make_customer, make_product, app):
    c, p = make_customer(), make_product("50.00")
    o = _order(admin_api, c, p, qty=2)
    for key, inputs in [("confirm", {}), ("pay", {"method": "cash"}),
                        ("ship", {"carrier": "EMS", "tracking_no": "E1"})]:
        assert _go(admin_api, o["id"], key, inputs=inputs).status_code == 200
    assert _go(admin_api, o["id"], "return").status_code == 422  # comment required
    r = _go(admin_api, o["id"], "return", comment="破损")
    assert r.status_code == 200, r.json
    order = r.json["order"]
    assert order["status"] == "returned" and order["refunded_amount"] == "100.00"
    assert order["lines"][0]["returned_quantity"] == 2


def test_return_refused_after_the_window(admin_api, make_customer, make_product, app):
    from core.db import db
    from plugins.orders.models import Order

    o = _order(admin_api, make_customer(), make_product())
    for key, inputs in [("confirm", {}), ("pay", {"method": "cash"}),
                        ("ship", {"carrier": "EMS", "tracking_no": "E1"})]:
        assert _go(admin_api, o["id"], key, inputs=inputs).status_code == 200
    order = db.session.get(Order, o["id"])
    order.shipped_at = order.shipped_at - timedelta(days=31)
    db.session.commit()
    items = {t["key"]: t for t in admin_api.get(f"/api/v1/orders/{o['id']}/transitions").json["items"]}
    assert items["return"]["allowed"] is False and "window" in items["return"]["reason"]
    r = _go(admin_api, o["id"], "return", comment="late")
    assert r.status_code == 409 and "window" in r.json["error"]["message"]


@pytest.fixture
def dovetail_settings():
    return {"orders": {"return_window_days": 7}}


def test_return_window_comes_from_settings(admin_api, make_customer, make_product):
    from core.db import db
    from plugins.orders.models import Order

    o = _order(admin_api, make_customer(), make_product())
    for key, inputs in [("confirm", {}), ("pay", {"method": "cash"}),
                        ("ship", {"carrier": "EMS", "tracking_no": "E1"})]:
        _go(admin_api, o["id"], key, inputs=inputs)
    order = db.session.get(Order, o["id"])
    order.shipped_at = order.shipped_at - timedelta(days=8)
    db.session.commit()
    assert _go(admin_api, o["id"], "return", comment="x").status_code == 409


def test_partial_return_request_workflow(admin_api, make_customer, make_product):
    c, p, q = make_customer(), make_product("30.00"), make_product("20.00")
    o = _order(admin_api, c, p, q, qty=3)
    for key, inputs in [("confirm", {}), ("pay", {"method": "cash"}),
                        ("ship", {"carrier": "EMS", "tracking_no": "E1"})]:
        _go(admin_api, o["id"], key, inputs=inputs)
    line = admin_api.get(f"/api/v1/orders/{o['id']}").json["lines"][0]
    r = admin_api.post("/api/v1/returns", json={"order_id": o["id"], "lines": [
        {"order_line_id": line["id"], "quantity": 4}]})
    assert r.status_code == 422 and "At most 3" in r.json["error"]["fields"]["lines"]["0"]["quantity"][0]
    r = admin_api.post("/api/v1/returns", json={"order_id": o["id"], "reason": "过敏", "lines": [
        {"order_line_id": line["id"], "quantity": 2}]})
    assert r.status_code == 201, r.json
    ret = r.json
    assert ret["status"] == "requested" and ret["refund_amount"] == "60.00"
    # the two units are pending: only one more may be requested
    r2 = admin_api.post("/api/v1/returns", json={"order_id": o["id"], "lines": [
        {"order_line_id": line["id"], "quantity": 2}]})
    assert r2.status_code == 422
    for key in ("approve", "receive"):
        assert admin_api.post(f"/api/v1/returns/{ret['id']}/transitions",
                              json={"transition": key}).status_code == 200
    r = admin_api.post(f"/api/v1/returns/{ret['id']}/transitions", json={"transition": "refund",
                                                                        "inputs": {"method": "cash"}})
    assert r.status_code == 200 and r.json["return"]["status"] == "refunded"
    order = admin_api.get(f"/api/v1/orders/{o['id']}").json
    assert order["refunded_amount"] == "60.00" and order["lines"][0]["returned_quantity"] == 2
    hist = admin_api.get(f"/api/v1/returns/{ret['id']}/history").json["items"]
    assert [h["to"] for h in hist] == ["approved", "received", "refunded"]
    assert admin_api.get("/api/v1/returns").json["total"] == 1


def test_return_of_an_unshipped_order_is_refused(admin_api, make_customer, make_product):
    o = _order(admin_api, make_customer(), make_product())
    line = o["lines"][0]
    r = admin_api.post("/api/v1/returns", json={"order_id": o["id"], "lines": [
        {"order_line_id": line["id"], "quantity": 1}]})
    assert r.status_code == 409


# ---------------------------------------------------------------------------
# A failing hook rolls the whole transition back
# ---------------------------------------------------------------------------

refuser = types.ModuleType("orders_test_refuser")


@hookimpl
def _manifest():
    from core.registry import PluginManifest

    return PluginManifest(name="refuser", version="0.0.1", depends=("orders",))


@hookimpl(optionalhook=True)
def _reserve(order):
    raise Conflict(f"Not enough stock for {order.number}.")


_manifest.__name__ = "plugin_manifest"
_reserve.__name__ = "order_reserve"
refuser.plugin_manifest = _manifest
refuser.order_reserve = _reserve
sys.modules[refuser.__name__] = refuser


class TestRefusingHook:
    @pytest.fixture
    def dovetail_extra_plugins(self):
        return {"refuser": refuser}

    @pytest.fixture
    def dovetail_plugins(self):
        return ["crm", "catalog", "orders", "refuser"]

    def test_confirm_rolls_back_everything(self, admin_api, make_customer, make_product):
        o = _order(admin_api, make_customer(), make_product())
        before = admin_api.get(f"/api/v1/audit?entity=order&entity_id={o['id']}").json["total"]
        r = _go(admin_api, o["id"], "confirm")
        assert r.status_code == 409 and "Not enough stock" in r.json["error"]["message"]
        order = admin_api.get(f"/api/v1/orders/{o['id']}").json
        assert order["status"] == "draft" and order["confirmed_at"] is None
        assert admin_api.get(f"/api/v1/orders/{o['id']}/history").json["items"] == []
        assert admin_api.get(f"/api/v1/audit?entity=order&entity_id={o['id']}").json["total"] == before
        assert admin_api.get("/api/v1/audit?action=transition").json["total"] == 0


def test_returns_follow_the_orders_scope(api_client, make_user, make_customer, make_product, admin_api):
    b = make_user("repb", role="rep")
    o = _order(api_client(b), make_customer(b), make_product())
    for key, inputs in [("confirm", {}), ("pay", {"method": "cash"}),
                        ("ship", {"carrier": "EMS", "tracking_no": "E1"})]:
        assert _go(admin_api, o["id"], key, inputs=inputs).status_code == 200
    ret = admin_api.post("/api/v1/returns", json={"order_id": o["id"], "lines": [
        {"order_line_id": o["lines"][0]["id"], "quantity": 1}]}).json
    a = api_client(make_user("repa", role="rep"))
    assert a.get("/api/v1/returns").json["total"] == 0
    assert a.get(f"/api/v1/returns/{ret['id']}").status_code == 404
    assert a.get(f"/api/v1/returns/{ret['id']}/history").status_code == 404
    assert a.post(f"/api/v1/returns/{ret['id']}/transitions", json={"transition": "approve"}).status_code == 404
    assert api_client(b).get(f"/api/v1/returns/{ret['id']}").status_code == 200
