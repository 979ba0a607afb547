"""Run-time config is activated by ``dovetail config apply`` (or the API), never polled:
editing a file changes nothing until applied; a broken file refuses the apply with located
errors and the version in force stays; API edits of custom_fields.yaml keep comments."""

from __future__ import annotations

from pathlib import Path

import pytest

from core import activation
from core.db import db
from core.models import ConfigVersion


@pytest.fixture
def dovetail_plugins():
    return ["crm", "catalog", "orders", "workflows", "customfields"]


def order_yaml(app) -> Path:
    return Path(app.extensions["dovetail"].config.config_dir) / "workflows" / "order.yaml"


def test_editing_without_apply_changes_nothing_and_apply_does(app, admin_api, runner):
    assert runner.invoke(["config", "apply"]).exit_code == 0
    before = admin_api.get("/api/v1/workflows/order").json
    path = order_yaml(app)
    text = path.read_text(encoding="utf-8")
    assert "{en: Paid," in text
    path.write_text(text.replace("{en: Paid,", "{en: Paid and checked,", 1), encoding="utf-8")
    assert admin_api.get("/api/v1/workflows/order").json == before  # not applied: nothing changes
    result = runner.invoke(["config", "apply"])
    assert result.exit_code == 0, result.output
    assert "applied" in result.output
    after = admin_api.get("/api/v1/workflows/order").json
    assert "Paid and checked" in str(after) and "Paid and checked" not in str(before)
    row = db.session.scalar(db.select(ConfigVersion).order_by(ConfigVersion.version.desc()).limit(1))
    assert "Paid and checked" in row.documents["workflows/order.yaml"] and row.applied_by == "cli"


def test_a_broken_file_is_refused_with_its_location_and_the_version_stays(app, admin_api, runner):
    assert runner.invoke(["config", "apply"]).exit_code == 0
    version = activation.state(app).version
    before = admin_api.get("/api/v1/workflows/order").json
    path = order_yaml(app)
    path.write_text(path.read_text(encoding="utf-8") + "bogus_key: 1\n", encoding="utf-8")
    shown = activation.display(app, "workflows/order.yaml")
    result = runner.invoke(["config", "check"])
    assert result.exit_code == 1 and result.output.startswith(f"{shown}:")
    result = runner.invoke(["config", "apply"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines and all(line.startswith(f"{shown}:") and ": error: " in line for line in lines), lines
    assert activation.state(app).version == version
    assert admin_api.get("/api/v1/workflows/order").json == before
    # the API says the same, as a 422 listing the located errors
    resp = admin_api.post("/api/v1/config/apply")
    assert resp.status_code == 422
    assert any(f.startswith(f"{shown}:") for f in resp.json["error"]["fields"]["files"])


def test_apply_needs_its_permission(app, api_client, make_user):
    rep = api_client(make_user("rep1", role="rep"))
    assert rep.post("/api/v1/config/apply").status_code == 403


def test_roles_change_only_on_apply(app, admin_api, runner, make_user):
    cfg = app.extensions["dovetail"].config
    path = cfg.roles_file
    path.write_text(path.read_text(encoding="utf-8")
                    + "  auditor2:\n    permissions: [core.audit.read]\n    scope: all\n", encoding="utf-8")
    admin_api.get("/api/v1/auth/me")
    assert "auditor2" not in app.extensions["dovetail"].config.roles
    assert runner.invoke(["config", "apply"]).exit_code == 0
    admin_api.get("/api/v1/auth/me")
    assert "auditor2" in app.extensions["dovetail"].config.roles


def test_a_comment_survives_an_api_edit(app, admin_api, runner):
    path = Path(app.extensions["dovetail"].config.config_dir) / "custom_fields.yaml"
    path.write_text("# top comment\nfields:\n  customer:\n    wechat:   # the admin's note\n"
                    "      type: string\n      label: {en: WeChat}\n", encoding="utf-8")
    assert runner.invoke(["config", "apply"]).exit_code == 0
    resp = admin_api.post("/api/v1/custom-fields", json={"entity": "customer", "key": "tier2",
                                                        "type": "string", "label": {"en": "Tier 2"}})
    assert resp.status_code == 201, resp.json
    text = path.read_text(encoding="utf-8")
    assert "# the admin's note" in text and "# top comment" in text and "tier2:" in text
    # the edit is in force at once and recorded as a version holding that text
    assert admin_api.get("/api/v1/custom-fields/customer/tier2").status_code == 200
    row = db.session.scalar(db.select(ConfigVersion).order_by(ConfigVersion.version.desc()).limit(1))
    assert row.documents["custom_fields.yaml"] == text
