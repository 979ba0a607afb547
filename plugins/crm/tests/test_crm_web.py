"""Web pages: they render, validate forms with field messages, and respect scope/masking."""


from core.db import db
from plugins.crm.models import Activity, Customer, Lead, Segment


def test_pages_render_for_a_rep(app, org, web_login, new_customer):
    c = new_customer(org.rep1, name="张伟", phone="13812345678")
    org.rep1.post(f"/api/v1/customers/{c['id']}/activities", json={"subject": "今天回电", "due_date": "2000-01-01"})
    lead = org.rep1.post("/api/v1/leads", json={"title": "团购意向"}).json
    web = web_login(username="rep1")
    for url, text in [("/crm/customers", "张伟"), (f"/crm/customers/{c['id']}", "13812345678"),
                      ("/crm/customers/new", "Name"), (f"/crm/customers/{c['id']}/edit", "张伟"),
                      ("/crm/tasks", "今天回电"), ("/crm/pool", "Customer pool"), ("/crm/segments", "Segments"),
                      ("/crm/leads", "团购意向"), (f"/crm/leads/{lead['id']}", "Mark contacted"),
                      ("/crm/duplicates", "duplicates")]:
        r = web.get(url)
        assert r.status_code == 200, (url, r.status_code)
        assert text in r.get_data(as_text=True), url
    menu = web.get("/crm/customers").get_data(as_text=True)
    for label in ("Customers", "My tasks", "Customer pool", "Segments", "Leads"):
        assert label in menu


def test_other_reps_records_are_404_on_pages(app, org, web_login, new_customer):
    c = new_customer(org.rep1)
    web = web_login(username="rep3")
    assert web.get(f"/crm/customers/{c['id']}").status_code == 404
    assert web.get(f"/crm/customers/{c['id']}/edit").status_code == 404
    assert c["name"] not in web.get("/crm/customers").get_data(as_text=True)
    assert web_login(username="marketer").get("/crm/pool").status_code == 403


def test_masked_on_pages_without_the_right(app, org, web_login, new_customer):
    c = new_customer(org.rep1, phone="13812345678")
    html = web_login(username="analyst").get(f"/crm/customers/{c['id']}").get_data(as_text=True)
    assert "138****5678" in html and "13812345678" not in html


def test_customer_form_validation_and_save(app, org, web_login):
    web = web_login(username="rep1")
    r = web.post("/crm/customers/new", data={"name": "王芳", "phone": "12345", "email": "nope", "tier": "standard"})
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert "Not a valid phone number" in html and "Not a valid email address." in html
    assert db.session.query(Customer).count() == 0
    r = web.post("/crm/customers/new", data={"name": "王芳", "phone": "138 0000 0001", "tier": "gold",
                                              "tags": "复购, 团购"})
    assert r.status_code == 302
    c = db.session.query(Customer).one()
    assert (c.phone, c.tier, c.tags, c.owner_id) == ("+8613800000001", "gold", ["复购", "团购"], org.users["rep1"].id)


def test_activity_task_and_pool_forms(app, org, web_login, new_customer):
    c = new_customer(org.rep1)
    web = web_login(username="rep1")
    r = web.post(f"/crm/customers/{c['id']}/activities", data={"type": "call", "subject": "回访",
                                                               "due_date": "2000-01-02"})
    assert r.status_code == 302
    act = db.session.query(Activity).one()
    assert act.done is False
    r = web.post(f"/crm/activities/{act.id}/done", data={"outcome": "已接通", "next_step": "寄样品",
                                                         "next_due_date": "2000-01-05"})
    assert r.status_code == 302
    db.session.expire_all()
    assert db.session.get(Activity, act.id).done is True
    assert db.session.query(Activity).filter_by(done=False).one().subject == "寄样品"
    r = web.post(f"/crm/customers/{c['id']}/release", data={"reason": "不再跟进"})
    assert r.status_code == 302
    db.session.expire_all()
    assert db.session.get(Customer, c["id"]).owner_id is None
    r = web_login(username="rep2").post("/crm/pool/claim", data={"customer_id": [str(c["id"])]})
    assert r.status_code == 302
    db.session.expire_all()
    assert db.session.get(Customer, c["id"]).owner_id == org.users["rep2"].id


def test_segment_and_lead_forms(app, org, web_login):
    web = web_login(username="manager1")
    r = web.post("/crm/segments", data={"name": "高价值", "min_spend": "5000", "max_spend": "100"})
    assert r.status_code == 422 and "Must not be below min_spend." in r.get_data(as_text=True)
    r = web.post("/crm/segments", data={"name": "高价值", "min_spend": "5000", "tier": "gold, vip"})
    assert r.status_code == 302
    seg = db.session.query(Segment).one()
    assert seg.filters == {"min_spend": "5000.00", "tier": ["gold", "vip"]}
    assert web.get(f"/crm/segments/{seg.id}").status_code == 200
    r = web.post("/crm/leads", data={"title": "", "phone": "1"})
    assert r.status_code == 422
    r = web.post("/crm/leads", data={"title": "年会礼品", "phone": "13600000001", "expected_amount": "100"})
    assert r.status_code == 302
    lead = db.session.query(Lead).one()
    r = web.post(f"/crm/leads/{lead.id}/transition", data={"transition": "lose"})
    assert r.status_code == 302
    db.session.expire_all()
    assert db.session.get(Lead, lead.id).status == "new"  # comment required: refused, flashed
    web.post(f"/crm/leads/{lead.id}/transition", data={"transition": "contact"})
    db.session.expire_all()
    assert db.session.get(Lead, lead.id).status == "contacted"


def test_merge_page(app, org, web_login, new_customer):
    a = new_customer(org.rep1, name="甲", phone="13800000001")
    b = new_customer(org.rep1, name="乙", phone="13800000001")
    web = web_login(username="manager1")
    html = web.get("/crm/duplicates").get_data(as_text=True)
    assert "甲" in html and "乙" in html
    r = web.post("/crm/merge", data={"survivor_id": str(a["id"]), "merged_id": [str(b["id"])]})
    assert r.status_code == 302
    assert db.session.get(Customer, b["id"]) is None


def test_web_export_uses_the_session_and_scope(app, org, web_login, new_customer):
    new_customer(org.rep1, name="甲", phone="13800000001")
    new_customer(org.rep3, name="乙", phone="13800000002")
    web = web_login(username="manager1")
    assert "Export CSV" in web.get("/crm/customers").get_data(as_text=True)
    r = web.get("/crm/customers/export")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    text = r.get_data(as_text=True)
    assert "甲" in text and "乙" not in text
    r = web.get("/crm/customers/export?format=xlsx")
    assert r.status_code == 200 and r.mimetype.endswith("sheet")
    assert web_login(username="rep1").get("/crm/customers/export").status_code == 403
