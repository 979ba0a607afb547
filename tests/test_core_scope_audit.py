"""Record scope (own / team / all) and personal-data masking through core.scope, and
the hash-chained audit log (actor, before/after, personal fields kept out, verify)."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from core.db import db
from core.models import AuditEntry, PersonalAccess

ROLES = """
roles:
  admin: {permissions: ["*"], scope: all}
  rep: {permissions: [probe.note.read, probe.note.write], scope: own}
  lead: {permissions: [probe.note.read, probe.note.read_personal], scope: team}
  boss: {permissions: [probe.*], scope: all}
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
    (cfg / "roles.yaml").write_text(ROLES)
    return cfg


@pytest.fixture
def people(api_client, make_user, make_team):
    north, south = make_team("North"), make_team("South")
    return {
        "ann": api_client(make_user("ann", role="rep", team=north)),
        "ben": api_client(make_user("ben", role="rep", team=north)),
        "cat": api_client(make_user("cat", role="rep", team=south)),
        "lee": api_client(make_user("lee", role="lead", team=north)),
        "bo": api_client(make_user("bo", role="boss")),
    }


def titles(client):
    r = client.get("/api/v1/probe/notes?sort=title")
    assert r.status_code == 200, r.json
    return [n["title"] for n in r.json["items"]]


def test_own_team_all_scope_and_404_outside(people):
    ids = {}
    for who in ("ann", "ben", "cat"):
        r = people[who].post("/api/v1/probe/notes", json={"title": f"{who}-note", "phone": "13812345678"})
        assert r.status_code == 201, r.json
        ids[who] = r.json["id"]
    assert titles(people["ann"]) == ["ann-note"]
    assert titles(people["cat"]) == ["cat-note"]
    assert titles(people["lee"]) == ["ann-note", "ben-note"]
    assert titles(people["bo"]) == ["ann-note", "ben-note", "cat-note"]
    r = people["ann"].get(f"/api/v1/probe/notes/{ids['cat']}")
    assert r.status_code == 404 and r.json["error"]["message"] == f"No note with id {ids['cat']}."
    assert people["ann"].patch(f"/api/v1/probe/notes/{ids['ben']}", json={"title": "mine"}).status_code == 404
    assert people["ann"].delete(f"/api/v1/probe/notes/{ids['ben']}").status_code == 404
    assert people["lee"].get(f"/api/v1/probe/notes/{ids['ben']}").status_code == 200
    assert people["lee"].get(f"/api/v1/probe/notes/{ids['cat']}").status_code == 404


def test_personal_fields_are_masked_without_the_right_and_unmasked_reads_logged(people):
    people["ann"].post("/api/v1/probe/notes", json={"title": "t", "person": "张三丰", "phone": "13812345678"})
    mine = people["ann"].get("/api/v1/probe/notes").json["items"][0]
    assert mine["phone"] == "138****5678" and mine["person"] == "张**"
    assert db.session.scalar(select(PersonalAccess.id)) is None
    seen = people["lee"].get("/api/v1/probe/notes").json["items"][0]
    assert seen["phone"] == "13812345678" and seen["person"] == "张三丰"
    log = db.session.scalars(select(PersonalAccess)).all()
    assert [(a.user_id, a.entity, a.entity_ids) for a in log] == [(people["lee"].user.id, "probe_note",
                                                                   [seen["id"]])]


def test_audit_records_create_update_delete_with_actor_and_keeps_personal_out(people, admin_api):
    ann = people["ann"]
    note_id = ann.post("/api/v1/probe/notes", json={"title": "first", "phone": "13812345678"}).json["id"]
    assert ann.patch(f"/api/v1/probe/notes/{note_id}", json={"title": "second", "phone": "13900000000"}
                     ).status_code == 200
    assert ann.delete(f"/api/v1/probe/notes/{note_id}").status_code == 204
    entries = db.session.scalars(select(AuditEntry).where(AuditEntry.entity == "probe_note")
                                 .order_by(AuditEntry.id)).all()
    assert [(e.action, e.actor, e.actor_id, e.entity_id) for e in entries] == [
        ("create", "ann", ann.user.id, str(note_id)), ("update", "ann", ann.user.id, str(note_id)),
        ("delete", "ann", ann.user.id, str(note_id))]
    create, update, delete = entries
    assert create.before is None and create.after["title"] == "first" and create.after["phone"] == "<personal>"
    assert update.before == {"title": "first", "phone": "<personal>"}
    assert update.after == {"title": "second", "phone": "<personal>"}
    assert delete.after is None and delete.before["title"] == "second"
    dump = str([(e.before, e.after) for e in entries])
    assert "13812345678" not in dump and "13900000000" not in dump
    r = admin_api.get(f"/api/v1/audit?entity=probe_note&entity_id={note_id}&sort=id")
    assert r.status_code == 200 and [e["action"] for e in r.json["items"]] == ["create", "update", "delete"]
    assert people["ann"].get("/api/v1/audit").status_code == 403


def test_audit_verify_detects_tampering(people, runner):
    for i in range(3):
        people["ann"].post("/api/v1/probe/notes", json={"title": f"n{i}"})
    result = runner.invoke(["audit", "verify"])
    assert result.exit_code == 0 and "intact" in result.output
    victim = db.session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()[1]
    db.session.execute(text("UPDATE core_audit SET actor = 'mallory' WHERE id = :id"), {"id": victim.id})
    db.session.commit()
    result = runner.invoke(["audit", "verify"], catch_exceptions=True)
    assert result.exit_code == 1
    assert f"audit chain broken at entry {victim.id}" in result.output
