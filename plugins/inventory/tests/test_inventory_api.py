"""The inventory REST API: warehouses, stock, alerts, movements, reorder points, permissions."""

from __future__ import annotations

from core.db import db
from plugins.inventory import services


def test_warehouses_crud_and_rules(admin_api):
    r = admin_api.post("/api/v1/warehouses", json={"code": "wh-bj", "name": "北京仓"})
    assert r.status_code == 201 and r.json["code"] == "WH-BJ" and r.json["active"] is True
    wid = r.json["id"]
    assert admin_api.post("/api/v1/warehouses", json={"code": "WH-BJ", "name": "x"}).status_code == 409
    r = admin_api.post("/api/v1/warehouses", json={"code": "bad code!", "name": ""})
    assert r.status_code == 422 and {"code", "name"} <= set(r.json["error"]["fields"])
    r = admin_api.patch(f"/api/v1/warehouses/{wid}", json={"name": "北京一号仓", "active": False})
    assert r.status_code == 200 and r.json["name"] == "北京一号仓" and r.json["active"] is False
    lst = admin_api.get("/api/v1/warehouses?active=false").json
    assert lst["total"] == 1 and set(lst) == {"items", "page", "per_page", "total"}
    assert admin_api.delete(f"/api/v1/warehouses/{wid}").status_code == 204
    assert admin_api.get(f"/api/v1/warehouses/{wid}").status_code == 404


def test_warehouse_with_history_cannot_be_deleted(admin_api, stockroom):
    services.receive(stockroom.p1, stockroom.gz, 1)
    db.session.commit()
    r = admin_api.delete(f"/api/v1/warehouses/{stockroom.gz}")
    assert r.status_code == 409 and "deactivate" in r.json["error"]["message"]


def test_post_movements_and_list_ledger(admin_api, stockroom):
    s = stockroom
    post = lambda body: admin_api.post("/api/v1/stock/movements", json=body)  # noqa: E731
    r = post({"kind": "receipt", "product_id": s.p1, "warehouse_id": s.sh, "quantity": 10,
              "unit_cost": "3.335", "reference": "PO-9"})
    assert r.status_code == 201, r.json
    mv = r.json["movements"][0]
    assert (mv["kind"], mv["quantity"], mv["balance_after"], mv["unit_cost"], mv["sku"]) == \
        ("receipt", 10, 10, "3.34", "SKU-001")
    r = post({"kind": "transfer", "product_id": s.p1, "warehouse_id": s.sh, "to_warehouse_id": s.gz, "quantity": 4})
    assert r.status_code == 201 and [m["quantity"] for m in r.json["movements"]] == [-4, 4]
    r = post({"kind": "adjustment", "product_id": s.p1, "warehouse_id": s.gz, "counted": 3, "reason": "count"})
    assert r.status_code == 201 and r.json["movements"][0]["quantity"] == -1
    r = post({"kind": "issue", "product_id": s.p1, "warehouse_id": s.sh, "quantity": 7})
    assert r.status_code == 409
    assert r.json["error"]["message"] == "Only 6 of SKU-001 available in WH-SH; 7 requested"
    r = post({"kind": "issue", "product_id": s.p1, "warehouse_id": s.sh, "quantity": 6})
    assert r.status_code == 201

    lst = admin_api.get(f"/api/v1/stock/movements?product_id={s.p1}&warehouse_id={s.sh}&sort=id").json
    assert [m["quantity"] for m in lst["items"]] == [10, -4, -6] and lst["total"] == 3
    assert admin_api.get("/api/v1/stock/movements?kind=transfer").json["total"] == 2
    stock = admin_api.get(f"/api/v1/stock?product_id={s.p1}").json["items"]
    assert {(x["warehouse_code"], x["on_hand"], x["reserved"], x["available"]) for x in stock} == \
        {("WH-SH", 0, 0, 0), ("WH-GZ", 3, 0, 3)}


def test_movement_validation_messages(admin_api, stockroom):
    s = stockroom
    post = lambda body: admin_api.post("/api/v1/stock/movements", json=body)  # noqa: E731
    r = post({"kind": "adjustment", "product_id": s.p1, "warehouse_id": s.sh, "quantity": 3})
    assert r.status_code == 422 and r.json["error"]["fields"]["reason"] == ["Required for adjustments."]
    r = post({"kind": "receipt", "product_id": s.p1, "warehouse_id": s.sh, "quantity": -3})
    assert r.json["error"]["fields"]["quantity"] == ["Must be a whole number above zero."]
    r = post({"kind": "receipt", "product_id": s.p1, "warehouse_id": s.sh, "quantity": 1.5})
    assert r.status_code == 422 and "quantity" in r.json["error"]["fields"]
    r = post({"kind": "transfer", "product_id": s.p1, "warehouse_id": s.sh, "quantity": 1})
    assert r.json["error"]["fields"]["to_warehouse_id"] == ["Required for transfers."]
    r = post({"kind": "steal", "product_id": s.p1, "warehouse_id": s.sh, "quantity": 1})
    assert r.status_code == 422 and "kind" in r.json["error"]["fields"]
    r = post({"kind": "receipt", "product_id": 999, "warehouse_id": s.sh, "quantity": 1})
    assert r.status_code == 422 and r.json["error"]["fields"]["product_id"] == ["No product with id 999."]
    r = post({"kind": "receipt", "product_id": s.p1, "warehouse_id": 999, "quantity": 1})
    assert r.status_code == 422 and "warehouse_id" in r.json["error"]["fields"]
    assert admin_api.get("/api/v1/stock/movements").json["total"] == 0


def test_stock_filters_alerts_and_reorder_points(admin_api, stockroom):
    s = stockroom
    services.receive(s.p1, s.sh, 5)
    services.receive(s.p2, s.sh, 50)
    services.receive(s.p2, s.gz, 2)
    services.reserve_for("order", 1, [{"product_id": s.p2, "quantity": 45}])
    db.session.commit()
    r = admin_api.put("/api/v1/stock/reorder-points", json={"product_id": s.p1, "reorder_point": 10})
    assert r.status_code == 200 and r.json[0]["reorder_point"] == 10 and r.json[0]["low"] is True
    r = admin_api.put("/api/v1/stock/reorder-points",
                      json={"product_id": s.p2, "warehouse_id": s.sh, "reorder_point": 6})
    assert r.status_code == 200
    r = admin_api.put("/api/v1/stock/reorder-points", json={"product_id": s.p2, "reorder_point": -1})
    assert r.status_code == 422

    alerts = admin_api.get("/api/v1/stock/alerts").json
    got = [(a["sku"], a["warehouse_code"], a["available"], a["reorder_point"], a["reorder_point_source"],
            a["shortfall"]) for a in alerts["items"]]
    assert got == [("SKU-001", "WH-SH", 5, 10, "product", 5), ("SKU-002", "WH-SH", 5, 6, "warehouse", 1)]
    low = admin_api.get("/api/v1/stock?low=true").json
    assert low["total"] == 2
    not_low = admin_api.get("/api/v1/stock?low=false").json
    assert [(x["sku"], x["warehouse_code"]) for x in not_low["items"]] == [("SKU-002", "WH-GZ")]
    assert admin_api.get(f"/api/v1/stock?warehouse_id={s.gz}").json["total"] == 1
    assert admin_api.get("/api/v1/stock?q=sku-001").json["total"] == 1
    r = admin_api.get("/api/v1/stock?sort=-available").json["items"]
    assert [x["available"] for x in r] == [5, 5, 2]
    assert admin_api.get("/api/v1/stock?sort=secret").status_code == 422
    by_available = admin_api.get("/api/v1/stock/alerts?sort=-available").json["items"]
    assert [(a["sku"], a["available"]) for a in by_available] == [("SKU-001", 5), ("SKU-002", 5)]
    assert admin_api.get("/api/v1/stock/alerts?sort=secret").status_code == 422


def test_permissions(api_client, stockroom):
    s = stockroom
    rep = api_client(role="rep")  # inventory.stock.read only
    assert rep.get("/api/v1/stock").status_code == 200
    assert rep.get("/api/v1/stock/alerts").status_code == 200
    assert rep.get("/api/v1/stock/movements").status_code == 200
    assert rep.post("/api/v1/stock/movements", json={"kind": "receipt", "product_id": s.p1,
                                                     "warehouse_id": s.sh, "quantity": 1}).status_code == 403
    assert rep.post("/api/v1/stock/movements", json={}).status_code == 403  # 403 before validation
    assert rep.get("/api/v1/warehouses").status_code == 403
    assert rep.put("/api/v1/stock/reorder-points", json={"product_id": s.p1, "reorder_point": 1}).status_code == 403
    finance = api_client(role="finance")
    assert finance.get("/api/v1/stock").status_code == 403
    assert finance.client.get("/api/v1/stock").status_code == 401
    wh = api_client(role="warehouse")
    assert wh.post("/api/v1/stock/movements", json={"kind": "receipt", "product_id": s.p1,
                                                    "warehouse_id": s.sh, "quantity": 1}).status_code == 201
    assert wh.post("/api/v1/warehouses", json={"code": "WH-X", "name": "X"}).status_code == 201
    owner = api_client(role="owner")
    assert owner.get("/api/v1/warehouses").status_code == 200
    assert owner.post("/api/v1/warehouses", json={"code": "WH-Y", "name": "Y"}).status_code == 403


def test_stock_value_report(admin_api, stockroom):
    from plugins.catalog.models import Category, Product

    s = stockroom
    cat = Category(name="营养保健")
    db.session.add(cat)
    db.session.flush()
    db.session.get(Product, s.p1).category_id = cat.id  # cost 10.50
    services.receive(s.p1, s.sh, 3)
    services.receive(s.p1, s.gz, 1)
    services.receive(s.p2, s.sh, 7)  # cost 20.50, uncategorised
    db.session.commit()
    r = admin_api.get("/api/v1/reports/inventory.stock_value").json
    assert r["columns"] == ["Category", "Stock value", "Units"]
    assert r["rows"] == [["—", "143.50", 7], ["营养保健", "42.00", 4]]
    r = admin_api.get(f"/api/v1/reports/inventory.stock_value?warehouse_id={s.gz}").json
    assert r["rows"] == [["营养保健", "10.50", 1]]
