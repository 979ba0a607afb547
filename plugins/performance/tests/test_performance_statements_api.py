"""Commission statements through the API, CLI and web: generation, scope (own / team / all),
workflow (approve, pay, history), export traceable to order lines, the full order lifecycle."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from decimal import Decimal

import pytest

JAN = datetime(2026, 1, 15, 4)
FEB = datetime(2026, 2, 12, 4)


@pytest.fixture
def jan(org, category, product, sale, write_rules):
    """January sales of rep1 and rep2 (team East) and rep3 (team South) at 10 %."""
    cat = category("Nutrition")
    write_rules("categories:\n  Nutrition: {percent: 10}\n")
    p = product(cat, "100.00")
    return {"rep1": sale(org.rep1, [(p, 3)], completed=JAN), "rep2": sale(org.rep2, [(p, 5)], completed=JAN),
            "rep3": sale(org.rep3, [(p, 7)], completed=JAN), "product": p}


def _generate(api, period="2026-01", **kw):
    return api.post("/api/v1/performance/statements/generate", json={"period": period, **kw})


def _ids(resp):
    return {s["rep"]: s["id"] for s in resp.json["items"]}


def test_generate_list_and_scope(org, jan):
    assert _generate(org.api["rep1"]).status_code == 403
    assert _generate(org.api["manager1"]).status_code == 403
    r = _generate(org.api["finance"])
    assert r.status_code == 200, r.json
    assert {s["rep"]: s["total"] for s in r.json["generated"]} == {"rep1": "30.00", "rep2": "50.00", "rep3": "70.00"}
    everything = _ids(org.api["finance"].get("/api/v1/performance/statements?period=2026-01"))
    assert set(everything) == {"rep1", "rep2", "rep3"}
    # rep: own only; manager: the team's; another team's statement is 404 (never 403: no existence leak)
    assert set(_ids(org.api["rep1"].get("/api/v1/performance/statements"))) == {"rep1"}
    assert set(_ids(org.api["manager1"].get("/api/v1/performance/statements"))) == {"rep1", "rep2"}
    assert set(_ids(org.api["manager2"].get("/api/v1/performance/statements"))) == {"rep3"}
    for who, other in (("rep1", "rep2"), ("rep1", "rep3"), ("manager1", "rep3")):
        for suffix in ("", "/export", "/transitions", "/history"):
            r = org.api[who].get(f"/api/v1/performance/statements/{everything[other]}{suffix}")
            assert r.status_code == 404, (who, other, suffix, r.status_code)
            assert set(r.json["error"]) == {"code", "message", "fields"}
    mine = org.api["rep1"].get(f"/api/v1/performance/statements/{everything['rep1']}").json
    assert mine["total"] == "30.00" and mine["lines"][0]["order_id"] == jan["rep1"].id
    assert mine["lines"][0]["order_line_id"] == jan["rep1"].lines[0].id
    assert mine["lines"][0]["base_amount"] == "300.00" and mine["lines"][0]["rule"] == "Nutrition: 10%"
    # a rep filtering by another rep's id still sees nothing
    assert org.api["rep1"].get(f"/api/v1/performance/statements?rep_id={org.rep2.id}").json["total"] == 0


def test_bad_input_is_a_field_error(org, jan):
    fin = org.api["finance"]
    for body, field in (({"period": "2026-13"}, "period"), ({}, "period"), ({"period": "2026-01", "x": 1}, "x"),
                        ({"period": "2026-01", "rep_id": "abc"}, "rep_id")):
        r = fin.post("/api/v1/performance/statements/generate", json=body)
        assert r.status_code == 422 and field in r.json["error"]["fields"], (body, r.json)
    assert fin.get("/api/v1/performance/statements?period=January").status_code == 422
    assert fin.get("/api/v1/performance/statements?sort=rep_id; drop").status_code == 422
    assert fin.get("/api/v1/performance/statements/export?format=pdf").status_code == 422
    assert _generate(fin, rep_id=999999).status_code == 404


def test_workflow_approve_pay_history(org, jan):
    _generate(org.api["finance"])
    ids = _ids(org.api["finance"].get("/api/v1/performance/statements"))
    rep_api, mgr = org.api["rep1"], org.api["manager1"]
    avail = {t["key"]: t for t in rep_api.get(f"/api/v1/performance/statements/{ids['rep1']}/transitions")
             .json["items"]}
    assert avail["approve"]["allowed"] is False and "performance.statement.approve" in avail["approve"]["reason"]
    assert rep_api.post(f"/api/v1/performance/statements/{ids['rep1']}/transitions",
                        json={"transition": "approve"}).status_code == 403
    # the manager approves a team member's statement, not another team's
    assert mgr.post(f"/api/v1/performance/statements/{ids['rep3']}/transitions",
                    json={"transition": "approve"}).status_code == 404
    r = mgr.post(f"/api/v1/performance/statements/{ids['rep1']}/transitions", json={"transition": "approve"})
    assert r.status_code == 200 and r.json["statement"]["status"] == "approved"
    assert r.json["statement"]["approved_by_id"] == org.manager1.id
    # managers do not pay; finance does, with a reference
    r = mgr.post(f"/api/v1/performance/statements/{ids['rep1']}/transitions", json={"transition": "pay"})
    assert r.status_code == 403
    r = org.api["finance"].post(f"/api/v1/performance/statements/{ids['rep1']}/transitions",
                                json={"transition": "pay", "inputs": {"reference": "CMB-2026-0001"}})
    assert r.status_code == 200 and r.json["statement"]["payment_reference"] == "CMB-2026-0001"
    assert r.json["statement"]["paid_at"]
    r = org.api["finance"].post(f"/api/v1/performance/statements/{ids['rep1']}/transitions",
                                json={"transition": "pay"})
    assert r.status_code == 409
    hist = rep_api.get(f"/api/v1/performance/statements/{ids['rep1']}/history").json["items"]
    assert [(h["from"], h["to"], h["actor"]) for h in hist] == [("draft", "approved", "manager1"),
                                                                 ("approved", "paid", "finance")]
    # a paid statement is never regenerated
    r = _generate(org.api["finance"])
    assert {s["rep_id"] for s in r.json["skipped"]} == {org.rep1.id}
    assert org.api["finance"].post(f"/api/v1/performance/statements/{ids['rep1']}/transitions",
                                   json={"transition": "fly"}).status_code == 404


def test_export_csv_and_xlsx_trace_every_line(org, jan, sale):
    _generate(org.api["finance"])
    r = org.api["finance"].get("/api/v1/performance/statements/export?period=2026-01&format=csv")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(r.data.decode("utf-8-sig"))))
    assert {(row["rep"], row["order_number"], row["order_line_id"], row["base_amount"], row["amount"])
            for row in rows} == {
        ("rep1", jan["rep1"].number, str(jan["rep1"].lines[0].id), "300.00", "30.00"),
        ("rep2", jan["rep2"].number, str(jan["rep2"].lines[0].id), "500.00", "50.00"),
        ("rep3", jan["rep3"].number, str(jan["rep3"].lines[0].id), "700.00", "70.00")}
    assert all(row["kind"] == "sale" and row["completed_on"] == "2026-01-15" for row in rows)
    # a rep exports only their own
    r = org.api["rep1"].get("/api/v1/performance/statements/export?format=csv")
    assert {row["rep"] for row in csv.DictReader(io.StringIO(r.data.decode("utf-8-sig")))} == {"rep1"}
    ids = _ids(org.api["finance"].get("/api/v1/performance/statements"))
    r = org.api["finance"].get(f"/api/v1/performance/statements/{ids['rep2']}/export?format=xlsx")
    from openpyxl import load_workbook

    ws = load_workbook(io.BytesIO(r.data)).worksheets[0]
    header = [c.value for c in ws[1]]
    values = dict(zip(header, [c.value for c in ws[2]], strict=True))
    assert values["order_line_id"] == jan["rep2"].lines[0].id and values["amount"] == 50.0


def test_cli_generate_rules_and_export(org, jan, runner, tmp_path, write_rules):
    res = runner.invoke(["performance", "generate", "2026-01", "--rep", "rep1"])
    assert res.exit_code == 0, res.output
    assert "2026-01 rep1: 1 lines, net sales 300.00, commission 30.00 CNY [draft]" in res.output
    assert "1 statement(s) generated" in res.output
    res = runner.invoke(["performance", "generate", "2026-01", "--rep", "nobody"])
    assert res.exit_code == 1 and "No user 'nobody'" in res.output
    res = runner.invoke(["performance", "generate", "26-1"])
    assert res.exit_code == 1 and "period must be a month like 2026-01" in res.output
    out = tmp_path / "c.csv"
    res = runner.invoke(["export", "statements", "--period", "2026-01", "-o", str(out)])
    assert res.exit_code == 0 and "Wrote 1 lines" in res.output
    assert jan["rep1"].number in out.read_text(encoding="utf-8-sig")
    res = runner.invoke(["performance", "rules"])
    assert res.exit_code == 0 and "ok (0 warning(s))" in res.output
    write_rules("categories:\n  Nutrition: {percent: 10, per_unit: 2}\n  Nutriton: {percent: 5}\n")
    res = runner.invoke(["performance", "rules"])
    assert res.exit_code == 1
    assert "commission.yaml:2:14: error: categories.Nutrition: A rule has exactly one of 'percent' or " \
           "'per_unit'." in res.output
    res = runner.invoke(["performance", "generate", "2026-01"])
    assert res.exit_code == 1 and "commission.yaml:2:14: error" in res.output


def test_generate_with_broken_rules_is_a_located_error_not_a_500(org, jan, write_rules):
    write_rules("categories:\n  Nutrition: {percent: ten}\n")
    r = _generate(org.api["finance"])
    assert r.status_code == 400 and r.json["error"]["code"] == "config_error"
    assert "commission.yaml:2:24: error: categories.Nutrition.percent: Not a valid number." in \
        r.json["error"]["message"]


def test_full_lifecycle_through_the_orders_api(org, category, product, customer, write_rules, app):
    """A real order: confirm, pay, ship, complete; statement; approved; a partial return of that
    order is received; the next month's statement claws back exactly that line's commission."""
    from sqlalchemy import update

    from core.db import db
    from plugins.orders.models import Order

    cat = category("Nutrition")
    write_rules("categories:\n  Nutrition: {percent: 10}\n")
    p = product(cat, "88.80")
    cust = customer(org.rep1)
    rep = org.api["rep1"]
    r = rep.post("/api/v1/orders", json={"customer_id": cust.id, "lines": [{"product_id": p.id, "quantity": 3}]})
    assert r.status_code == 201, r.json
    oid, line_id = r.json["id"], r.json["lines"][0]["id"]
    admin = org.admin
    for key, inputs in (("confirm", {}), ("pay", {"method": "alipay"}),
                        ("ship", {"carrier": "SF", "tracking_no": "1"}), ("complete", {})):
        r = admin.post(f"/api/v1/orders/{oid}/transitions", json={"transition": key, "inputs": inputs})
        assert r.status_code == 200, (key, r.json)
    order = db.session.get(Order, oid)
    period = f"{order.completed_at:%Y-%m}"
    # make the completion sit in a closed month so that "next month" exists
    db.session.execute(update(Order).where(Order.id == oid).values(completed_at=JAN))
    db.session.commit()
    r = _generate(org.api["finance"], "2026-01")
    st = r.json["generated"][0]
    assert (st["rep"], st["net_base"], st["total"]) == ("rep1", "266.40", "26.64"), period
    assert org.api["manager1"].post(f"/api/v1/performance/statements/{st['id']}/transitions",
                                    json={"transition": "approve"}).status_code == 200
    r = admin.post("/api/v1/returns", json={"order_id": oid, "lines": [{"order_line_id": line_id, "quantity": 1}],
                                          "reason": "破损"})
    assert r.status_code == 201, r.json
    rid = r.json["id"]
    for key in ("approve", "receive", "refund"):
        r = admin.post(f"/api/v1/returns/{rid}/transitions", json={"transition": key})
        assert r.status_code == 200, (key, r.json)
    r = _generate(org.api["finance"], "2026-02")
    (feb,) = r.json["generated"]
    detail = org.api["rep1"].get(f"/api/v1/performance/statements/{feb['id']}").json
    assert [(ln["kind"], ln["order_line_id"], ln["quantity"], ln["base_amount"], ln["amount"],
             ln["refers_statement_id"]) for ln in detail["lines"]] == [
        ("adjustment", line_id, -1, "-88.80", "-8.88", st["id"])]
    assert detail["total"] == "-8.88"
    jan_again = org.api["rep1"].get(f"/api/v1/performance/statements/{st['id']}").json
    assert jan_again["status"] == "approved" and jan_again["total"] == "26.64"
    assert Decimal(jan_again["total"]) + Decimal(detail["total"]) == Decimal("17.76")  # 10 % of 2 × 88.80


def test_web_pages(org, jan, client):
    client.post("/login", data={"username": "finance", "password": "password123"})
    page = client.get("/performance/statements")
    assert page.status_code == 200 and "Generate statements" in page.get_data(as_text=True)
    token = _csrf(page.get_data(as_text=True))
    r = client.post("/performance/statements/generate", data={"csrf_token": token, "period": "2026-01"},
                    follow_redirects=True)
    assert r.status_code == 200 and "3 statement(s) generated for 2026-01" in r.get_data(as_text=True)
    ids = _ids(org.api["finance"].get("/api/v1/performance/statements"))
    r = client.get(f"/performance/statements/{ids['rep1']}")
    text = r.get_data(as_text=True)
    assert r.status_code == 200 and jan["rep1"].number in text and "30.00" in text and "Mark paid" not in text
    client.post("/logout", data={"csrf_token": _csrf(text)})
    client.post("/login", data={"username": "rep1", "password": "password123"})
    for url in ("/performance/", "/performance/leaderboard", "/performance/targets", "/performance/statements",
                f"/performance/statements/{ids['rep1']}", "/performance/leaderboard?level=team&by=orders",
                "/performance/?period=2026-01", "/performance/?date_from=2026-01-01&date_to=2026-01-20"):
        r = client.get(url)
        assert r.status_code == 200, (url, r.status_code)
    assert client.get(f"/performance/statements/{ids['rep2']}").status_code == 404
    assert client.get("/performance/sellers").status_code == 403
    assert client.get("/performance/?period=nonsense").status_code == 200  # shown as a message


def _csrf(html: str) -> str:
    import re

    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_web_approve_button(org, jan, client):
    _generate(org.api["finance"])
    ids = _ids(org.api["finance"].get("/api/v1/performance/statements"))
    client.post("/login", data={"username": "manager1", "password": "password123"})
    page = client.get(f"/performance/statements/{ids['rep1']}")
    text = page.get_data(as_text=True)
    assert 'value="approve"' in text and 'value="pay"' not in text
    r = client.post(f"/performance/statements/{ids['rep1']}/transition",
                    data={"csrf_token": _csrf(text), "transition": "approve"}, follow_redirects=True)
    assert r.status_code == 200 and "Statement is now Approved." in r.get_data(as_text=True)
    r = client.post(f"/performance/statements/{ids['rep3']}/transition",
                    data={"csrf_token": _csrf(text), "transition": "approve"})
    assert r.status_code == 404
    assert org.api["finance"].get(f"/api/v1/performance/statements/{ids['rep1']}").json["status"] == "approved"
