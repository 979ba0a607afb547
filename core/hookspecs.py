"""Every core hook, in one place.

A plugin implements a hook by defining a function of the same name decorated with
``@core.hookimpl``; arguments may be a subset of the spec's, never others (pluggy
refuses a mismatched signature at start-up and the core names the plugin).

Plugins add their own specifications through ``PluginManifest.hookspecs`` (the
orders plugin defines the hooks inventory and marketing implement). Implement such a
hook with ``@hookimpl(optionalhook=True)`` so your plugin still starts when the
plugin owning the spec is disabled.

Start-up hooks return lists of the data objects in :mod:`core.registry`; the core
collects them once, rejects duplicates and wrong types, and names the plugin at fault.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core import hookspec
from core.registry import (
    CliCommand,
    CustomFieldEntity,
    Event,
    EventType,
    Job,
    MenuItem,
    OutboxKind,
    Permission,
    PluginManifest,
    Report,
    WorkflowAction,
    WorkflowEntity,
)

# ---------------------------------------------------------------------------
# Plugin metadata (called on discovery, before dependency resolution)
# ---------------------------------------------------------------------------


@hookspec(firstresult=True)
def plugin_manifest() -> PluginManifest:
    """Declare the plugin: name, version, ``depends``, ``optional``, own hookspecs,
    settings schema and migrations folder.

    Called once per discovered plugin, on that plugin alone, before the enabled set is
    resolved; the result decides load order. Stops at the first non-None result.
    """


# ---------------------------------------------------------------------------
# Start-up registration (called once per app, in dependency order)
# ---------------------------------------------------------------------------


@hookspec
def register_models() -> list[type]:
    """Return the SQLAlchemy model classes this plugin owns.

    Their tables are created by ``dovetail db upgrade`` (through the plugin's
    migrations) and kept when the plugin is disabled. Table names must start with
    ``<plugin>_``.
    """


@hookspec
def register_permissions() -> list[Permission]:
    """Return the permissions this plugin checks, named ``<plugin>.<thing>.<action>``.

    ``config/roles.yaml`` may grant only declared permissions; a duplicate name across
    plugins stops start-up.
    """


@hookspec
def register_blueprints() -> list[Any]:
    """Return flask-smorest ``Blueprint`` objects; mounted under ``/api/v1``.

    Each blueprint's ``url_prefix`` is the API resource the plugin claims
    (``/customers``); two plugins claiming the same prefix stop start-up.
    """


@hookspec
def register_web_blueprints() -> list[Any]:
    """Return plain Flask ``Blueprint`` objects serving the plugin's web pages."""


@hookspec
def register_menu_items() -> list[MenuItem]:
    """Return navigation entries; each is shown only to users holding its permission."""


@hookspec
def register_commands() -> list[CliCommand]:
    """Return click commands added to the ``dovetail`` CLI (top level or under a group).

    Commands run inside an application context with the configured plugins loaded.
    """


@hookspec
def register_workflow_actions() -> list[WorkflowAction]:
    """Return actions a workflow transition may name (``inventory.reserve``).

    Action names start with the plugin name. An action of a disabled plugin is
    unknown, so a workflow naming it fails ``dovetail workflow check``.
    """


@hookspec
def register_workflow_entities() -> list[WorkflowEntity]:
    """Return entities a workflow may drive, with their state field and guard context."""


@hookspec
def register_custom_field_entities() -> list[CustomFieldEntity]:
    """Return entities whose records accept admin-defined custom fields."""


@hookspec
def register_reports() -> list[Report]:
    """Return report definitions shown on the reports pages and exportable as CSV/XLSX.

    A user sees and runs a report only with its ``permission`` and every one of its
    ``extra_permissions`` (a report built on costs adds ``catalog.product.read_cost``).
    """


@hookspec
def register_event_types() -> list[EventType]:
    """Return the string event types this plugin emits, named ``<plugin>.<thing>.<what>``.

    Only declared types may be emitted (:func:`core.events.emit` raises in tests and logs an
    error in production otherwise); a name declared twice stops start-up naming both plugins.
    """


@hookspec
def register_outbox_kinds() -> list[OutboxKind]:
    """Return the outbox message kinds this plugin handles, named ``<plugin>.<what>``.

    Business code writes a message with :func:`core.outbox.enqueue` in its own transaction;
    the handler runs after commit (at least once, in its own transaction). A name declared
    twice stops start-up naming both plugins; enqueueing an undeclared kind raises.
    """


@hookspec
def register_jobs() -> list[Job]:
    """Return background jobs this plugin offers, named ``<plugin>.<what>``; those with ``every``
    run on a schedule in ``dovetail worker`` (low-stock and follow-up reminders).

    A name declared twice stops start-up naming both plugins.
    """


@hookspec
def app_ready(app: Any) -> None:
    """Called once after every plugin is registered and the app is fully built.

    Use it to load a plugin's own config files (workflows, custom fields) and to
    raise :class:`core.errors.ConfigError` when they are wrong.
    """


@hookspec
def register_config_parts(app: Any) -> list[Any]:
    """Return the run-time config files this plugin reads, as :class:`core.activation.ConfigPart`
    objects (each with a unique ``name``).

    Called once per app, after ``app_ready``. ``dovetail config apply`` checks every part's
    documents, lets each write its database changes in one transaction and records one
    version; every worker process then builds each part from that version's texts and
    installs it. A part never reads its files per request.
    """


# ---------------------------------------------------------------------------
# Request time: custom fields and workflows (implemented by those plugins)
# ---------------------------------------------------------------------------


@hookspec(firstresult=True)
def custom_fields_schema(entity: str, user: Any) -> Any:
    """Return a marshmallow ``Schema`` instance validating ``custom`` for ``entity``.

    ``user`` decides which fields are writable. Stops at the first non-None result;
    with no implementation, records accept no custom values.
    """


@hookspec(firstresult=True)
def custom_fields_filter(entity: str, model: Any, query: Any, params: Mapping[str, str]) -> Any:
    """Apply ``custom.<key>`` filters from ``params`` to ``query`` and return it.

    Must use bound parameters only. Stops at the first non-None result.
    """


@hookspec(firstresult=True)
def custom_fields_dump(entity: str, values: Mapping[str, Any], user: Any) -> Any:
    """Return the custom values ``user`` may read (hidden or removed fields left out)."""


@hookspec(firstresult=True)
def custom_fields_columns(entity: str, user: Any) -> Any:
    """Return ``[(key, label)]`` of custom fields shown in lists and exports."""


@hookspec
def amend_openapi(spec: dict[str, Any]) -> None:
    """Amend the OpenAPI document (a fresh dict per request) before it is served.

    The customfields plugin adds each entity's custom fields to its schemas here, so
    the document follows config changes without a restart.
    """


@hookspec(firstresult=True)
def workflow_definition(entity: str) -> Any:
    """Return the workflow in force for ``entity`` (a :class:`core.statemachine.Machine`).

    The workflows plugin answers from ``config/workflows/*.yaml``; with no answer the
    entity's built-in ``default_workflow`` is used. Stops at the first non-None result.
    """


# ---------------------------------------------------------------------------
# Record lifecycle
# ---------------------------------------------------------------------------


@hookspec
def workflow_transitioned(entity: str, record: Any, transition: str, from_state: str,
                          to_state: str, marks: tuple[str, ...], user: Any) -> None:
    """A workflow transition of ``record`` (an ``entity`` record) just happened.

    Called by :func:`core.statemachine.perform` inside the transition's savepoint, after
    the state change, the actions and the history row: raising rolls all of it back.
    ``transition`` is the key in the workflow file, ``marks`` what it means (declared as
    ``marks:`` there; react to these, not to names admins may rename), ``user`` the actor.
    The plugin owning ``entity`` implements it (check ``entity`` first) and re-announces
    the change through its own typed hooks (orders: ``order_status_changed``).
    Return nothing.
    """


# ---------------------------------------------------------------------------
# Events (integrations only)
# ---------------------------------------------------------------------------


@hookspec
def on_event(event: Event) -> None:
    """Receive a string event of a declared type (``orders.order.created`` …).

    For integrations that forward events (webhooks, logs); plugins react to each other
    through typed hooks instead. Called synchronously inside the transaction that emitted
    it: raising rolls the whole change back. Never swallow your own errors.
    """


# ---------------------------------------------------------------------------
# Demo data
# ---------------------------------------------------------------------------


@hookspec
def populate_demo(scale: float, seed: int) -> None:
    """Fill this plugin's tables with realistic demo data (``dovetail demo``).

    Called in dependency order inside one application context; ``scale`` 1.0 is the
    documented size (1k customers, 100 products, 5k orders), tests pass less.
    Commit your own work.
    """
