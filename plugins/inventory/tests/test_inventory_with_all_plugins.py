"""Catalog and inventory alongside every other plugin: orders' hooks, custom product fields."""

from __future__ import annotations

import csv
import io

import pytest
import yaml

from core.db import db
from plugins.inventory import services


@pytest.fixture
def dovetail_plugins():
    return None  # every available plugin


@pytest.fixture
def dovetail_config_dir(dovetail_config_dir):
    (dovetail_config_dir / "custom_fields.yaml").write_text(yaml.safe_dump({"fields": {"product": {
        "shelf_life_days": {"type": "integer", "label": {"en": "Shelf life (days)"}, "min": 1, "max": 3650}}}}),
        encoding="utf-8")
    return dovetail_config_dir


def test_orders_confirm_ship_and_cancel_through_inventory(admin_api, stockroom):
    s = stockroom
    services.receive(s.p1, s.sh, 5)
    db.session.commit()
    cust = admin_api.post("/api/v1/customers", json={"name": "张三", "phone": "13800138000"})
    assert cust.status_code == 201, cust.json
    new = lambda q: admin_api.post("/api/v1/orders", json={  # noqa: E731
        "customer_id": cust.json["id"], "lines": [{"product_id": s.p1, "quantity": q}]})
    big, small = new(6).json, new(4).json
    r = admin_api.post(f"/api/v1/orders/{big['id']}/transitions", json={"transition": "confirm"})
    assert r.status_code == 409, r.json
    assert "Only 5 of SKU-001 available in WH-SH; 6 requested" in r.json["error"]["message"]
    r = admin_api.post(f"/api/v1/orders/{small['id']}/transitions", json={"transition": "confirm"})
    assert r.status_code == 200, r.json
    db.session.expire_all()
    assert (services.stock_of(s.p1, s.sh).on_hand, services.stock_of(s.p1, s.sh).reserved) == (5, 4)
    r = admin_api.post(f"/api/v1/orders/{small['id']}/transitions", json={"transition": "cancel"})
    assert r.status_code == 200, r.json
    db.session.expire_all()
    assert services.stock_of(s.p1, s.sh).reserved == 0
    assert services.check_ledger() == []


def test_product_custom_fields_in_api_filters_and_csv(admin_api, runner, tmp_path):
    r = admin_api.post("/api/v1/products", json={"sku": "NS-1", "name": "鱼油", "price": "99",
                                                 "custom": {"shelf_life_days": 720}})
    assert r.status_code == 201, r.json
    assert r.json["custom"] == {"shelf_life_days": 720}
    r = admin_api.post("/api/v1/products", json={"sku": "NS-2", "name": "钙片", "price": "9",
                                                 "custom": {"shelf_life_days": 0}})
    assert r.status_code == 422 and "shelf_life_days" in r.json["error"]["fields"]["custom"]
    assert admin_api.get("/api/v1/products?custom.shelf_life_days=720").json["total"] == 1
    assert admin_api.get("/api/v1/products?custom.shelf_life_days=' OR 1=1 --").status_code in (200, 422)
    path = tmp_path / "p.csv"
    path.write_text("sku,name,price,custom.shelf_life_days\nNS-3,钙片,9,365\nNS-4,维C,9,-5\n", encoding="utf-8")
    db.session.rollback()
    result = runner.invoke(["import", "products", str(path)])
    assert result.exit_code == 2 and "line 3, column custom.shelf_life_days:" in result.output
    out = tmp_path / "out.csv"
    runner.invoke(["export", "products", "-o", str(out)])
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert {r["sku"]: r["custom.shelf_life_days"] for r in rows} == {"NS-1": "720", "NS-3": "365"}


def test_product_form_shows_custom_fields_and_their_errors(client, make_user):
    make_user("web_admin", role="admin")
    assert client.post("/login", data={"username": "web_admin", "password": "password123"}).status_code == 302
    form = client.get("/catalog/products/new").get_data(as_text=True)
    assert 'name="custom.shelf_life_days"' in form
    base = {"sku": "CF-1", "name": "鱼油", "unit": "瓶", "price": "99", "active": "y"}
    r = client.post("/catalog/products/new", data={**base, "custom.shelf_life_days": "0"})
    assert r.status_code == 422 and "shelf_life_days:" in r.get_data(as_text=True)
    r = client.post("/catalog/products/new", data={**base, "custom.shelf_life_days": "365"})
    assert r.status_code == 302
    from plugins.catalog.services import product_by_sku

    assert product_by_sku("CF-1").custom == {"shelf_life_days": 365}
    assert "365" in client.get(r.headers["Location"]).get_data(as_text=True)
