"""Config mistakes are reported as file:line:column, one line per issue, exit 1."""

from __future__ import annotations

import pytest

from core.config import load_config
from core.errors import ConfigError

MAIN = "plugins:\n  enabled: []\nlocale: en\n"
ROLES = "roles:\n  admin:\n    permissions: ['*']\n    scope: all\n"


def write(tmp_path, main=MAIN, roles=ROLES):
    cfg = tmp_path / "config"
    cfg.mkdir(exist_ok=True)
    (cfg / "dovetail.yaml").write_text(main)
    (cfg / "roles.yaml").write_text(roles)
    return cfg


def issues(cfg):
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    return [str(i) for i in info.value.issues]


@pytest.mark.parametrize("main,expected", [
    ("plugins:\n  enabled: [crm\nlocale: en\n", ":3:7: error: YAML syntax"),
    ("plugins:\n  enabled: []\nlocal: en\n", ":3:1: error: unknown key 'local' in top level"),
    ("plugins:\n  enabled: []\nsecurity:\n  login_max_failures: many\n",
     ":4:23: error: security.login_max_failures: Not a valid integer."),
    ("plugins:\n  enabled: []\nlocale: en\nlocale: zh_CN\n",
     ":4:1: error: duplicate key 'locale' (first defined at line 3)"),
    ("plugins:\n  enabled: []\n  disabled: [crm]\n", ":3:3: error: unknown key 'disabled' in plugins"),
    ("plugins:\n  enabled: []\nlocale: fr\n", ":3:9: error: locale: Must be one of: zh_CN, en."),
])
def test_dovetail_yaml_errors_are_located(tmp_path, main, expected):
    found = issues(write(tmp_path, main=main))
    assert len(found) == 1, found
    assert found[0].startswith(str(tmp_path / "config" / "dovetail.yaml") + expected), found


@pytest.mark.parametrize("roles,expected", [
    ("roles:\n  admin:\n    permissions: ['*'\n", "roles.yaml:4:1: error: YAML syntax"),
    ("roles:\n  admin:\n    permissions: ['*']\n    scope: everything\n",
     "roles.yaml:4:12: error: roles.admin.scope: Must be one of: own, team, all."),
    ("roles:\n  admin:\n    permisions: ['*']\n", "roles.yaml:3:5: error: unknown key 'permisions' in roles.admin"),
    ("roles:\n  rep:\n    permissions: []\n  rep:\n    permissions: []\n",
     "roles.yaml:4:3: error: duplicate key 'rep' (first defined at line 2)"),
    ("roles:\n  rep:\n    permissions: read-all\n", "roles.yaml:3:18: error: roles.rep.permissions: Not a valid list."),
])
def test_roles_yaml_errors_are_located(tmp_path, roles, expected):
    found = issues(write(tmp_path, roles=roles))
    assert len(found) == 1, found
    assert found[0].startswith(str(tmp_path / "config" / expected)), found


def test_unknown_permission_in_roles_is_located_and_the_cli_says_so_in_one_line(tmp_path, cli):
    cfg = write(tmp_path, roles=ROLES + "  clerk:\n    permissions:\n      - core.user.manage\n"
                                      "      - core.users.manage\n")
    result = cli(cfg, "users", "list")
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].endswith("roles.yaml:8:9: error: unknown permission 'core.users.manage' in role "
                             "'clerk'; declared by 'core': core.audit.read, core.config.apply, "
                             "core.personal.export, core.plugin.read, core.report.read")


def test_several_mistakes_give_one_line_each(tmp_path, cli):
    cfg = write(tmp_path, main="plugins:\n  enabled: []\nlocal: en\ncurrency: RMBX\n",
                roles="roles:\n  admin:\n    scope: none\n")
    result = cli(cfg, "roles", "list")
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 3, lines
    assert [ln.split(":")[1:4] for ln in lines] == [["3", "1", " error"], ["4", "11", " error"],
                                                    ["3", "12", " error"]]
    assert "Traceback" not in result.output


def test_environment_overrides_urls_and_secrets(tmp_path, monkeypatch):
    cfg = write(tmp_path, main=MAIN + "database:\n  url: sqlite:///from-file.db\n")
    monkeypatch.setenv("DOVETAIL_DATABASE_URL", "sqlite:///from-env.db")
    monkeypatch.setenv("DOVETAIL_SECRET_KEY", "s3cret")
    conf = load_config(cfg)
    assert conf.database_url == "sqlite:///from-env.db" and conf.secret_key == "s3cret"
    monkeypatch.delenv("DOVETAIL_DATABASE_URL")
    assert load_config(cfg).database_url == "sqlite:///from-file.db"
