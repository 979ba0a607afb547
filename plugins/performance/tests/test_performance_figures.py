"""Performance figures, comparisons, leaderboards and their scope."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import text


def at(y, m, d, h=4):
    return datetime(y, m, d, h)


@pytest.fixture
def book(org, category, product, customer, sale, give_back):
    """January 2026 (and some history) for rep1, rep2, rep3; prices in fen-exact amounts."""
    cat = category("Nutrition")
    p = product(cat, "100.00")
    old, new, shared = customer(org.rep1), customer(org.rep1), customer(org.rep2)
    sale(org.rep1, [(p, 1)], placed=at(2025, 12, 5), cust=old)  # December: old is not new in January
    sale(org.rep1, [(p, 2)], placed=at(2025, 1, 20))  # January last year: 200.00
    o = {
        "done": sale(org.rep1, [(p, 3)], placed=at(2026, 1, 5), cust=old),  # 300.00
        "shipped": sale(org.rep1, [(p, 1)], placed=at(2026, 1, 6), status="shipped", cust=new, total="95.50"),
        "paid": sale(org.rep1, [(p, 1, "50.00")], placed=at(2026, 1, 7), status="paid", cust=new),
        "partial": sale(org.rep1, [(p, 5)], placed=at(2026, 1, 8), cust=old),  # 500.00, 2 back → 300.00
        "discounted": sale(org.rep1, [(p, 3)], placed=at(2026, 1, 9), total="270.00"),  # 1 of 3 back: 180.00
        "late_jan": sale(org.rep1, [(p, 1)], placed=datetime(2026, 1, 31, 15, 59)),  # 23:59 local: January
        "feb_local": sale(org.rep1, [(p, 1)], placed=datetime(2026, 1, 31, 16, 0)),  # 00:00 1 Feb local
        "shared_first": sale(org.rep2, [(p, 1)], placed=at(2026, 1, 3), cust=shared),
        "shared_then": sale(org.rep1, [(p, 1)], placed=at(2026, 1, 20), cust=shared),
        "rep3": sale(org.rep3, [(p, 20)], placed=at(2026, 1, 4)),
    }
    for status in ("draft", "confirmed", "cancelled"):
        sale(org.rep1, [(p, 9)], placed=at(2026, 1, 11), status=status)
    gone = sale(org.rep1, [(p, 4)], placed=at(2026, 1, 12))
    give_back(gone, {0: 4}, whole=True)
    give_back(o["partial"], {0: 2})
    give_back(o["discounted"], {0: 1})
    all_back = sale(org.rep1, [(p, 2)], placed=at(2026, 1, 13))  # every unit back by partial returns
    give_back(all_back, {0: 2})
    return o


def test_revenue_definition_and_figures(org, book, api_client):
    r = org.api["rep1"].get("/api/v1/performance/me?period=2026-01")
    assert r.status_code == 200, r.json
    f = r.json["figures"]
    # 300.00 + 95.50 + 50.00 + 300.00 + 180.00 + 100.00 (late_jan) + 100.00 (shared_then)
    assert f["revenue"] == "1125.50"
    assert (f["orders"], f["units"]) == (7, 3 + 1 + 1 + 3 + 2 + 1 + 1)
    # customers: old, new, shared, + one per anonymous order (discounted, late_jan)
    assert f["customers"] == 5
    # new: "new" and the two anonymous customers; not "old" (December), not "shared" (rep2 sold first)
    assert f["new_customers"] == 3
    assert r.json["previous"]["period"]["label"] == "2025-12" and r.json["previous"]["figures"]["revenue"] == "100.00"
    assert r.json["last_year"]["period"]["label"] == "2025-01" and r.json["last_year"]["figures"]["revenue"] == "200.00"
    assert r.json["last_year"]["change"]["revenue"] == {"difference": "925.50", "percent": "462.75"}
    assert r.json["rank"] == {"by": "revenue", "rank": 2, "of": 3}  # rep3 sold 2,000.00
    rep2 = org.api["rep2"].get("/api/v1/performance/me?period=2026-01").json
    assert rep2["figures"]["new_customers"] == 1 and rep2["rank"]["rank"] == 3


def test_revenue_equals_an_independent_sql_aggregate(org, book, app):
    """Paid/shipped/completed totals minus the refunds recorded on them, in plain SQL."""
    from core.db import db
    from plugins.performance.figures import rep_figures
    from plugins.performance.periods import parse_month

    sql = text("""
        SELECT o.owner_id, SUM(o.total - COALESCE(r.refunded, 0))
        FROM orders_order o
        LEFT JOIN (SELECT order_id, SUM(amount) AS refunded FROM orders_payment
                   WHERE kind = 'refund' GROUP BY order_id) r ON r.order_id = o.id
        WHERE o.status IN ('paid', 'shipped', 'completed')
          AND o.placed_at >= :start AND o.placed_at < :end
        GROUP BY o.owner_id""")
    start, end = parse_month("2026-01").utc_bounds()
    expected = {owner: Decimal(str(v)).quantize(Decimal("0.01"))
                for owner, v in db.session.execute(sql, {"start": start, "end": end})}
    got = {k: v.revenue for k, v in rep_figures(parse_month("2026-01")).items()}
    assert got == expected and got[org.rep1.id] == Decimal("1125.50")


def test_leaderboard_and_sales_report_agree_to_the_fen(org, book, app):
    """One revenue definition: the leaderboard's revenue per rep equals the orders plugin's
    sales-by-rep report on the same orders, including partial returns and a refund that is not
    the value of any returned unit (a goodwill refund of 0.37 on a kept order)."""
    from core.db import db, utcnow
    from plugins.orders.models import Payment

    db.session.add(Payment(order=book["done"], kind="refund", amount=Decimal("0.37"), method="cash",
                           paid_at=utcnow()))
    db.session.commit()
    board = org.admin.get("/api/v1/performance/leaderboard?period=2026-01").json["items"]
    leaderboard = {row["username"]: Decimal(row["revenue"]) for row in board}
    report = org.admin.get("/api/v1/reports/orders.sales_by_rep?date_from=2026-01-01&date_to=2026-01-31").json
    sales = {row[0]: Decimal(str(row[1])) for row in report["rows"]}
    assert leaderboard == sales
    assert leaderboard["rep1"] == Decimal("1125.13")  # 1,125.50 less the 0.37 goodwill refund


def test_date_range_and_time_zone(org, book):
    api = org.api["rep1"]
    r = api.get("/api/v1/performance/me?date_from=2026-01-01&date_to=2026-01-07").json
    assert r["figures"]["revenue"] == "445.50" and r["period"]["month"] is None
    assert r["previous"]["period"] == {"label": "2025-12-25..2025-12-31", "month": None,
                                       "date_from": "2025-12-25", "date_to": "2025-12-31"}
    assert r["target"] is None and r["attainment"]["revenue"] is None
    feb = api.get("/api/v1/performance/me?period=2026-02").json
    assert feb["figures"]["revenue"] == "100.00"  # placed 00:00 on 1 February, Shanghai time
    for bad in ("period=2026-1", "date_from=2026-01-05", "date_from=2026-02-01&date_to=2026-01-01",
                "period=2026-01&date_from=2026-01-01&date_to=2026-01-02", "date_from=x&date_to=y"):
        resp = api.get(f"/api/v1/performance/me?{bad}")
        assert resp.status_code == 422 and resp.json["error"]["fields"], bad


def test_rep_and_team_performance_scope(org, book):
    assert org.api["rep1"].get(f"/api/v1/performance/reps/{org.rep2.id}?period=2026-01").status_code == 404
    assert org.api["manager1"].get(f"/api/v1/performance/reps/{org.rep2.id}?period=2026-01").status_code == 200
    assert org.api["manager1"].get(f"/api/v1/performance/reps/{org.rep3.id}").status_code == 404
    assert org.api["manager1"].get(f"/api/v1/performance/teams/{org.south.id}/performance").status_code == 404
    team = org.api["manager1"].get(f"/api/v1/performance/teams/{org.east.id}/performance?period=2026-01").json
    assert team["figures"]["revenue"] == "1225.50"  # rep1 1125.50 + rep2 100.00
    assert team["figures"]["customers"] == 5  # rep1 5 + rep2 1, "shared" counted once for the team
    assert [(m["username"], m["rank"]) for m in team["members"]] == [("rep1", 1), ("rep2", 2), ("manager1", 3)]
    # a rep sees the team's totals but only their own row
    mine = org.api["rep1"].get(f"/api/v1/performance/teams/{org.east.id}/performance?period=2026-01").json
    assert [m["username"] for m in mine["members"]] == ["rep1"] and mine["figures"]["revenue"] == "1225.50"


def test_leaderboard_ranks_everyone_rows_follow_scope(org, book):
    url = "/api/v1/performance/leaderboard?period=2026-01"
    admin = org.admin.get(url).json
    assert [(r["username"], r["rank"], r["revenue"]) for r in admin["items"]] == [
        ("rep3", 1, "2000.00"), ("rep1", 2, "1125.50"), ("rep2", 3, "100.00")]
    assert admin["competitors"] == 3
    assert [(r["username"], r["rank"]) for r in org.api["rep1"].get(url).json["items"]] == [("rep1", 2)]
    assert [r["username"] for r in org.api["manager1"].get(url).json["items"]] == ["rep1", "rep2"]
    by_units = org.admin.get(url + "&by=units").json["items"]
    assert [(r["username"], r["units"]) for r in by_units] == [("rep3", 20), ("rep1", 12), ("rep2", 1)]
    teams = org.admin.get(url + "&level=team").json["items"]
    assert [(t["team"], t["rank"], t["revenue"]) for t in teams] == [("South", 1, "2000.00"), ("East", 2, "1225.50")]
    assert [t["team"] for t in org.api["manager1"].get(url + "&level=team").json["items"]] == ["East"]
    assert org.admin.get(url + "&by=height").status_code == 422
    assert org.api["rep1"].get(url + f"&team_id={org.south.id}").status_code == 404


def test_attainment_and_ranking_by_it(org, book):
    for rep, revenue in ((org.rep1, "1000.00"), (org.rep3, "4000.00")):
        r = org.admin.put("/api/v1/performance/targets", json={"period": "2026-01", "rep_id": rep.id,
                                                                 "revenue": revenue, "orders": 10})
        assert r.status_code == 201, r.json
    me = org.api["rep1"].get("/api/v1/performance/me?period=2026-01").json
    assert me["target"] == {"revenue": "1000.00", "orders": 10, "new_customers": None}
    assert me["attainment"] == {"revenue": "112.55", "orders": "70.00", "new_customers": None}
    board = org.admin.get("/api/v1/performance/leaderboard?period=2026-01&by=attainment").json["items"]
    assert [(r["username"], r["rank"], r["attainment"]) for r in board] == [
        ("rep1", 1, "112.55"), ("rep3", 2, "50.00"), ("rep2", 3, None)]
    # a quarter has a target only when every month has one
    q = org.api["rep1"].get("/api/v1/performance/me?date_from=2026-01-01&date_to=2026-03-31").json
    assert q["target"] is None
    for m in ("2026-02", "2026-03"):
        org.admin.put("/api/v1/performance/targets", json={"period": m, "rep_id": org.rep1.id, "revenue": "500.00"})
    q = org.api["rep1"].get("/api/v1/performance/me?date_from=2026-01-01&date_to=2026-03-31").json
    assert q["target"]["revenue"] == "2000.00" and q["target"]["orders"] is None


def test_team_target_falls_back_to_members(org, book):
    org.admin.put("/api/v1/performance/targets", json={"period": "2026-01", "rep_id": org.rep1.id, "revenue": "900"})
    org.admin.put("/api/v1/performance/targets", json={"period": "2026-01", "rep_id": org.rep2.id, "revenue": "100"})
    url = f"/api/v1/performance/teams/{org.east.id}/performance?period=2026-01"
    team = org.api["manager1"].get(url).json
    assert team["target"]["revenue"] == "1000.00" and team["target_source"] == "members"
    assert team["attainment"]["revenue"] == "122.55"
    org.admin.put("/api/v1/performance/targets", json={"period": "2026-01", "team_id": org.east.id,
                                                       "revenue": "2451.00"})
    team = org.api["manager1"].get(url).json
    assert team["target"]["revenue"] == "2451.00" and team["attainment"]["revenue"] == "50.00"


def test_leaderboard_report_on_the_core_reports_page(org, book):
    r = org.admin.get("/api/v1/reports/performance.rep_leaderboard?period=2026-01")
    assert r.status_code == 200
    assert r.json["rows"][0][:4] == ["rep3", "South", 1, "2000.00"]
    r = org.api["manager1"].get("/api/v1/reports/performance.rep_leaderboard?period=2026-01&format=csv")
    lines = r.data.decode("utf-8-sig").splitlines()
    assert r.status_code == 200 and [ln.split(",")[:3] for ln in lines[1:]] == [["rep1", "East", "2"],
                                                                             ["rep2", "East", "3"]]
