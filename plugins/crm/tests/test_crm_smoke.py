def test_starts_alone(app, admin_api):
    r = admin_api.get("/api/v1/customers")
    assert r.status_code == 200, r.json
    assert r.json == {"items": [], "page": 1, "per_page": 50, "total": 0}
