"""Record scope (own / team / all) on every crm endpoint, and personal-data masking."""

import csv
import io

import pytest


@pytest.fixture
def two(org, new_customer):
    """A customer of rep1 (with a contact, an activity, a lead) and one of rep3."""
    mine = new_customer(org.rep1, name="张伟", phone="13812345678", email="zw@example.cn",
                        address="上海市浦东新区世纪大道100号", tags=["vip"])
    org.rep1.post(f"/api/v1/customers/{mine['id']}/contacts", json={"name": "张太太", "phone": "13912345678"})
    act = org.rep1.post(f"/api/v1/customers/{mine['id']}/activities",
                        json={"subject": "回访", "due_date": "2030-01-01"}).json
    lead = org.rep1.post("/api/v1/leads", json={"title": "团购", "customer_id": mine["id"]}).json
    other = new_customer(org.rep3, name="王芳", phone="13812345678")
    return {"mine": mine, "other": other, "activity": act, "lead": lead}


def test_rep_gets_404_for_another_reps_customer_everywhere(app, org, two):
    cid, aid, lid = two["mine"]["id"], two["activity"]["id"], two["lead"]["id"]
    rep3 = org.rep3
    for method, url, body in [
            ("get", f"/api/v1/customers/{cid}", None),
            ("patch", f"/api/v1/customers/{cid}", {"name": "x"}),
            ("get", f"/api/v1/customers/{cid}/contacts", None),
            ("post", f"/api/v1/customers/{cid}/contacts", {"name": "x"}),
            ("get", f"/api/v1/customers/{cid}/activities", None),
            ("post", f"/api/v1/customers/{cid}/activities", {"subject": "x"}),
            ("get", f"/api/v1/customers/{cid}/purchases", None),
            ("post", f"/api/v1/customers/{cid}/release", {}),
            ("get", f"/api/v1/activities/{aid}", None),
            ("patch", f"/api/v1/activities/{aid}", {"done": True}),
            ("delete", f"/api/v1/activities/{aid}", None),
            ("get", f"/api/v1/leads/{lid}", None),
            ("patch", f"/api/v1/leads/{lid}", {"title": "x"}),
            ("get", f"/api/v1/leads/{lid}/transitions", None),
            ("post", f"/api/v1/leads/{lid}/transitions", {"transition": "contact"}),
            ("get", f"/api/v1/leads/{lid}/history", None),
            ("delete", f"/api/v1/leads/{lid}", None)]:
        r = getattr(rep3, method)(url, json=body) if body is not None else getattr(rep3, method)(url)
        assert r.status_code == 404, (method, url, r.status_code, r.json)
        assert r.json["error"]["code"] == "not_found"
    # a rep may not delete at all (403 before scope); the admin sees everything
    assert rep3.delete(f"/api/v1/customers/{cid}").status_code == 403
    assert org.admin.get(f"/api/v1/customers/{cid}").status_code == 200
    # rep3 cannot lead-link or merge rep1's customer either
    r = rep3.post("/api/v1/leads", json={"title": "x", "customer_id": cid})
    assert r.status_code == 404


def test_lists_show_only_own_team_or_all(app, org, two, new_customer):
    new_customer(org.rep2, name="李娜", phone="13700000000")

    def names(client, url="/api/v1/customers"):
        return sorted(i["name"] for i in client.get(url).json["items"])

    assert names(org.rep1) == ["张伟"]
    assert names(org.rep3) == ["王芳"]
    assert names(org.manager1) == ["张伟", "李娜"]
    assert names(org.admin) == ["张伟", "李娜", "王芳"]
    assert [i["title"] for i in org.rep3.get("/api/v1/leads").json["items"]] == []
    assert org.rep3.get("/api/v1/activities/due?date=2030-01-01").json["total"] == 0
    assert org.rep1.get("/api/v1/activities/due?date=2030-01-01").json["total"] == 1


def test_duplicates_only_within_scope(app, org, two):
    # rep1's and rep3's customers share a phone, but neither rep sees the other's
    assert org.rep1.get("/api/v1/customers/duplicates").json["total"] == 0
    assert org.rep3.get("/api/v1/customers/duplicates").json["total"] == 0
    r = org.admin.get("/api/v1/customers/duplicates")
    assert r.json["total"] == 1
    assert r.json["items"][0]["customer_ids"] == sorted([two["mine"]["id"], two["other"]["id"]])
    r = org.rep3.post("/api/v1/customers/merge", json={"survivor_id": two["other"]["id"],
                                                       "merged_ids": [two["mine"]["id"]]})
    assert r.status_code == 403  # reps lack crm.customer.merge
    r = org.manager1.post("/api/v1/customers/merge", json={"survivor_id": two["mine"]["id"],
                                                           "merged_ids": [two["other"]["id"]]})
    assert r.status_code == 404  # rep3 is not in manager1's team


def test_segment_customers_and_exports_respect_scope(app, org, two):
    seg = org.manager1.post("/api/v1/segments", json={"name": "all", "filters": {}}).json
    assert seg["customer_count"] == 1  # manager1's team has one customer
    r = org.rep3.get(f"/api/v1/segments/{seg['id']}/customers")
    assert [i["name"] for i in r.json["items"]] == ["王芳"]
    assert org.rep1.get("/api/v1/customers/export").status_code == 403  # reps have no export right
    r = org.manager1.get("/api/v1/customers/export")
    assert r.status_code == 200
    rows = list(csv.DictReader(io.StringIO(r.get_data(as_text=True).lstrip("\ufeff"))))
    assert [row["name"] for row in rows] == ["张伟"]


def test_masking_in_lists_details_exports(app, org, two):
    cid = two["mine"]["id"]
    for client in (org.marketer, org.analyst):
        items = client.get("/api/v1/customers").json["items"]
        mine = next(i for i in items if i["id"] == cid)
        assert mine["phone"] == "+86 138****5678"
        assert mine["phones"] == ["+86 138****5678"]
        assert mine["name"] == "张*"
        assert mine["email"] == "z***@example.cn"
        assert mine["address"] == "上海市浦东新****"
        detail = client.get(f"/api/v1/customers/{cid}").json
        assert detail["phone"] == "+86 138****5678" and detail["name"] == "张*"
    contacts = org.marketer.get(f"/api/v1/customers/{cid}/contacts")
    assert contacts.status_code == 200 and contacts.json["items"][0]["phone"] == "+86 139****5678"
    r = org.analyst.get("/api/v1/customers/export")
    rows = list(csv.DictReader(io.StringIO(r.get_data(as_text=True).lstrip("\ufeff"))))
    row = next(x for x in rows if x["id"] == str(cid))
    assert row["phone"] == "'+86 138****5678" and row["name"] == "张*" and row["email"] == "z***@example.cn"
    assert "13812345678" not in r.get_data(as_text=True)
    # reps have the right: they see their own customers unmasked, and the read is logged
    assert org.rep1.get(f"/api/v1/customers/{cid}").json["phone"] == "+8613812345678"
    from sqlalchemy import select

    from core.db import db
    from core.models import PersonalAccess

    logs = db.session.scalars(select(PersonalAccess).where(PersonalAccess.user_id == org.users["rep1"].id)).all()
    assert any(cid in log.entity_ids and log.entity == "crm_customer" for log in logs)


def test_unauthenticated_and_missing_permission(app, client, org):
    assert client.get("/api/v1/customers").status_code == 401
    r = org.marketer.post("/api/v1/customers", json={"name": "x"})
    assert r.status_code == 403 and "crm.customer.create" in r.json["error"]["message"]
