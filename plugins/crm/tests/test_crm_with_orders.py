"""crm + catalog + orders: purchase history from real order events, and merge moving orders."""

import pytest


@pytest.fixture
def dovetail_plugins():
    return ["crm", "catalog", "orders"]


@pytest.fixture
def product(admin_api):
    r = admin_api.post("/api/v1/products", json={"sku": "TEA-1", "name": "普洱茶", "price": "99.90"})
    assert r.status_code == 201, r.json
    return r.json


def _order(client, customer_id, product_id, qty=2):
    r = client.post("/api/v1/orders", json={"customer_id": customer_id,
                                             "lines": [{"product_id": product_id, "quantity": qty}]})
    assert r.status_code == 201, r.json
    return r.json


def _go(client, order_id, transition, **kw):
    r = client.post(f"/api/v1/orders/{order_id}/transitions", json={"transition": transition, **kw})
    assert r.status_code == 200, r.json
    return r.json


def test_purchase_history_follows_the_order(app, org, product, new_customer):
    c = new_customer(org.rep1)
    order = _order(org.rep1, c["id"], product["id"])
    r = org.rep1.get(f"/api/v1/customers/{c['id']}/purchases")
    assert [(i["number"], i["status"], i["total"]) for i in r.json["items"]] == [(order["number"], "draft", "199.80")]
    assert org.rep1.get(f"/api/v1/customers/{c['id']}").json["total_spent"] == "0.00"
    _go(org.rep1, order["id"], "confirm")
    body = org.rep1.get(f"/api/v1/customers/{c['id']}").json
    assert (body["order_count"], body["total_spent"]) == (1, "199.80")
    assert body["last_purchase_at"]
    _go(org.rep1, order["id"], "cancel", comment="客户改主意")
    body = org.rep1.get(f"/api/v1/customers/{c['id']}").json
    assert (body["order_count"], body["total_spent"]) == (0, "0.00")


def test_merge_moves_orders_to_the_survivor(app, org, product, new_customer):
    survivor = new_customer(org.rep1, name="张伟", phone="13800000001")
    merged = new_customer(org.rep1, name="张伟", phone="13800000001")
    order = _order(org.rep1, merged["id"], product["id"], qty=1)
    _go(org.rep1, order["id"], "confirm")
    dup = org.manager1.get("/api/v1/customers/duplicates").json
    assert dup["items"][0]["customer_ids"] == [survivor["id"], merged["id"]]
    r = org.manager1.post("/api/v1/customers/merge", json={"survivor_id": survivor["id"],
                                                           "merged_ids": [merged["id"]]})
    assert r.status_code == 200, r.json
    assert (r.json["order_count"], r.json["total_spent"]) == (1, "99.90")
    moved = org.manager1.get(f"/api/v1/orders/{order['id']}").json
    assert moved["customer_id"] == survivor["id"]
    assert org.manager1.get(f"/api/v1/customers/{merged['id']}").status_code == 404


def test_customer_with_orders_cannot_be_deleted(app, org, product, new_customer):
    c = new_customer(org.rep1)
    _order(org.rep1, c["id"], product["id"])
    r = org.manager1.delete(f"/api/v1/customers/{c['id']}")
    assert r.status_code == 409 and "Merge it into another customer" in r.json["error"]["message"]
    assert org.manager1.get(f"/api/v1/customers/{c['id']}").status_code == 200
