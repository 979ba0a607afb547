"""Issue 7 (API hardening) in crm: errors a caller can cause answer 4xx, never 500."""


def test_lead_for_another_owner_is_created(app, org):
    """Giving a new lead to a teammate (manager) used to flush an empty lead first (500)."""
    r = org.manager1.post("/api/v1/leads", json={"title": "团购", "owner_id": org.users["rep1"].id})
    assert r.status_code == 201, r.json
    assert r.json["owner_id"] == org.users["rep1"].id and r.json["title"] == "团购"
    assert org.rep1.get(f"/api/v1/leads/{r.json['id']}").status_code == 200
    r = org.manager1.post("/api/v1/leads", json={"title": "x", "owner_id": 999999})
    assert r.status_code == 422 and "owner_id" in r.json["error"]["fields"]


def test_lead_for_another_owner_without_right_is_403_and_saves_nothing(app, org):
    r = org.rep1.post("/api/v1/leads", json={"title": "x", "owner_id": org.users["rep2"].id})
    assert r.status_code == 403, r.json
    assert org.rep1.get("/api/v1/leads").json["total"] == 0


def test_patch_to_a_taken_external_code_is_409(app, org, new_customer):
    new_customer(org.rep1, external_code="K-1")
    other = new_customer(org.rep1, name="李四", phone="13900139000", external_code="K-2")
    r = org.rep1.patch(f"/api/v1/customers/{other['id']}", json={"external_code": "K-1"})
    assert r.status_code == 409, r.json
    assert r.json["error"]["fields"] == {"external_code": ["Already used."]}
    assert org.rep1.get(f"/api/v1/customers/{other['id']}").json["external_code"] == "K-2"
