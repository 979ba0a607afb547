"""Order creation, pricing to the fen, idempotency, draft edits, lists and scope."""

from __future__ import annotations

from decimal import Decimal

import pytest


def _create(api, customer, product, qty=2, **extra):
    body = {"customer_id": customer.id, "lines": [{"product_id": product.id, "quantity": qty}], **extra}
    return api.post("/api/v1/orders", json=body, headers=extra.pop("headers", None) or {})


def test_create_prices_lines_from_product_to_the_fen(rep_api, rep, make_customer, make_product):
    c = make_customer(rep)
    p1, p2 = make_product("33.33"), make_product("0.05", cost="0.01")
    r = rep_api.post("/api/v1/orders", json={"customer_id": c.id, "lines": [
        {"product_id": p1.id, "quantity": 3}, {"product_id": p2.id, "quantity": 7}]})
    assert r.status_code == 201, r.json
    o = r.json
    assert o["number"].startswith("SO-") and len(o["number"]) == len("SO-2026-000001")
    assert o["status"] == "draft" and o["currency"] == "CNY" and o["owner_id"] == rep.id
    assert [ln["line_total"] for ln in o["lines"]] == ["99.99", "0.35"]
    assert (o["subtotal"], o["discount_total"], o["total"]) == ("100.34", "0.00", "100.34")
    # the unit price is a copy: changing the product later does not touch the order
    from core.db import db

    p1.price = Decimal("50.00")
    db.session.commit()
    again = rep_api.get(f"/api/v1/orders/{o['id']}").json
    assert again["lines"][0]["unit_price"] == "33.33" and again["total"] == "100.34"


def test_numbers_are_sequential_per_year(rep_api, rep, make_customer, make_product):
    c, p = make_customer(rep), make_product()
    nums = [_create(rep_api, c, p).json["number"] for _ in range(3)]
    seqs = [int(n.rsplit("-", 1)[1]) for n in nums]
    assert seqs == [seqs[0], seqs[0] + 1, seqs[0] + 2]


def test_field_errors_never_500(rep_api, rep, make_customer, make_product):
    c, p = make_customer(rep), make_product()
    inactive = make_product(active=False)
    r = rep_api.post("/api/v1/orders", json={"customer_id": c.id, "lines": []})
    assert r.status_code == 422 and "lines" in r.json["error"]["fields"]
    r = rep_api.post("/api/v1/orders", json={"customer_id": c.id, "lines": [{"product_id": p.id, "quantity": 0}]})
    assert r.status_code == 422 and "quantity" in r.json["error"]["fields"]["lines"]["0"]
    r = rep_api.post("/api/v1/orders", json={"customer_id": c.id, "lines": [{"product_id": 99999, "quantity": 1}]})
    assert r.status_code == 422
    assert r.json["error"]["fields"]["lines"]["0"]["product_id"] == ["No product with id 99999."]
    r = rep_api.post("/api/v1/orders", json={"customer_id": c.id,
                                             "lines": [{"product_id": inactive.id, "quantity": 1}]})
    assert r.status_code == 422 and "inactive" in r.json["error"]["fields"]["lines"]["0"]["product_id"][0]
    r = rep_api.post("/api/v1/orders", json={"customer_id": "x", "lines": [{"product_id": p.id, "quantity": 1}]})
    assert r.status_code == 422 and "customer_id" in r.json["error"]["fields"]
    r = rep_api.post("/api/v1/orders", data="not json", headers={"Content-Type": "application/json"})
    assert r.status_code in (400, 422)


def test_rep_cannot_order_for_another_reps_customer_or_as_another_owner(api_client, make_user, make_customer,
                                                                         make_product):
    a, b = make_user("repa", role="rep"), make_user("repb", role="rep")
    api_a = api_client(a)
    p = make_product()
    theirs = make_customer(b)
    r = _create(api_a, theirs, p)
    assert r.status_code == 422 and r.json["error"]["fields"]["customer_id"]
    mine = make_customer(a)
    r = _create(api_a, mine, p, owner_id=b.id)
    assert r.status_code == 403


def test_idempotency_key_replays_and_conflicts(rep_api, rep, make_customer, make_product):
    c, p = make_customer(rep), make_product()
    body = {"customer_id": c.id, "lines": [{"product_id": p.id, "quantity": 1}]}
    h = {"Idempotency-Key": "k-123"}
    first = rep_api.post("/api/v1/orders", json=body, headers=h)
    second = rep_api.post("/api/v1/orders", json=body, headers=h)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json["id"] == second.json["id"]
    other = rep_api.post("/api/v1/orders", json={**body, "lines": [{"product_id": p.id, "quantity": 2}]},
                         headers=h)
    assert other.status_code == 409 and first.json["number"] in other.json["error"]["message"]
    assert rep_api.get("/api/v1/orders").json["total"] == 1


def test_patch_draft_reprices_and_delete(admin_api, make_user, make_customer, make_product):
    c, p, q = make_customer(), make_product("10.00"), make_product("2.50")
    o = _create(admin_api, c, p, qty=1).json
    r = admin_api.patch(f"/api/v1/orders/{o['id']}", json={"lines": [{"product_id": q.id, "quantity": 3}]})
    assert r.status_code == 200 and r.json["total"] == "7.50" and len(r.json["lines"]) == 1
    r = admin_api.patch(f"/api/v1/orders/{o['id']}", json={"status": "paid"})
    assert r.status_code == 422
    admin_api.post(f"/api/v1/orders/{o['id']}/transitions", json={"transition": "confirm"})
    r = admin_api.patch(f"/api/v1/orders/{o['id']}", json={"lines": [{"product_id": q.id, "quantity": 1}]})
    assert r.status_code == 409
    assert admin_api.delete(f"/api/v1/orders/{o['id']}").status_code == 409
    d = _create(admin_api, c, p).json
    assert admin_api.delete(f"/api/v1/orders/{d['id']}").status_code == 204
    assert admin_api.get(f"/api/v1/orders/{d['id']}").status_code == 404


def test_list_filters_and_sort_whitelist(admin_api, make_customer, make_product):
    c1, c2, p = make_customer(), make_customer(), make_product()
    for c in (c1, c1, c2):
        _create(admin_api, c, p)
    r = admin_api.get(f"/api/v1/orders?customer_id={c1.id}")
    assert r.json["total"] == 2 and set(r.json) == {"items", "page", "per_page", "total"}
    assert admin_api.get("/api/v1/orders?status=confirmed").json["total"] == 0
    assert admin_api.get("/api/v1/orders?date_from=2000-01-01&date_to=2999-01-01").json["total"] == 3
    assert admin_api.get("/api/v1/orders?date_to=2000-01-01").json["total"] == 0
    assert admin_api.get("/api/v1/orders?sort=-total").status_code == 200
    assert admin_api.get("/api/v1/orders?sort=customer_id").status_code == 422
    assert admin_api.get("/api/v1/orders?date_from=yesterday").status_code == 422
    r = admin_api.get("/api/v1/orders?custom.x=1")
    assert r.status_code == 422


def test_rep_scope_404_everywhere(api_client, make_user, make_customer, make_product):
    a, b = make_user("repa", role="rep"), make_user("repb", role="rep")
    api_a, api_b = api_client(a), api_client(b)
    p = make_product()
    o = _create(api_b, make_customer(b), p).json
    assert api_a.get("/api/v1/orders").json["total"] == 0
    for method, url, body in [("get", f"/api/v1/orders/{o['id']}", None),
                              ("patch", f"/api/v1/orders/{o['id']}", {"notes": "x"}),
                              ("get", f"/api/v1/orders/{o['id']}/transitions", None),
                              ("post", f"/api/v1/orders/{o['id']}/transitions", {"transition": "confirm"}),
                              ("get", f"/api/v1/orders/{o['id']}/history", None)]:
        r = getattr(api_a, method)(url, **({"json": body} if body else {}))
        assert r.status_code == 404, (method, url, r.json)
    # delete: reps lack orders.order.delete (403); a manager of another team gets 404
    assert api_a.delete(f"/api/v1/orders/{o['id']}").status_code in (403, 404)
    assert api_b.get(f"/api/v1/orders/{o['id']}").status_code == 200
    assert api_b.get("/api/v1/orders").json["total"] == 1


def test_customer_names_masked_without_read_personal(api_client, make_user, make_customer, make_product,
                                                     admin_api):
    c, p = make_customer(name="欧阳娜娜"), make_product()
    _create(admin_api, c, p)
    assert admin_api.get("/api/v1/orders").json["items"][0]["customer_name"] == "欧阳娜娜"
    mk = api_client(make_user("mkt", role="marketing"))
    item = mk.get("/api/v1/orders").json["items"][0]
    assert item["customer_name"] != "欧阳娜娜" and item["customer_name"].startswith("欧")
    assert "*" in mk.get(f"/api/v1/orders/{item['id']}").json["customer_name"]


def test_quote_writes_nothing(rep_api, rep, make_customer, make_product):
    c, p = make_customer(rep), make_product("19.99")
    r = rep_api.post("/api/v1/orders/quote", json={"customer_id": c.id,
                                                   "lines": [{"product_id": p.id, "quantity": 3}]})
    assert r.status_code == 200, r.json
    assert r.json["total"] == "59.97" and r.json["considered"] == [] and r.json["lines"][0]["line_total"] == "59.97"
    assert rep_api.get("/api/v1/orders").json["total"] == 0
    assert rep_api.post("/api/v1/orders/quote", json={"lines": [{"product_id": p.id, "quantity": 1}]}).json[
        "total"] == "19.99"


def test_api_export_is_scoped_and_masks_phones(api_client, make_user, make_team, make_customer, make_product,
                                               admin_api):
    team = make_team("North")
    mgr = make_user("mgr", role="manager", team=team)
    p = make_product("1.00")
    _create(admin_api, make_customer(phone="13900001111"), p)           # admin's order: outside the team
    _create(admin_api, make_customer(mgr, phone="13900002222"), p, owner_id=mgr.id)
    r = api_client(mgr).get("/api/v1/orders/export")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    lines = r.data.decode("utf-8-sig").splitlines()
    assert len(lines) == 2 and "13900002222" in lines[1]
    full = admin_api.get("/api/v1/orders/export?format=xlsx")
    assert full.status_code == 200 and full.data[:2] == b"PK"
    mk = api_client(make_user("mk", role=["marketing"]))
    assert mk.get("/api/v1/orders/export").status_code == 403
    assert api_client(make_user("rep7", role="rep")).get("/api/v1/orders/export").status_code == 403


class TestExportMasking:
    @pytest.fixture
    def dovetail_config_dir(self, dovetail_config_dir):
        import yaml

        path = dovetail_config_dir / "roles.yaml"
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        doc["roles"]["clerk"] = {"label": {"en": "Clerk"}, "scope": "all",
                                 "permissions": ["orders.order.read", "orders.order.export"]}
        path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
        return dovetail_config_dir

    def test_clerk_without_personal_right_sees_masked_phone_and_name(self, api_client, make_user, make_customer,
                                                                     make_product, admin_api):
        _create(admin_api, make_customer(phone="13900003333", name="赵敏"), make_product())
        clerk = api_client(make_user("clerk1", role="clerk"))
        text = clerk.get("/api/v1/orders/export").data.decode("utf-8-sig")
        assert "139****3333" in text and "13900003333" not in text
        assert clerk.get("/api/v1/orders").json["items"][0]["customer_name"] == "赵*"


def test_customer_names_go_through_core_scope_and_unmasked_reads_are_logged(app, api_client, make_user,
                                                                             make_customer, make_product,
                                                                             admin_api):
    """Orders asks core.scope to mask crm's declared field; a reader with the right is logged."""
    from pathlib import Path

    from sqlalchemy import select

    from core.db import db
    from core.models import PersonalAccess

    mgr = make_user("mgr2", role="manager")
    c, p = make_customer(mgr, name="欧阳娜娜"), make_product()
    oid = _create(admin_api, c, p, owner_id=mgr.id).json["id"]
    assert api_client(mgr).get(f"/api/v1/orders/{oid}").json["customer_name"] == "欧阳娜娜"
    logs = db.session.scalars(select(PersonalAccess).where(PersonalAccess.user_id == mgr.id)).all()
    assert any(c.id in log.entity_ids and log.entity == "crm_customer" for log in logs)
    mk = make_user("mkt2", role="marketing")
    assert api_client(mk).get(f"/api/v1/orders/{oid}").json["customer_name"] == "欧***"
    assert not db.session.scalars(select(PersonalAccess).where(PersonalAccess.user_id == mk.id)).all()
    source = "".join(f.read_text(encoding="utf-8") for f in Path(__file__).parents[1].glob("*.py"))
    assert "crm.customer.read_personal" not in source and "mask_value" not in source
