"""The profit report (revenue − cost) needs ``catalog.product.read_cost`` besides
``orders.report.read``: a sales analyst who reads sales reports but not costs does not get it
(list, run, CSV/XLSX, web page); managers, owners, finance and admins do."""

from __future__ import annotations

import uuid

import pytest
import yaml

REPORT = "orders.profit"


@pytest.fixture
def dovetail_config_dir(dovetail_config_dir):
    path = dovetail_config_dir / "roles.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["roles"]["sales_analyst"] = {"permissions": ["core.report.read", "orders.report.read",
                                                      "orders.order.read"], "scope": "all"}
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return dovetail_config_dir


def test_sales_reports_without_the_cost_permission_leave_profit_out(api_client, app, make_user):
    analyst = api_client(role="sales_analyst")
    keys = [r["key"] for r in analyst.get("/api/v1/reports").json]
    assert "orders.sales_by_day" in keys and REPORT not in keys
    for fmt in ("", "?format=csv", "?format=xlsx"):
        r = analyst.get(f"/api/v1/reports/{REPORT}{fmt}")
        assert r.status_code == 403 and "catalog.product.read_cost" in r.json["error"]["message"]
    user = make_user(f"web_{uuid.uuid4().hex[:6]}", role="sales_analyst")
    web = app.test_client()
    assert web.post("/login", data={"username": user.username, "password": "password123"}).status_code == 302
    assert web.get(f"/reports/{REPORT}").status_code == 403
    assert "Profit" not in web.get("/reports").get_data(as_text=True)


@pytest.mark.parametrize("role", ["manager", "owner", "finance", "admin"])
def test_roles_with_the_cost_permission_get_the_profit_report(api_client, role):
    c = api_client(role=role)
    assert REPORT in [r["key"] for r in c.get("/api/v1/reports").json]
    r = c.get(f"/api/v1/reports/{REPORT}")
    assert r.status_code == 200 and r.json["columns"] == ["month", "revenue", "cost", "profit",
                                                          "margin_percent"]
    assert c.get(f"/api/v1/reports/{REPORT}?format=csv").status_code == 200
