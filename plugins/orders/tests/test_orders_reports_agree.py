"""Reports that agree (issue 10, acceptance 2): every sales report's totals equal an SQL
aggregate written here independently of the report code (plain SQL text over the tables),
to the fen, and campaign effectiveness counts the same orders and revenue as the sales
reports. Runs on SQLite and, with DOVETAIL_TEST_DATABASE_URL, on PostgreSQL."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import text

STATES = "('paid', 'shipped', 'completed')"
REVENUE_SQL = f"""
SELECT COALESCE(SUM(o.total), 0) - COALESCE((SELECT SUM(p.amount) FROM orders_payment p
       JOIN orders_order o2 ON o2.id = p.order_id
       WHERE p.kind = 'refund' AND o2.status IN {STATES}), 0),
       COUNT(*) FROM orders_order o WHERE o.status IN {STATES}"""
LINES_SQL = f"""
SELECT COALESCE(SUM(l.line_total), 0), COALESCE(SUM(l.unit_cost * l.quantity), 0), COALESCE(SUM(l.quantity), 0)
FROM orders_line l JOIN orders_order o ON o.id = l.order_id WHERE o.status IN {STATES}"""


@pytest.fixture
def dovetail_plugins():
    return ["crm", "catalog", "orders", "marketing"]


def fen(v) -> Decimal:
    return Decimal(str(v)).quantize(Decimal("0.01"))


@pytest.fixture
def sales(app, make_user, make_product, make_customer):
    """Eleven orders in every state, a partial refund and a campaign promoting six of them."""
    from core.db import db
    from plugins.marketing.models import Campaign
    from plugins.orders.models import Order, OrderAdjustment, OrderLine, Payment

    boss = make_user("boss", role="admin")
    rep = make_user("rep7", role="rep")
    p1, p2 = make_product("129.90", "70.15"), make_product("88.88", "41.07", category="Makeup")
    c1, c2 = make_customer(rep, region="华东"), make_customer(rep, region="华南", phone="13900000002")
    camp = Campaign(name="Spring", channel="online", status="active", budget=Decimal("500.00"),
                    starts_on=datetime(2026, 3, 1).date(), ends_on=datetime(2026, 3, 31).date())
    db.session.add(camp)
    db.session.flush()
    states = ["draft", "confirmed", "paid", "shipped", "completed", "cancelled", "returned",
              "paid", "completed", "shipped", "completed"]
    for i, status in enumerate(states):
        # 15:30 UTC on 31 March is 1 April in Shanghai: day and month buckets are local
        placed = datetime(2026, 3, 10 + 2 * i, 15, 30) if i < 10 else datetime(2026, 3, 31, 16, 30)
        qty1, qty2 = 1 + i % 3, 2 - i % 2
        t1, t2 = p1.price * qty1, p2.price * qty2
        discount = Decimal("10.01") if i % 2 else Decimal(0)
        o = Order(number=f"SO-T-{i:03d}", customer_id=(c1 if i % 2 else c2).id, owner_id=rep.id,
                  status=status, currency="CNY", subtotal=t1 + t2, discount_total=discount,
                  total=t1 + t2 - discount, placed_at=placed, custom={})
        o.lines = [OrderLine(position=0, product_id=p1.id, sku=p1.sku, name=p1.name, category_id=p1.category_id,
                             quantity=qty1, unit_price=p1.price, unit_cost=p1.cost, line_total=t1),
                   OrderLine(position=1, product_id=p2.id, sku=p2.sku, name=p2.name, category_id=p2.category_id,
                             quantity=qty2, unit_price=p2.price, unit_cost=p2.cost, line_total=t2)]
        db.session.add(o)
        db.session.flush()
        if i % 2 or i == 6:
            db.session.add(OrderAdjustment(order_id=o.id, campaign_id=camp.id, code="marketing.percent",
                                           label="Spring", amount=discount))
        if i == 4:  # a partial return refunded on a completed order
            db.session.add(Payment(order_id=o.id, kind="refund", amount=Decimal("44.44"), method="other",
                                   paid_at=placed))
    db.session.commit()
    return boss, camp


def run(key, user, **params):
    from core.reports import run_report

    _r, columns, rows = run_report(key, params, user)
    return columns, rows


def col(columns, rows, name):
    i = columns.index(name)
    return [r[i] for r in rows]


def test_every_sales_report_equals_an_independent_sql_aggregate(app, sales):
    from core.db import db

    boss, _camp = sales
    revenue, orders = db.session.execute(text(REVENUE_SQL)).one()
    line_revenue, cost, units = db.session.execute(text(LINES_SQL)).one()
    revenue, line_revenue, cost = fen(revenue), fen(line_revenue), fen(cost)
    assert orders == 7 and revenue > 0

    for key in ("orders.sales_by_day", "orders.sales_by_rep", "orders.sales_by_region",
                "orders.revenue_per_customer"):
        columns, rows = run(key, boss)
        assert sum(col(columns, rows, "revenue"), Decimal(0)) == revenue, key
        if "orders" in columns:
            assert sum(col(columns, rows, "orders")) == orders, key
    for group in ("week", "month"):
        columns, rows = run("orders.sales_by_day", boss, group=group)
        assert sum(col(columns, rows, "revenue"), Decimal(0)) == revenue
    for key in ("orders.sales_by_product", "orders.sales_by_category"):
        columns, rows = run(key, boss)
        assert sum(col(columns, rows, "revenue"), Decimal(0)) == line_revenue, key
        assert sum(col(columns, rows, "quantity")) == units, key
    columns, rows = run("orders.profit", boss)
    assert sum(col(columns, rows, "revenue"), Decimal(0)) == line_revenue
    assert sum(col(columns, rows, "cost"), Decimal(0)) == cost
    assert sum(col(columns, rows, "profit"), Decimal(0)) == line_revenue - cost
    columns, rows = run("orders.customer_analysis", boss, date_to="2026-04-30")
    assert sum(col(columns, rows, "revenue"), Decimal(0)) == revenue
    columns, rows = run("orders.period_comparison", boss, date_from="2026-03-01", date_to="2026-04-30")
    assert rows[0][3] == revenue and rows[0][4] == orders


def test_days_and_months_are_local_and_counted_in_sql(app, sales):
    from core.db import db

    boss, _camp = sales
    columns, rows = run("orders.sales_by_day", boss, group="month")
    months = dict(zip(col(columns, rows, "month"), col(columns, rows, "revenue"), strict=True))
    # the order placed 31 March 16:30 UTC is an April sale in Asia/Shanghai (UTC+8)
    april = db.session.execute(text(
        f"SELECT o.total FROM orders_order o WHERE o.number = 'SO-T-010' AND o.status IN {STATES}")).scalar()
    assert months["2026-04"] == fen(april)
    columns, rows = run("orders.sales_by_day", boss)
    days = col(columns, rows, "day")
    assert days == sorted(days) and "2026-04-01" in days and "2026-03-31" not in days


def test_campaign_effectiveness_and_sales_reports_agree_on_the_same_orders(app, sales):
    from core.db import db
    from plugins.marketing.services import effectiveness

    boss, camp = sales
    e = effectiveness(camp, boss)
    promoted = text("""SELECT o.id FROM orders_order o WHERE o.id IN
        (SELECT a.order_id FROM orders_adjustment a WHERE a.campaign_id = :c)""")
    ids = [r[0] for r in db.session.execute(promoted, {"c": camp.id})]
    both_orders = int(e["orders"]) + int(e["other_orders"])
    both_revenue = fen(e["revenue"]) + fen(e["other_revenue"])
    # the same orders of March (local) in the sales report: campaign dates are local days
    columns, rows = run("orders.sales_by_day", boss, date_from="2026-03-01", date_to="2026-03-31")
    assert both_revenue == sum(col(columns, rows, "revenue"), Decimal(0))
    assert both_orders == sum(col(columns, rows, "orders"))
    assert len(ids) == 6 and int(e["orders"]) < len(ids)  # drafts / returned promoted orders are not sales


def test_the_sales_by_day_card_shows_the_latest_days_with_chart_data(app, sales, monkeypatch):
    import json

    from core import dashboard

    boss, _camp = sales
    monkeypatch.setattr(dashboard, "CARD_ROWS", 3)
    _columns, rows = run("orders.sales_by_day", boss)
    with app.test_request_context("/"):  # titles are translated for the request's locale
        cards = {c["key"]: c for c in dashboard.widgets_for(boss)}
    card = cards["orders.sales_by_day"]
    assert len(rows) > 3 and card["rows"] == [list(r) for r in rows[-3:]]  # latest, not oldest
    assert card["rows"][-1][0] == "2026-04-01"
    chart = json.loads(card["chart"])
    assert chart["labels"] == [r[0] for r in rows[-3:]]
    assert chart["series"][0]["values"] == [str(r[1]) for r in rows[-3:]]


def test_dashboard_cards_follow_the_users_scope(app, sales, make_user):
    from core import dashboard

    boss, _camp = sales
    manager = make_user("lead8", role="manager")
    with app.test_request_context("/"):
        owner_cards = {c["key"] for c in dashboard.widgets_for(boss)}
        team_cards = {c["key"] for c in dashboard.widgets_for(manager)}
    assert {"orders.sales_by_day", "orders.sales_by_rep", "orders.sales_by_product"} <= owner_cards
    assert {"orders.sales_by_day", "orders.sales_by_rep"} <= team_cards  # the team's, by scope
    assert "orders.sales_by_product" not in team_cards  # an owner's card
