"""The small data objects plugins return from hooks.

Plugins never mutate core registries; they return these and the core gathers,
checks and freezes them once at start-up (see :mod:`core.plugins`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import click


@dataclass(frozen=True)
class PluginManifest:
    """What a plugin declares about itself (Tryton's ``tryton.cfg``, in Python).

    ``depends`` must be enabled for this plugin to start; ``optional`` are used when
    enabled (through hooks) and never required. ``hookspecs`` is a module holding the
    plugin's own hook specifications, which other plugins may implement with
    ``@hookimpl(optionalhook=True)``. ``settings_schema`` is a marshmallow schema class
    for the plugin's section of ``dovetail.yaml``.
    """

    name: str
    version: str
    description: str = ""
    depends: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    hookspecs: Any = None
    settings_schema: Any = None
    migrations: str | None = None  # path to the plugin's Alembic versions folder


@dataclass(frozen=True)
class Permission:
    """A permission a plugin declares; named ``<plugin>.<thing>.<action>``."""

    name: str
    description: str = ""


@dataclass(frozen=True)
class MenuItem:
    """A navigation entry; shown only to users holding ``permission``."""

    key: str
    label: str  # a message id translated with Flask-Babel (English source text)
    endpoint: str
    permission: str | None = None
    order: int = 100
    icon: str = ""


@dataclass(frozen=True)
class CliCommand:
    """A click command a plugin adds, at top level or under ``group`` (``import``, ``export``)."""

    command: click.Command
    group: str | None = None


@dataclass(frozen=True)
class WorkflowAction:
    """A named action a workflow transition may run: ``inventory.reserve``.

    ``func(record, ctx)`` runs inside the transition's transaction; raising any
    :class:`core.errors.DovetailError` rolls the whole transition back.
    ``entities`` restricts the action to some entity names (empty: any).
    """

    name: str
    func: Callable[..., Any]
    description: str = ""
    entities: tuple[str, ...] = ()


@dataclass(frozen=True)
class WorkflowEntity:
    """An entity a workflow may drive: its model, state field and guard context.

    ``context(record)`` returns plain read-only data for guard expressions, keyed by
    the names in ``context_names`` (the check refuses any other name).
    ``default_workflow`` is the built-in definition (a dict shaped like the YAML file)
    used when no workflow file overrides it. ``marks`` are the meanings a transition of
    this entity may declare (``marks: [cancelled]``) and the owning plugin acts on; the
    workflow check refuses any other mark.
    """

    name: str
    model: Any
    state_field: str
    context: Callable[[Any], Mapping[str, Any]]
    context_names: Mapping[str, Sequence[str]]
    permission_prefix: str
    default_workflow: Mapping[str, Any] | None = None
    get_record: Callable[[int], Any] | None = None
    label: Callable[[Any], str] | None = None
    marks: Mapping[str, str] = field(default_factory=dict)  # mark -> what it means (docs, hints)


@dataclass(frozen=True)
class CustomFieldEntity:
    """An entity whose records carry admin-defined custom fields in a JSON column."""

    name: str
    model: Any
    column: str = "custom"
    permission_prefix: str = ""


@dataclass(frozen=True)
class Report:
    """A report a plugin offers; ``run(params, user)`` returns ``(columns, rows)``.

    A user needs ``permission`` and every one of ``extra_permissions`` to see and run it
    (a profit report needs the sales-report permission and the right to see costs).
    """

    key: str
    title: str
    permission: str
    run: Callable[..., tuple[list[str], list[Sequence[Any]]]]
    params: Mapping[str, str] = field(default_factory=dict)
    extra_permissions: tuple[str, ...] = ()
    #: what the figures mean (a message id: which orders count, how they are dated); shown
    #: on the report page and returned by the API, so every report states its definitions
    description: str = ""

    @property
    def permissions(self) -> tuple[str, ...]:
        return (self.permission, *self.extra_permissions)


@dataclass(frozen=True)
class EventType:
    """A string event type a plugin emits for integrations (webhooks, logs).

    Named ``<plugin>.<thing>.<what happened>`` (``orders.order.created``); the payload is
    plain data. Plugins react to each other through typed hooks, not through these.
    """

    name: str
    description: str = ""


@dataclass(frozen=True)
class Event:
    """An emitted event of a declared :class:`EventType`, with its plain-data payload."""

    name: str
    payload: Mapping[str, Any]
    actor_id: int | None = None


@dataclass(frozen=True)
class OutboxKind:
    """A kind of outbox message a plugin handles: ``crm.purchase.stats``.

    ``handler(session, payload)`` runs after the business transaction committed, in its own
    transaction on ``session`` (a plain SQLAlchemy session; use it, not ``db.session``).
    Delivery is at least once: a handler must be idempotent for effects outside that
    transaction (a crash after a webhook was sent and before the commit sends it again).
    Raising retries the message with backoff, up to ``max_attempts``.
    """

    name: str
    handler: Callable[[Any, Mapping[str, Any]], Any]
    description: str = ""
    max_attempts: int = 10


@dataclass(frozen=True)
class Job:
    """A background job run by ``dovetail worker`` (on RQ when Redis is configured, else inline).

    ``func(**kwargs)`` runs inside an application context and commits its own work.
    ``every`` (seconds) makes it a scheduled job the worker runs periodically; ``None``:
    only when enqueued (:func:`core.jobs.enqueue`).
    """

    name: str
    func: Callable[..., Any]
    every: int | None = None
    description: str = ""
