"""Customers: phone normalisation, validation messages, search/filters, update, delete."""

import pytest

from core.errors import ValidationError
from plugins.crm.phone import PHONE_ERROR
from plugins.crm.services import normalise_phone


@pytest.mark.parametrize("raw", ["13800138000", "138 0013 8000", "138-0013-8000", "+86 138 0013 8000",
                                 "+86-13800138000", "0086 13800138000", "8613800138000", "(138)0013.8000",
                                 "１３８００１３８０００"])
def test_normalise_phone_accepts_mainland_mobiles(raw):
    assert normalise_phone(raw) == "+8613800138000"


@pytest.mark.parametrize(("raw", "e164"), [
    ("010-12345678", "+861012345678"),            # Beijing landline with its area code
    ("0755 1234 5678", "+8675512345678"),         # Shenzhen
    ("(021) 6123 4567", "+862161234567"),         # Shanghai
    ("+852 6123 4567", "+85261234567"),           # Hong Kong mobile
    ("+853 6612 3456", "+85366123456"),           # Macao mobile
    ("00886 912 345 678", "+886912345678"),       # Taiwan mobile
    ("+1 650 253 0000", "+16502530000"),          # United States
    ("+44 20 7946 0958", "+442079460958"),        # United Kingdom landline
])
def test_normalise_phone_accepts_landlines_and_foreign_numbers(raw, e164):
    assert normalise_phone(raw) == e164


@pytest.mark.parametrize("raw", ["", "1380013800", "138001380001", "23800138000", "010-1234",
                                 "1380013800x", "+87 13800138000", "+852 123", "0912 345 678", "abc"])
def test_normalise_phone_refuses_the_rest(raw):
    with pytest.raises(ValidationError) as exc:
        normalise_phone(raw)
    assert exc.value.fields == {"phone": [PHONE_ERROR]}


def test_create_normalises_and_owns(app, org):
    r = org.rep1.post("/api/v1/customers", json={
        "name": " 李四 ", "phone": "+86 139-1234-5678", "phones": ["0086 137 0000 0001", "13912345678"],
        "email": " Li.Si@Example.CN ", "tags": ["老客户", "老客户", "复购"], "consent_marketing": True})
    assert r.status_code == 201, r.json
    c = r.json
    assert c["name"] == "李四"
    assert c["phone"] == "+8613912345678"
    assert c["phones"] == ["+8613912345678", "+8613700000001"]
    assert c["email"] == "li.si@example.cn"
    assert c["tags"] == ["老客户", "复购"]
    assert c["owner_id"] == org.users["rep1"].id
    assert c["tier"] == "standard"
    assert c["consent_marketing"] is True and c["consent_at"]
    assert c["total_spent"] == "0.00" and c["order_count"] == 0


def test_invalid_fields_are_field_errors(app, org):
    r = org.rep1.post("/api/v1/customers", json={"name": "", "phone": "12345", "email": "nope",
                                                  "tier": "diamond", "phones": ["1", "13800138000"]})
    assert r.status_code == 422
    fields = r.json["error"]["fields"]
    assert fields["phone"] == [PHONE_ERROR]
    assert "email" in fields and "name" in fields
    assert "phones" in fields
    r = org.rep1.post("/api/v1/customers", json={"name": "王五", "tier": "diamond"})
    assert r.status_code == 422
    assert r.json["error"]["fields"]["tier"] == ["Must be one of: standard, silver, gold, vip."]
    r = org.rep1.post("/api/v1/customers", json={"name": "王五", "custom": {"wechat_id": "x"}})
    assert r.status_code == 422
    assert r.json["error"]["fields"] == {"custom": {"wechat_id": ["Unknown field."]}}


def test_list_search_filters_and_sort(app, org, new_customer):
    a = new_customer(org.rep1, name="张伟", phone="13800000001", region="上海", tier="gold", tags=["复购"])
    b = new_customer(org.rep1, name="王芳", phone="13800000002", region="广东", tier="standard",
                     tags=["团购", "复购"], email="wf@example.cn")
    new_customer(org.rep1, name="李娜", phone="13900000003", region="上海", tags=[])

    def names(query):
        r = org.rep1.get(f"/api/v1/customers?{query}")
        assert r.status_code == 200, r.json
        return sorted(i["name"] for i in r.json["items"])

    assert names("q=张") == ["张伟"]
    assert names("q=0000002") == ["王芳"]
    assert names("q=WF@EXAMPLE") == ["王芳"]
    assert names("region=上海") == ["张伟", "李娜"]
    assert names("tier=gold") == ["张伟"]
    assert names("tag=复购") == ["张伟", "王芳"]
    assert names("tag=团购") == ["王芳"]
    assert names(f"owner_id={org.users['rep1'].id}") == ["张伟", "李娜", "王芳"]
    assert names("q=%25") == []  # LIKE metacharacters are literal
    r = org.rep1.get("/api/v1/customers?sort=-name&per_page=2")
    assert r.json["total"] == 3 and len(r.json["items"]) == 2 and r.json["per_page"] == 2
    r = org.rep1.get("/api/v1/customers?sort=phone")
    assert r.status_code == 422 and "sort" in r.json["error"]["fields"]
    assert {a["id"], b["id"]} <= {i["id"] for i in org.rep1.get("/api/v1/customers").json["items"]}


def test_patch_consent_and_phone(app, org, new_customer):
    c = new_customer(org.rep1, phones=["13700000001"])
    r = org.rep1.patch(f"/api/v1/customers/{c['id']}", json={"consent_marketing": True, "tier": "vip",
                                                              "phone": "139 0000 0000"})
    assert r.status_code == 200, r.json
    assert r.json["consent_marketing"] is True and r.json["consent_at"]
    assert r.json["tier"] == "vip"
    assert r.json["phone"] == "+8613900000000"
    assert r.json["phones"] == ["+8613900000000", "+8613700000001"]  # the old primary is replaced
    r = org.rep1.patch(f"/api/v1/customers/{c['id']}", json={"phone": "abc"})
    assert r.status_code == 422 and r.json["error"]["fields"]["phone"] == [PHONE_ERROR]


def test_rep_cannot_give_customer_away_manager_can_within_team(app, org, new_customer):
    c = new_customer(org.rep1)
    r = org.rep1.patch(f"/api/v1/customers/{c['id']}", json={"owner_id": org.users["rep2"].id})
    assert r.status_code == 403
    r = org.manager1.patch(f"/api/v1/customers/{c['id']}", json={"owner_id": org.users["rep3"].id})
    assert r.status_code == 422 and r.json["error"]["fields"]["owner_id"] == ["Not in your team."]
    r = org.manager1.patch(f"/api/v1/customers/{c['id']}", json={"owner_id": org.users["rep2"].id})
    assert r.status_code == 200 and r.json["owner_id"] == org.users["rep2"].id
    assert org.rep1.get(f"/api/v1/customers/{c['id']}").status_code == 404
    assert org.rep2.get(f"/api/v1/customers/{c['id']}").status_code == 200


def test_external_code_unique(app, org, new_customer):
    new_customer(org.rep1, external_code="K-1")
    r = org.rep1.post("/api/v1/customers", json={"name": "x", "external_code": "K-1"})
    assert r.status_code == 409
    assert r.json["error"]["fields"] == {"external_code": ["Already used."]}


def test_delete_needs_permission_and_cascades(app, org, new_customer):
    c = new_customer(org.rep1)
    org.rep1.post(f"/api/v1/customers/{c['id']}/contacts", json={"name": "家属"})
    assert org.rep1.delete(f"/api/v1/customers/{c['id']}").status_code == 403  # reps may not delete
    assert org.manager1.delete(f"/api/v1/customers/{c['id']}").status_code == 204
    assert org.admin.get(f"/api/v1/customers/{c['id']}").status_code == 404


def test_changes_are_audited_without_personal_values(app, org, new_customer):
    from sqlalchemy import select

    from core.db import db
    from core.models import AuditEntry

    c = new_customer(org.rep1, email="a@b.cn")
    org.rep1.patch(f"/api/v1/customers/{c['id']}", json={"region": "北京", "phone": "13900000000"})
    rows = db.session.scalars(select(AuditEntry).where(AuditEntry.entity == "crm_customer",
                                                       AuditEntry.entity_id == str(c["id"]))
                              .order_by(AuditEntry.id)).all()
    assert [r.action for r in rows] == ["create", "update"]
    assert rows[0].after["phone"] == "<personal>" and rows[0].actor == "rep1"
    assert rows[1].after["region"] == "北京" and rows[1].after["phone"] == "<personal>"


def test_contacts_crud(app, org, new_customer):
    c = new_customer(org.rep1)
    r = org.rep1.post(f"/api/v1/customers/{c['id']}/contacts",
                      json={"name": "王小明", "phone": "+86 138 1111 2222", "is_primary": True})
    assert r.status_code == 201 and r.json["phone"] == "+8613811112222"
    first = r.json["id"]
    r = org.rep1.post(f"/api/v1/customers/{c['id']}/contacts", json={"name": "王大明", "is_primary": True})
    second = r.json["id"]
    r = org.rep1.get(f"/api/v1/customers/{c['id']}/contacts")
    assert [(i["id"], i["is_primary"]) for i in r.json["items"]] == [(second, True), (first, False)]
    r = org.rep1.patch(f"/api/v1/customers/{c['id']}/contacts/{first}", json={"phone": "bad"})
    assert r.status_code == 422 and r.json["error"]["fields"]["phone"] == [PHONE_ERROR]
    assert org.rep1.delete(f"/api/v1/customers/{c['id']}/contacts/{first}").status_code == 204
    assert org.rep1.delete(f"/api/v1/customers/{c['id']}/contacts/{first}").status_code == 404


def test_openapi_lists_crm_paths(app, client):
    spec = client.get("/api/v1/openapi.json").json
    for path in ("/api/v1/customers", "/api/v1/customers/duplicates", "/api/v1/customers/merge",
                 "/api/v1/customers/pool", "/api/v1/customers/pool/claim", "/api/v1/segments",
                 "/api/v1/activities/due", "/api/v1/leads/{lead_id}/transitions"):
        assert path in spec["paths"], path


def test_every_kind_of_number_is_stored_e164_searched_by_digits_and_masked(app, org, new_customer):
    """Landline, HK and foreign numbers: stored in E.164, found by any written form or by digits,
    masked for roles without the personal-data right (country code and last 4 digits kept)."""
    from sqlalchemy import select

    from core.db import db
    from plugins.crm.models import Customer

    bj = new_customer(org.rep1, name="北京座机", phone="010-8765 4321")
    hk = new_customer(org.rep1, name="香港", phone="+852 6123 4567")
    us = new_customer(org.rep1, name="美国", phone="001 650 253 0000")
    db.session.add(Customer(name="旧号码", phone="13911112222", phones=["13911112222"],
                            owner_id=org.users["rep1"].id))  # a row stored before E.164
    db.session.commit()
    assert (bj["phone"], hk["phone"], us["phone"]) == ("+861087654321", "+85261234567", "+16502530000")

    def names(q):
        return sorted(i["name"] for i in org.rep1.get("/api/v1/customers", query_string={"q": q}).json["items"])

    assert names("(010) 87654321") == ["北京座机"] and names("+86 10 8765 4321") == ["北京座机"]
    assert names("4321") == ["北京座机"] and names("6123 4567") == ["香港"]
    assert names("+1-650-253-0000") == ["美国"]
    assert names("+86 139 1111 2222") == ["旧号码"] and names("13911112222") == ["旧号码"]
    old = db.session.scalar(select(Customer.id).where(Customer.name == "旧号码"))
    masked = {i["id"]: i["phone"] for i in org.marketer.get("/api/v1/customers").json["items"]}
    assert masked[bj["id"]] == "+86 108****4321" and masked[hk["id"]] == "+852 ****4567"
    assert masked[us["id"]] == "+1 650****0000" and masked[old] == "139****2222"
    assert org.rep1.get(f"/api/v1/customers/{hk['id']}").json["phone"] == "+85261234567"
