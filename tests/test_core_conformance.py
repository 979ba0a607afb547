"""The conformance suite applied to the core itself and to the external test plugin,
and shown to catch what it promises to catch."""

from __future__ import annotations

import types

import pytest
from sqlalchemy import inspect

from core import hookimpl, hookspecs, migrate
from core.db import db
from core.registry import MenuItem, Permission, PluginManifest
from core.state import dovetail
from core.testing import conformance
from core.testing.conformance import PluginConformance


def test_every_core_hookspec_is_documented():
    specs = conformance._marked(hookspecs, "dovetail_spec")
    assert len(specs) >= 15
    missing = [name for name, (fn, _o) in specs.items() if len((fn.__doc__ or "").strip()) < 30]
    assert not missing


def test_core_permissions_used_are_declared(app):
    from pathlib import Path

    import core

    used = conformance.used_permissions(Path(core.__file__).parent, True, {"core"})
    registry = dovetail(app).registry
    declared = registry.permissions
    not_perms = conformance.not_permissions(registry)  # e.g. event types such as core.workflow.transitioned
    undeclared = {p: where for p, where in used.items() if p not in declared and p not in not_perms}
    assert not undeclared
    assert {"core.user.manage", "core.audit.read", "core.plugin.read"} <= set(used)


def test_core_migrations_match_the_models_and_downgrade(dovetail_config_dir, dovetail_database_url):
    with conformance.built_app([], config_dir=dovetail_config_dir, database_url=dovetail_database_url,
                               tables=False) as app:
        migrate.upgrade_all(app)
        assert migrate.pending_diff(app, "core") == []
        core_tables = {t.name for t in dovetail(app).registry.tables_of("core")}
        with db.engine.connect() as conn:
            assert core_tables <= set(inspect(conn).get_table_names())
        migrate.downgrade(app, "core", "base")
        with db.engine.connect() as conn:
            assert not core_tables & set(inspect(conn).get_table_names())


class TestLoyaltyConformance(PluginConformance):
    """The external plugin, installed through its entry point, passes the suite."""

    plugin = "loyalty"

    @pytest.fixture(autouse=True)
    def _installed(self, loyalty_on_path):
        return loyalty_on_path


class TestProbeConformance(PluginConformance):
    plugin = "probe"

    @pytest.fixture
    def dovetail_extra_plugins(self):
        return {"probe": "core_probe_plugin"}

    def test_migrations_apply_match_and_downgrade(self, conformance):
        pytest.skip("the probe test plugin has no migrations on purpose (tables via create_tables)")


def _bad_module(**hooks):
    mod = types.ModuleType("bad_conformance_plugin")

    @hookimpl
    def plugin_manifest():
        return PluginManifest(name="badp", version="one", depends=("badp",))

    mod.plugin_manifest = plugin_manifest
    for name, fn in hooks.items():
        setattr(mod, name, hookimpl(fn))
    return mod


def test_the_suite_catches_bad_manifest_unknown_hooks_and_undeclared_permissions(tmp_path):
    from core.plugins import Available, discover

    mod = _bad_module(register_permissions=lambda: [Permission("badp.thing.read")],
                      register_menu_items=lambda: [MenuItem("badp.x", "X", "core_web.index", "badp.thing.write")])
    mod.order_reserve = hookimpl(optionalhook=True)(lambda order, lines: None)
    mod.register_permisions = hookimpl(lambda: [])
    available = dict(discover())
    available["badp"] = Available("badp", "explicit", mod, mod.plugin_manifest())
    problems = conformance.manifest_problems("badp", available)
    assert any("version 'one'" in p for p in problems)
    assert any("names the plugin itself" in p for p in problems)
    problems = conformance.hook_problems("badp", available)
    assert any("'register_permisions'" in p for p in problems), problems

    class Registry:
        permissions = {"badp.thing.read": (Permission("badp.thing.read"), "badp")}
        actions, reports, workflow_entities, enabled_names = {}, {}, {}, ["badp"]
        event_types = {"badp.thing.happened": (None, "badp")}  # a declared event type, not a permission
        menu = [(MenuItem("badp.x", "X", "core_web.index", "badp.thing.write"), "badp")]

    src = tmp_path / "badp_pkg"
    src.mkdir()
    (src / "__init__.py").write_text("")
    (src / "plugin.py").write_text('"""badp.thing.docstring"""\nNEEDED = "badp.thing.delete"\n'
                                   'OK = "badp.thing.read"\nEVENT = "badp.thing.happened"\n')
    (src / "page.html").write_text("{% if has_permission('badp.thing.export') %}x{% endif %}\n")
    mod.__file__ = str(src / "plugin.py")
    mod.__package__ = "badp_pkg"
    mod.__name__ = "badp_pkg.plugin"
    problems = conformance.permission_problems("badp", available, Registry)
    text = "\n".join(problems)
    assert "'badp.thing.delete' (plugin.py:2)" in text and "'badp.thing.export' (page.html:1)" in text
    assert "menu entry 'badp.x' needs undeclared permission 'badp.thing.write'" in text
    assert "badp.thing.read'" not in text and "docstring" not in text and "happened" not in text


def test_conformance_tests_builds_the_class():
    cls = conformance.conformance_tests("crm", enabled="all")
    assert issubclass(cls, PluginConformance) and cls.plugin == "crm" and cls.enabled == "all"
    assert cls.__name__.startswith("Test")
