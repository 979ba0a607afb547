"""Stock value at cost and receipt costs follow ``catalog.product.read_cost``: a role that
reads stock and reports but not costs gets no stock value report (list, run, CSV/XLSX, web
page, dashboard) and no ``unit_cost`` on movements; managers and admins do."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
import yaml

from core.db import db
from plugins.inventory import services

REPORT = "inventory.stock_value"


@pytest.fixture
def dovetail_config_dir(dovetail_config_dir):
    """The project's roles plus a stock analyst: reports and stock, but no costs."""
    path = dovetail_config_dir / "roles.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["roles"]["stock_analyst"] = {"permissions": ["core.report.read", "catalog.product.read",
                                                      "inventory.stock.read"], "scope": "all"}
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return dovetail_config_dir


@pytest.fixture
def stocked(stockroom):
    services.receive(stockroom.p1, stockroom.sh, 10, unit_cost=Decimal("10.50"))  # value 105.00
    db.session.commit()
    return stockroom


@pytest.fixture
def web(app, make_user):
    def login(role: str):
        user = make_user(f"web_{role}_{uuid.uuid4().hex[:6]}", role=role)
        c = app.test_client()
        assert c.post("/login", data={"username": user.username,
                                      "password": "password123"}).status_code == 302
        return c

    return login


def test_the_stock_value_report_is_not_offered_without_the_cost_permission(api_client, stocked):
    analyst = api_client(role="stock_analyst")
    listed = analyst.get("/api/v1/reports")
    assert listed.status_code == 200 and REPORT not in [r["key"] for r in listed.json]
    for fmt in ("", "?format=csv", "?format=xlsx"):
        r = analyst.get(f"/api/v1/reports/{REPORT}{fmt}")
        assert r.status_code == 403 and "catalog.product.read_cost" in r.json["error"]["message"]


@pytest.mark.parametrize("role", ["manager", "admin"])
def test_managers_and_admins_get_the_stock_value(api_client, stocked, role):
    c = api_client(role=role)
    assert REPORT in [r["key"] for r in c.get("/api/v1/reports").json]
    assert c.get(f"/api/v1/reports/{REPORT}").json["rows"] == [["—", "105.00", 10]]
    assert "105.00" in c.get(f"/api/v1/reports/{REPORT}?format=csv").get_data(as_text=True)
    assert c.get(f"/api/v1/reports/{REPORT}?format=xlsx").status_code == 200


def test_web_report_page_and_dashboard(web, stocked):
    analyst = web("stock_analyst")
    assert analyst.get(f"/reports/{REPORT}").status_code == 403
    assert analyst.get(f"/reports/{REPORT}?format=csv").status_code == 403
    assert "Stock value" not in analyst.get("/reports").get_data(as_text=True)
    for role in ("rep", "warehouse", "stock_analyst"):  # they read stock; the widget was theirs
        page = web(role).get("/")
        assert page.status_code == 200 and "Stock value" not in page.get_data(as_text=True), role
    mgr = web("manager")
    assert "105.00" in mgr.get(f"/reports/{REPORT}").get_data(as_text=True)
    assert "Stock value" in mgr.get("/").get_data(as_text=True)


def test_movements_show_unit_cost_only_with_the_cost_permission(api_client, stocked):
    rep = api_client(role="rep")
    items = rep.get("/api/v1/stock/movements").json["items"]
    assert items and all("unit_cost" not in m for m in items)
    wh = api_client(role="warehouse")  # posts receipts, does not see costs
    r = wh.post("/api/v1/stock/movements", json={"kind": "receipt", "product_id": stocked.p2,
                                                 "warehouse_id": stocked.sh, "quantity": 1,
                                                 "unit_cost": "3.00"})
    assert r.status_code == 201 and all("unit_cost" not in m for m in r.json["movements"])
    admin = api_client(role="admin")
    costs = {m["unit_cost"] for m in admin.get("/api/v1/stock/movements").json["items"]}
    assert costs == {"10.50", "3.00"}
