"""Broken config files a battery threw at Dovetail: each refused with one located line, fast.

Empty or wrongly shaped files, YAML aliases (a "billion laughs" bomb), invalid UTF-8,
control characters, deep nesting, impossible dates, keys that read as true/false.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from conftest import REPO, write_config

from core.config import load_config, parse_yaml
from core.errors import ConfigError

HINT = "list the enabled plugins"


def issues_of(cfg) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    return [str(i) for i in info.value.issues]


@pytest.mark.parametrize("text,where,words", [
    ("", "1:1", "the file is empty"),
    ("# plugins: nothing yet\n\n", "1:1", "the file is empty"),
    ("- crm\n- catalog\n", "1:1", "the file must be a mapping of keys, not a list"),
    ("locale: en\n", "1:1", "plugins.enabled is missing"),
    ("locale: en\nplugins:\n  other: 1\n", "2:1", "plugins.enabled is missing"),
])
def test_a_main_file_without_plugins_enabled_is_refused(tmp_path, text, where, words):
    cfg = write_config(tmp_path / "config", [])
    (cfg / "dovetail.yaml").write_text(text)
    found = issues_of(cfg)
    assert len(found) == 1, found
    assert found[0].startswith(f"{cfg / 'dovetail.yaml'}:{where}: error: {words}"), found
    assert HINT in found[0]


def test_an_explicit_empty_list_still_means_no_plugins(tmp_path):
    cfg = write_config(tmp_path / "config", [])
    assert load_config(cfg).enabled == ()


def test_the_plugins_given_by_the_caller_need_no_list_in_the_file(tmp_path):
    cfg = write_config(tmp_path / "config", [])
    (cfg / "dovetail.yaml").write_text("locale: en\n")
    assert load_config(cfg, overrides={"enabled": ["crm"]}).enabled == ("crm",)


def test_an_empty_main_file_stops_the_cli_with_one_located_line(config_dir, cli):
    cfg = config_dir([])
    (cfg / "dovetail.yaml").write_text("")
    for args in (("users", "list"), ("plugins", "list"), ("roles", "list")):
        result = cli(cfg, *args)
        assert result.exit_code == 1, (args, result.output)
        last = result.output.strip().splitlines()[-1]
        assert last.endswith(f"dovetail.yaml:1:1: error: the file is empty (hint: {HINT}, e.g. 'plugins: "
                             "{enabled: [crm, catalog]}' ('enabled: []' for none); 'dovetail plugins list' "
                             "shows what is installed)"), (args, result.output)


@pytest.mark.parametrize("roles,where,words", [
    ("", "1:1", "the file is empty (hint: define the roles"),
    ("# no roles yet\n", "1:1", "the file is empty (hint: define the roles"),
    ("- admin\n", "1:1", "the file must be a mapping of keys, not a list"),
    ("roles: {}\n", "1:8", "no roles are defined"),
])
def test_an_empty_or_misshapen_roles_file_is_refused(tmp_path, roles, where, words):
    cfg = write_config(tmp_path / "config", [], roles=roles)
    found = issues_of(cfg)
    assert len(found) == 1, found
    assert found[0].startswith(f"{cfg / 'roles.yaml'}:{where}: error: {words}"), found


# ---------------------------------------------------------------------------
# The loader itself
# ---------------------------------------------------------------------------

BOMB = ('plugins:\n  enabled: []\nlol: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
        + "".join(f"l{i}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]\n" for i in range(9)))


def test_aliases_are_refused_where_they_stand():
    with pytest.raises(ConfigError) as info:
        parse_yaml("base: &base {scope: all}\nrep:\n  <<: *base\n", "roles.yaml")
    assert [str(i) for i in info.value.issues] == [
        "roles.yaml:3:7: error: YAML: alias '*base' is not allowed in config files "
        "(hint: write the value out in full)"]


def test_an_alias_bomb_is_refused_at_once_by_plugins_list(config_dir):
    cfg = config_dir([])
    (cfg / "dovetail.yaml").write_text(BOMB)
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", "from core.cli import main; main()", "--config", str(cfg),
                           "plugins", "list"], capture_output=True, text=True, cwd=str(REPO), timeout=60)
    assert time.monotonic() - started < 30
    assert proc.returncode == 1, proc
    assert proc.stderr.splitlines() == [f"{cfg / 'dovetail.yaml'}:4:9: error: YAML: alias '*a' is not "
                                        "allowed in config files (hint: write the value out in full)"]


def test_invalid_utf8_is_located_at_the_bad_byte(config_dir, cli):
    cfg = config_dir(["crm"])
    path = cfg / "dovetail.yaml"
    path.write_bytes(path.read_bytes() + "timezone: 上海\n".encode() + b"currency: CN\xff\n")
    line = len(path.read_bytes().splitlines())
    for args in (("plugins", "list"), ("users", "list"), ("plugins", "enable", "catalog")):
        result = cli(cfg, *args)
        assert result.exit_code == 1, (args, result.output)
        assert result.output.strip().splitlines()[-1] == (
            f"{path}:{line}:13: error: invalid UTF-8 (byte 0xff): save the file as UTF-8"), args


def test_plugins_list_exits_1_on_a_broken_file_after_listing(config_dir, cli):
    cfg = config_dir(["crm"])
    path = cfg / "dovetail.yaml"
    path.write_text(path.read_text() + "locale: [en\n")
    result = cli(cfg, "plugins", "list")
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines[0].split() == ["PLUGIN", "VERSION", "ENABLED", "DEPENDS"]
    assert "crm" in result.output and "Traceback" not in result.output
    assert lines[-1].startswith(f"{path}:") and "error: YAML syntax" in lines[-1]
    # the same for a file that parses but is invalid (what start-up would refuse)
    path.write_text(path.read_text().replace("locale: [en\n", "local: en\n"))
    result = cli(cfg, "plugins", "list")
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1].endswith("error: unknown key 'local' in top level")


@pytest.mark.parametrize("text,expected", [
    ("a: 1\nb: x\x01y\n", "f.yaml:2:5: error: character U+0001 is not allowed in YAML"),
    ("a: " + "[" * 200 + "]" * 200 + "\n", "f.yaml:1:67: error: YAML: nested more than 64 levels deep"),
    ("since: 2026-13-45\n", "f.yaml:1:8: error: YAML value: cannot read '2026-13-45': month must be in 1..12"),
    ("roles:\n  on: {}\n", "f.yaml:2:3: error: key 'on' reads as true (hint: quote it: 'on')"),
])
def test_hostile_or_odd_yaml_gives_a_located_error_not_a_traceback(text, expected):
    with pytest.raises(ConfigError) as info:
        parse_yaml(text, "f.yaml")
    found = [str(i) for i in info.value.issues]
    assert len(found) == 1 and found[0].startswith(expected), found


def test_the_shipped_config_files_still_load():
    cfg = load_config(REPO / "config")
    assert "crm" in cfg.enabled and "admin" in cfg.roles


def test_every_config_yaml_goes_through_the_one_loader():
    """No module of core/ or plugins/ parses YAML with its own loader (the config loader refuses
    aliases and caps nesting; a second loader would not)."""
    offenders = []
    for path in [*REPO.joinpath("core").rglob("*.py"), *REPO.joinpath("plugins").rglob("*.py")]:
        if "tests" in path.parts or path.name == "config.py" and path.parent.name == "core":
            continue
        text = path.read_text(encoding="utf-8")
        for needle in ("yaml.SafeLoader(", "yaml.load(", "yaml.compose(", "yaml.Loader", "yaml.full_load",
                       "yaml.unsafe_load"):
            if needle in text:
                offenders.append(f"{path.relative_to(REPO)}: {needle}")
    assert offenders == []

