"""What ``dovetail plugins list|info|enable|disable`` do.

``list`` works even when the configured app cannot start (an unknown plugin in
config, an import error): it reads ``dovetail.yaml`` on its own and discovers plugins
through the entry points. ``enable``/``disable`` edit ``plugins.enabled`` in
``dovetail.yaml`` *textually*, so comments and formatting survive; a refusal (missing
dependency, enabled dependent, broken file) leaves the file byte-for-byte unchanged.
``disable --dry-run`` and ``info`` build an app to report what a plugin contributes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import inspect, text

from core.app import create_app
from core.config import ConfigLoader, default_config_dir, parse_yaml, read_main, read_text
from core.db import db
from core.errors import ConfigError, ConfigIssue, DovetailError, PluginError
from core.plugins import Available, discover, resolve
from core.state import dovetail
from core.yamlwrite import write_atomic


class AdminError(DovetailError):
    """A refused plugin administration request (one line, exit 1)."""

    code = "plugin_admin"


# ---------------------------------------------------------------------------
# Reading the config without starting the app
# ---------------------------------------------------------------------------


def _config_dir(config_dir: str | Path | None) -> Path:
    return Path(config_dir) if config_dir else default_config_dir()


def _main_file(config_dir: str | Path | None) -> Path:
    return _config_dir(config_dir) / "dovetail.yaml"


def _resolve_dir(config_dir: str | Path | None, obj: Any) -> str | Path | None:
    """``--config`` if given, else the running app's config folder (tests), else the default."""
    app = _app_of(obj)
    if config_dir is None and app is not None:
        return dovetail(app).config.config_dir
    return config_dir


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _node(text: str, file: str) -> yaml.Node | None:
    """Compose ``text`` (keeping marks); a syntax error is a located ConfigError."""
    parse_yaml(text, file)  # located errors: syntax, duplicate keys, aliases
    loader = ConfigLoader(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


def _mapping_get(node: yaml.Node | None, key: str) -> tuple[yaml.Node, yaml.Node] | None:
    if not isinstance(node, yaml.MappingNode):
        return None
    for k, v in node.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            return k, v
    return None


def read_enabled(config_dir: str | Path | None, *, strict: bool = False) -> list[str]:
    """``plugins.enabled`` of ``dovetail.yaml`` (located ConfigError when it is wrong).

    ``strict``: the whole file is validated as at start-up (``plugins list``); otherwise
    only what an edit of the list needs (``enable``/``disable`` may fix a file).
    """
    path = _main_file(config_dir)
    name = _display(path)
    if not path.exists():
        raise ConfigError([ConfigIssue(name, 1, 1, "file not found (run 'dovetail init' or pass "
                                                   "--config DIR)")])
    if strict:
        return list(read_main(path, name)[1]["plugins"]["enabled"])
    doc = parse_yaml(read_text(path, name), name)
    data = doc.data or {}
    if not isinstance(data, dict):
        raise ConfigError([doc.issue((), "the file must be a mapping of keys")])
    plugins = data.get("plugins") or {}
    if not isinstance(plugins, dict):
        raise ConfigError([doc.issue(("plugins",), "plugins: must be a mapping with 'enabled'")])
    enabled = plugins.get("enabled") or []
    if not isinstance(enabled, list) or not all(isinstance(e, str) for e in enabled):
        raise ConfigError([doc.issue(("plugins", "enabled"),
                                     "plugins.enabled: must be a list of plugin names")])
    return list(enabled)


# ---------------------------------------------------------------------------
# list
# ---------------------------------------------------------------------------


def _app_of(obj: Any) -> Any:
    return obj.get("app") if isinstance(obj, Mapping) else None


def _available(obj: Any) -> Mapping[str, Available]:
    app = _app_of(obj)
    if app is not None:
        return dovetail(app).available
    return discover()


def rows(config_dir: str | Path | None, obj: Any = None) -> list[dict[str, Any]]:
    """Every discovered plugin (and every configured but missing one) with its state.

    Needs no working app: a broken config still lists the plugins, with the problem
    shown in ``error`` of the affected rows (or a ``config`` row for a broken file).
    """
    app = _app_of(obj)
    available = _available(obj)
    config_problem = None
    if app is not None:
        enabled = list(dovetail(app).registry.enabled_names)
    else:
        try:
            enabled = read_enabled(config_dir, strict=True)
        except ConfigError as exc:
            enabled, config_problem = [], exc
    out = []
    for name, av in sorted(available.items()):
        m = av.manifest
        error = av.error
        if m is not None and name in enabled:
            missing = [d for d in m.depends if d not in enabled]
            if missing and not error:
                error = f"depends on {', '.join(missing)}, which is not enabled"
        out.append({"name": name, "version": m.version if m else "?",
                    "description": m.description if m else "", "enabled": name in enabled,
                    "depends": list(m.depends) if m else [], "optional": list(m.optional) if m else [],
                    "source": av.source, "error": error})
    for name in enabled:
        if name not in available:
            out.append({"name": name, "version": "?", "description": "", "enabled": True,
                        "depends": [], "optional": [], "source": "-",
                        "error": "enabled in dovetail.yaml but not installed"})
    if config_problem:
        out.append({"name": "(config)", "version": "", "description": "", "enabled": False,
                    "depends": [], "optional": [], "source": "-", "error": str(config_problem.issues[0]),
                    "issues": config_problem.issues})
    return out


# ---------------------------------------------------------------------------
# What a plugin contributes to a built app
# ---------------------------------------------------------------------------


def _closure(names: Iterable[str], available: Mapping[str, Available]) -> list[str]:
    """``names`` plus everything they depend on, transitively."""
    out: list[str] = []

    def add(n: str) -> None:
        if n in out:
            return
        av = available.get(n)
        if av is not None and av.manifest is not None:
            for d in av.manifest.depends:
                add(d)
        out.append(n)

    for n in names:
        add(n)
    return out


def startable(names: Iterable[str], available: Mapping[str, Available]) -> list[str]:
    """``names`` minus those that cannot load or whose dependencies cannot (transitively)."""
    keep = [n for n in names if n in available and available[n].error is None]
    changed = True
    while changed:
        changed = False
        for n in list(keep):
            if any(d not in keep for d in available[n].loaded.depends):
                keep.remove(n)
                changed = True
    return keep


def contributions(app: Any, name: str) -> dict[str, list[str]]:
    """Everything plugin ``name`` adds to ``app``, as printable lines per kind."""
    dv = dovetail(app)
    reg = dv.registry

    def rules_of(blueprints: Iterable[tuple[Any, str]]) -> list[str]:
        names = {bp.name for bp, owner in blueprints if owner == name}
        lines = []
        for rule in app.url_map.iter_rules():
            bp_name = rule.endpoint.split(".", 1)[0] if "." in rule.endpoint else ""
            if bp_name in names:
                methods = ",".join(sorted(m for m in rule.methods if m not in ("HEAD", "OPTIONS")))
                lines.append(f"{methods} {rule.rule}")
        return sorted(set(lines), key=lambda s: (s.split(" ", 1)[1], s))

    out: dict[str, list[str]] = {
        "API routes": rules_of(reg.api_blueprints),
        "web pages": rules_of(reg.web_blueprints),
        "menu entries": [f"{m.key} '{m.label}' -> {m.endpoint}" + (f" [{m.permission}]" if m.permission else "")
                         for m, owner in reg.menu if owner == name],
        "commands": [f"dovetail {c.group + ' ' if c.group else ''}{c.command.name}"
                     for c, owner in reg.commands if owner == name],
        "permissions": sorted(p for p, (_perm, owner) in reg.permissions.items() if owner == name),
        "workflow actions": sorted(a for a, (_act, owner) in reg.actions.items() if owner == name),
        "workflow entities": sorted(e for e, (_ent, owner) in reg.workflow_entities.items()
                                    if owner == name),
        "custom-field entities": sorted(e for e, (_ent, owner) in reg.custom_field_entities.items()
                                        if owner == name),
        "reports": sorted(r for r, (_rep, owner) in reg.reports.items() if owner == name),
        "hooks": [],
        "tables": sorted(t.name for t in reg.tables_of(name)),
    }
    for p in reg.plugins:
        if p.name == name:
            out["hooks"] = sorted({impl_name for impl_name in _hook_names(dv.pm, p.module)})
    return out


def _hook_names(pm: Any, module: Any) -> list[str]:
    callers = pm.get_hookcallers(module) or []
    return [c.name for c in callers]


def _row_counts(app: Any, tables: Iterable[str]) -> dict[str, int | None]:
    """Rows in each table of the app's database (None: the table does not exist)."""
    out: dict[str, int | None] = {}
    try:
        with app.app_context():
            with db.engine.connect() as conn:
                existing = set(inspect(conn).get_table_names())
                for t in tables:
                    out[t] = conn.execute(text(f'SELECT COUNT(*) FROM "{t}"')).scalar() \
                        if t in existing else None
    except Exception:  # noqa: BLE001 - an unreachable database only hides the counts
        return {t: None for t in tables}
    return out


def _probe_app(config_dir: str | Path | None, names: list[str]) -> Any:
    """An app with ``names`` enabled on a throw-away in-memory database."""
    return create_app(config_dir or None, plugins=names,
                      config={"database_url": "sqlite://", "secret_key": "probe"})


def _format(contrib: Mapping[str, list[str]], counts: Mapping[str, int | None] | None) -> list[str]:
    lines = []
    for kind, items in contrib.items():
        if kind == "tables":
            continue
        lines.append(f"  {kind}: {len(items) if items else 'none'}")
        lines.extend(f"    {item}" for item in items)
    if "tables" not in contrib:
        return lines
    tables = contrib["tables"]
    lines.append(f"  tables: {len(tables) if tables else 'none'}")
    for t in tables:
        n = (counts or {}).get(t)
        lines.append(f"    {t}" + ("" if counts is None else
                                    " (not created)" if n is None else f" ({n} rows)"))
    return lines


# ---------------------------------------------------------------------------
# info
# ---------------------------------------------------------------------------


def _get(available: Mapping[str, Available], name: str) -> Available:
    av = available.get(name)
    if av is None:
        known = ", ".join(sorted(available)) or "none"
        raise AdminError(f"no plugin named '{name}' (available: {known})")
    return av


def info(config_dir: str | Path | None, name: str, obj: Any = None) -> list[str]:
    """Manifest, dependents and every contribution of one plugin (enabled or not)."""
    config_dir = _resolve_dir(config_dir, obj)
    available = _available(obj)
    av = _get(available, name)
    lines = [f"{name}  (from {av.source})"]
    if av.error or av.manifest is None:
        lines.append(f"  error: {av.error}")
        return lines
    m = av.manifest
    app = _app_of(obj)
    try:
        enabled = list(dovetail(app).registry.enabled_names) if app is not None \
            else read_enabled(config_dir)
    except ConfigError:
        enabled = []
    dependents = sorted(n for n, a in available.items() if a.manifest and name in a.manifest.depends)
    lines += [f"  version: {m.version}",
              f"  description: {m.description or '-'}",
              f"  enabled: {'yes' if name in enabled else 'no'}",
              f"  depends: {', '.join(m.depends) or '-'}",
              f"  optional: {', '.join(m.optional) or '-'}",
              f"  required by: {', '.join(dependents) or '-'}",
              f"  own hookspecs: {getattr(m.hookspecs, '__name__', m.hookspecs) if m.hookspecs else '-'}",
              f"  settings schema: {m.settings_schema.__name__ if m.settings_schema else '-'}",
              f"  migrations: {m.migrations or '-'}"]
    if app is None or name not in dovetail(app).registry.enabled_names:
        try:
            app = _probe_app(config_dir, _closure([*startable(enabled, available), name], available))
        except DovetailError as exc:
            lines.append(f"  (cannot build an app with it enabled: {exc.message})")
            return lines
    lines += _format(contributions(app, name), None)
    return lines


# ---------------------------------------------------------------------------
# enable / disable
# ---------------------------------------------------------------------------


def enable(config_dir: str | Path | None, name: str, obj: Any = None) -> str:
    """Add ``name`` to ``plugins.enabled``; refuse (file untouched) when a dependency is off."""
    config_dir = _resolve_dir(config_dir, obj)
    available = _available(obj)
    av = _get(available, name)
    if av.error:
        raise AdminError(f"plugin '{name}' cannot be enabled: {av.error}")
    enabled = read_enabled(config_dir)
    if name in enabled:
        return f"Plugin '{name}' is already enabled."
    missing = [d for d in av.loaded.depends if d not in enabled]
    if missing:
        how = " ".join(f"'dovetail plugins enable {d}'" for d in missing if d in available)
        absent = [d for d in missing if d not in available]
        hint = f"enable it first: {how}" if how else ""
        if absent:
            hint = (hint + "; " if hint else "") + f"not installed: {', '.join(absent)}"
        raise AdminError(f"cannot enable '{name}': it depends on {', '.join(missing)}, "
                         f"which {'is' if len(missing) == 1 else 'are'} not enabled ({hint})")

    try:
        resolve([*enabled, name], available)
    except PluginError as exc:
        raise AdminError(f"cannot enable '{name}': {exc.message}") from None
    _write_enabled(config_dir, [*enabled, name])
    return (f"Enabled '{name}' in {_display(_main_file(config_dir))}. Run 'dovetail db upgrade' "
            f"to create its tables, then restart the server.")


def dependents_of(name: str, enabled: Iterable[str], available: Mapping[str, Available]) -> list[str]:
    return sorted(n for n in enabled if n != name and n in available and available[n].manifest
                  and name in available[n].loaded.depends)


def disable(config_dir: str | Path | None, name: str, dry_run: bool = False,
            obj: Any = None) -> list[str]:
    """Remove ``name`` from ``plugins.enabled`` (or, dry run, print what goes away)."""
    config_dir = _resolve_dir(config_dir, obj)
    available = _available(obj)
    enabled = read_enabled(config_dir)
    if name not in enabled:
        if name not in available:
            _get(available, name)
        return [f"Plugin '{name}' is not enabled; nothing to do."]
    dependents = dependents_of(name, enabled, available)
    if dependents:
        raise AdminError(
            f"cannot disable '{name}': {', '.join(dependents)} "
            f"{'depends' if len(dependents) == 1 else 'depend'} on it and "
            f"{'is' if len(dependents) == 1 else 'are'} enabled (disable "
            f"{' and '.join(repr(d) for d in dependents)} first)")
    if dry_run:
        return _impact(config_dir, name, enabled, available, obj)
    _write_enabled(config_dir, [n for n in enabled if n != name])
    return [f"Disabled '{name}' in {_display(_main_file(config_dir))}; its tables and rows are "
            f"kept. Restart the server; re-enable with 'dovetail plugins enable {name}'."]


def _impact(config_dir: str | Path | None, name: str, enabled: list[str],
            available: Mapping[str, Available], obj: Any) -> list[str]:
    app = _app_of(obj)
    counts_ok = True
    if app is None or name not in dovetail(app).registry.enabled_names:
        from core.app import create_app  # noqa: PLC0415 - core.app imports this module (core.plugins -> core.cli)

        try:
            app = create_app(config_dir or None)
        except DovetailError as exc:
            counts_ok = False
            try:
                app = _probe_app(config_dir, _closure([name], available))
            except DovetailError:
                raise AdminError(f"cannot build the app to compute the impact: {exc.message}") from None
    contrib = contributions(app, name)
    counts = _row_counts(app, contrib["tables"]) if counts_ok else None
    optional_users = sorted(n for n in enabled if n != name and n in available and available[n].manifest
                            and name in available[n].loaded.optional)
    lines = [f"Dry run: disabling '{name}' would remove:"]
    lines += [line for line in _format({k: v for k, v in contrib.items() if k != "tables"}, None)]
    tables = contrib["tables"]
    lines.append(f"Kept (data is never deleted by disabling): {len(tables)} table(s)")
    for t in tables:
        n = counts.get(t) if counts is not None else None
        lines.append(f"    {t}" + ("" if counts is None else
                                    " (not created)" if n is None else f" ({n} rows)"))
    if optional_users:
        lines.append(f"Plugins using it optionally lose that collaboration: {', '.join(optional_users)}")
    lines.append("Nothing was changed.")
    return lines


# ---------------------------------------------------------------------------
# Textual editing of plugins.enabled (comments and formatting kept)
# ---------------------------------------------------------------------------


NULL_TAG = "tag:yaml.org,2002:null"


def _line_start(text: str, index: int) -> int:
    return text.rfind("\n", 0, index) + 1


def _line_end(text: str, index: int) -> int:
    """Index just after the newline ending the line holding ``index`` (or len)."""
    nl = text.find("\n", index)
    return len(text) if nl < 0 else nl + 1


def _quote(name: str) -> str:
    dumped = yaml.safe_dump(name, default_flow_style=True).strip()
    return dumped.removesuffix("\n...").removesuffix("...").strip()


def _flow(names: list[str]) -> str:
    return "[" + ", ".join(_quote(n) for n in names) + "]"


def edit_enabled_text(text: str, new: list[str], file: str = "dovetail.yaml") -> str:
    """Return ``text`` with ``plugins.enabled`` set to ``new``, changing nothing else."""
    root = _node(text, file)
    if root is None or (isinstance(root, yaml.ScalarNode) and root.value == ""):
        sep = "" if not text or text.endswith("\n") else "\n"
        return text + sep + "plugins:\n  enabled:\n" + "".join(f"    - {_quote(n)}\n" for n in new)
    if not isinstance(root, yaml.MappingNode):
        raise AdminError(f"{file}: the file must be a mapping of keys")
    found = _mapping_get(root, "plugins")
    if found is None:
        if root.flow_style:
            raise AdminError(f"{file}: add a 'plugins' section first")
        sep = "" if text.endswith("\n") else "\n"
        return text + sep + "plugins:\n  enabled:\n" + "".join(f"    - {_quote(n)}\n" for n in new)
    pkey, pnode = found
    if isinstance(pnode, yaml.ScalarNode) and pnode.tag == NULL_TAG:
        start, end = pnode.start_mark.index, pnode.end_mark.index
        if start == end:  # "plugins:" with nothing after it
            colon = text.index(":", pkey.end_mark.index)
            return text[:colon + 1] + " {enabled: " + _flow(new) + "}" + text[colon + 1:]
        return text[:start] + "{enabled: " + _flow(new) + "}" + text[end:]
    if not isinstance(pnode, yaml.MappingNode):
        raise AdminError(f"{file}:{pnode.start_mark.line + 1}:{pnode.start_mark.column + 1}: "
                         "plugins must be a mapping with 'enabled'")
    found = _mapping_get(pnode, "enabled")
    if found is None:
        if pnode.flow_style:
            inner_end = pnode.end_mark.index - 1  # the closing brace
            body = text[pnode.start_mark.index + 1:inner_end].strip()
            add = ("" if not body else ", ") + "enabled: " + _flow(new)
            return text[:inner_end].rstrip() + add + text[inner_end:]
        first_key = pnode.value[0][0]
        indent = " " * first_key.start_mark.column
        at = _line_start(text, first_key.start_mark.index)
        return text[:at] + f"{indent}enabled: {_flow(new)}\n" + text[at:]
    ekey, enode = found
    return _set_enabled_value(text, ekey, enode, new, file)


def _set_enabled_value(text: str, ekey: yaml.Node, enode: yaml.Node, new: list[str], file: str) -> str:
    """``text`` with the value of an existing ``enabled:`` key set to ``new``: a null or flow list is
    replaced, a block list edited line by line (comments and order of kept items survive)."""
    if isinstance(enode, yaml.ScalarNode) and enode.tag == NULL_TAG:
        start, end = enode.start_mark.index, enode.end_mark.index
        if start == end:
            colon = text.index(":", ekey.end_mark.index)
            return text[:colon + 1] + " " + _flow(new) + text[colon + 1:]
        return text[:start] + _flow(new) + text[end:]
    if not isinstance(enode, yaml.SequenceNode):
        raise AdminError(f"{file}:{enode.start_mark.line + 1}:{enode.start_mark.column + 1}: "
                         "plugins.enabled must be a list")
    items = enode.value
    old = [i.value for i in items]
    if enode.flow_style or not items:
        return text[:enode.start_mark.index] + _flow(new) + text[enode.end_mark.index:]
    # Block style: one "- name" line per item. Remove lines of dropped items, append new ones.
    keep_lines: list[tuple[int, int]] = []  # spans to delete
    for item in items:
        if item.value not in new:
            s = _line_start(text, item.start_mark.index)
            e = _line_end(text, item.end_mark.index)
            keep_lines.append((s, e))
    added = [n for n in new if n not in old]
    remaining = [n for n in old if n in new]
    if not remaining:
        # Nothing left of the block list: a flow list on the key's line, comment kept.
        colon = text.index(":", ekey.end_mark.index)
        rest_of_key_line = text[colon + 1:_line_end(text, colon)]
        last = _line_end(text, items[-1].end_mark.index)
        tail = rest_of_key_line if rest_of_key_line.strip() else "\n"
        return text[:colon + 1] + " " + _flow(new) + tail.rstrip(" \t") + text[last:]
    last_kept = [i for i in items if i.value in new][-1]
    dash_line = _line_start(text, last_kept.start_mark.index)
    prefix = text[dash_line:last_kept.start_mark.index]  # e.g. "    - "
    insert_at = _line_end(text, last_kept.end_mark.index)
    insertion = "".join(f"{prefix}{_quote(n)}\n" for n in added)
    if insert_at == len(text) and not text.endswith("\n") and insertion:
        insertion = "\n" + insertion.rstrip("\n")
    pieces = []
    cursor = 0
    for s, e in sorted(keep_lines + [(insert_at, insert_at)]):
        pieces.append(text[cursor:s])
        if (s, e) == (insert_at, insert_at):
            pieces.append(insertion)
        cursor = max(cursor, e)
    pieces.append(text[cursor:])
    return "".join(pieces)

def _strip_enabled(data: Any) -> Any:
    if isinstance(data, dict) and isinstance(data.get("plugins"), dict):
        data = dict(data)
        data["plugins"] = {k: v for k, v in data["plugins"].items() if k != "enabled"}
        if not data["plugins"]:
            data.pop("plugins")
    return data


def _write_enabled(config_dir: str | Path | None, new: list[str]) -> None:
    """Rewrite ``plugins.enabled`` in place; verify the result before replacing the file."""
    path = _main_file(config_dir)
    name = _display(path)
    raw = path.read_bytes()
    text = raw.decode("utf-8")
    new_text = edit_enabled_text(text, new, name)
    before, after = yaml.safe_load(text) or {}, yaml.safe_load(new_text) or {}
    got = ((after.get("plugins") or {}).get("enabled") or []) if isinstance(after, dict) else None
    if got != new or _strip_enabled(before) != _strip_enabled(after):
        raise AdminError(f"{name}: could not edit plugins.enabled safely; edit the file by hand "
                         f"(wanted: {', '.join(new) or 'none'})")
    write_atomic(path, new_text)


__all__ = ["rows", "info", "enable", "disable", "contributions", "read_enabled",
           "edit_enabled_text", "dependents_of", "AdminError"]
