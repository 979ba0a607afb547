"""Every contribution kind is checked for collisions naming the plugin at fault, a misspelt
order hook stops start-up, undeclared events raise in tests, and the registry is frozen."""

from __future__ import annotations

import click
import pytest
from flask import Blueprint
from test_core_startup import build, module, refused

from core.events import UndeclaredEvent, emit
from core.registry import CliCommand, EventType, MenuItem
from core.state import dovetail


def _cmd(name: str) -> click.Command:
    return click.Command(name, callback=lambda: None)


def test_cli_commands_may_not_shadow_core_or_each_other(tmp_path):
    shadow = module("sh1", register_commands=lambda: [CliCommand(_cmd("init"))])
    exc = refused(tmp_path, ["sh1"], {"sh1": shadow})
    assert exc.plugin == "sh1" and "'init' shadows a core command" in exc.message
    a = module("sha", register_commands=lambda: [CliCommand(_cmd("sync"), group="import")])
    b = module("shb", register_commands=lambda: [CliCommand(_cmd("sync"), group="import")])
    exc = refused(tmp_path, ["sha", "shb"], {"sha": a, "shb": b})
    other = ({"sha", "shb"} - {exc.plugin}).pop()
    assert "'import sync' already added" in exc.message and other in exc.hint


def test_web_blueprints_menu_keys_and_event_types_collide_by_name(tmp_path):
    w1 = module("wb1", register_web_blueprints=lambda: [Blueprint("shared_web", __name__)])
    w2 = module("wb2", register_web_blueprints=lambda: [Blueprint("shared_web", __name__)])
    exc = refused(tmp_path, ["wb1", "wb2"], {"wb1": w1, "wb2": w2})
    other = ({"wb1", "wb2"} - {exc.plugin}).pop()
    assert "'shared_web' already claimed" in exc.message and other in exc.hint
    core_bp = module("wb3", register_web_blueprints=lambda: [Blueprint("core_web", __name__)])
    assert refused(tmp_path, ["wb3"], {"wb3": core_bp}).plugin == "wb3"
    m = module("mk1", register_menu_items=lambda: [MenuItem("mk1.x", "X", "x.y"), MenuItem("mk1.x", "Y", "x.z")])
    exc = refused(tmp_path, ["mk1"], {"mk1": m})
    assert exc.plugin == "mk1" and "duplicate menu key 'mk1.x'" in exc.message
    e1 = module("ev1", register_event_types=lambda: [EventType("ev1.thing.happened")])
    e2 = module("ev2", register_event_types=lambda: [EventType("ev1.thing.happened")])
    exc = refused(tmp_path, ["ev2"], {"ev2": e2})
    assert exc.plugin == "ev2" and "outside the plugin's namespace" in exc.message
    e3 = module("ev3", register_event_types=lambda: [EventType("ev3.a"), EventType("ev3.a")])
    exc = refused(tmp_path, ["ev1", "ev3"], {"ev1": e1, "ev3": e3})
    assert exc.plugin == "ev3" and "duplicate event type 'ev3.a'" in exc.message


def test_misspelt_order_hook_fails_to_start_naming_it(tmp_path):
    typo = module("typo_orders", order_canceled=lambda order: None)
    exc = refused(tmp_path, ["typo_orders"], {"typo_orders": typo})
    assert exc.plugin == "typo_orders" and "order_canceled" in exc.message


def test_undeclared_event_raises_in_tests_and_registry_is_frozen(tmp_path):
    ok = module("evok", register_event_types=lambda: [EventType("evok.thing.done")])
    app = build(tmp_path, ["evok"], {"evok": ok})
    with app.app_context():
        assert emit("evok.thing.done", n=1).payload == {"n": 1}
        with pytest.raises(UndeclaredEvent, match="evok.thing.undeclared"):
            emit("evok.thing.undeclared")
        reg = dovetail(app).registry
        with pytest.raises(TypeError):
            reg.event_types["x.y"] = None  # type: ignore[index]
        with pytest.raises(AttributeError):
            reg.menu = []
        assert isinstance(reg.menu, tuple)
