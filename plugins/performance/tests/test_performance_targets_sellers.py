"""Targets (API, web form, CSV/XLSX import with a row-level report), seller profiles, team
managers, and the commission rules file checks."""

from __future__ import annotations

import io

import pytest


def test_targets_api_scope_and_upsert(org):
    mgr, url = org.api["manager1"], "/api/v1/performance/targets"
    r = mgr.put(url, json={"period": "2026-01", "rep_id": org.rep1.id, "revenue": "50000.00", "orders": 40})
    assert r.status_code == 201 and r.json["revenue"] == "50000.00" and r.json["new_customers"] is None
    r = mgr.put(url, json={"period": "2026-01", "rep_id": org.rep1.id, "new_customers": 8})
    assert r.status_code == 200 and (r.json["revenue"], r.json["orders"], r.json["new_customers"]) == (
        "50000.00", 40, 8)
    r = mgr.put(url, json={"period": "2026-01", "rep_id": org.rep1.id, "orders": None})
    assert r.json["orders"] is None
    assert mgr.put(url, json={"period": "2026-01", "team_id": org.east.id, "revenue": "120000"}).status_code == 201
    # another team's rep or team reads as unknown; reps cannot set targets at all
    r = mgr.put(url, json={"period": "2026-01", "rep_id": org.rep3.id, "revenue": "1"})
    assert r.status_code == 422 and "rep_id" in r.json["error"]["fields"]
    r = mgr.put(url, json={"period": "2026-01", "team_id": org.south.id, "revenue": "1"})
    assert r.status_code == 422 and "team_id" in r.json["error"]["fields"]
    assert org.api["rep1"].put(url, json={"period": "2026-01", "rep_id": org.rep1.id, "revenue": "1"}
                               ).status_code == 403
    for body, field in (({"period": "2026-1", "rep_id": org.rep1.id}, "period"),
                        ({"period": "2026-01", "rep_id": org.rep1.id, "team_id": org.east.id}, "rep_id"),
                        ({"period": "2026-01"}, "rep_id"),
                        ({"period": "2026-01", "rep_id": org.rep1.id, "revenue": "1.005"}, "revenue"),
                        ({"period": "2026-01", "rep_id": org.rep1.id, "revenue": "-1"}, "revenue"),
                        ({"period": "2026-01", "rep_id": org.rep1.id, "revenue": "NaN"}, "revenue"),
                        ({"period": "2026-01", "rep_id": org.rep1.id, "orders": 1.5}, "orders"),
                        ({"period": "2026-01", "rep_id": org.rep1.id, "colour": "red"}, "colour")):
        r = mgr.put(url, json=body)
        assert r.status_code == 422 and field in r.json["error"]["fields"], (body, r.json)
    org.admin.put(url, json={"period": "2026-01", "rep_id": org.rep3.id, "revenue": "7"})
    seen = lambda api: {(t["rep"], t["team"]) for t in api.get(url).json["items"]}  # noqa: E731
    assert seen(org.api["rep1"]) == {("rep1", None), (None, "East")}
    assert seen(org.api["rep2"]) == {(None, "East")}
    assert seen(mgr) == {("rep1", None), (None, "East")}
    assert seen(org.admin) == {("rep1", None), (None, "East"), ("rep3", None)}
    rep3_target = next(t for t in org.admin.get(url).json["items"] if t["rep"] == "rep3")
    assert mgr.get(f"{url}/{rep3_target['id']}").status_code == 404
    assert mgr.delete(f"{url}/{rep3_target['id']}").status_code == 404
    assert org.admin.delete(f"{url}/{rep3_target['id']}").status_code == 204


CSV = """period,rep,team,revenue,orders,new_customers,notes
2026-01,rep1,,"50,000.00",40,8,春节
2026-01,,East,120000,,,
2026-02,rep2,,30000.5,,,
2026-13,rep1,,1,,,
2026-01,ghost,,1,,,
2026-01,rep1,East,1,,,
2026-03,rep1,,1.005,,,
2026-03,rep2,,,,,
2026-03,rep2,,,-3,,
2026-01,rep1,,2,,,
2026-03,rep3,,100,,,
"""


def test_import_targets_with_a_row_level_report(org, runner, tmp_path):
    path = tmp_path / "targets.csv"
    path.write_text(CSV, encoding="utf-8")
    errors_file = tmp_path / "errors.csv"
    res = runner.invoke(["import", "targets", str(path), "--errors", str(errors_file)])
    assert res.exit_code == 2, res.output
    assert "Imported targets.csv, 11 rows read: 4 created, 0 updated, 0 unchanged, 7 rejected." in res.output
    for expected in ("line 5, column period: A month like 2026-01.", "line 6, column rep: No user 'ghost'.",
                     "line 7, column rep: Give a rep (username) or a team (name), not both.",
                     "line 8, column revenue: At most 2 decimal places (fen).",
                     "line 9, column revenue: The row sets no target",
                     "line 10, column orders: A whole number of at least 0.",
                     "line 11, column rep: Same rep and period as line 2."):
        assert expected in res.output, expected
    assert errors_file.read_text(encoding="utf-8-sig").splitlines()[0] == "line,column,reason"
    t = org.admin.get(f"/api/v1/performance/targets?period=2026-01&rep_id={org.rep1.id}").json["items"][0]
    assert (t["revenue"], t["orders"], t["new_customers"], t["notes"]) == ("50000.00", 40, 8, "春节")
    res = runner.invoke(["import", "targets", str(path)])
    assert "0 created, 0 updated, 4 unchanged, 7 rejected." in res.output


def test_import_targets_api_and_xlsx_are_scoped(org, tmp_path):
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["Period", "Rep", "Revenue"])
    ws.append(["2026-04", "rep1", 1000])
    ws.append(["2026-04", "rep3", 2000])  # another team: unknown to manager1
    buf = io.BytesIO()
    wb.save(buf)
    r = org.api["manager1"].client.post(
        "/api/v1/performance/targets/import", data={"file": (io.BytesIO(buf.getvalue()), "t.xlsx")},
        headers={"Authorization": f"Bearer {org.api['manager1'].token}"}, content_type="multipart/form-data")
    assert r.status_code == 200, r.json
    assert r.json["counts"] == {"created": 1, "updated": 0, "unchanged": 0, "rejected": 1}
    assert r.json["errors"] == [{"line": 3, "column": "rep", "reason": "No user 'rep3'."}]
    r = org.api["manager1"].client.post(
        "/api/v1/performance/targets/import", data={"file": (io.BytesIO(b"x"), "t.pdf")},
        headers={"Authorization": f"Bearer {org.api['manager1'].token}"}, content_type="multipart/form-data")
    assert r.status_code == 422 and "file" in r.json["error"]["fields"]
    r = org.api["rep1"].client.post("/api/v1/performance/targets/import",
                                    headers={"Authorization": f"Bearer {org.api['rep1'].token}"})
    assert r.status_code == 403


def test_sellers_and_team_managers(org):
    admin, url = org.admin, "/api/v1/performance/sellers"
    r = admin.post(url, json={"user_id": org.rep1.id, "certificate_no": "ZX-0001", "joined_on": "2025-03-01"})
    assert r.status_code == 201 and r.json["status"] == "active" and r.json["certificate_no"] == "ZX-0001"
    sid = r.json["id"]
    assert admin.post(url, json={"user_id": org.rep1.id}).status_code == 409
    r = admin.post(url, json={"user_id": org.rep2.id, "certificate_no": "ZX-0001"})
    assert r.status_code == 409 and "certificate_no" in r.json["error"]["fields"]
    assert admin.post(url, json={"user_id": 99999}).status_code == 422
    assert admin.post(url, json={"user_id": org.rep2.id, "status": "retired"}).status_code == 422
    r = admin.patch(f"{url}/{sid}", json={"status": "suspended"})
    assert r.status_code == 200 and r.json["status"] == "suspended" and r.json["status_changed_at"]
    admin.post(url, json={"user_id": org.rep3.id, "certificate_no": "ZX-0003"})
    assert {s["username"] for s in org.api["manager1"].get(url).json["items"]} == {"rep1"}
    assert org.api["manager1"].post(url, json={"user_id": org.rep2.id}).status_code == 403
    assert org.api["rep1"].get(url).status_code == 403
    assert admin.get(url + "?q=ZX-0003").json["items"][0]["username"] == "rep3"
    # team managers: core teams' manager_id, a member of the team
    r = admin.put(f"/api/v1/performance/teams/{org.east.id}/manager", json={"manager_id": org.manager2.id})
    assert r.status_code == 422 and "manager_id" in r.json["error"]["fields"]
    r = admin.put(f"/api/v1/performance/teams/{org.east.id}/manager", json={"manager_id": org.manager1.id})
    assert r.status_code == 200 and r.json["manager"] == "manager1" and r.json["members"] == 3
    teams = org.api["manager1"].get("/api/v1/performance/teams").json["items"]
    assert [(t["name"], t["manager_id"]) for t in teams] == [("East", org.manager1.id)]
    assert admin.put(f"/api/v1/performance/teams/{org.east.id}/manager", json={"manager_id": None}
                     ).json["manager_id"] is None
    # the seller profile shows on the rep's performance; suspended sellers warn on statements
    me = org.api["rep1"].get("/api/v1/performance/me").json
    assert me["rep"]["seller"]["certificate_no"] == "ZX-0001"


def test_target_and_seller_web_forms(org, client):
    import re

    client.post("/login", data={"username": "manager1", "password": "password123"})
    page = client.get("/performance/targets")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    r = client.post("/performance/targets", data={"csrf_token": token, "period": "2026-05", "rep_id": org.rep2.id,
                                                  "revenue": "8800.00", "orders": "12"}, follow_redirects=True)
    assert r.status_code == 200 and "Target for 2026-05 saved" in r.get_data(as_text=True)
    r = client.post("/performance/targets", data={"csrf_token": token, "period": "2026-05", "rep_id": org.rep3.id,
                                                  "revenue": "1"}, follow_redirects=True)
    assert "No rep with id" in r.get_data(as_text=True)
    t = org.admin.get(f"/api/v1/performance/targets?rep_id={org.rep2.id}").json["items"][0]
    assert (t["revenue"], t["orders"]) == ("8800.00", 12)
    assert client.get("/performance/targets/import").status_code == 200
    for upload in ({}, {"file": (io.BytesIO(b"x"), "t.pdf")}):
        r = client.post("/performance/targets/import", data={"csrf_token": token, **upload},
                        content_type="multipart/form-data")
        assert r.status_code == 422 and "Choose a .csv or .xlsx file." in r.get_data(as_text=True)
    assert client.get("/performance/sellers").status_code == 403  # managers do not manage sellers
    client.post("/logout", data={"csrf_token": token})
    client.post("/login", data={"username": "admin", "password": "password123"})
    page = client.get("/performance/sellers")
    assert page.status_code == 200
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    r = client.post("/performance/sellers", data={"csrf_token": token, "user_id": org.rep1.id,
                                                  "certificate_no": "ZX-9", "status": "active"},
                    follow_redirects=True)
    assert "Seller profile saved." in r.get_data(as_text=True) and "ZX-9" in r.get_data(as_text=True)
    r = client.post(f"/performance/teams/{org.east.id}/manager", data={"csrf_token": token,
                                                                       "manager_id": org.manager1.id},
                    follow_redirects=True)
    assert "Team manager saved." in r.get_data(as_text=True)
    assert client.get("/performance/rules").status_code == 200


RULES_WITH_MISTAKES = """categories:
  Nutrition: {percent: 10}
  Nutrition: {percent: 12}
"""


def test_rules_api_reports_errors_and_cap_warnings(org, category, product, write_rules):
    category("Nutrition")
    cook = category("Cookware")
    product(cook, "40.00", sku="PAN-1")
    fin = org.api["finance"]
    r = fin.get("/api/v1/performance/commission-rules").json
    assert r["ok"] is True and r["rules"] == [] and r["cap"] == "0.30"
    write_rules("categories:\n  Nutrition: {percent: 35}\n  Cookware: {per_unit: 12.01}\ndefault: {percent: 2}\n")
    r = fin.get("/api/v1/performance/commission-rules").json
    assert r["ok"] is True
    assert [(i["line"], i["column"], i["severity"]) for i in r["issues"]] == [(2, 24, "warning"), (3, 24, "warning")]
    assert "Nutrition: 35% is above the commission cap of 30%" in r["issues"][0]["message"]
    assert "PAN-1 at 40.00" in r["issues"][1]["message"]
    assert [x["label"] for x in r["rules"]] == ["Nutrition: 35%", "Cookware: 12.01 per unit"]
    assert r["default"]["label"] == "default: 2%"
    check = lambda text: fin.post("/api/v1/performance/commission-rules/check", json={"text": text}).json  # noqa
    res = check(RULES_WITH_MISTAKES)
    assert res["ok"] is False and res["issues"][0]["text"] == (
        "commission.yaml:3:3: error: duplicate key 'Nutrition' (first defined at line 2)")
    res = check("categories:\n  Nutriton: {percent: 10}\n  Cookware: {percent: -1, colour: red}\nextra: 1\n")
    assert [(i["line"], i["column"]) for i in res["issues"]] == [(3, 23), (3, 27), (4, 1)]
    res = check("categories:\n  Nutriton: {percent: 10}\n")
    assert res["issues"][0]["text"] == ("commission.yaml:2:3: error: no product category named 'Nutriton' in the "
                                        "catalogue (did you mean 'Nutrition'?)")
    assert check("categories: [1, 2\n")["issues"][0]["text"].startswith("commission.yaml:2:1: error: YAML syntax")
    assert check("- just a list\n")["ok"] is False
    assert check("categories:\n  Nutrition: {percent: 10.12345}\n")["issues"][0]["message"].endswith(
        "At most 4 decimal places.")
    assert org.api["rep1"].get("/api/v1/performance/commission-rules").status_code == 403


@pytest.mark.parametrize("dovetail_settings", [{"performance": {"commission_file": "missing.yaml"}}])
def test_missing_rules_file_is_a_warning_and_pays_nothing(org, runner, dovetail_settings):
    res = runner.invoke(["performance", "rules"])
    assert res.exit_code == 0 and "missing.yaml:1:1: warning: file not found" in res.output
