import pytest


@pytest.fixture
def dovetail_plugins():
    return []


def test_healthz_and_auth(app, client, make_user):
    assert client.get("/healthz").json["status"] == "ok"
    r = client.get("/api/v1/plugins")
    assert r.status_code == 401
    assert r.json["error"]["code"] == "unauthorized"
    make_user("boss", role="admin")
    r = client.post("/api/v1/auth/token", json={"username": "boss", "password": "password123"})
    assert r.status_code == 201, r.json
    tok = r.json["token"]
    r = client.get("/api/v1/plugins", headers={"Authorization": f"Bearer {tok}"})
    assert r.status_code == 200, r.json
    r = client.post("/api/v1/auth/token", json={"username": "boss"})
    assert r.status_code == 422 and "password" in r.json["error"]["fields"], r.json
    assert client.get("/api/v1/openapi.json").json["openapi"].startswith("3.")
    assert client.get("/login").status_code == 200
