"""Domain events, the crm merge hook, reports and stats (scoped), import/export and web pages."""

from __future__ import annotations

import sys
import types
from datetime import datetime, timedelta

import pytest

from core import hookimpl
from core.state import dovetail

recorder = types.ModuleType("orders_test_recorder")
recorder.EVENTS = []


@hookimpl
def _manifest():
    from core.registry import PluginManifest

    return PluginManifest(name="recorder", version="0.0.1")


@hookimpl
def _on_event(event):
    if event.name.startswith("orders.order."):
        recorder.EVENTS.append((event.name, dict(event.payload)))


_manifest.__name__, _on_event.__name__ = "plugin_manifest", "on_event"
recorder.plugin_manifest, recorder.on_event = _manifest, _on_event
sys.modules[recorder.__name__] = recorder


def _go(api, oid, key, **kw):
    r = api.post(f"/api/v1/orders/{oid}/transitions", json={"transition": key, **kw})
    assert r.status_code == 200, r.json
    return r.json


def _order(api, customer, product, qty=1):
    r = api.post("/api/v1/orders", json={"customer_id": customer.id,
                                         "lines": [{"product_id": product.id, "quantity": qty}]})
    assert r.status_code == 201, r.json
    return r.json


class TestEvents:
    @pytest.fixture
    def dovetail_extra_plugins(self):
        return {"recorder": recorder}

    @pytest.fixture
    def dovetail_plugins(self):
        return ["crm", "catalog", "orders", "recorder"]

    def test_events_have_the_agreed_shape(self, admin_api, make_customer, make_product):
        recorder.EVENTS.clear()
        c, p = make_customer(), make_product("12.34")
        o = _order(admin_api, c, p, qty=2)
        _go(admin_api, o["id"], "confirm")
        names = [n for n, _ in recorder.EVENTS]
        assert names[0] == "orders.order.created" and "orders.order.status_changed" in names
        created = recorder.EVENTS[0][1]
        keys = {"order_id", "number", "customer_id", "owner_id", "status", "total", "discount_total",
                "currency", "placed_at", "lines", "promotion_ids"}
        assert keys <= set(created)
        assert created["total"] == "24.68" and created["status"] == "draft"
        assert created["lines"] == [{"product_id": p.id, "sku": p.sku, "quantity": 2, "line_total": "24.68"}]
        datetime.fromisoformat(created["placed_at"])
        changed = dict(recorder.EVENTS)["orders.order.status_changed"]
        assert changed["status"] == "confirmed" and changed["from_status"] == "draft" and keys <= set(changed)

    def test_failed_creation_emits_nothing_durable(self, admin_api, make_customer, make_product):
        recorder.EVENTS.clear()
        r = admin_api.post("/api/v1/orders", json={"customer_id": make_customer().id,
                                                   "lines": [{"product_id": 424242, "quantity": 1}]})
        assert r.status_code == 422 and recorder.EVENTS == []


def test_customer_merged_moves_orders(app, admin_api, make_customer, make_product):
    from core.db import db

    a, b, p = make_customer(), make_customer(), make_product()
    o1, o2 = _order(admin_api, a, p), _order(admin_api, b, p)
    dovetail(app).pm.hook.customer_merged(survivor_id=a.id, merged_id=b.id)
    db.session.commit()
    assert admin_api.get(f"/api/v1/orders/{o2['id']}").json["customer_id"] == a.id
    assert admin_api.get(f"/api/v1/orders?customer_id={a.id}").json["total"] == 2
    assert o1["customer_id"] == a.id
    audit = admin_api.get(f"/api/v1/audit?entity=orders_order&entity_id={o2['id']}").json["items"]
    assert any(e["note"] == "customer merged" for e in audit)


def _sell(api, customer, product, qty, *, ship=False):
    o = _order(api, customer, product, qty)
    _go(api, o["id"], "confirm")
    if ship:
        _go(api, o["id"], "pay", inputs={"method": "cash"})
        _go(api, o["id"], "ship", inputs={"carrier": "EMS", "tracking_no": "X1"})
    return o


def test_reports_and_stats_are_scoped_and_exact(api_client, make_user, make_team, make_customer, make_product,
                                                admin_api):
    a = make_user("repa", role="manager", team=make_team("East"))  # team scope, may read reports
    b = make_user("repb", role="rep")
    api_a = api_client(a)
    p = make_product("10.01", cost="4.00", category="Tea")
    q = make_product("3.33", cost="1.00", category=None)
    ca, cb = make_customer(a, region="华南"), make_customer(b, region="华北")
    # Revenue (plugins/orders/revenue.py, issue 10) counts only paid/shipped/completed orders, so
    # the two sales are paid; a confirmed-but-unpaid order is not a sale and must not count.
    for sale in (_sell(api_a, ca, p, 3),                      # 30.03
                 _sell(admin_api, cb, q, 2)):                 # 6.66 (rep b's customer, admin's order)
        _go(admin_api, sale["id"], "pay", inputs={"method": "cash"})
    _sell(api_a, ca, p, 7)                                    # 70.07 confirmed, unpaid: not a sale
    draft = _order(api_a, ca, p, 1)                           # drafts are not sales
    assert draft["status"] == "draft"
    cancelled = _sell(api_a, ca, q, 5)
    _go(api_a, cancelled["id"], "cancel")
    r = admin_api.get("/api/v1/reports/orders.sales_by_day").json
    assert r["columns"] == ["day", "revenue", "orders"] and r["rows"][0][1:] == ["36.69", 2]
    assert api_a.get("/api/v1/reports/orders.sales_by_day").json["rows"][0][1:] == ["30.03", 1]
    assert api_client(b).get("/api/v1/reports/orders.sales_by_day").status_code == 403  # no permission
    rows = admin_api.get("/api/v1/reports/orders.sales_by_category").json["rows"]
    assert rows == [["Tea", 3, "30.03"], ["(none)", 2, "6.66"]]
    rows = admin_api.get("/api/v1/reports/orders.sales_by_region").json["rows"]
    assert rows == [["华南", 1, 1, "30.03"], ["华北", 1, 1, "6.66"]]
    rows = admin_api.get("/api/v1/reports/orders.sales_by_product").json["rows"]
    assert rows[0][0] == p.sku and rows[0][2:] == [3, "30.03"]
    rows = admin_api.get("/api/v1/reports/orders.sales_by_rep").json["rows"]
    assert rows == [["repa", "30.03", 1, "30.03"], ["admin", "6.66", 1, "6.66"]]
    profit = admin_api.get("/api/v1/reports/orders.profit").json
    assert profit["columns"] == ["month", "revenue", "cost", "profit", "margin_percent"]
    assert profit["rows"][0][1:4] == ["36.69", "14.00", "22.69"]
    csv = admin_api.get("/api/v1/reports/orders.profit?format=csv")
    assert csv.status_code == 200 and b"margin_percent" in csv.data
    assert admin_api.get("/api/v1/reports/orders.profit?format=xlsx").data[:2] == b"PK"
    bad = admin_api.get("/api/v1/reports/orders.sales_by_day?date_from=notadate")
    assert bad.status_code == 422
    stats = api_a.get("/api/v1/orders/stats").json
    assert stats["orders"] == 1 and stats["revenue"] == "30.03" and stats["by_status"]["draft"]["orders"] == 1
    assert stats["by_status"]["confirmed"]["orders"] == 1  # the unpaid order exists but is not revenue
    stats = admin_api.get("/api/v1/orders/stats").json
    assert stats["orders"] == 2 and stats["revenue"] == "36.69" and stats["average_order_value"] == "18.35"


def test_import_historical_orders_and_export(app, runner, tmp_path, make_customer, make_product, admin_api):
    from core.db import db

    make_customer(external_code="C001")
    make_customer(phone="13912345678")
    make_product("50.00", sku="TEA-1")
    make_product("20.00", sku="CUP-1")
    rows = [
        "external_number,order_date,status,customer,sku,quantity,unit_price",
        "OLD-1,2025-03-01,completed,C001,TEA-1,2,45.50",
        "OLD-1,2025-03-01,completed,C001,CUP-1,1,20",
        "OLD-2,2025/04/02 10:30,cancelled,+86 139-1234-5678,TEA-1,1,",
        "OLD-3,2025-05-01,completed,C001,NOPE,1,10",          # bad sku -> OLD-3 rejected
        "OLD-4,someday,completed,C001,TEA-1,1,10",            # bad date
        "OLD-5,2025-05-01,flying,C999,TEA-1,x,-1",             # four bad cells
    ]
    f = tmp_path / "orders.csv"
    f.write_text("\n".join(rows) + "\n", encoding="utf-8")
    res = runner.invoke(["import", "orders", str(f)])
    assert res.exit_code == 2, res.output
    assert "2 orders (3 lines)" in res.output and "3 rejected" in res.output
    assert "line 5, column sku: No product with SKU 'NOPE'." in res.output
    assert "line 6, column order_date" in res.output
    for col in ("status", "customer", "quantity", "unit_price"):
        assert f"line 7, column {col}" in res.output
    listed = admin_api.get("/api/v1/orders?q=OLD-1").json["items"]
    assert len(listed) == 1
    old1 = admin_api.get(f"/api/v1/orders/{listed[0]['id']}").json
    # file dates are the company's local time (Asia/Shanghai): stored as UTC
    assert old1["status"] == "completed" and old1["total"] == "111.00"
    assert old1["placed_at"] == "2025-02-28T16:00:00"
    assert old1["number"].startswith("SO-2025-") and old1["completed_at"] and old1["paid_amount"] == "111.00"
    old2 = admin_api.get("/api/v1/orders?q=OLD-2").json["items"][0]
    assert old2["total"] == "50.00" and old2["status"] == "cancelled"
    # re-running skips what is there
    res = runner.invoke(["import", "orders", str(f)])
    assert "0 orders" in res.output and "2 already imported" in res.output
    db.session.expire_all()
    out = tmp_path / "export.csv"
    res = runner.invoke(["export", "orders", "-o", str(out)])
    assert res.exit_code == 0, res.output
    text = out.read_text(encoding="utf-8-sig").splitlines()
    assert text[0].startswith("external_number,number,order_date,status,customer")
    assert len(text) == 1 + 3 and any(line.startswith("OLD-1,SO-2025-") and ",2025-03-01 00:00:00," in line
                                      for line in text)
    xlsx = tmp_path / "export.xlsx"
    assert runner.invoke(["export", "orders", "-o", str(xlsx), "--status", "completed"]).exit_code == 0
    assert xlsx.read_bytes()[:2] == b"PK"


def test_import_rejects_a_file_without_the_columns(runner, tmp_path):
    f = tmp_path / "bad.csv"
    f.write_text("number,when\n1,2\n", encoding="utf-8")
    res = runner.invoke(["import", "orders", str(f)])
    assert res.exit_code == 1 and "lacks the column(s)" in res.output and "Traceback" not in res.output


@pytest.fixture
def web(client, make_user):
    def login(username, role):
        make_user(username, role=role)
        r = client.post("/login", data={"username": username, "password": "password123"})
        assert r.status_code == 302
        return client

    return login


def test_web_pages_list_detail_new_and_transition(web, make_customer, make_product):
    cl = web("boss", "admin")
    c, p = make_customer(name="李小龙"), make_product("9.90")
    assert cl.get("/orders/new").status_code == 200
    r = cl.post("/orders/new", data={"customer_id": str(c.id), "product_0": str(p.id), "quantity_0": "0"})
    assert r.status_code == 422 and "Must be between 1 and" in r.get_data(as_text=True)
    r = cl.post("/orders/new", data={"customer_id": str(c.id), "product_0": str(p.id), "quantity_0": "3"})
    assert r.status_code == 302
    detail = r.headers["Location"]
    page = cl.get(detail).get_data(as_text=True)
    assert "29.70" in page and "李小龙" in page and 'value="confirm"' in page
    r = cl.post(detail + "/transition", data={"transition": "pay"})
    assert r.status_code == 302
    assert "Cannot record payment" in cl.get(detail).get_data(as_text=True)
    cl.post(detail + "/transition", data={"transition": "confirm"})
    page = cl.get(detail).get_data(as_text=True)
    assert "<small>Confirmed</small>" in page and 'value="pay"' in page
    listing = cl.get("/orders?status=confirmed").get_data(as_text=True)
    assert "SO-" in listing and "李小龙" in listing
    assert "SO-" not in cl.get("/orders?status=draft").get_data(as_text=True)
    assert cl.get("/orders/returns").status_code == 200


def test_web_masks_names_and_hides_other_reps_orders(web, api_client, make_user, make_customer, make_product,
                                                     admin_api):
    c = make_customer(name="王菲菲")
    o = _order(admin_api, c, make_product())
    cl = web("mk", "marketing")
    listing = cl.get("/orders").get_data(as_text=True)
    assert "王菲菲" not in listing and "王**" in listing
    cl2 = web("rep9", "rep")
    assert cl2.get(f"/orders/{o['id']}").status_code == 404


def test_return_request_from_web(web, admin_api, make_customer, make_product):
    o = _order(admin_api, make_customer(), make_product("5.00"), 2)
    _go(admin_api, o["id"], "confirm")
    _go(admin_api, o["id"], "pay", inputs={"method": "cash"})
    _go(admin_api, o["id"], "ship", inputs={"carrier": "EMS", "tracking_no": "X1"})
    cl = web("svc", "service")
    line = o["lines"][0]["id"]
    r = cl.post(f"/orders/{o['id']}/returns", data={f"return_{line}": "1", "reason": "坏了"})
    assert r.status_code == 302 and "/orders/returns/" in r.headers["Location"]
    page = cl.get(r.headers["Location"]).get_data(as_text=True)
    assert "5.00" in page and 'value="approve"' in page


def test_return_window_days_uses_shipped_time(admin_api, make_customer, make_product):
    from core.db import db
    from plugins.orders.models import Order

    o = _order(admin_api, make_customer(), make_product())
    _go(admin_api, o["id"], "confirm")
    _go(admin_api, o["id"], "pay", inputs={"method": "cash"})
    _go(admin_api, o["id"], "ship", inputs={"carrier": "EMS", "tracking_no": "X1"})
    order = db.session.get(Order, o["id"])
    order.shipped_at -= timedelta(days=29)
    db.session.commit()
    items = {t["key"]: t for t in admin_api.get(f"/api/v1/orders/{o['id']}/transitions").json["items"]}
    assert items["return"]["allowed"] is True


def test_crm_merge_api_moves_orders_and_purchase_history_follows(admin_api, make_customer, make_product):
    a, b, p = make_customer(), make_customer(), make_product("80.00")
    o = _order(admin_api, b, p, 2)
    _go(admin_api, o["id"], "confirm")
    r = admin_api.post("/api/v1/customers/merge", json={"survivor_id": a.id, "merged_ids": [b.id]})
    assert r.status_code == 200, r.json
    assert admin_api.get(f"/api/v1/orders/{o['id']}").json["customer_id"] == a.id
    purchases = admin_api.get(f"/api/v1/customers/{a.id}/purchases")
    assert purchases.status_code == 200
    assert o["number"] in purchases.get_data(as_text=True)


def test_days_and_months_are_the_companys_local_ones(admin_api, make_customer, make_product):
    from datetime import datetime

    from core.db import db
    from plugins.orders.models import Order

    c, p = make_customer(), make_product("10.00")
    late = _order(admin_api, c, p)            # 2025-12-31 23:30 UTC = 2026-01-01 07:30 in Shanghai
    early = _order(admin_api, c, p, 2)        # 2025-12-31 15:30 UTC = 2025-12-31 23:30 in Shanghai
    for oid, when in ((late["id"], datetime(2025, 12, 31, 23, 30)), (early["id"], datetime(2025, 12, 31, 15, 30))):
        db.session.get(Order, oid).placed_at = when
    db.session.commit()
    for oid in (late["id"], early["id"]):  # paid: only paid/shipped/completed orders are revenue
        _go(admin_api, oid, "confirm")
        _go(admin_api, oid, "pay", inputs={"method": "cash"})
    rows = admin_api.get("/api/v1/reports/orders.sales_by_day").json["rows"]
    assert rows == [["2025-12-31", "20.00", 1], ["2026-01-01", "10.00", 1]]
    assert [r[0] for r in admin_api.get("/api/v1/reports/orders.profit").json["rows"]] == ["2025-12", "2026-01"]
    got = admin_api.get("/api/v1/orders?date_from=2026-01-01&date_to=2026-01-01").json["items"]
    assert [o["id"] for o in got] == [late["id"]]
    assert admin_api.get("/api/v1/orders/stats?date_to=2025-12-31").json["revenue"] == "20.00"


def test_web_edit_draft_reprices_and_shows_errors(web, make_customer, make_product):
    cl = web("boss", "admin")
    c, p, q = make_customer(), make_product("4.00"), make_product("2.50")
    r = cl.post("/orders/new", data={"customer_id": str(c.id), "product_0": str(p.id), "quantity_0": "1"})
    detail = r.headers["Location"]
    assert "/edit" in cl.get(detail).get_data(as_text=True)
    form = cl.get(detail + "/edit").get_data(as_text=True)
    assert f'value="{p.id}" selected' in form
    bad = cl.post(detail + "/edit", data={"product_0": str(q.id), "quantity_0": "-3"})
    assert bad.status_code == 422 and "Must be between 1 and" in bad.get_data(as_text=True)
    ok = cl.post(detail + "/edit", data={"product_0": str(q.id), "quantity_0": "3", "notes": "加急"})
    assert ok.status_code == 302
    page = cl.get(detail).get_data(as_text=True)
    assert "7.50" in page and "加急" in page
    cl.post(detail + "/transition", data={"transition": "confirm"})
    assert "/edit" not in cl.get(detail).get_data(as_text=True)
    r = cl.post(detail + "/edit", data={"product_0": str(q.id), "quantity_0": "1"})
    assert r.status_code == 422 and "only a draft order can be changed" in r.get_data(as_text=True)


def test_web_report_with_a_bad_date_says_so_and_shows_the_report(web, admin_api):
    cl = web("boss", "admin")
    r = cl.get("/reports/orders.sales_by_day?date_from=notadate&group=day")
    text = r.get_data(as_text=True)
    # like the list pages' filters: the message, the form and the unfiltered report (no error page)
    assert r.status_code == 200 and 'name="date_from" value=""' in text and 'value="notadate"' not in text
    assert 'class="flash error"' in text
    assert admin_api.get("/api/v1/reports/orders.sales_by_day?date_from=notadate").status_code == 422
    assert cl.get("/reports/orders.sales_by_day?date_from=notadate&format=csv").status_code == 422
