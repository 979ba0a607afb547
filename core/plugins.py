"""Plugin discovery, dependency resolution and the one plugin manager.

There is one discovery path: the ``dovetail.plugins`` entry-point group, used by the
built-in plugins and by pip-installed ones alike. Tests may add modules explicitly
(``create_app(extra_plugins=...)``). Everything a plugin registers is collected
once here, checked (duplicates, wrong types, namespaces) and frozen.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from importlib.metadata import entry_points
from types import MappingProxyType, ModuleType
from typing import Any

import click
import pluggy
from flask import Blueprint as FlaskBlueprint

from core import PROJECT, hookspecs
from core.errors import ConfigError, ConfigIssue, PluginError
from core.registry import (
    CliCommand,
    CustomFieldEntity,
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

ENTRY_POINT_GROUP = "dovetail.plugins"
CORE_NAME = "core"
#: Blueprint names the core registers itself (web pages, reports, API); plugins may not reuse them.
CORE_WEB_BLUEPRINTS = ("core_web", "core_reports")


@dataclass
class Available:
    """A discovered plugin: its module and manifest, or why it could not be loaded."""

    name: str
    source: str
    module: ModuleType | None = None
    manifest: PluginManifest | None = None
    error: str | None = None

    @property
    def loaded(self) -> PluginManifest:
        """The manifest of a plugin that loaded (every resolved plugin has one)."""
        if self.manifest is None:
            raise PluginError(self.name, self.error or "its manifest could not be read")
        return self.manifest


def _import_error_text(exc: BaseException) -> str:
    tb = traceback.extract_tb(exc.__traceback__)
    where = ""
    for frame in reversed(tb):
        if "importlib" not in frame.filename:
            where = f" at {os.path.basename(frame.filename)}:{frame.lineno}"
            break
    return f"failed to import: {type(exc).__name__}: {exc}{where}"


def read_manifest(name: str, module: ModuleType) -> PluginManifest:
    """Ask one plugin module alone for its manifest (the ``plugin_manifest`` hook)."""
    probe = pluggy.PluginManager(PROJECT)
    probe.add_hookspecs(hookspecs)
    try:
        probe.register(module, name=f"probe:{name}")
    except (pluggy.PluginValidationError, ValueError) as exc:
        raise PluginError(name, f"invalid hook implementation: {exc}",
                          "match the signature documented in core/hookspecs.py") from None
    manifest = probe.hook.plugin_manifest()
    if not isinstance(manifest, PluginManifest):
        raise PluginError(name, "does not declare a manifest",
                          "implement plugin_manifest() returning core.registry.PluginManifest")
    if manifest.name != name:
        raise PluginError(name, f"manifest names itself '{manifest.name}'",
                          "the entry-point name and manifest name must agree")
    return manifest


def discover(extra: Mapping[str, ModuleType | str] | None = None) -> dict[str, Available]:
    """Find every available plugin; import failures are recorded, not raised."""
    found: dict[str, Available] = {}
    sources: list[tuple[str, str, Any]] = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(ep, "dist", None)
        sources.append((ep.name, f"{dist.name if dist else '?'}:{ep.value}", ep.load))
    for name, mod in (extra or {}).items():
        loader = (lambda m=mod: importlib.import_module(m)) if isinstance(mod, str) else (
            lambda m=mod: m)
        sources.append((name, "explicit", loader))
    for name, source, load in sources:
        av = Available(name, source)
        try:
            av.module = load()
            av.manifest = read_manifest(name, av.module)
        except PluginError as exc:
            av.error = exc.problem + (f" ({exc.hint})" if exc.hint else "")
        except Exception as exc:  # noqa: BLE001 - any import failure is reported by name
            av.error = _import_error_text(exc)
        found[name] = av
    return found


def resolve(enabled: Iterable[str], available: Mapping[str, Available],
            config_doc: Any = None) -> list[Available]:
    """Return the enabled plugins in dependency order, or raise naming the problem."""
    enabled = list(enabled)
    seen = _check_enabled(enabled, available, config_doc)
    return [available[n] for n in _load_order(enabled, available, seen)]


def _check_enabled(enabled: list[str], available: Mapping[str, Available], config_doc: Any) -> set[str]:
    """The enabled names, each once, known, loadable and with its ``depends`` enabled; else a
    :class:`PluginError` located in dovetail.yaml when ``config_doc`` is given."""

    def where(i: int) -> str:
        if config_doc is None:
            return ""
        line, col = config_doc.mark(("plugins", "enabled", i))
        return f" ({config_doc.file}:{line}:{col})"

    seen: set[str] = set()
    for i, name in enumerate(enabled):
        if name in seen:
            raise PluginError(name, f"listed twice in plugins.enabled{where(i)}",
                              "remove the duplicate")
        seen.add(name)
        if name not in available:
            known = ", ".join(sorted(available)) or "none"
            raise PluginError(name, f"unknown plugin in plugins.enabled{where(i)}",
                              f"available plugins: {known}; is its package installed?")
        if available[name].error:
            raise PluginError(name, available[name].error or "it could not be loaded",
                              f"fix the plugin or disable it with 'dovetail plugins disable {name}'")
    for name in enabled:
        for dep in available[name].loaded.depends:
            if dep not in seen:
                hint = (f"enable it with 'dovetail plugins enable {dep}'" if dep in available
                        else f"'{dep}' is not installed")
                raise PluginError(name, f"depends on '{dep}', which is not enabled", hint)
    return seen


def _load_order(enabled: list[str], available: Mapping[str, Available], seen: set[str]) -> list[str]:
    """Names in dependency order (a dependency before its dependants); a cycle is an error."""
    order: list[str] = []
    state: dict[str, int] = {}

    def needs(name: str, target: str, path: frozenset[str] = frozenset()) -> bool:
        """Does ``name`` depend on ``target`` through hard ``depends`` (transitively)?"""
        deps = available[name].loaded.depends
        return target in deps or any(d not in path and d in available and needs(d, target, path | {name})
                                     for d in deps)

    def visit(name: str, stack: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = stack[stack.index(name):] + [name]
            raise PluginError(name, "dependency cycle: " + " -> ".join(cycle),
                              "remove one of these dependencies")
        state[name] = 1
        manifest = available[name].loaded
        # An optional plugin loads first unless it depends on this one (orders lists
        # marketing as optional while marketing depends on orders): a hard edge wins.
        deps = list(manifest.depends) + [o for o in manifest.optional if o in seen and not needs(o, name)]
        for dep in deps:
            visit(dep, stack + [name])
        state[name] = 2
        order.append(name)

    for name in enabled:
        visit(name, [])
    return order


@dataclass
class Registry:
    """Everything the enabled plugins contributed, checked and frozen."""

    plugins: list[Available] = field(default_factory=list)
    models: dict[str, list[type[Any]]] = field(default_factory=dict)
    permissions: dict[str, tuple[Permission, str]] = field(default_factory=dict)
    menu: list[tuple[MenuItem, str]] = field(default_factory=list)
    api_blueprints: list[tuple[Any, str]] = field(default_factory=list)
    web_blueprints: list[tuple[Any, str]] = field(default_factory=list)
    commands: list[tuple[CliCommand, str]] = field(default_factory=list)
    actions: dict[str, tuple[WorkflowAction, str]] = field(default_factory=dict)
    workflow_entities: dict[str, tuple[WorkflowEntity, str]] = field(default_factory=dict)
    custom_field_entities: dict[str, tuple[CustomFieldEntity, str]] = field(default_factory=dict)
    reports: dict[str, tuple[Report, str]] = field(default_factory=dict)
    event_types: dict[str, tuple[EventType, str]] = field(default_factory=dict)
    outbox_kinds: dict[str, tuple[OutboxKind, str]] = field(default_factory=dict)
    jobs: dict[str, tuple[Job, str]] = field(default_factory=dict)
    settings: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    _frozen: bool = field(default=False, repr=False)

    def __setattr__(self, name: str, value: Any) -> None:
        if getattr(self, "_frozen", False):
            raise AttributeError(f"the plugin registry is frozen after start-up (cannot set '{name}')")
        super().__setattr__(name, value)

    def freeze(self) -> Registry:
        """Make every collection read-only (mappings and tuples); called once at start-up."""
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, dict):
                value = MappingProxyType({k: tuple(v) if isinstance(v, list) else
                                          MappingProxyType(v) if isinstance(v, dict) else v
                                          for k, v in value.items()})
            elif isinstance(value, list):
                value = tuple(value)
            object.__setattr__(self, f.name, value)
        object.__setattr__(self, "_frozen", True)
        return self

    @property
    def enabled_names(self) -> list[str]:
        return [p.name for p in self.plugins]

    def tables_of(self, plugin: str) -> list[Any]:
        return [m.__table__ for m in self.models.get(plugin, [])]


def build_manager(plugins: list[Available], core_plugins: Iterable[ModuleType]) -> pluggy.PluginManager:
    """One plugin manager: core hookspecs + plugins' own, then implementations, checked."""
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    for p in plugins:
        if p.loaded.hookspecs is not None:
            pm.add_hookspecs(p.loaded.hookspecs)
    for mod in core_plugins:
        pm.register(mod, name=f"{CORE_NAME}:{mod.__name__}")
    for p in plugins:
        try:
            pm.register(p.module, name=p.name)
        except pluggy.PluginValidationError as exc:
            raise PluginError(p.name, f"hook implementation does not match its spec: {exc}",
                              "see core/hookspecs.py for the documented signature") from None
        except ValueError as exc:
            raise PluginError(p.name, str(exc), "is the module registered twice?") from None
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        plugin = pm.get_name(exc.plugin) or "?"
        raise PluginError(plugin, f"unknown hook: {exc}",
                          "check the spelling against core/hookspecs.py, or mark an optional "
                          "hook of another plugin with @hookimpl(optionalhook=True)") from None
    if os.environ.get("DOVETAIL_TRACE_HOOKS"):
        pm.trace.root.setwriter(lambda msg: sys.stderr.write(msg))
        pm.enable_tracing()
    return pm


def _owner(pm: pluggy.PluginManager, impl: Any) -> str:
    name = pm.get_name(impl.plugin) or "?"
    return CORE_NAME if name.startswith(CORE_NAME + ":") else name


def _collect(pm: pluggy.PluginManager, hook: str, kind: type | tuple[type, ...]) -> list[tuple[Any, str]]:
    """Call one registration hook per plugin so each result is attributed to its plugin."""
    out: list[tuple[Any, str]] = []
    for impl in reversed(getattr(pm.hook, hook).get_hookimpls()):
        owner = _owner(pm, impl)
        try:
            result = impl.function()
        except Exception as exc:  # noqa: BLE001 - re-raised as a named plugin error
            raise PluginError(owner, f"{hook}() raised {type(exc).__name__}: {exc}") from exc
        if result is None:
            continue
        if not isinstance(result, list | tuple):
            raise PluginError(owner, f"{hook}() must return a list, got {type(result).__name__}")
        for item in result:
            if not isinstance(item, kind):
                want = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
                raise PluginError(owner, f"{hook}() returned {item!r}, expected {want}")
            out.append((item, owner))
    return out


def _check_prefix(owner: str, name: str, what: str) -> None:
    if owner != CORE_NAME and not name.startswith(owner + "."):
        raise PluginError(owner, f"{what} '{name}' is outside the plugin's namespace",
                          f"name it '{owner}.…'")


def _core_commands() -> dict[str | None, set[str]]:
    """Names the core's own CLI uses: top-level commands, and each core group's commands."""
    from core.cli import CORE_GROUPS, cli  # noqa: PLC0415 - core.cli imports the app lazily; avoid a cycle

    taken: dict[str | None, set[str]] = {None: set(cli.commands)}
    for name, cmd in cli.commands.items():
        if isinstance(cmd, click.Group):
            taken[name] = set(cmd.commands)
    for group in CORE_GROUPS:
        taken.setdefault(group, set())
    return taken


def _collect_commands(pm: pluggy.PluginManager, reg: Registry) -> None:
    """A plugin command may not shadow a core command, nor another plugin's (per group)."""
    core = _core_commands()
    owners: dict[tuple[str | None, str], str] = {}
    for cmd, owner in _collect(pm, "register_commands", CliCommand):
        name = cmd.command.name or ""
        where = f"'{cmd.group} {name}'" if cmd.group else f"'{name}'"
        if cmd.group is not None and cmd.group not in core:
            raise PluginError(owner, f"CLI command {where} names an unknown group '{cmd.group}'",
                              f"groups plugins may add to: {', '.join(sorted(g for g in core if g))}")
        if cmd.group is None and name in core.get(None, set()) or name in core.get(cmd.group, set()):
            raise PluginError(owner, f"CLI command {where} shadows a core command",
                              "choose another name (prefix it with the plugin name)")
        if (cmd.group, name) in owners:
            raise PluginError(owner, f"CLI command {where} already added",
                              f"by plugin '{owners[(cmd.group, name)]}'")
        owners[(cmd.group, name)] = owner
        reg.commands.append((cmd, owner))


def _collect_models_and_permissions(pm: pluggy.PluginManager, reg: Registry) -> None:
    """Tables named ``<plugin>_…``; permissions in the plugin's namespace, each declared once."""
    for model, owner in _collect(pm, "register_models", type):
        table = getattr(model, "__tablename__", "")
        if owner != CORE_NAME and not table.startswith(owner + "_"):
            raise PluginError(owner, f"table '{table}' must start with '{owner}_'")
        reg.models.setdefault(owner, []).append(model)
    for perm, owner in _collect(pm, "register_permissions", Permission):
        _check_prefix(owner, perm.name, "permission")
        if perm.name in reg.permissions:
            raise PluginError(owner, f"duplicate permission '{perm.name}'",
                              f"already declared by '{reg.permissions[perm.name][1]}'")
        reg.permissions[perm.name] = (perm, owner)


def _collect_blueprints_and_menu(pm: pluggy.PluginManager, reg: Registry) -> None:
    """API and web blueprints (names and URL prefixes claimed once), menu keys (once, in the namespace)."""
    prefixes: dict[str, str] = {"name:core": CORE_NAME}  # the core's own API blueprint
    for bp, owner in _collect(pm, "register_blueprints", FlaskBlueprint):
        prefix = bp.url_prefix or ""
        for key in (f"name:{bp.name}", f"url:{prefix}"):
            if key in prefixes:
                raise PluginError(owner, f"API blueprint {key.split(':', 1)[1]!r} already claimed",
                                  f"by plugin '{prefixes[key]}'")
            prefixes[key] = owner
        reg.api_blueprints.append((bp, owner))
    web_names: dict[str, str] = {f"blueprint name {n!r}": CORE_NAME for n in CORE_WEB_BLUEPRINTS}
    for bp, owner in _collect(pm, "register_web_blueprints", FlaskBlueprint):
        for key in (f"blueprint name {bp.name!r}", f"URL prefix {bp.url_prefix!r}" if bp.url_prefix else ""):
            if key and key in web_names:
                raise PluginError(owner, f"web {key} already claimed", f"by plugin '{web_names[key]}'")
            web_names[key] = owner
        reg.web_blueprints.append((bp, owner))
    menu_keys: dict[str, str] = {}
    for item, owner in _collect(pm, "register_menu_items", MenuItem):
        _check_prefix(owner, item.key, "menu key")
        if item.key in menu_keys:
            raise PluginError(owner, f"duplicate menu key '{item.key}'",
                              f"already used by '{menu_keys[item.key]}'")
        menu_keys[item.key] = owner
        reg.menu.append((item, owner))
    reg.menu.sort(key=lambda pair: (pair[0].order, pair[0].key))


def _register_named(pm: pluggy.PluginManager, hook: str, kind: type, label: str, target: dict[str, Any],
                    check: Callable[[Any, str], None] | None = None) -> None:
    """Contributions of ``hook`` into ``target``: each in its plugin's namespace, declared once."""
    for item, owner in _collect(pm, hook, kind):
        _check_prefix(owner, item.name, label)
        if item.name in target:
            raise PluginError(owner, f"duplicate {label} '{item.name}'",
                              f"already declared by '{target[item.name][1]}'")
        if check is not None:
            check(item, owner)
        target[item.name] = (item, owner)


def _check_job(job: Job, owner: str) -> None:
    if job.every is not None and job.every < 1:
        raise PluginError(owner, f"job '{job.name}' runs every {job.every} s", "give 'every' in whole seconds >= 1")


def _collect_events_and_jobs(pm: pluggy.PluginManager, reg: Registry) -> None:
    """Event types, outbox kinds and jobs: in the plugin's namespace, each declared once."""
    _register_named(pm, "register_event_types", EventType, "event type", reg.event_types)
    _register_named(pm, "register_outbox_kinds", OutboxKind, "outbox kind", reg.outbox_kinds)
    _register_named(pm, "register_jobs", Job, "job", reg.jobs, _check_job)


def _collect_workflow_and_reports(pm: pluggy.PluginManager, reg: Registry) -> None:
    """Workflow actions and entities, custom-field entities and reports, each registered once."""
    for action, owner in _collect(pm, "register_workflow_actions", WorkflowAction):
        _check_prefix(owner, action.name, "workflow action")
        if action.name in reg.actions:
            raise PluginError(owner, f"duplicate workflow action '{action.name}'")
        reg.actions[action.name] = (action, owner)
    for ent, owner in _collect(pm, "register_workflow_entities", WorkflowEntity):
        if ent.name in reg.workflow_entities:
            raise PluginError(owner, f"workflow entity '{ent.name}' already registered",
                              f"by '{reg.workflow_entities[ent.name][1]}'")
        reg.workflow_entities[ent.name] = (ent, owner)
    for ent, owner in _collect(pm, "register_custom_field_entities", CustomFieldEntity):
        if ent.name in reg.custom_field_entities:
            raise PluginError(owner, f"custom-field entity '{ent.name}' already registered")
        reg.custom_field_entities[ent.name] = (ent, owner)
    for rep, owner in _collect(pm, "register_reports", Report):
        _check_prefix(owner, rep.key, "report")
        if rep.key in reg.reports:
            raise PluginError(owner, f"duplicate report '{rep.key}'")
        reg.reports[rep.key] = (rep, owner)


def collect(pm: pluggy.PluginManager, plugins: list[Available]) -> Registry:
    """Gather and validate all start-up registrations."""
    reg = Registry(plugins=plugins)
    _collect_models_and_permissions(pm, reg)
    _collect_blueprints_and_menu(pm, reg)
    _collect_commands(pm, reg)
    _collect_events_and_jobs(pm, reg)
    _collect_workflow_and_reports(pm, reg)
    return reg


def check_roles(config: Any, reg: Registry, available: Mapping[str, Available]) -> None:
    """Every permission in roles.yaml must be declared by a plugin (start-up)."""
    check_role_permissions(config.roles, config.roles_doc, reg, available)


def check_role_permissions(roles: Mapping[str, Any], doc: Any, reg: Registry,
                           available: Mapping[str, Available]) -> None:
    """Raise a located :class:`ConfigError` for every permission no plugin declares.

    Permissions of an installed but disabled plugin are allowed (and inert), so
    disabling a plugin never breaks roles.yaml. ``doc`` (the parsed file) locates them.
    """
    issues: list[ConfigIssue] = []
    enabled = set(reg.enabled_names) | {CORE_NAME}
    for role in roles.values():
        for i, perm in enumerate(role.permissions):
            if perm == "*":
                continue
            plugin = perm.split(".", 1)[0]
            ok = (perm.endswith(".*") and (plugin in enabled or plugin in available)) or \
                perm in reg.permissions or (plugin in available and plugin not in enabled)
            if not ok:
                close = sorted(p for p in reg.permissions if p.split(".")[0] == plugin)[:5]
                hint = f"; declared by '{plugin}': {', '.join(close)}" if close else ""
                msg = f"unknown permission '{perm}' in role '{role.name}'{hint}"
                if doc is not None:
                    issues.append(doc.issue(("roles", role.name, "permissions", i), msg))
                else:
                    issues.append(ConfigIssue("roles", 1, 1, msg))
    if issues:
        raise ConfigError(issues)


def frozen(mapping: dict) -> Mapping:
    return MappingProxyType(mapping)
