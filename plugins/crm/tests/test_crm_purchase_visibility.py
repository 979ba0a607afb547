"""Purchase history and the figures kept from it (order_count, total_spent, last_purchase_at)
follow ``orders.order.read``: telesales without order permissions work with customers but see
none of it (API detail, list, pool, segment, duplicates, purchases, sorting, exports, web
pages); reps and managers, who read orders, do."""

from __future__ import annotations

import csv
import io
import uuid

import pytest
import yaml

from core.db import db
from core.models import User
from plugins.crm.history import record_order


def report(_hook: str, returned_amount=None, **order):
    """What crm's order_created / order_status_changed / order_returned hooks record."""
    record_order(order, returned_amount=returned_amount)

SPENT = "4321.98"
FIELDS = ("order_count", "total_spent", "last_purchase_at")


@pytest.fixture
def dovetail_plugins():
    return ["crm", "catalog", "orders"]


@pytest.fixture
def dovetail_config_dir(dovetail_config_dir):
    """Adds 'telesales': customers, calls, pool, segments and export, but no order permission."""
    path = dovetail_config_dir / "roles.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["roles"]["telesales"] = {"permissions": [
        "crm.customer.read", "crm.customer.read_personal", "crm.customer.create",
        "crm.customer.update", "crm.customer.export", "crm.activity.read", "crm.activity.write",
        "crm.segment.read", "crm.pool.claim"], "scope": "all"}
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return dovetail_config_dir


def _buy(customer_id: int, order_id: int) -> None:
    report("order_created", order_id=order_id, number=f"SO-2026-{order_id:06d}",
         customer_id=customer_id, owner_id=None, status="paid", total=SPENT,
         discount_total="0.00", currency="CNY", placed_at="2026-03-01T10:00:00+08:00",
         lines=[], promotion_ids=[])


@pytest.fixture
def shop(app, api_client, admin_api, make_team, make_user):
    """Two customers with the same phone (one of a rep's, one in the pool), each with a paid
    order, and a segment; clients for telesales, the rep and the rep's manager."""
    team = make_team("East")
    rep = api_client(make_user("rep_a", "rep", team=team))
    manager = api_client(make_user("manager_a", "manager", team=team))
    a = rep.post("/api/v1/customers", json={"name": "王五", "phone": "13900139000"}).json
    b = admin_api.post("/api/v1/customers", json={"name": "王五二", "phone": "13900139000",
                                                  "owner_id": None}).json
    _buy(a["id"], 1)
    _buy(b["id"], 2)
    seg = admin_api.post("/api/v1/segments", json={"name": "All", "filters": {}}).json
    db.session.commit()
    return {"a": a["id"], "pool": b["id"], "segment": seg["id"],
            "telesales": api_client(role="telesales"), "rep": rep, "manager": manager}


def _no_purchase_data(items):
    assert items
    for item in items:
        assert not set(FIELDS) & set(item), item


def test_customer_detail_list_and_history_hidden_from_telesales(shop):
    t = shop["telesales"]
    one = t.get(f"/api/v1/customers/{shop['a']}")
    assert one.status_code == 200 and one.json["name"] == "王五"
    _no_purchase_data([one.json])
    page = t.get("/api/v1/customers")
    _no_purchase_data(page.json["items"])
    assert SPENT not in page.get_data(as_text=True)
    r = t.get(f"/api/v1/customers/{shop['a']}/purchases")
    assert r.status_code == 403 and "orders.order.read" in r.json["error"]["message"]
    for sort in ("total_spent", "-order_count", "last_purchase_at"):
        r = t.get(f"/api/v1/customers?sort={sort}")
        assert r.status_code == 403 and "orders.order.read" in r.json["error"]["message"]
    _no_purchase_data(t.get("/api/v1/customers/pool").json["items"])
    _no_purchase_data(t.get(f"/api/v1/segments/{shop['segment']}/customers").json["items"])
    assert t.get(f"/api/v1/segments/{shop['segment']}/customers?sort=-total_spent").status_code == 403
    groups = t.get("/api/v1/customers/duplicates").json["items"]
    _no_purchase_data([c for g in groups for c in g["customers"]])
    # what telesales changes comes back without the figures too
    patched = t.patch(f"/api/v1/customers/{shop['a']}", json={"region": "华东"})
    assert patched.status_code == 200
    _no_purchase_data([patched.json])


@pytest.mark.parametrize("who", ["rep", "manager"])
def test_roles_reading_orders_see_purchase_history(shop, who):
    c = shop[who]
    one = c.get(f"/api/v1/customers/{shop['a']}").json
    assert (one["order_count"], one["total_spent"]) == (1, SPENT) and one["last_purchase_at"]
    r = c.get(f"/api/v1/customers/{shop['a']}/purchases")
    assert r.status_code == 200 and r.json["items"][0]["total"] == SPENT
    assert c.get("/api/v1/customers?sort=-total_spent").status_code == 200


def test_openapi_says_the_purchase_figures_are_optional(client):
    out = client.get("/api/v1/openapi.json").json["components"]["schemas"]["CustomerOut"]
    for key in FIELDS:
        assert key not in out.get("required", []) and "orders.order.read" in \
            out["properties"][key]["description"]


def _export(client, fmt="csv"):
    r = client.get(f"/api/v1/customers/export?format={fmt}")
    assert r.status_code == 200
    return r


def test_exports_leave_purchase_figures_out_for_telesales(shop, app, runner):
    text = _export(shop["telesales"]).get_data(as_text=True)
    header = next(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert "name" in header and not set(FIELDS) & set(header) and SPENT not in text
    from openpyxl import load_workbook

    xlsx = load_workbook(io.BytesIO(_export(shop["telesales"], "xlsx").data)).active
    cells = {str(c.value) for row in xlsx.iter_rows() for c in row}
    assert not set(FIELDS) & cells and SPENT not in cells
    user = db.session.get(User, shop["telesales"].user.id)
    out = runner.invoke(["export", "customers", "--as", user.username]).output
    assert "total_spent" not in out and SPENT not in out
    mgr = _export(shop["manager"]).get_data(as_text=True)
    assert "total_spent" in mgr and SPENT in mgr


@pytest.fixture
def web(app, make_user):
    """``web(role=...)`` logs in a new user of that role, ``web(username=...)`` an existing one."""

    def login(role: str | None = None, username: str | None = None):
        username = username or make_user(f"web_{role}_{uuid.uuid4().hex[:6]}", role=role).username
        c = app.test_client()
        assert c.post("/login", data={"username": username,
                                      "password": "password123"}).status_code == 302
        return c

    return login


def test_web_pages_hide_purchase_history_from_telesales(shop, web):
    t = web("telesales")
    pages = {"customer": f"/crm/customers/{shop['a']}", "list": "/crm/customers", "pool": "/crm/pool",
             "segment": f"/crm/segments/{shop['segment']}", "duplicates": "/crm/duplicates"}
    for name, url in pages.items():
        r = t.get(url)
        page = r.get_data(as_text=True)
        assert r.status_code == 200, (name, r.status_code)
        assert SPENT not in page and "SO-2026-000001" not in page, name
        assert "Total spent" not in page and "Purchase history" not in page, name
        assert ">Orders<" not in page, name
    m = web(username="manager_a")
    page = m.get(f"/crm/customers/{shop['a']}").get_data(as_text=True)
    assert SPENT in page and "SO-2026-000001" in page and "Purchase history" in page
    assert SPENT in m.get("/crm/customers").get_data(as_text=True)
