"""The customfields plugin: manifest and hook implementations (thin; see the modules)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core import hookimpl
from core.registry import CliCommand, MenuItem, Permission, PluginManifest


@hookimpl
def plugin_manifest():
    return PluginManifest(
        name="customfields", version="1.0.0",
        description="Admin-defined custom fields on customers, orders, products and other entities",
        migrations=str(Path(__file__).parent / "migrations" / "versions"))


@hookimpl
def register_models():
    from plugins.customfields.models import AcceptedVersion

    return [AcceptedVersion]


@hookimpl
def register_permissions():
    return [
        Permission("customfields.field.read", "See custom field definitions"),
        Permission("customfields.field.write", "Add, change and hide custom fields; read and write every field"),
    ]


@hookimpl
def register_blueprints():
    from plugins.customfields.api import blp

    return [blp]


@hookimpl
def register_web_blueprints():
    from plugins.customfields.web import bp

    return [bp]


@hookimpl
def register_menu_items():
    return [MenuItem("customfields.fields", "Custom fields", "customfields_web.index",
                     "customfields.field.read", order=930)]


@hookimpl
def register_commands():
    from plugins.customfields.cli import fields_group

    return [CliCommand(fields_group)]


@hookimpl
def app_ready(app: Any) -> None:
    from plugins.customfields import store

    store.install(app)


@hookimpl
def register_config_parts(app: Any) -> Any:
    from plugins.customfields import store

    return [store.config_part()]


@hookimpl
def custom_fields_schema(entity: str, user: Any) -> Any:
    from plugins.customfields.services import schema_for

    return schema_for(entity, user)


@hookimpl
def custom_fields_dump(entity: str, values: Any, user: Any) -> Any:
    from plugins.customfields.services import dump_values

    return dump_values(entity, values, user)


@hookimpl
def custom_fields_filter(entity: str, model: Any, query: Any, params: Any) -> Any:
    from plugins.customfields.services import filter_query

    return filter_query(entity, model, query, params)


@hookimpl
def custom_fields_columns(entity: str, user: Any) -> Any:
    from plugins.customfields.services import columns

    return columns(entity, user)


@hookimpl
def amend_openapi(spec: dict) -> None:
    from plugins.customfields.openapi import amend

    amend(spec)
