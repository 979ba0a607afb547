"""``config/roles.yaml`` edited while the app runs: once applied (``dovetail config apply``)
a good file is in force from the next request (no restart), a bad one refuses the apply
with located errors shown to admins while the last good roles stay; ``dovetail roles check
[FILE]``."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from core.auth import hash_password, issue_token
from core.db import db
from core.models import User, UserRole
from core.state import dovetail

ROLES = """\
roles:
  admin:
    permissions: ["*"]
    scope: all
  rep:
    permissions:
      - crm.customer.read
    scope: own
"""

AUDITOR = "  auditor:\n    permissions: [core.audit.read]\n    scope: all\n"


@pytest.fixture
def dovetail_plugins():
    return ["crm"]


@pytest.fixture
def dovetail_config_dir(tmp_path) -> Path:
    cfg = tmp_path / "config"
    cfg.mkdir()
    (cfg / "dovetail.yaml").write_text("locale: en\n", encoding="utf-8")
    (cfg / "roles.yaml").write_text(ROLES, encoding="utf-8")
    return cfg


def write_roles(app, text: str) -> Path:
    """Write roles.yaml so the change is seen even within one clock tick."""
    path = dovetail(app).config.roles_file
    old = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text, encoding="utf-8")
    st = path.stat()
    if st.st_mtime_ns <= old:
        os.utime(path, ns=(st.st_atime_ns, old + 1_000_000))
    apply_config(app)
    return path


def apply_config(app) -> None:
    """``dovetail config apply``; a refused apply keeps the version in force (checked by callers)."""
    from core import activation
    from core.errors import ConfigError

    try:
        activation.apply(app, actor="test")
    except ConfigError:
        pass


def user_with_role(name: str, role: str) -> User:
    """A user granted ``role`` as another process would (``dovetail users create`` reads the
    file as it is now, whatever the running server holds)."""
    user = User(username=name, display_name=name, password_hash=hash_password("password123"))
    user.role_grants = [UserRole(role=role)]
    db.session.add(user)
    db.session.commit()
    return user


def bearer(user: User) -> dict[str, str]:
    token = issue_token(user, "test")
    db.session.commit()
    return {"Authorization": f"Bearer {token}"}


def test_a_new_role_works_without_a_restart(app, client):
    write_roles(app, ROLES + AUDITOR)
    auditor = user_with_role("aud", "auditor")
    me = client.get("/api/v1/auth/me", headers=bearer(auditor))
    assert me.status_code == 200 and me.json["permissions"] == ["core.audit.read"]
    assert client.get("/api/v1/audit", headers=bearer(auditor)).status_code == 200
    # a changed role takes effect too, for a user already seen (no stale per-user cache)
    write_roles(app, ROLES + AUDITOR.replace("core.audit.read", "crm.customer.read"))
    assert client.get("/api/v1/audit", headers=bearer(auditor)).status_code == 403
    assert client.get("/api/v1/auth/me", headers=bearer(auditor)).json["permissions"] == ["crm.customer.read"]


def test_a_broken_edit_keeps_the_last_good_roles_and_says_where(app, client, make_user, caplog):
    from core import roles

    rep = make_user("r1", role="rep")
    headers = bearer(rep)
    caplog.set_level(logging.ERROR, logger="dovetail.roles")
    path = write_roles(app, ROLES.replace("crm.customer.read", "crm.custmer.read").replace(
        "scope: own", "scope: mine") + AUDITOR)
    me = client.get("/api/v1/auth/me", headers=headers)
    assert me.json["permissions"] == ["crm.customer.read"]  # the roles in force stay
    assert "auditor" not in dovetail(app).config.roles
    found = roles.state(app).problems
    assert [p.split(": error: ")[0] for p in found] == [f"{path}:7:9", f"{path}:8:12"]
    assert found[0].endswith("error: unknown permission 'crm.custmer.read' in role 'rep'; declared by "
                             "'crm': crm.activity.read, crm.activity.write, crm.customer.create, "
                             "crm.customer.delete, crm.customer.export")
    assert found[1].endswith("error: roles.rep.scope: Must be one of: own, team, all.")
    assert f"{path}:7:9: error: unknown permission 'crm.custmer.read'" in caplog.text
    # admins see why on the users page
    make_user("boss", role="admin", password="a-long-password")
    client.post("/login", data={"username": "boss", "password": "a-long-password"})
    page = client.get("/admin/users").get_data(as_text=True)
    assert "Not in force:" in page and f"{path}:7:9: error: unknown permission" in page
    # fixed: in force on the next request, the problem gone
    write_roles(app, ROLES + AUDITOR)
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 200
    assert "auditor" in dovetail(app).config.roles and roles.state(app).problems == []
    assert "Not in force:" not in client.get("/admin/users").get_data(as_text=True)


@pytest.mark.parametrize("text,where,words", [
    ("", "1:1", "the file is empty"),
    ("roles:\n  admin: {permissions: ['*'], scope: all}\n  admin: {}\n", "3:3", "duplicate key 'admin'"),
    ("roles: &r {}\nagain: *r\n", "2:8", "YAML: alias '*r' is not allowed"),
])
def test_unreadable_edits_are_refused_too(app, client, make_user, text, where, words):
    from core import roles

    rep = make_user("r2", role="rep")
    path = write_roles(app, text)
    assert client.get("/api/v1/auth/me", headers=bearer(rep)).json["permissions"] == ["crm.customer.read"]
    assert roles.state(app).problems[0].startswith(f"{path}:{where}: error: {words}")


def test_a_deleted_file_keeps_the_roles_in_force(app, client, make_user):
    from core import roles

    rep = make_user("r3", role="rep")
    dovetail(app).config.roles_file.unlink()
    apply_config(app)
    assert client.get("/api/v1/auth/me", headers=bearer(rep)).json["permissions"] == ["crm.customer.read"]
    assert roles.state(app).problems[0].endswith("roles.yaml:1:1: error: file not found")


def test_roles_check_good_and_bad_files(app, runner, tmp_path):
    result = runner.invoke(["roles", "check"])
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith("roles.yaml: ok (2 roles: admin, rep)")
    bad = tmp_path / "new-roles.yaml"
    bad.write_text(ROLES.replace("crm.customer.read", "crm.custmer.read") + "  clerk:\n    scope: some\n"
                   "    permisions: []\n", encoding="utf-8")
    result = runner.invoke(["roles", "check", str(bad)])
    assert result.exit_code == 1
    assert [ln.split(": error: ")[0] for ln in result.output.strip().splitlines()] == [
        f"{bad}:7:9", f"{bad}:10:12", f"{bad}:11:5"]
    assert "unknown key 'permisions' in roles.clerk" in result.output
    good = tmp_path / "good.yaml"
    good.write_text(ROLES + AUDITOR, encoding="utf-8")
    result = runner.invoke(["roles", "check", str(good)])
    assert result.exit_code == 0 and result.output.strip() == f"{good}: ok (3 roles: admin, rep, auditor)"


def test_roles_check_from_the_command_line_exits_1_on_the_configured_file(config_dir, cli):
    cfg = config_dir(["crm"], roles=ROLES.replace("crm.customer.read", "crm.custmer.read"))
    result = cli(cfg, "roles", "check")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"{cfg / 'roles.yaml'}:7:9: error: unknown permission 'crm.custmer.read' in role 'rep'; declared by "
        "'crm': crm.activity.read, crm.activity.write, crm.customer.create, crm.customer.delete, "
        "crm.customer.export"]
