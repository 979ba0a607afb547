"""An external plugin distribution (tests/external_plugin, installed with pip from a wheel)
works through its entry point alone: table, API route, permission, CLI command and menu
entry — and disabling it keeps its rows while its routes answer 404."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest
from sqlalchemy import create_engine, inspect, text

from core.state import dovetail

LOYALTY_ROLES = """
roles:
  admin: {permissions: ["*"], scope: all}
  clerk: {permissions: [loyalty.member.read, loyalty.member.write], scope: own}
  viewer: {permissions: [loyalty.member.read], scope: all}
"""


@pytest.fixture
def loyalty_config(loyalty_on_path, config_dir):
    return config_dir(["loyalty"], roles=LOYALTY_ROLES)


def test_discovered_through_the_entry_point_only(loyalty_on_path):
    from core.plugins import discover

    eps = [ep for ep in entry_points(group="dovetail.plugins") if ep.name == "loyalty"]
    assert [ep.value for ep in eps] == ["dovetail_loyalty.plugin"]
    found = discover()  # no extra_plugins: entry points alone
    assert found["loyalty"].error is None
    assert found["loyalty"].source == "dovetail-loyalty:dovetail_loyalty.plugin"
    assert found["loyalty"].manifest.version == "0.3.0"
    assert str(loyalty_on_path) in found["loyalty"].module.__file__


def test_table_route_permission_command_and_menu(loyalty_config, cli, dovetail_database_url):
    cfg = loyalty_config
    result = cli(cfg, "db", "upgrade")
    assert result.exit_code == 0 and "loyalty: at loyalty_0001" in result.output, result.output
    engine = create_engine(dovetail_database_url)
    assert "loyalty_member" in inspect(engine).get_table_names()          # table

    from core.app import create_app

    app = create_app(cfg, config={"database_url": dovetail_database_url, "secret_key": "x"}, testing=True)
    reg = dovetail(app).registry
    assert reg.permissions["loyalty.member.write"][1] == "loyalty"          # permission
    assert cli(cfg, "users", "create", "ann", "--role", "clerk", "--password-stdin",
               input="a-long-password\n").exit_code == 0
    assert cli(cfg, "users", "create", "vic", "--role", "viewer", "--password-stdin",
               input="a-long-password\n").exit_code == 0
    with app.app_context():
        client = app.test_client()
        tok = client.post("/api/v1/auth/token", json={"username": "ann", "password": "a-long-password"}).json
        auth = {"Authorization": f"Bearer {tok['token']}"}
        r = client.post("/api/v1/loyalty/members", json={"code": "M001", "phone": "13812345678"}, headers=auth)
        assert r.status_code == 201, r.json                                  # API route
        r = client.get("/api/v1/loyalty/members", headers=auth)
        assert r.json["total"] == 1 and r.json["items"][0]["code"] == "M001"
        vtok = client.post("/api/v1/auth/token", json={"username": "vic", "password": "a-long-password"}).json
        vauth = {"Authorization": f"Bearer {vtok['token']}"}
        r = client.get("/api/v1/loyalty/members", headers=vauth)
        assert r.json["items"][0]["phone"] == "138****5678"                   # core masking applies
        assert client.post("/api/v1/loyalty/members", json={"code": "M2"}, headers=vauth).status_code == 403
        web = app.test_client()
        web.post("/login", data={"username": "vic", "password": "a-long-password"})
        home = web.get("/").get_data(as_text=True)
        assert 'href="/loyalty/"' in home                                     # menu entry
        assert "M001" in web.get("/loyalty/").get_data(as_text=True)
        from core.db import db

        db.session.remove()
        db.engine.dispose()
    result = cli(cfg, "loyalty", "award", "M001", "40")                      # CLI command
    assert result.exit_code == 0 and "M001: 40 points" in result.output, result.output
    result = cli(cfg, "loyalty", "award", "NOPE", "1")
    assert result.exit_code == 1 and "No loyalty member with code 'NOPE'" in result.output
    with engine.connect() as conn:
        assert conn.execute(text("SELECT points FROM loyalty_member")).scalar() == 40
    engine.dispose()


def test_disable_keeps_rows_routes_404_and_reenable_restores(loyalty_config, cli, dovetail_database_url):
    cfg = loyalty_config
    assert cli(cfg, "db", "upgrade").exit_code == 0
    assert cli(cfg, "users", "create", "boss", "--role", "admin", "--password-stdin",
               input="a-long-password\n").exit_code == 0

    from core.app import create_app
    from core.db import db

    def session(fn):
        app = create_app(cfg, config={"database_url": dovetail_database_url, "secret_key": "x"}, testing=True)
        with app.app_context():
            client = app.test_client()
            tok = client.post("/api/v1/auth/token", json={"username": "boss", "password": "a-long-password"})
            try:
                return fn(client, {"Authorization": f"Bearer {tok.json['token']}"}, app)
            finally:
                db.session.remove()
                db.engine.dispose()

    session(lambda c, h, a: [c.post("/api/v1/loyalty/members", json={"code": f"M{i}"}, headers=h)
                             for i in range(3)])
    assert cli(cfg, "plugins", "disable", "loyalty").exit_code == 0

    def while_disabled(client, headers, app):
        r = client.get("/api/v1/loyalty/members", headers=headers)
        assert r.status_code == 404 and r.json["error"]["code"] == "not_found"
        assert "loyalty.member.read" not in dovetail(app).registry.permissions
        assert cli(cfg, "loyalty", "award", "M1", "5").exit_code != 0      # command gone
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT COUNT(*) FROM loyalty_member")).scalar() == 3

    session(while_disabled)
    assert cli(cfg, "plugins", "enable", "loyalty").exit_code == 0
    codes = session(lambda c, h, a: [m["code"] for m in
                                     c.get("/api/v1/loyalty/members?sort=code", headers=h).json["items"]])
    assert codes == ["M0", "M1", "M2"]
