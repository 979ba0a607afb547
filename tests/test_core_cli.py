"""The core CLI: init (database, generated admin password, --if-new), users, roles."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import create_engine, inspect

REPO = Path(__file__).resolve().parent.parent

ROLES = """
roles:
  admin: {permissions: ["*"], scope: all}
  rep:
    label: {en: Sales rep}
    permissions: [core.report.read]
    scope: own
"""


def test_init_creates_the_database_and_prints_a_generated_admin_password(config_dir, cli,
                                                                          dovetail_database_url):
    cfg = config_dir([])
    result = cli(cfg, "init")
    assert result.exit_code == 0, result.output
    match = re.search(r"Admin login: admin / (\S+)", result.output)
    assert match, result.output
    password = match.group(1)
    assert len(password) >= 12
    engine = create_engine(dovetail_database_url)
    assert {"core_user", "core_audit", "alembic_version_core"} <= set(inspect(engine).get_table_names())
    engine.dispose()
    again = cli(cfg, "init")
    assert again.exit_code == 0 and "no admin created" in again.output and password not in again.output
    second = cli(config_dir([]), "init")  # a new instance on the same database is not re-seeded
    assert "Admin login" not in second.output
    # the printed password works
    from core.app import create_app

    app = create_app(cfg, config={"database_url": dovetail_database_url, "secret_key": "x"}, testing=True)
    with app.app_context():
        r = app.test_client().post("/api/v1/auth/token", json={"username": "admin", "password": password})
        assert r.status_code == 201
        from core.db import db

        db.session.remove()
        db.engine.dispose()


def test_init_if_new_loads_demo_once(config_dir, cli):
    cfg = config_dir([])
    first = cli(cfg, "init", "--if-new")
    assert first.exit_code == 0, first.output
    assert "Admin login: admin / " in first.output and "Demo data loaded." in first.output
    second = cli(cfg, "init", "--if-new")
    assert second.exit_code == 0
    assert "already initialised" in second.output and "Admin login" not in second.output


def test_init_if_new_prints_demo_logins_for_a_manager_and_a_rep(config_dir, cli):
    roles = (REPO / "config" / "roles.yaml").read_text(encoding="utf-8")  # with rep and manager
    out = cli(config_dir(["crm"], roles=roles), "init", "--if-new", "--demo-scale", "0.01")
    assert out.exit_code == 0, out.output
    logins = dict(re.findall(r"Demo (manager|rep) login: (\w+) / ", out.output))
    assert logins == {"manager": "manager1", "rep": "rep1"}, out.output


def test_two_inits_never_print_the_same_password(config_dir, cli, tmp_path):
    outs = [cli(config_dir([]), "init", env={"DOVETAIL_DATABASE_URL": f"sqlite:///{tmp_path}/db{i}.db"}).output
            for i in range(2)]
    pw = [re.search(r"Admin login: admin / (\S+)", o).group(1) for o in outs]
    assert pw[0] != pw[1]


def test_users_create_list_set_password_disable_and_roles_list(config_dir, cli):
    cfg = config_dir([], roles=ROLES)
    assert cli(cfg, "db", "upgrade").exit_code == 0
    result = cli(cfg, "users", "create", "rita", "--role", "rep", "--team", "North", "--password-stdin",
                 input="first-password\n")
    assert result.exit_code == 0 and "Created user rita (rep)." in result.output, result.output
    assert "Password" not in result.output
    generated = cli(cfg, "users", "create", "sam", "--role", "admin")
    assert re.search(r"Password: \S{12,}", generated.output), generated.output
    dup = cli(cfg, "users", "create", "rita", "--role", "rep", "--password-stdin", input="first-password\n")
    assert dup.exit_code == 1 and dup.output.strip() == "error: User 'rita' already exists."
    bad = cli(cfg, "users", "create", "tom", "--role", "wizard", "--password-stdin", input="first-password\n")
    assert bad.exit_code == 1 and "Unknown role 'wizard'" in bad.output
    short = cli(cfg, "users", "create", "tom", "--role", "rep", "--password-stdin", input="short\n")
    assert short.exit_code == 1 and "at least 10 characters" in short.output
    listing = cli(cfg, "users", "list").output.splitlines()
    assert [ln.split() for ln in listing] == [["rita", "rep", "North", "active"], ["sam", "admin", "-", "active"]]
    assert cli(cfg, "users", "set-password", "rita", "--password-stdin", input="second-password\n").exit_code == 0
    assert cli(cfg, "users", "set-password", "nobody", "--password-stdin", input="x" * 12 + "\n").exit_code == 1
    assert cli(cfg, "users", "disable", "rita").exit_code == 0
    assert cli(cfg, "users", "list").output.splitlines()[0].split()[-1] == "disabled"
    roles = cli(cfg, "roles", "list").output.splitlines()
    assert roles[0].split()[:2] == ["admin", "scope=all"] and roles[1].split() == ["rep", "scope=own",
                                                                                    "core.report.read"]


def test_unknown_command_and_missing_config_are_one_line(config_dir, cli, tmp_path):
    result = cli(tmp_path / "nowhere", "users", "list")
    assert result.exit_code == 1
    assert result.output.strip().endswith("dovetail.yaml:1:1: error: file not found (run 'dovetail init' or "
                                          "pass --config DIR)")
    assert "Traceback" not in result.output
