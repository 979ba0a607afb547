"""Dashboards per role (issue 10): a rep sees their month against target, their tasks due and
the customers to follow up; a manager the team leaderboard, team attainment, approvals
waiting and the pipeline; an owner/admin the revenue trend, top products and stock alerts.
Each card's figures are checked to the fen, and a rep never sees another rep's figures.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

PASSWORD = "password123"


@pytest.fixture
def dovetail_plugins():
    return None  # every plugin


def _now() -> datetime:
    return datetime.utcnow() - timedelta(minutes=5)  # noqa: DTZ003 - naive UTC like the stored times


@pytest.fixture
def org(app, make_user, make_team):
    """Team A (manager, rep1, rep2), team B (rep3), an admin; this month's orders, targets,
    follow-up tasks, stale customers, lost leads and a product below its reorder point."""
    from core.db import db, quantize
    from plugins.catalog.models import Category, Product
    from plugins.crm.models import Activity, Customer, Lead
    from plugins.crm.services import today_local
    from plugins.inventory import services as stock
    from plugins.inventory.models import Warehouse
    from plugins.orders.models import Order, OrderLine
    from plugins.performance.models import Target
    from plugins.performance.periods import current_month

    team_a, team_b = make_team("Team A"), make_team("Team B")
    manager = make_user("mgr", "manager", team=team_a)
    rep1 = make_user("rep_one", "rep", team=team_a, display_name="Rep One")
    rep2 = make_user("rep_two", "rep", team=team_a, display_name="Rep Two")
    rep3 = make_user("rep_three", "rep", team=team_b, display_name="Rep Three")
    admin = make_user("boss", "admin")
    cat = Category(name="Skincare")
    db.session.add(cat)
    db.session.flush()
    p1 = Product(sku="SKU-1", name="Serum", category_id=cat.id, unit="件", price=Decimal("123.45"),
                 cost=Decimal("50.00"), active=True, custom={})
    p2 = Product(sku="SKU-2", name="Toner", category_id=cat.id, unit="件", price=Decimal("77.77"),
                 cost=Decimal("30.00"), active=True, custom={})
    db.session.add_all([p1, p2])
    db.session.flush()
    now = _now()
    customers = {}
    for n, rep in enumerate((rep1, rep2, rep3), start=1):
        customers[rep.id] = Customer(name=f"顾客{n}", phone=f"1390000000{n}", phones=[f"1390000000{n}"],
                                     tier="standard", tags=[], owner_id=rep.id, custom={},
                                     owned_since=now - timedelta(days=2), last_contact_at=now)
    db.session.add_all(customers.values())
    db.session.flush()

    def order(rep: Any, product: Any, qty: int, status: str, number: str) -> Order:
        total = quantize(product.price * qty)
        o = Order(number=number, customer_id=customers[rep.id].id, owner_id=rep.id, status=status,
                  currency="CNY", placed_at=now, custom={}, subtotal=total, total=total,
                  discount_total=Decimal("0.00"))
        o.lines.append(OrderLine(position=0, product_id=product.id, sku=product.sku, name=product.name,
                                 category_id=cat.id, quantity=qty, unit_price=product.price,
                                 unit_cost=product.cost, line_discount=Decimal("0.00"), line_total=total,
                                 is_gift=False))
        for st in ("confirmed", "paid", "shipped", "completed")[:("confirmed", "paid", "shipped",
                                                                  "completed").index(status) + 1] \
                if status != "draft" else ():
            setattr(o, f"{st}_at", now)
        db.session.add(o)
        return o

    order(rep1, p1, 2, "completed", "SO-D-1")   # 246.90
    order(rep1, p2, 1, "paid", "SO-D-2")        # 77.77
    order(rep1, p1, 4, "draft", "SO-D-3")       # 493.80, not a sale
    order(rep2, p1, 3, "shipped", "SO-D-4")     # 370.35
    order(rep3, p2, 5, "completed", "SO-D-5")   # 388.85, another team
    month = current_month().month
    db.session.add_all([Target(period=month, rep_id=rep1.id, revenue=Decimal("1000.00"), orders=4),
                        Target(period=month, team_id=team_a.id, revenue=Decimal("2000.00"))])
    today = today_local()
    db.session.add_all([
        Activity(customer_id=customers[rep1.id].id, assignee_id=rep1.id, type="call", subject="Call back about serum",
                 due_date=today - timedelta(days=1), done=False),
        Activity(customer_id=customers[rep1.id].id, assignee_id=rep1.id, type="call", subject="Done already",
                 due_date=today - timedelta(days=1), done=True),
        Activity(customer_id=customers[rep1.id].id, assignee_id=rep1.id, type="call", subject="Next week",
                 due_date=today + timedelta(days=7), done=False),
        Activity(customer_id=customers[rep2.id].id, assignee_id=rep2.id, type="call", subject="Rep two's call",
                 due_date=today - timedelta(days=1), done=False),
    ])
    # stale customers: rep1's (no contact for 20 days of the 30 before the pool) and rep2's
    stale1 = Customer(name="久未联系", phone="13900000011", phones=["13900000011"], tier="standard", tags=[],
                      owner_id=rep1.id, custom={}, owned_since=now - timedelta(days=60),
                      last_contact_at=now - timedelta(days=20))
    stale2 = Customer(name="另一位", phone="13900000012", phones=["13900000012"], tier="standard", tags=[],
                      owner_id=rep2.id, custom={}, owned_since=now - timedelta(days=60), last_contact_at=None)
    db.session.add_all([stale1, stale2])
    # lost leads: reopening needs the manager role (config/workflows/lead.yaml)
    db.session.add_all([Lead(title="Lost 1", status="lost", owner_id=rep1.id, expected_amount=Decimal("10.00")),
                        Lead(title="Lost 3", status="lost", owner_id=rep3.id, expected_amount=Decimal("20.00")),
                        Lead(title="New 1", status="new", owner_id=rep1.id, expected_amount=Decimal("300.50"))])
    wh = Warehouse(code="WH1", name="Main")
    db.session.add(wh)
    db.session.commit()
    stock.receive(p1.id, wh.id, 3)
    stock.receive(p2.id, wh.id, 10)
    stock.set_reorder_point(p1.id, 5, wh.id)
    stock.set_reorder_point(p2.id, 5, wh.id)
    db.session.commit()
    return {"manager": manager, "rep1": rep1, "rep2": rep2, "rep3": rep3, "admin": admin}


def _today() -> date:
    from plugins.crm.services import today_local

    return today_local()


def _cards(app, user) -> dict[str, dict[str, Any]]:
    from core.dashboard import widgets_for
    from core.db import db
    from core.models import User

    with app.test_request_context("/"):
        return {w["key"]: w for w in widgets_for(db.session.get(User, user.id))}


def _rows(card: dict[str, Any]) -> list[list[str]]:
    return [[str(v) for v in r] for r in card["rows"]]


def test_rep_dashboard(app, org):
    cards = _cards(app, org["rep1"])
    assert {"performance.my_month", "crm.tasks_due", "crm.follow_up"} <= set(cards)
    assert not {"performance.team_month", "performance.team_attainment", "orders.revenue_trend",
                "inventory.stock_alerts", "workflows.approvals"} & set(cards)
    # 246.90 completed + 77.77 paid (the draft does not count) = 324.67 of 1000.00; 2 of 4 orders;
    # 顾客1's first sale ever is this month: one new customer (no target for it)
    assert _rows(cards["performance.my_month"]) == [
        ["Revenue", "324.67", "1000.00", "32.47"], ["Orders", "2", "4", "50.00"],
        ["New customers", "1", "None", "None"]]
    assert _rows(cards["crm.tasks_due"]) == [[str(_today() - timedelta(days=1)), "顾客1", "Call back about serum"]]
    follow = _rows(cards["crm.follow_up"])
    assert [r[0] for r in follow] == ["久未联系"] and follow[0][2] == "10"
    assert cards["performance.my_month"]["link"] == "/performance/"
    assert cards["crm.tasks_due"]["link"] == "/crm/tasks"


def test_manager_dashboard(app, org):
    cards = _cards(app, org["manager"])
    assert {"performance.team_month", "performance.team_attainment", "workflows.approvals", "crm.pipeline",
            "orders.pipeline"} <= set(cards)
    assert "performance.my_month" not in cards and "orders.revenue_trend" not in cards
    # the team's reps only (rep3 is in another team), best first
    assert _rows(cards["performance.team_month"]) == [["Rep Two", "370.35", "None", "None"],
                                                      ["Rep One", "324.67", "1000.00", "32.47"]]
    # team A: 324.67 + 370.35 = 695.02 of 2000.00
    assert _rows(cards["performance.team_attainment"]) == [["Team A", "695.02", "2000.00", "34.75"]]
    # rep1's lost lead may be reopened by the manager; rep3's is outside the team
    assert _rows(cards["workflows.approvals"]) == [["Reopen", "Lost", "1"]]
    pipeline = {r[0]: r[1:] for r in _rows(cards["crm.pipeline"])}
    assert pipeline["New"] == ["1", "300.50"] and pipeline["Lost"] == ["1", "10.00"]
    orders = {r[0]: r[1:] for r in _rows(cards["orders.pipeline"])}
    assert orders["Draft"] == ["1", "493.80"] and orders["Shipped"] == ["1", "370.35"]
    assert orders["Completed"] == ["1", "246.90"] and orders["Paid"] == ["1", "77.77"]


def test_admin_dashboard(app, org):
    cards = _cards(app, org["admin"])
    assert {"orders.revenue_trend", "orders.sales_by_product", "inventory.stock_alerts"} <= set(cards)
    trend = _rows(cards["orders.revenue_trend"])
    assert len(trend) == 30
    # every sale of every team today: 246.90 + 77.77 + 370.35 + 388.85
    assert trend[-1][1:] == ["1083.87", "4"] and all(r[1] == "0.00" for r in trend[:-1])
    products = {r[0]: r for r in _rows(cards["orders.sales_by_product"])}
    assert products["SKU-1"][2:] == ["5", "617.25"] and products["SKU-2"][2:] == ["6", "466.62"]
    assert _rows(cards["inventory.stock_alerts"]) == [["SKU-1", "Serum", "WH1", "3", "5", "2"]]
    assert cards["inventory.stock_alerts"]["link"] == "/inventory/stock?low=1"


def test_a_rep_never_sees_another_reps_figures(app, client, org):
    """The rep's dashboard page, rendered: their own figures, nobody else's."""
    with app.app_context():
        client.get("/login?lang=en")
    with app.app_context():
        assert client.post("/login", data={"username": "rep_one", "password": PASSWORD}).status_code == 302
    with app.app_context():
        html = client.get("/").get_data(as_text=True)
    assert 'id="card-performance-my_month"' in html and "324.67" in html and "久未联系" in html
    for other in ("370.35", "388.85", "1083.87", "695.02", "Rep Two", "Rep Three", "另一位", "Rep two's call"):
        assert other not in html, other
    cards = _cards(app, org["rep2"])
    assert _rows(cards["performance.my_month"])[0][1] == "370.35"
    assert _rows(cards["crm.tasks_due"]) == [[str(_today() - timedelta(days=1)), "顾客2", "Rep two's call"]]
    assert [r[0] for r in _rows(cards["crm.follow_up"])] == ["另一位"]


def test_dashboard_is_chinese_for_each_role(app, client, org):
    """Card titles, headers and label cells in zh_CN, and each card links to its page."""
    for name in ("rep_one", "mgr", "boss"):
        client = app.test_client()
        with app.app_context():
            client.get("/login?lang=zh_CN")
        with app.app_context():
            client.post("/login", data={"username": name, "password": PASSWORD})
        with app.app_context():
            html = client.get("/").get_data(as_text=True)
        titles = re.findall(r'<section class="card dashboard-card"[^>]*><h2><a href="[^"]+">([^<]+)</a>', html)
        assert titles, name
        for title in titles:
            assert not re.search(r"[A-Za-z]{4,}", title), (name, title)
