"""The YAML file: located errors, reload without restart, hiding, type changes, CLI."""

import textwrap

import pytest

from core import activation
from core.errors import ConfigError
from core.state import dovetail
from plugins.customfields import store

BASE = """\
# my header comment
fields:
  gadget:
    wechat_id:
      type: string
      label: {en: WeChat ID, zh_CN: 微信号}
      pattern: '[A-Za-z][-_A-Za-z0-9]{5,19}'
    level:
      type: string
      label: {en: Level}
"""


def test_every_mistake_is_reported_with_line_and_column(app, fields_file, runner):
    fields_file(apply=False, text=textwrap.dedent("""\
        fields:
          spaceship:
            x: {type: string, label: {en: X}}
          gadget:
            a:
              type: strng
              label: {en: A}
            b:
              type: string
              label: {en: B}
              pattern: '[a-z'
            c:
              type: integer
              label: {en: C}
              min: 10
              max: 5
            d:
              type: choice
              label: {en: D}
              choices: [x, y]
              default: z
            e:
              type: integer
              label: {en: E}
              max_length: 3
            f:
              type: string
              label: {en: F}
              colour: red
            g:
              type: string
              label: {en: G}
              read_roles: [wizard]
            Bad-Key:
              type: string
              label: {en: H}
            i:
              type: choice
              label: {en: I}
            i:
              type: string
              label: {en: I2}
            j:
              type: integer
              label: {en: J}
              default: many
        """))
    result = runner.invoke(["fields", "check"])
    assert result.exit_code == 1
    lines = [ln for ln in result.output.splitlines() if ": error: " in ln]
    got = [ln.split("custom_fields.yaml:", 1)[1] for ln in lines]
    # the duplicate key stops parsing first: fix it and the rest shows
    assert got == ["40:5: error: duplicate key 'i' (first defined at line 37)"]

    path = store.state(app).path
    text = path.read_text().replace("    i:\n      type: string\n      label: {en: I2}\n", "")
    fields_file(text, apply=False)
    result = runner.invoke(["fields", "check"])
    assert result.exit_code == 1
    got = [ln.split("custom_fields.yaml:", 1)[1] for ln in result.output.splitlines() if ": error: " in ln]
    roles = ", ".join(sorted(dovetail(app).config.roles))
    assert got == [
        "2:3: error: unknown entity 'spaceship'; custom-field entities: gadget",
        "6:13: error: fields.gadget.a.type: unknown type 'strng'; use one of: string, text, integer, decimal, "
        "boolean, date, datetime, choice, multi_choice, email, phone",
        "11:16: error: fields.gadget.b.pattern: not a valid regular expression: unterminated character set "
        "at position 0",
        "15:12: error: fields.gadget.c.min: min (10) is greater than max (5)",
        "21:16: error: fields.gadget.d.default: default does not fit the field: Must be one of: x, y.",
        "25:19: error: fields.gadget.e.max_length: 'max_length' does not apply to type integer "
        "(only string, text, email, phone)",
        "29:7: error: unknown key 'colour' in fields.gadget.f",
        "33:19: error: fields.gadget.g.read_roles: unknown role 'wizard'; roles.yaml defines: " + roles,
        "34:5: error: field key 'Bad-Key' must be lowercase letters, digits and _ and start with a letter",
        "38:7: error: fields.gadget.i.choices: a choice field needs a non-empty list of choices",
        "43:16: error: fields.gadget.j.default: default does not fit the field: Not a valid integer.",
    ]


def test_broken_file_keeps_the_version_in_force(admin_api, fields_file):
    fields_file(BASE)
    assert admin_api.post("/api/v1/cftest-gadgets", json={"name": "a", "custom": {"level": "x"}}).status_code == 201
    with pytest.raises(ConfigError):  # the apply is refused; the version in force stays
        fields_file(BASE + "    oops: [\n")
    r = admin_api.post("/api/v1/cftest-gadgets", json={"name": "a", "custom": {"level": "y"}})
    assert r.status_code == 201
    r = admin_api.get("/api/v1/custom-fields/check")
    assert r.json["problems"] and "YAML syntax" in r.json["problems"][0]


def test_added_field_works_without_restart_and_removal_keeps_values(admin_api, fields_file, app):
    fields_file(BASE)
    r = admin_api.post("/api/v1/cftest-gadgets", json={"name": "a", "custom": {"size": 3}})
    assert r.json["error"]["fields"] == {"custom": {"size": ["Unknown field."]}}
    fields_file(BASE + "    size:\n      type: integer\n      label: {en: Size}\n")
    r = admin_api.post("/api/v1/cftest-gadgets", json={"name": "a", "custom": {"size": 3, "level": "l1"}})
    assert r.status_code == 201
    gid = r.json["id"]
    # remove 'size' from the file: hidden from the API, still stored
    fields_file(BASE)
    listed = admin_api.get("/api/v1/cftest-gadgets").json["items"]
    assert listed[0]["custom"] == {"level": "l1"}
    from cf_gadgets import Gadget

    from core.db import db

    db.session.expire_all()
    assert db.session.get(Gadget, gid).custom == {"size": 3, "level": "l1"}
    # a PATCH of another field keeps the hidden value
    admin_api.patch(f"/api/v1/cftest-gadgets/{gid}", json={"custom": {"level": "l2"}})
    db.session.expire_all()
    assert db.session.get(Gadget, gid).custom == {"size": 3, "level": "l2"}
    # adding it back shows the kept value again
    fields_file(BASE + "    size:\n      type: integer\n      label: {en: Size}\n")
    assert admin_api.get("/api/v1/cftest-gadgets").json["items"][0]["custom"] == {"size": 3, "level": "l2"}


def test_hand_edited_type_change_is_refused_until_forced(admin_api, fields_file, runner, apply_config):
    fields_file(BASE)
    for level in ("a1", "12", "b2"):
        admin_api.post("/api/v1/cftest-gadgets", json={"name": "g", "custom": {"level": level}})
    changed = BASE.replace("level:\n      type: string", "level:\n      type: integer")
    with pytest.raises(ConfigError, match="2 of 3 stored value"):
        fields_file(changed)
    # refused: the running version stays (string), the problem is reported
    r = admin_api.post("/api/v1/cftest-gadgets", json={"name": "g", "custom": {"level": "c3"}})
    assert r.status_code == 201
    check = admin_api.get("/api/v1/custom-fields/check").json
    assert check["problems"] == ["gadget.level: type 'string' → 'integer': 3 of 4 stored value(s) no longer fit; "
                                 "refused (fix the values, or apply with --force)"]
    assert [(c["key"], c["misfits"], c["checked"]) for c in check["changes"]] == [("level", 3, 4)]

    result = runner.invoke(["fields", "check"])
    assert result.exit_code == 1
    assert ("error: gadget.level: type 'string' → 'integer': 3 of 4 stored value(s) no longer fit; refused"
            in result.output)

    result = runner.invoke(["fields", "check", "--force"])
    assert result.exit_code == 0, result.output
    assert "3 of 4 stored value(s) no longer fit (accepted with --force)" in result.output
    apply_config(force=True)
    r = admin_api.post("/api/v1/cftest-gadgets", json={"name": "g", "custom": {"level": "c3"}})
    assert r.json["error"]["fields"] == {"custom": {"level": ["Not a valid integer."]}}
    assert admin_api.post("/api/v1/cftest-gadgets", json={"name": "g", "custom": {"level": 5}}).status_code == 201


def test_type_change_across_restart_is_still_compared(app, admin_api, fields_file):
    """The accepted version lives in the database, so a new process compares with it too."""
    fields_file(BASE)
    admin_api.post("/api/v1/cftest-gadgets", json={"name": "g", "custom": {"level": "abc"}})
    fresh = store.State(store.state(app).path)
    app.extensions[store.EXT_KEY] = fresh  # what a restarted worker starts with
    act = activation.state(app)
    act.version, act.loaded = 0, False
    with pytest.raises(ConfigError, match=r"1 of 1 stored value\(s\) no longer fit"):
        fields_file(BASE.replace("level:\n      type: string", "level:\n      type: integer"))
    r = admin_api.post("/api/v1/cftest-gadgets", json={"name": "g", "custom": {"level": "still text"}})
    assert r.status_code == 201
    assert fresh.get("gadget", "level").type == "string"


def test_fields_list_cli(app, fields_file, runner):
    fields_file(BASE + "    gone:\n      type: boolean\n      label: {en: Gone}\n      hidden: true\n")
    out = runner.invoke(["fields", "list"]).output.splitlines()
    assert out == ["gadget.level\tstring\tLevel",
                   "gadget.wechat_id\tstring\tWeChat ID\tpattern=[A-Za-z][-_A-Za-z0-9]{5,19}"]
    out = runner.invoke(["fields", "list", "--all"]).output.splitlines()
    assert out[0] == "gadget.gone\tboolean\tGone\thidden"


def test_missing_file_means_no_fields(app, admin_api):
    store.state(app).path.unlink(missing_ok=True)
    r = admin_api.post("/api/v1/cftest-gadgets", json={"name": "a", "custom": {"x": 1}})
    assert r.json["error"]["fields"] == {"custom": {"x": ["Unknown field."]}}
    assert admin_api.get("/api/v1/custom-fields").json["total"] == 0


def test_a_running_worker_takes_a_change_forced_from_the_cli(app, admin_api, fields_file, runner,
                                                             apply_config):
    fields_file(BASE)
    admin_api.post("/api/v1/cftest-gadgets", json={"name": "g", "custom": {"level": "abc"}})
    with pytest.raises(ConfigError):  # the apply refuses the edit
        fields_file(BASE.replace("level:\n      type: string", "level:\n      type: integer"))
    admin_api.get("/api/v1/custom-fields")
    worker = store.state(app)
    act = activation.state(app)
    assert worker.get("gadget", "level").type == "string" and act.problems
    running = act.version
    other = store.State(worker.path)  # another process, running the same version
    other.defs = dict(worker.defs)
    assert runner.invoke(["fields", "check", "--force"]).exit_code == 0
    apply_config(force=True)
    app.extensions[store.EXT_KEY] = other
    act.version = running  # that process still runs the previous version
    admin_api.get("/api/v1/custom-fields")
    assert other.get("gadget", "level").type == "integer" and other.problems == []


def test_fields_of_a_disabled_plugin_are_a_warning_not_an_error(admin_api, fields_file, runner):
    """crm is installed but not enabled here: its customer fields stay in the file, inactive."""
    fields_file(BASE + "  customer:\n    wechat_id:\n      type: string\n      label: {en: WeChat ID}\n")
    result = runner.invoke(["fields", "check"])
    assert result.exit_code == 0, result.output
    assert "custom_fields.yaml:11:3: warning: entity 'customer' belongs to disabled plugin 'crm'; " \
           "its fields are inactive" in result.output
    assert admin_api.get("/api/v1/custom-fields").json["total"] == 2
    assert admin_api.post("/api/v1/cftest-gadgets", json={"name": "g", "custom": {"level": "x"}}).status_code == 201


def test_a_removed_field_added_back_with_another_type_is_compared(admin_api, fields_file, runner):
    fields_file(BASE + "    size:\n      type: string\n      label: {en: Size}\n")
    admin_api.post("/api/v1/cftest-gadgets", json={"name": "g", "custom": {"size": "large"}})
    fields_file(BASE)  # removed: hidden, value kept
    admin_api.get("/api/v1/custom-fields")
    out = runner.invoke(["fields", "list", "--all"]).output
    assert "gadget.size\tstring\tSize\thidden" in out
    with pytest.raises(ConfigError, match=r"1 of 1 stored value\(s\) no longer fit"):
        fields_file(BASE + "    size:\n      type: integer\n      label: {en: Size}\n")
    admin_api.get("/api/v1/custom-fields")
    assert store.state(admin_api.client.application).get("gadget", "size").type == "string"
