"""The shipped workflow files with the business plugins: valid and behaving in every plugin combination,
a finance review step added by an admin, rollback of a failing action, and the order diagram."""

from __future__ import annotations

import pytest
import yaml
from sqlalchemy import func, select

from core.db import db

COMBINATIONS = {
    "crm": ["crm", "workflows"],
    "orders": ["crm", "catalog", "orders", "workflows"],
    "inventory": ["crm", "catalog", "inventory", "orders", "workflows"],
    "all": ["crm", "catalog", "inventory", "orders", "marketing", "customfields", "workflows"],
}


@pytest.fixture(params=sorted(COMBINATIONS))
def dovetail_plugins(request):
    return COMBINATIONS[request.param]


def _add_stock(product, quantity):
    from plugins.inventory import services
    from plugins.inventory.models import Warehouse

    wh = db.session.scalar(select(Warehouse).limit(1))
    if wh is None:
        wh = Warehouse(code="WH-1", name="主仓")
        db.session.add(wh)
        db.session.flush()
    services.receive(product.id, wh.id, quantity)
    db.session.commit()
    return wh


def _stock(product):
    from plugins.inventory.models import StockLevel

    row = db.session.scalar(select(StockLevel).where(StockLevel.product_id == product.id))
    db.session.refresh(row)
    return row.on_hand, row.reserved


def test_shipped_files_pass_check(runner, dovetail_plugins):
    res = runner.invoke(["workflow", "check"])
    assert res.exit_code == 0, res.output
    assert "config/workflows/lead.yaml: ok (lead," in res.output
    if "orders" in dovetail_plugins:
        assert "config/workflows/order.yaml: ok (order," in res.output
        assert "config/workflows/return.yaml: ok (return," in res.output
    else:
        assert "entity 'order' belongs to plugin 'orders', which is disabled" in res.output
        assert "entity 'return' belongs to plugin 'orders', which is disabled" in res.output
    assert "error" not in res.output


def test_shipped_files_are_in_force_and_behave(app, admin_api, dovetail_plugins, make_customer, make_product,
                                               wf):
    from core.statemachine import machine_for

    assert machine_for("lead").source.endswith("config/workflows/lead.yaml")
    lead = admin_api.post("/api/v1/leads", json={"title": "展会线索", "expected_amount": "500.00"}).json
    r = admin_api.post(f"/api/v1/leads/{lead['id']}/transitions", json={"transition": "contact"})
    assert r.status_code == 200, r.json
    r = admin_api.post(f"/api/v1/leads/{lead['id']}/transitions", json={"transition": "lose"})
    assert r.status_code == 422 and "comment" in r.json["error"]["fields"]
    if "orders" not in dovetail_plugins:
        return
    assert machine_for("order").source.endswith("config/workflows/order.yaml")
    customer, product = make_customer(), make_product("88.80")
    inventory = "inventory" in dovetail_plugins
    if inventory:
        _add_stock(product, 5)
    o = wf.new_order(admin_api, customer, product, qty=2)
    r = wf.go(admin_api, o["id"], "confirm")
    assert r.status_code == 200, r.json
    if inventory:
        assert _stock(product) == (5, 2)
    r = wf.go(admin_api, o["id"], "pay", inputs={"method": "alipay"})
    assert r.status_code == 200, r.json
    r = wf.go(admin_api, o["id"], "ship", inputs={"carrier": "顺丰", "tracking_no": "SF1"})
    assert r.status_code == 200, r.json
    if inventory:
        assert _stock(product) == (3, 0)
    hist = admin_api.get(f"/api/v1/orders/{o['id']}/history").json["items"]
    assert [h["to"] for h in hist] == ["confirmed", "paid", "shipped"]
    if inventory:  # not enough stock: confirm refused, nothing changes
        o2 = wf.new_order(admin_api, customer, product, qty=4)
        r = wf.go(admin_api, o2["id"], "confirm")
        assert r.status_code == 409
        assert admin_api.get(f"/api/v1/orders/{o2['id']}").json["status"] == "draft"
        assert _stock(product) == (3, 0)


REVIEW_STATE = "  awaiting_review: {label: {en: Awaiting review, zh_CN: 待审核}}\n"
REVIEW_TRANSITION = """\
  review:
    from: confirmed
    to: awaiting_review
    label: {en: Send to finance review, zh_CN: 提交财务审核}
    roles: [finance]
"""


def _with_review(text: str) -> str:
    text = text.replace("  paid: {label:", REVIEW_STATE + "  paid: {label:", 1)
    text = text.replace("  pay:\n    from: confirmed\n", "  pay:\n    from: awaiting_review\n", 1)
    text = text.replace("    from: [draft, confirmed]\n    to: cancelled",
                        "    from: [draft, confirmed, awaiting_review]\n    to: cancelled", 1)
    return text.replace("transitions:\n", "transitions:\n" + REVIEW_TRANSITION, 1)


@pytest.mark.parametrize("dovetail_plugins", [COMBINATIONS["orders"]], indirect=False)
def test_awaiting_review_added_by_file_and_reload(app, admin_api, api_client, make_user, make_customer,
                                                  make_product, wf_dir, wf, runner):
    path = wf_dir / "order.yaml"
    rep, finance = make_user("rep1", role="rep"), make_user("fin1", role="finance")
    rep_api, fin_api = api_client(rep), api_client(finance)
    o = wf.new_order(rep_api, make_customer(rep), make_product("50.00"))
    assert wf.go(rep_api, o["id"], "confirm").status_code == 200

    wf.write(path, _with_review(path.read_text(encoding="utf-8")))
    res = runner.invoke(["workflow", "check", str(path)])
    assert res.exit_code == 0, res.output
    r = admin_api.post("/api/v1/workflows/reload")
    assert r.status_code == 200 and r.json["ok"] is True, r.json
    detail = admin_api.get("/api/v1/workflows/order").json
    assert "awaiting_review" in [s["key"] for s in detail["states"]]

    avail = {t["key"]: t for t in rep_api.get(f"/api/v1/orders/{o['id']}/transitions").json["items"]}
    assert avail["review"]["allowed"] is False
    assert avail["review"]["reason"] == "restricted to the role(s) finance"
    assert "pay" not in avail
    r = wf.go(rep_api, o["id"], "review")
    assert r.status_code == 403
    assert "restricted to the role(s) finance" in r.json["error"]["message"]
    assert wf.go(fin_api, o["id"], "pay", inputs={"method": "alipay"}).status_code == 409
    r = wf.go(fin_api, o["id"], "review")
    assert r.status_code == 200 and r.json["order"]["status"] == "awaiting_review"
    r = wf.go(fin_api, o["id"], "pay", inputs={"method": "alipay"})
    assert r.status_code == 200 and r.json["order"]["status"] == "paid"
    hist = admin_api.get(f"/api/v1/orders/{o['id']}/history").json["items"]
    assert [(h["from"], h["to"]) for h in hist] == [("draft", "confirmed"), ("confirmed", "awaiting_review"),
                                                   ("awaiting_review", "paid")]


@pytest.mark.parametrize("dovetail_plugins", [COMBINATIONS["inventory"] + ["wftest"]])
def test_failing_action_leaves_order_stock_and_history_as_before(app, admin_api, make_customer, make_product,
                                                                  wf_dir, wf):
    from core.models import TransitionLog
    from plugins.inventory.models import Reservation

    path = wf_dir / "order.yaml"
    text = path.read_text(encoding="utf-8")
    assert "    actions: [orders.reserve_stock]\n" in text
    wf.write(path, text.replace("    actions: [orders.reserve_stock]\n",
                                "    actions: [orders.reserve_stock, wftest.explode]\n", 1))
    assert admin_api.post("/api/v1/workflows/reload").json["ok"] is True
    product = make_product()
    _add_stock(product, 10)
    o = wf.new_order(admin_api, make_customer(), product, qty=3)
    r = wf.go(admin_api, o["id"], "confirm")
    assert r.status_code == 409 and "the test action refuses" in r.json["error"]["message"]
    db.session.expire_all()
    after = admin_api.get(f"/api/v1/orders/{o['id']}").json
    assert after["status"] == "draft" and after["confirmed_at"] is None
    assert _stock(product) == (10, 0)
    assert db.session.scalar(select(func.count()).select_from(Reservation)) == 0
    assert db.session.scalar(select(func.count()).select_from(TransitionLog)) == 0
    assert admin_api.get(f"/api/v1/orders/{o['id']}/history").json["items"] == []


@pytest.mark.parametrize("dovetail_plugins", [COMBINATIONS["orders"]])
def test_show_order_matches_the_file(runner, dovetail_config_dir):
    data = yaml.safe_load((dovetail_config_dir / "workflows" / "order.yaml").read_text(encoding="utf-8"))
    mermaid = runner.invoke(["workflow", "show", "order"]).output
    dot = runner.invoke(["workflow", "show", "order", "--format", "dot"]).output
    assert mermaid.startswith("stateDiagram-v2\n")
    edges = 0
    for key, t in data["transitions"].items():
        sources = t["from"] if isinstance(t["from"], list) else [t["from"]]
        for src in sources:
            assert f"    {src} --> {t['to']}: {key}" in mermaid
            assert f'    "{src}" -> "{t["to"]}" [label="{key}"];' in dot
            edges += 1
    assert mermaid.count(" --> ") - 1 - sum(1 for s in data["states"].values() if s.get("final")) == edges
    for key, s in data["states"].items():
        assert f'    state "{s["label"]["en"]}" as {key}' in mermaid
        if s.get("initial"):
            assert f"    [*] --> {key}" in mermaid
        if s.get("final"):
            assert f"    {key} --> [*]" in mermaid
