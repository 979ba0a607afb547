"""Follow-up activities, call tasks and "my tasks due today"."""

from datetime import timedelta

from plugins.crm.services import today_local


def test_log_interaction_touches_customer(app, org, new_customer):
    c = new_customer(org.rep1)
    assert c["last_contact_at"] is None
    r = org.rep1.post(f"/api/v1/customers/{c['id']}/activities",
                      json={"type": "call", "subject": "首次回访", "outcome": "有意向"})
    assert r.status_code == 201, r.json
    assert r.json["done"] is True and r.json["done_at"] and r.json["assignee_id"] == org.users["rep1"].id
    assert org.rep1.get(f"/api/v1/customers/{c['id']}").json["last_contact_at"]


def test_activity_validation(app, org, new_customer):
    c = new_customer(org.rep1)
    r = org.rep1.post(f"/api/v1/customers/{c['id']}/activities", json={"type": "fax", "subject": ""})
    assert r.status_code == 422
    assert set(r.json["error"]["fields"]) == {"type", "subject"}
    r = org.rep1.post(f"/api/v1/customers/{c['id']}/activities",
                      json={"subject": "x", "next_due_date": "2030-01-01"})
    assert r.status_code == 422
    assert r.json["error"]["fields"] == {"next_step": ["Give the next step the follow-up task is for."]}


def test_due_today_overdue_and_completion_with_follow_up(app, org, new_customer):
    c = new_customer(org.rep1)
    today = today_local()
    url = f"/api/v1/customers/{c['id']}/activities"
    due_today = org.rep1.post(url, json={"subject": "今天回电", "due_date": today.isoformat()}).json
    overdue = org.rep1.post(url, json={"subject": "昨天该打", "due_date": (today - timedelta(days=1)).isoformat()}).json
    org.rep1.post(url, json={"subject": "下周", "due_date": (today + timedelta(days=7)).isoformat()})
    assert due_today["done"] is False and due_today["overdue"] is False
    assert overdue["overdue"] is True

    r = org.rep1.get("/api/v1/activities/due")
    assert [i["subject"] for i in r.json["items"]] == ["昨天该打", "今天回电"]
    r = org.rep1.get("/api/v1/activities/due?include_overdue=false")
    assert [i["subject"] for i in r.json["items"]] == ["今天回电"]
    assert org.rep2.get("/api/v1/activities/due").json["total"] == 0  # tasks are per assignee

    next_day = (today + timedelta(days=3)).isoformat()
    r = org.rep1.patch(f"/api/v1/activities/{due_today['id']}",
                       json={"done": True, "outcome": "客户要样品", "next_step": "寄样品后回访",
                             "next_due_date": next_day})
    assert r.status_code == 200, r.json
    assert r.json["done"] is True and r.json["follow_up_id"]
    follow = org.rep1.get(f"/api/v1/activities/{r.json['follow_up_id']}").json
    assert follow["subject"] == "寄样品后回访" and follow["due_date"] == next_day and follow["done"] is False
    assert [i["subject"] for i in org.rep1.get("/api/v1/activities/due").json["items"]] == ["昨天该打"]
    r = org.rep1.get(f"/api/v1/customers/{c['id']}/activities?done=false")
    assert sorted(i["subject"] for i in r.json["items"]) == ["下周", "寄样品后回访", "昨天该打"]


def test_task_for_colleague_and_unknown_assignee(app, org, new_customer):
    c = new_customer(org.rep1)
    r = org.rep1.post(f"/api/v1/customers/{c['id']}/activities",
                      json={"subject": "x", "due_date": "2030-01-01", "assignee_id": 99999})
    assert r.status_code == 422 and r.json["error"]["fields"]["assignee_id"] == ["Unknown or disabled user."]
