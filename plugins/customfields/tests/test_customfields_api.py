"""/api/v1/custom-fields: the file is the one source of truth; roles; OpenAPI; export; web."""

import yaml

from plugins.customfields import store

HEADER = "# Custom fields of ACME\n# keep in git\n\n"
BASE = HEADER + """fields:
  gadget:
    level:
      type: string
      label: {en: Level}
"""


def file_data(app):
    return yaml.safe_load(store.state(app).path.read_text())


def test_create_writes_the_file_and_keeps_its_header(app, admin_api, fields_file):
    fields_file(BASE)
    r = admin_api.post("/api/v1/custom-fields", json={
        "entity": "gadget", "key": "vip_level", "type": "choice", "label": {"en": "VIP level", "zh_CN": "会员等级"},
        "choices": ["silver", {"value": "gold", "label": {"en": "Gold", "zh_CN": "金卡"}}]})
    assert r.status_code == 201, r.json
    assert r.json["choices"] == [{"value": "silver", "label": {}},
                                 {"value": "gold", "label": {"en": "Gold", "zh_CN": "金卡"}}]
    text = store.state(app).path.read_text()
    assert text.startswith(HEADER)
    assert file_data(app)["fields"]["gadget"]["vip_level"] == {
        "type": "choice", "label": {"en": "VIP level", "zh_CN": "会员等级"},
        "choices": ["silver", {"value": "gold", "label": {"en": "Gold", "zh_CN": "金卡"}}]}
    # usable at once
    r = admin_api.post("/api/v1/cftest-gadgets", json={"name": "g", "custom": {"vip_level": "gold"}})
    assert r.status_code == 201
    assert admin_api.get("/api/v1/custom-fields/gadget/vip_level").json["type"] == "choice"
    assert [i["key"] for i in admin_api.get("/api/v1/custom-fields?entity=gadget").json["items"]] == [
        "level", "vip_level"]


def test_create_validation_errors_are_field_level(admin_api, fields_file):
    fields_file(BASE)
    r = admin_api.post("/api/v1/custom-fields", json={
        "entity": "spaceship", "key": "Bad Key", "type": "integer", "label": {"en": "X"}, "min": 5, "max": 1,
        "pattern": "x"})
    assert r.status_code == 422
    assert r.json["error"]["fields"] == {
        "entity": ["Unknown entity; use one of: gadget."],
        "key": ["Use lowercase letters, digits and _, starting with a letter."],
        "pattern": ["'pattern' does not apply to type integer (only string, text)"],
        "min": ["min (5) is greater than max (1)"]}
    r = admin_api.post("/api/v1/custom-fields", json={"entity": "gadget", "key": "level", "type": "string",
                                                      "label": {"en": "L"}})
    assert r.status_code == 409


def test_patch_type_change_counts_and_needs_force(app, admin_api, fields_file):
    fields_file(BASE)
    for v in ("7", "x", "y"):
        admin_api.post("/api/v1/cftest-gadgets", json={"name": "g", "custom": {"level": v}})
    r = admin_api.patch("/api/v1/custom-fields/gadget/level", json={"type": "integer"})
    assert r.status_code == 409
    assert r.json["error"]["fields"]["changes"][0]["misfits"] == 2
    assert "2 of 3 stored value(s) no longer fit" in r.json["error"]["message"]
    assert file_data(app)["fields"]["gadget"]["level"]["type"] == "string"  # file untouched
    r = admin_api.patch("/api/v1/custom-fields/gadget/level?force=true", json={"type": "integer", "min": 0})
    assert r.status_code == 200, r.json
    assert file_data(app)["fields"]["gadget"]["level"] == {"type": "integer", "label": {"en": "Level"}, "min": 0}
    from core.db import db
    from plugins.customfields.models import AcceptedVersion

    versions = db.session.query(AcceptedVersion).order_by(AcceptedVersion.id).all()
    assert versions[-1].forced is True and versions[-1].accepted_by == "admin"


def test_patch_without_misfits_needs_no_force(app, admin_api, fields_file):
    fields_file(BASE)
    admin_api.post("/api/v1/cftest-gadgets", json={"name": "g", "custom": {"level": "12"}})
    r = admin_api.patch("/api/v1/custom-fields/gadget/level", json={"type": "integer", "label": {"zh_CN": "等级"}})
    assert r.status_code == 200, r.json
    assert r.json["label"] == {"zh_CN": "等级"}


def test_delete_hides_and_keeps_values(app, admin_api, fields_file):
    fields_file(BASE)
    gid = admin_api.post("/api/v1/cftest-gadgets", json={"name": "g", "custom": {"level": "v"}}).json["id"]
    assert admin_api.delete("/api/v1/custom-fields/gadget/level").status_code == 204
    assert file_data(app)["fields"]["gadget"]["level"]["hidden"] is True
    assert admin_api.get("/api/v1/custom-fields").json["total"] == 0
    assert admin_api.get("/api/v1/custom-fields?include_hidden=true").json["total"] == 1
    assert admin_api.get("/api/v1/cftest-gadgets").json["items"][0]["custom"] == {}
    r = admin_api.post("/api/v1/cftest-gadgets", json={"name": "g", "custom": {"level": "v"}})
    assert r.json["error"]["fields"] == {"custom": {"level": ["Unknown field."]}}
    assert admin_api.patch("/api/v1/custom-fields/gadget/level", json={"hidden": False}).status_code == 200
    items = admin_api.get("/api/v1/cftest-gadgets").json["items"]
    assert [i["custom"] for i in items if i["id"] == gid] == [{"level": "v"}]
    assert admin_api.delete("/api/v1/custom-fields/gadget/nope").status_code == 404


def test_permissions(api_client, fields_file):
    fields_file(BASE)
    manager = api_client(role="manager")
    rep = api_client(role="rep")
    assert manager.get("/api/v1/custom-fields").status_code == 200
    assert rep.get("/api/v1/custom-fields").status_code == 403
    body = {"entity": "gadget", "key": "x", "type": "string", "label": {"en": "X"}}
    assert manager.post("/api/v1/custom-fields", json=body).status_code == 403
    assert manager.patch("/api/v1/custom-fields/gadget/level", json={"required": True}).status_code == 403
    assert manager.delete("/api/v1/custom-fields/gadget/level").status_code == 403


def test_read_and_write_roles(api_client, admin_api, fields_file):
    fields_file(BASE + """    secret:
      type: string
      label: {en: Secret}
      read_roles: [manager]
    locked:
      type: string
      label: {en: Locked}
      write_roles: [manager]
""")
    manager, rep = api_client(role="manager"), api_client(role="rep")
    r = rep.post("/api/v1/cftest-gadgets", json={"name": "g", "custom": {"locked": "a", "secret": "b", "level": "c"}})
    assert r.json["error"]["fields"] == {"custom": {"locked": ["You may not change this field."],
                                                    "secret": ["Unknown field."]}}
    r = manager.post("/api/v1/cftest-gadgets", json={"name": "g", "custom": {"locked": "a", "secret": "b"}})
    assert r.status_code == 201
    assert r.json["custom"] == {"locked": "a", "secret": "b"}
    assert rep.get("/api/v1/cftest-gadgets").json["items"][0]["custom"] == {"locked": "a"}
    assert rep.get("/api/v1/cftest-gadgets?custom.secret=b").json["error"]["fields"] == {
        "custom.secret": ["Unknown filter."]}
    assert manager.get("/api/v1/cftest-gadgets?custom.secret=b").json["total"] == 1
    export = rep.get("/api/v1/cftest-gadgets/export").get_data(as_text=True).splitlines()
    assert export[0] == "id,name,custom.level,custom.locked"
    export = admin_api.get("/api/v1/cftest-gadgets/export").get_data(as_text=True).splitlines()
    assert export[0] == "id,name,custom.level,custom.secret,custom.locked"
    assert export[1].endswith(",g,,b,a")


def test_openapi_shows_fields_without_restart(admin_api, fields_file):
    fields_file(BASE)
    doc = admin_api.get("/api/v1/openapi.json").json
    assert list(doc["components"]["schemas"]["CustomGadget"]["properties"]) == ["level"]
    fields_file(BASE + """    vip_level:
      type: choice
      label: {en: VIP level}
      choices: [silver, gold]
    points:
      type: integer
      label: {en: Points}
      min: 0
""")
    doc = admin_api.get("/api/v1/openapi.json").json
    schemas = doc["components"]["schemas"]
    props = schemas["CustomGadget"]["properties"]
    assert props["vip_level"]["enum"] == ["silver", "gold"] and props["vip_level"]["type"] == "string"
    assert props["points"]["type"] == "integer" and props["points"]["minimum"] == 0
    assert schemas["GadgetIn"]["properties"]["custom"] == {"$ref": "#/components/schemas/CustomGadget"}
    assert schemas["GadgetOut"]["properties"]["custom"] == {"$ref": "#/components/schemas/CustomGadget"}


def test_web_pages(app, client, make_user, fields_file):
    fields_file(BASE)
    make_user("boss", role="admin")
    client.post("/login", data={"username": "boss", "password": "password123"})
    page = client.get("/admin/custom-fields/")
    assert page.status_code == 200 and "level" in page.get_data(as_text=True)
    r = client.post("/admin/custom-fields/new", data={"entity": "gadget", "key": "size", "type": "integer",
                                                      "label_en": "Size", "min": "9", "max": "1"})
    assert r.status_code == 422
    assert "min (9) is greater than max (1)" in r.get_data(as_text=True)
    r = client.post("/admin/custom-fields/new", data={"entity": "gadget", "key": "size", "type": "integer",
                                                      "label_en": "Size", "min": "1", "max": "9"})
    assert r.status_code == 302
    assert file_data(app)["fields"]["gadget"]["size"] == {"type": "integer", "label": {"en": "Size"},
                                                         "min": 1, "max": 9}
    assert store.state(app).get("gadget", "size").max == 9


def test_web_pages_need_permission(client, make_user, fields_file):
    fields_file(BASE)
    make_user("rep1", role="rep")
    client.post("/login", data={"username": "rep1", "password": "password123"})
    assert client.get("/admin/custom-fields/").status_code == 403
    make_user("man1", role="manager")
    client.post("/logout")
    client.post("/login", data={"username": "man1", "password": "password123"})
    assert client.get("/admin/custom-fields/").status_code == 200
    assert client.get("/admin/custom-fields/new").status_code == 403


def test_concurrent_api_writes_both_land_in_the_file(app, admin_api, fields_file):
    import threading

    fields_file(BASE)
    token = admin_api.token
    results = {}
    barrier = threading.Barrier(4)

    def add(key):
        with app.app_context():
            c = app.test_client()
            barrier.wait()
            r = c.post("/api/v1/custom-fields", headers={"Authorization": f"Bearer {token}"},
                       json={"entity": "gadget", "key": key, "type": "integer", "label": {"en": key}})
            results[key] = r.status_code

    threads = [threading.Thread(target=add, args=(k,)) for k in ("f1", "f2", "f3", "f4")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {"f1": 201, "f2": 201, "f3": 201, "f4": 201}
    assert sorted(file_data(app)["fields"]["gadget"]) == ["f1", "f2", "f3", "f4", "level"]
    assert store.state(app).path.read_text().startswith(HEADER)


def test_a_removed_field_comes_back_through_post(app, admin_api, fields_file):
    fields_file(BASE + "    size:\n      type: string\n      label: {en: Size}\n")
    admin_api.post("/api/v1/cftest-gadgets", json={"name": "g", "custom": {"size": "large"}})
    fields_file(BASE)
    r = admin_api.patch("/api/v1/custom-fields/gadget/size", json={"hidden": False})
    assert r.status_code == 404 and "add it again with POST" in r.json["error"]["message"]
    body = {"entity": "gadget", "key": "size", "type": "integer", "label": {"en": "Size"}}
    r = admin_api.post("/api/v1/custom-fields", json=body)
    assert r.status_code == 409 and r.json["error"]["fields"]["changes"][0]["misfits"] == 1
    assert admin_api.post("/api/v1/custom-fields", json={**body, "type": "string"}).status_code == 201
    assert admin_api.get("/api/v1/cftest-gadgets").json["items"][0]["custom"] == {"size": "large"}
    assert admin_api.post("/api/v1/custom-fields", json=body).status_code == 409  # now in the file
