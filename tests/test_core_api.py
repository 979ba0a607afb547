"""The REST shell: 401/403, one JSON error shape for every 4xx/5xx, pagination,
whitelisted sorting, a valid OpenAPI 3 document."""

from __future__ import annotations

import pytest

PROBE_ROLES = """
roles:
  admin: {permissions: ["*"], scope: all}
  reader: {permissions: [probe.note.read], scope: all}
"""


@pytest.fixture
def dovetail_plugins():
    return ["probe"]


@pytest.fixture
def dovetail_extra_plugins():
    return {"probe": "core_probe_plugin"}


@pytest.fixture
def dovetail_config_dir(tmp_path):
    cfg = tmp_path / "config"
    cfg.mkdir()
    (cfg / "roles.yaml").write_text(PROBE_ROLES)
    return cfg


def shape(r, status, code):
    assert r.status_code == status, (r.status_code, r.get_data(as_text=True))
    body = r.get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "fields"}, body
    assert body["error"]["code"] == code and body["error"]["message"], body
    return body["error"]


def test_no_token_401_bad_token_401_no_permission_403(client, api_client):
    shape(client.get("/api/v1/probe/notes"), 401, "unauthorized")
    err = shape(client.get("/api/v1/probe/notes", headers={"Authorization": "Bearer dvt_forged"}), 401,
                "unauthorized")
    assert "invalid" in err["message"]
    reader = api_client(role="reader")
    assert reader.get("/api/v1/probe/notes").status_code == 200
    err = shape(reader.post("/api/v1/probe/notes", json={"title": "x"}), 403, "forbidden")
    assert "probe.note.write" in err["message"]
    # the permission is checked before the body is parsed: 403, not 422
    shape(reader.post("/api/v1/probe/notes", json={}), 403, "forbidden")


def test_every_error_has_the_json_shape(client, admin_api):
    shape(admin_api.post("/api/v1/probe/bad"), 400, "bad_request")
    shape(admin_api.get("/api/v1/probe/notes/424242"), 404, "not_found")
    shape(admin_api.get("/api/v1/no/such/route"), 404, "not_found")
    shape(admin_api.delete("/api/v1/probe/notes"), 405, "method_not_allowed")
    err = shape(admin_api.post("/api/v1/probe/conflict"), 409, "conflict")
    assert err["fields"] == {"title": ["Taken."]}
    err = shape(admin_api.post("/api/v1/probe/notes", json={"phone": "123"}), 422, "validation_error")
    assert err["fields"] == {"title": ["Missing data for required field."], "phone": ["Not a mobile."]}
    err = shape(admin_api.post("/api/v1/probe/crash"), 500, "internal_error")
    assert "secret internal detail" not in err["message"]
    r = admin_api.post("/api/v1/probe/notes", data="{not json", headers={"Content-Type": "application/json"})
    assert r.status_code in (400, 422)
    shape(r, r.status_code, "bad_request" if r.status_code == 400 else "validation_error")


def test_lists_page_and_sort_only_on_whitelisted_fields(admin_api):
    for i in range(5):
        assert admin_api.post("/api/v1/probe/notes", json={"title": f"n{i}"}).status_code == 201
    r = admin_api.get("/api/v1/probe/notes?per_page=2&page=2&sort=title")
    assert r.status_code == 200
    assert r.json["total"] == 5 and r.json["page"] == 2 and r.json["per_page"] == 2
    assert [n["title"] for n in r.json["items"]] == ["n2", "n3"]
    err = shape(admin_api.get("/api/v1/probe/notes?sort=owner_id;drop"), 422, "validation_error")
    assert "sort" in err["fields"]
    shape(admin_api.get("/api/v1/probe/notes?per_page=100000"), 422, "validation_error")


def test_openapi_document_is_valid_openapi_3(client):
    from openapi_spec_validator import validate

    r = client.get("/api/v1/openapi.json")
    assert r.status_code == 200
    doc = r.get_json()
    assert doc["openapi"].startswith("3.")
    validate(doc)
    assert "/api/v1/probe/notes" in doc["paths"] and "/api/v1/auth/token" in doc["paths"]
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert client.get("/api/v1/docs").status_code == 200


def test_healthz_and_plugins_endpoint(client, admin_api):
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json == {"status": "ok", "plugins": ["probe"]}
    rows = {p["name"]: p for p in admin_api.get("/api/v1/plugins").json}
    assert rows["probe"]["enabled"] is True and rows["probe"]["version"] == "0.0.1"
