"""``dovetail plugins list|info|enable|disable``: versions, dependency checks, the
impact of a dry run, and config edits that keep the file intact (or untouched on refusal)."""

from __future__ import annotations

import pytest
from conftest import plugin_source

from core.plugin_admin import edit_enabled_text

PERKS = plugin_source("perks", version="2.1.0", depends=("loyalty",))


@pytest.fixture
def site(loyalty_on_path, make_dist):
    """loyalty (external wheel) and perks (depends on loyalty), both discoverable."""
    make_dist({"perks": PERKS})


def test_list_shows_version_enabled_state_and_dependencies(site, config_dir, cli):
    cfg = config_dir(["loyalty"])
    result = cli(cfg, "plugins", "list")
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line.split() for line in result.output.splitlines()[1:] if line.strip()
             and not line.startswith(" ")}
    assert lines["loyalty"][1:3] == ["0.3.0", "yes"]
    assert lines["perks"][1:4] == ["2.1.0", "no", "loyalty"]


def test_list_works_when_the_app_cannot_start(site, config_dir, cli, make_dist):
    make_dist({"broken": plugin_source("broken", prefix="raise RuntimeError('boom at import')\n")})
    cfg = config_dir(["loyalty", "ghost"])
    result = cli(cfg, "plugins", "list")
    assert result.exit_code == 0, result.output
    assert "ghost" in result.output and "not installed" in result.output
    assert "broken" in result.output and "RuntimeError: boom at import" in result.output
    # while any command that needs the app fails with one line naming the culprit
    result = cli(cfg, "users", "list")
    assert result.exit_code == 1
    assert "'ghost'" in result.output and "unknown plugin" in result.output
    # the way out: disabling the missing plugin is allowed, then the app starts
    assert cli(cfg, "plugins", "disable", "ghost").exit_code == 0
    assert cli(cfg, "db", "upgrade").exit_code == 0
    result = cli(cfg, "plugins", "enable", "broken")
    assert result.exit_code == 1 and "cannot be enabled" in result.output and "boom at import" in result.output


def test_disable_with_an_enabled_dependent_is_refused_file_unchanged(site, config_dir, cli):
    cfg = config_dir(["loyalty", "perks"])
    before = (cfg / "dovetail.yaml").read_bytes()
    result = cli(cfg, "plugins", "disable", "loyalty")
    assert result.exit_code != 0
    assert "perks" in result.output and "depends on it" in result.output
    assert (cfg / "dovetail.yaml").read_bytes() == before
    result = cli(cfg, "plugins", "disable", "loyalty", "--dry-run")
    assert result.exit_code != 0 and "perks" in result.output


def test_enable_with_a_missing_dependency_is_refused_file_unchanged(site, config_dir, cli):
    cfg = config_dir([])
    before = (cfg / "dovetail.yaml").read_bytes()
    result = cli(cfg, "plugins", "enable", "perks")
    assert result.exit_code != 0
    assert "loyalty" in result.output and "not enabled" in result.output
    assert (cfg / "dovetail.yaml").read_bytes() == before
    result = cli(cfg, "plugins", "enable", "nosuch")
    assert result.exit_code != 0 and "no plugin named 'nosuch'" in result.output
    assert (cfg / "dovetail.yaml").read_bytes() == before


def test_enable_disable_edit_only_the_list_and_keep_comments(site, config_dir, cli):
    cfg = config_dir(["loyalty"], extra="settings: {}  # per-plugin settings\n")
    path = cfg / "dovetail.yaml"
    original = path.read_text()
    assert cli(cfg, "plugins", "enable", "perks").exit_code == 0
    text = path.read_text()
    assert text == original.replace("    - loyalty\n", "    - loyalty\n    - perks\n")
    assert cli(cfg, "plugins", "enable", "perks").output.startswith("Plugin 'perks' is already enabled")
    assert cli(cfg, "plugins", "disable", "perks").exit_code == 0
    assert cli(cfg, "plugins", "disable", "loyalty").exit_code == 0
    assert "# test instance" in path.read_text() and "# per-plugin settings" in path.read_text()
    result = cli(cfg, "plugins", "list")
    assert [ln.split()[2] for ln in result.output.splitlines() if ln.split()[:1] in (["loyalty"], ["perks"])] \
        == ["no", "no"]
    assert cli(cfg, "plugins", "enable", "loyalty").exit_code == 0
    # an emptied block list becomes a flow list; everything else is as it was
    assert path.read_text() == original.replace("  enabled:\n    - loyalty\n", "  enabled: [loyalty]\n")


def test_dry_run_prints_the_impact_and_changes_nothing(site, config_dir, cli):
    cfg = config_dir(["loyalty"])
    assert cli(cfg, "db", "upgrade").exit_code == 0
    assert cli(cfg, "users", "create", "boss", "--role", "admin", "--password-stdin",
               input="a-long-password\n").exit_code == 0
    before = (cfg / "dovetail.yaml").read_bytes()
    result = cli(cfg, "plugins", "disable", "loyalty", "--dry-run")
    assert result.exit_code == 0, result.output
    out = result.output
    for expected in ("GET,POST /api/v1/loyalty/members", "GET /loyalty/", "loyalty.members",
                     "dovetail loyalty", "loyalty.member.read", "loyalty.member.write",
                     "loyalty_member (0 rows)", "Nothing was changed."):
        assert expected in out, (expected, out)
    assert (cfg / "dovetail.yaml").read_bytes() == before


def test_info_lists_manifest_and_contributions(site, config_dir, cli):
    cfg = config_dir([])
    result = cli(cfg, "plugins", "info", "loyalty")
    assert result.exit_code == 0, result.output
    for expected in ("version: 0.3.0", "enabled: no", "required by: perks", "/api/v1/loyalty/members",
                     "loyalty.member.write", "dovetail loyalty", "loyalty_member", "register_blueprints"):
        assert expected in result.output, (expected, result.output)


@pytest.mark.parametrize("text,new,expected", [
    ("plugins:\n  enabled: [a, b]  # kept\nlocale: en\n", ["a"], "plugins:\n  enabled: [a]  # kept\nlocale: en\n"),
    ("plugins:\n  enabled: []\n", ["a"], "plugins:\n  enabled: [a]\n"),
    ("plugins:\n  enabled:\n  - a\n  - b  # b\n", ["a", "c"], "plugins:\n  enabled:\n  - a\n  - c\n"),
    ("plugins:\n  enabled:\n    - a  # only\nlocale: en\n", [], "plugins:\n  enabled: []\nlocale: en\n"),
    ("plugins:\n  enabled:\nlocale: en\n", ["z"], "plugins:\n  enabled: [z]\nlocale: en\n"),
    ("locale: en\n", ["z"], "locale: en\nplugins:\n  enabled:\n    - z\n"),
    ("plugins:\n  other: 1\n", ["z"], "plugins:\n  enabled: [z]\n  other: 1\n"),
])
def test_textual_edit_of_the_enabled_list(text, new, expected):
    assert edit_enabled_text(text, new) == expected


def test_a_broken_config_file_is_reported_and_left_alone(site, config_dir, cli):
    cfg = config_dir(["loyalty"])
    path = cfg / "dovetail.yaml"
    path.write_text(path.read_text() + "locale: [unclosed\n")
    before = path.read_bytes()
    result = cli(cfg, "plugins", "enable", "perks")
    assert result.exit_code == 1
    assert "dovetail.yaml:" in result.output and "YAML syntax" in result.output
    assert path.read_bytes() == before
