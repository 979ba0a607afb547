"""The conformance suite applied to the core itself and to the external test plugin,
and shown to catch what it promises to catch."""

from __future__ import annotations

import types
from typing import Any

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


def _drift_module(blueprint_class: type, wrap: Any) -> types.ModuleType:
    """A plugin whose list and detail answers differ from their documented schema: an
    undocumented field (``secret``) and a number sent as text (``qty``)."""
    from flask.views import MethodView
    from marshmallow import Schema, fields

    class ItemOut(Schema):
        id = fields.Integer()
        name = fields.String()
        qty = fields.Integer()

    class ItemPage(Schema):
        items = fields.List(fields.Nested(ItemOut))

    blp = blueprint_class("drift", "drift_plugin", url_prefix="/drift", description="Drifting answers")
    rows = [{"id": 1, "name": "one", "qty": "3", "secret": "s1"}, {"id": 2, "name": "two", "qty": 4, "secret": "s2"}]

    @blp.route("")
    class Items(MethodView):
        @blp.response(200, ItemPage)
        def get(self):
            """List items"""
            return wrap({"items": rows})

    @blp.route("/<int:item_id>")
    class Item(MethodView):
        @blp.response(200, ItemOut)
        def get(self, item_id):
            """One item"""
            return wrap(rows[item_id - 1])

    mod = types.ModuleType("drift_plugin")
    mod.plugin_manifest = hookimpl(lambda: PluginManifest(name="drift", version="0.1"))
    mod.register_blueprints = hookimpl(lambda: [blp])
    return mod


def test_the_contract_probe_reports_route_path_and_message(dovetail_config_dir, dovetail_database_url):
    """A hand-built body sent past its schema is caught: the extra field and the wrong type,
    on the list and on a detail route reached with an id from the list, as admin and rep."""
    from flask import jsonify
    from flask_smorest import Blueprint as PlainBlueprint

    with conformance.built_app(["drift"], config_dir=dovetail_config_dir, database_url=dovetail_database_url,
                               extra={"drift": _drift_module(PlainBlueprint, jsonify)}) as app:
        problems, stats = conformance.contract_problems(app, ["drift"], demo=False)
    text = "\n".join(problems)
    assert "GET /api/v1/drift (as admin): $.items[0].qty: '3' is not of type 'integer'" in text
    assert "GET /api/v1/drift (as admin): $.items[0]: Additional properties are not allowed ('secret'" in text
    assert "GET /api/v1/drift/1 (as rep): $: Additional properties are not allowed ('secret'" in text
    assert "GET /api/v1/drift/2 (as admin)" in text
    assert stats["admin"]["checked"] == 3 and stats["admin"]["unreached"] == []


def test_a_serialized_body_is_cut_to_the_documented_fields(dovetail_config_dir, dovetail_database_url):
    """Through core.api.Blueprint the same body loses the undocumented field; the wrong type
    is still reported (the probe checks values, the Blueprint only the field list)."""
    from core.api import Blueprint, Serialized

    with conformance.built_app(["drift"], config_dir=dovetail_config_dir, database_url=dovetail_database_url,
                               extra={"drift": _drift_module(Blueprint, Serialized)}) as app:
        problems, _stats = conformance.contract_problems(app, ["drift"], demo=False)
    assert problems and all("secret" not in p for p in problems)
    assert all("qty: '3' is not of type 'integer'" in p for p in problems)


def test_closed_schemas_refuse_undocumented_fields_but_keep_open_dicts():
    doc = {"components": {"schemas": {"A": {"type": "object", "properties": {"x": {"type": "integer"}},
                                            "additionalProperties": True},
                                      "B": {"type": "object", "properties": {"custom": {"type": "object"}}}}}}
    closed = conformance.closed_schemas(doc)
    assert closed["components"]["schemas"]["A"]["additionalProperties"] is True  # stated: kept
    assert closed["components"]["schemas"]["B"]["additionalProperties"] is False
    assert "additionalProperties" not in closed["components"]["schemas"]["B"]["properties"]["custom"]
    assert "additionalProperties" not in doc["components"]["schemas"]["B"]  # the input is not changed
    schema = {"$ref": "#/components/schemas/B"}
    assert conformance.body_problems(closed, schema, {"custom": {"any": 1}}) == []
    assert conformance.body_problems(closed, schema, {"custom": {}, "y": 1}) == [
        "$: Additional properties are not allowed ('y' was unexpected)"]
