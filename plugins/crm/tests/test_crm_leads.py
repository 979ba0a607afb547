"""Leads through the built-in lead workflow (core.statemachine), with the workflows
plugin disabled."""

from sqlalchemy import select

from core.db import db
from core.models import AuditEntry, TransitionLog
from plugins.crm.models import Activity, Customer


def _keys(client, lead_id):
    r = client.get(f"/api/v1/leads/{lead_id}/transitions")
    assert r.status_code == 200, r.json
    return {t["key"]: t for t in r.json}


def test_lead_lifecycle_to_won_creates_customer(app, org):
    r = org.rep1.post("/api/v1/leads", json={"title": "某公司年会礼品", "contact_name": "赵六",
                                              "phone": "+86 136 0000 0001", "source": "展会"})
    assert r.status_code == 201, r.json
    lead = r.json
    assert lead["status"] == "new" and lead["owner_id"] == org.users["rep1"].id
    assert lead["phone"] == "+8613600000001"
    assert set(_keys(org.rep1, lead["id"])) == {"contact", "lose"}

    r = org.rep1.post(f"/api/v1/leads/{lead['id']}/transitions", json={"transition": "contact"})
    assert r.status_code == 200 and r.json["status"] == "contacted"
    t = _keys(org.rep1, lead["id"])["qualify"]
    assert t["allowed"] is False and t["reason"] == "Estimate the expected amount before qualifying the lead."
    r = org.rep1.post(f"/api/v1/leads/{lead['id']}/transitions", json={"transition": "qualify"})
    assert r.status_code == 409 and "expected amount" in r.json["error"]["message"]
    assert org.rep1.patch(f"/api/v1/leads/{lead['id']}", json={"expected_amount": "12000.00"}).status_code == 200
    r = org.rep1.post(f"/api/v1/leads/{lead['id']}/transitions", json={"transition": "qualify"})
    assert r.status_code == 200 and r.json["status"] == "qualified"
    r = org.rep1.post(f"/api/v1/leads/{lead['id']}/transitions", json={"transition": "win", "comment": "签约"})
    assert r.status_code == 200 and r.json["status"] == "won"
    cid = r.json["customer_id"]
    c = db.session.get(Customer, cid)
    assert (c.name, c.phone, c.owner_id, c.source) == ("赵六", "+8613600000001", org.users["rep1"].id, "展会")
    hist = org.rep1.get(f"/api/v1/leads/{lead['id']}/history").json
    assert [(h["from_state"], h["to_state"]) for h in hist] == [
        ("new", "contacted"), ("contacted", "qualified"), ("qualified", "won")]
    assert hist[-1]["comment"] == "签约" and hist[-1]["actor_id"] == org.users["rep1"].id
    assert _keys(org.rep1, lead["id"]) == {}
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "transition",
                                                      AuditEntry.entity == "lead")) is not None


def test_won_lead_links_existing_customer_by_phone(app, org, new_customer):
    c = new_customer(org.rep1, phone="13600000001")
    lead = org.rep1.post("/api/v1/leads", json={"title": "复购", "phone": "13600000001",
                                                "expected_amount": "10"}).json
    for key in ("contact", "qualify", "win"):
        assert org.rep1.post(f"/api/v1/leads/{lead['id']}/transitions", json={"transition": key}).status_code == 200
    assert org.rep1.get(f"/api/v1/leads/{lead['id']}").json["customer_id"] == c["id"]
    # qualify ran crm.create_task: a follow-up call for the customer, due tomorrow
    task = db.session.scalar(select(Activity).where(Activity.customer_id == c["id"]))
    assert task is not None and task.done is False and task.assignee_id == org.users["rep1"].id


def test_lose_needs_comment_and_reopen_is_for_managers(app, org):
    lead = org.rep1.post("/api/v1/leads", json={"title": "x"}).json
    r = org.rep1.post(f"/api/v1/leads/{lead['id']}/transitions", json={"transition": "lose"})
    assert r.status_code == 422 and r.json["error"]["fields"] == {"comment": ["Required for this transition."]}
    r = org.rep1.post(f"/api/v1/leads/{lead['id']}/transitions", json={"transition": "lose", "comment": "预算不足"})
    assert r.status_code == 200 and r.json["status"] == "lost"
    t = _keys(org.rep1, lead["id"])["reopen"]
    assert t["allowed"] is False and "manager" in t["reason"]
    r = org.rep1.post(f"/api/v1/leads/{lead['id']}/transitions", json={"transition": "reopen"})
    assert r.status_code == 403
    r = org.manager1.post(f"/api/v1/leads/{lead['id']}/transitions", json={"transition": "reopen"})
    assert r.status_code == 200 and r.json["status"] == "new"
    r = org.manager1.post(f"/api/v1/leads/{lead['id']}/transitions", json={"transition": "fly"})
    assert r.status_code == 404
    r = org.manager1.post(f"/api/v1/leads/{lead['id']}/transitions", json={"transition": "win"})
    assert r.status_code == 409
    assert db.session.query(TransitionLog).filter_by(entity="lead").count() == 2


def test_lead_validation_and_status_is_read_only(app, org):
    r = org.rep1.post("/api/v1/leads", json={"title": "", "phone": "123", "expected_amount": "-5"})
    assert r.status_code == 422
    assert set(r.json["error"]["fields"]) == {"title", "phone", "expected_amount"}
    lead = org.rep1.post("/api/v1/leads", json={"title": "x"}).json
    r = org.rep1.patch(f"/api/v1/leads/{lead['id']}", json={"status": "won"})
    assert r.status_code == 422 and "status" in r.json["error"]["fields"]
    assert org.analyst.get("/api/v1/leads").status_code == 403
    r = org.rep1.get("/api/v1/leads?status=new&q=X")
    assert [i["id"] for i in r.json["items"]] == [lead["id"]]


def test_qualify_never_links_a_customer_the_rep_cannot_see(app, org, new_customer):
    other = new_customer(org.rep3, phone="13600000001")
    lead = org.rep1.post("/api/v1/leads", json={"title": "x", "contact_name": "钱七", "phone": "13600000001",
                                                "expected_amount": "10"}).json
    for key in ("contact", "qualify"):
        assert org.rep1.post(f"/api/v1/leads/{lead['id']}/transitions", json={"transition": key}).status_code == 200
    cid = org.rep1.get(f"/api/v1/leads/{lead['id']}").json["customer_id"]
    assert cid != other["id"]
    assert org.rep1.get(f"/api/v1/customers/{cid}").json["name"] == "钱七"
