"""The plugin conformance suite: one line in a plugin's tests runs it.

::

    from core.testing.conformance import PluginConformance

    class TestConformance(PluginConformance):
        plugin = "crm"
        enabled = "all"   # optional: disable it among every installed plugin

or ``TestConformance = conformance_tests("crm")``. It checks that the plugin

* has a valid manifest (name, version, dependencies that exist, migrations folder);
* implements only hooks that exist and are documented, with matching signatures;
* declares every permission it uses (strings in its code, templates and workflow
  files, menu entries, reports, built-in workflows);
* starts with its dependencies and answers the smoke checks (``/healthz``, a valid
  ``/api/v1/openapi.json``, every list endpoint 200 for an admin, its menu pages);
* has migrations that apply, match its models and downgrade cleanly (tables gone),
  and apply again;
* can be disabled: the other plugins still start and pass the smoke checks, and its
  routes answer 404.

The helpers below (``manifest_problems``, ``hook_problems``, ``permission_problems``,
``smoke_problems`` …) return lists of problems so they can be used on their own.
The fixtures ``dovetail_extra_plugins``, ``dovetail_config_dir`` and
``dovetail_database_url`` of :mod:`core.testing.pytest_plugin` are honoured.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from core.state import dovetail

PERMISSION_RE = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")
PERMISSION_IN_TEXT = re.compile(
    r"(?<![\w.])([a-z][a-z0-9_]*\.[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*)(?![\w.(])")
VERSION_RE = re.compile(r"^\d+(\.\d+){0,3}([abc]|rc)?\d*(\.?(post|dev)\d+)?$")
SKIP_DIRS = {"tests", "migrations", "__pycache__", "node_modules", "static"}


# ---------------------------------------------------------------------------
# Discovery helpers
# ---------------------------------------------------------------------------


def available_plugins(extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    from core.plugins import discover

    return discover(extra or {})


def closure(names: Iterable[str], available: Mapping[str, Any], *, optional: bool = False) -> list[str]:
    """``names`` with their dependencies (and usable optional ones), deps first."""
    out: list[str] = []
    visiting: set[str] = set()

    def add(n: str) -> None:
        if n in out or n in visiting or n not in available or available[n].manifest is None:
            return
        visiting.add(n)
        m = available[n].manifest
        for d in m.depends:
            add(d)
        out.append(n)  # before the optional ones: one may depend on n (orders <-> marketing)
        if optional:
            for d in m.optional:
                if d in available and available[d].error is None:
                    add(d)

    for n in names:
        add(n)
    return out


def dependents(name: str, names: Iterable[str], available: Mapping[str, Any]) -> set[str]:
    """Plugins among ``names`` that depend on ``name``, transitively."""
    names = list(names)
    out: set[str] = set()
    changed = True
    while changed:
        changed = False
        for n in names:
            if n in out or n == name or available[n].manifest is None:
                continue
            if any(d == name or d in out for d in available[n].manifest.depends):
                out.add(n)
                changed = True
    return out


def startable(available: Mapping[str, Any], names: Iterable[str] | None = None) -> list[str]:
    from core.plugin_admin import startable as _startable

    return _startable(sorted(available) if names is None else names, available)


def package_dir(module: ModuleType) -> tuple[Path, bool]:
    """(folder of the plugin's package, whether it is a package) for a plugin module."""
    file = Path(getattr(module, "__file__", "") or ".")
    if file.name == "__init__.py" or (module.__package__ and "." in module.__name__):
        return file.parent, True
    return file, False


# ---------------------------------------------------------------------------
# Manifest and hooks
# ---------------------------------------------------------------------------


def _dependency_problems(name: str, m: Any, available: Mapping[str, Any]) -> list[str]:
    """``depends``/``optional`` are tuples of names, never the plugin itself, dependencies installed."""
    problems = []
    for kind in ("depends", "optional"):
        value = getattr(m, kind)
        if not isinstance(value, tuple) or not all(isinstance(d, str) for d in value):
            problems.append(f"{kind} must be a tuple of plugin names, got {value!r}")
            continue
        if name in value:
            problems.append(f"{kind} names the plugin itself")
        for d in value:
            if kind == "depends" and d not in available:
                problems.append(f"depends on '{d}', which is not installed")
    return problems


def manifest_problems(name: str, available: Mapping[str, Any]) -> list[str]:
    av = available.get(name)
    if av is None:
        return [f"plugin '{name}' is not discovered: register it in the 'dovetail.plugins' "
                "entry-point group (or dovetail_extra_plugins in tests)"]
    if av.error:
        return [f"plugin '{name}' cannot be loaded: {av.error}"]
    m = av.manifest
    problems = []
    if not re.match(r"^[a-z][a-z0-9_]*$", m.name):
        problems.append(f"name '{m.name}' must be lower-case letters, digits and '_'")
    if not isinstance(m.version, str) or not VERSION_RE.match(m.version):
        problems.append(f"version {m.version!r} is not a release number like '1.0.0'")
    problems += _dependency_problems(name, m, available)
    both = set(m.depends) & set(m.optional)
    if both:
        problems.append(f"{', '.join(sorted(both))} listed in both depends and optional")
    if m.migrations is not None and not Path(m.migrations).is_dir():
        problems.append(f"migrations folder {m.migrations} does not exist")
    if m.settings_schema is not None:
        from marshmallow import Schema

        if not (isinstance(m.settings_schema, type) and issubclass(m.settings_schema, Schema)):
            problems.append("settings_schema must be a marshmallow Schema class")
    if m.hookspecs is not None and not isinstance(m.hookspecs, ModuleType | type):
        problems.append("hookspecs must be a module (or class) of @hookspec functions")
    try:
        from core.plugins import resolve

        resolve(closure([name], available), available)
    except Exception as exc:  # noqa: BLE001 - reported as a conformance problem
        problems.append(f"does not resolve with its dependencies: {exc}")
    return problems


def _marked(holder: Any, marker: str) -> dict[str, Any]:
    out = {}
    for attr in dir(holder):
        fn = getattr(holder, attr, None)
        opts = getattr(fn, marker, None)
        if opts is not None and callable(fn):
            out[attr] = (fn, opts)
    return out


def spec_modules(available: Mapping[str, Any]) -> list[tuple[str, Any]]:
    from core import hookspecs

    mods: list[tuple[str, Any]] = [("core", hookspecs)]
    for n, av in sorted(available.items()):
        if av.manifest is not None and av.manifest.hookspecs is not None:
            mods.append((n, av.manifest.hookspecs))
    return mods


def hook_problems(name: str, available: Mapping[str, Any]) -> list[str]:
    """Every hookimpl names a documented spec (core or a plugin's) and matches it."""
    import pluggy

    from core import PROJECT

    av = available[name]
    problems: list[str] = []
    specs: dict[str, tuple[str, Any]] = {}
    for owner, mod in spec_modules(available):
        for spec_name, (fn, _opts) in _marked(mod, f"{PROJECT}_spec").items():
            specs[spec_name] = (owner, fn)
            if owner == name and not (fn.__doc__ or "").strip():
                problems.append(f"own hookspec '{spec_name}' has no docstring")
    impls = _marked(av.module, f"{PROJECT}_impl")
    if not impls:
        problems.append("implements no hooks (at least plugin_manifest)")
    for attr, (_fn, opts) in impls.items():
        hook = opts.get("specname") or attr
        if hook not in specs:
            problems.append(f"implements '{hook}', which no installed plugin or the core specifies")
        elif not (specs[hook][1].__doc__ or "").strip():
            problems.append(f"hook '{hook}' (spec of '{specs[hook][0]}') is not documented")
    pm = pluggy.PluginManager(PROJECT)
    for _owner, mod in spec_modules(available):
        pm.add_hookspecs(mod)
    try:
        pm.register(av.module, name=name)
        pm.check_pending()
    except (pluggy.PluginValidationError, ValueError) as exc:
        problems.append(f"hook signature problem: {exc}")
    return problems


# ---------------------------------------------------------------------------
# Permissions
# ---------------------------------------------------------------------------


def _source_files(root: Path, is_package: bool) -> Iterator[Path]:
    if not is_package:
        yield root
        return
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).parts
        if any(p in SKIP_DIRS for p in rel[:-1]) or path.name.startswith("test_"):
            continue
        if path.suffix in (".py", ".html", ".yaml", ".yml", ".jinja", ".j2"):
            yield path


def used_permissions(root: Path, is_package: bool, namespaces: Iterable[str]) -> dict[str, list[str]]:
    """Permission-shaped strings (``ns.thing.action``) in code, templates and YAML files.

    Python files contribute string constants that are exactly a permission name;
    templates and YAML files any dotted word ``ns.x.y`` whose ``ns`` is in ``namespaces``.
    Returns ``{permission: ["file:line", …]}``.
    """
    namespaces = set(namespaces)
    found: dict[str, list[str]] = {}

    def add(perm: str, where: str) -> None:
        if perm.split(".", 1)[0] in namespaces:
            found.setdefault(perm, []).append(where)

    for path in _source_files(root, is_package):
        text = path.read_text(encoding="utf-8", errors="replace")
        where = path.name if not is_package else str(path.relative_to(root))
        if path.suffix == ".py":
            try:
                tree = ast.parse(text)
            except SyntaxError as exc:
                found.setdefault("<syntax error>", []).append(f"{where}:{exc.lineno}")
                continue
            docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                          if isinstance(n, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                          and n.body and isinstance(n.body[0], ast.Expr)
                          and isinstance(n.body[0].value, ast.Constant)}
            for node in ast.walk(tree):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                        and id(node) not in docstrings and PERMISSION_RE.match(node.value):
                    add(node.value, f"{where}:{node.lineno}")
        else:
            for i, line in enumerate(text.splitlines(), 1):
                for m in PERMISSION_IN_TEXT.finditer(line):
                    add(m.group(1), f"{where}:{i}")
    return found


def not_permissions(registry: Any) -> set[str]:
    """Registered names shaped like permissions that are not permissions.

    Action, report and workflow entity keys, and declared event types
    (``register_event_types``, e.g. ``core.workflow.transitioned``) share the
    ``ns.thing.action`` shape; a string naming one of them is not a permission use.
    """
    return set(registry.actions) | set(registry.reports) | set(registry.workflow_entities) | \
        set(registry.event_types)


def permission_problems(name: str, available: Mapping[str, Any], registry: Any,
                        ignore: Iterable[str] = ()) -> list[str]:
    """Every permission the plugin uses is declared (by it, or by the plugin it names).

    ``registry`` is the :class:`core.plugins.Registry` of an app with the plugin, its
    dependencies and its usable optional plugins enabled.
    """
    av = available[name]
    m = av.manifest
    namespaces = {name, "core", *m.depends, *m.optional}
    declared = registry.permissions
    not_perms = set(ignore) | not_permissions(registry)
    problems: list[str] = []
    root, is_package = package_dir(av.module)
    for perm, places in sorted(used_permissions(root, is_package, namespaces).items()):
        if perm == "<syntax error>":
            problems.append(f"cannot parse {', '.join(places)}")
            continue
        if perm in not_perms:
            continue
        ns = perm.split(".", 1)[0]
        if ns == name and (perm not in declared or declared[perm][1] != name):
            problems.append(f"uses permission '{perm}' ({', '.join(places[:3])}) but does not "
                            "declare it in register_permissions()")
        elif ns != name and ns in {*m.depends, "core"} and perm not in declared:
            problems.append(f"uses permission '{perm}' ({', '.join(places[:3])}), which '{ns}' "
                            "does not declare")
        elif ns != name and ns in m.optional and ns in registry.enabled_names and perm not in declared:
            problems.append(f"uses permission '{perm}' ({', '.join(places[:3])}), which '{ns}' "
                            "does not declare")
    return problems + contribution_permission_problems(name, registry)


def contribution_permission_problems(name: str, registry: Any) -> list[str]:
    """Permissions the plugin's menu entries, reports and built-in workflows need are declared."""
    declared = registry.permissions
    problems: list[str] = []
    for item, owner in registry.menu:
        if owner == name and item.permission and item.permission not in declared:
            problems.append(f"menu entry '{item.key}' needs undeclared permission '{item.permission}'")
    for key, (rep, owner) in registry.reports.items():
        for perm in rep.permissions if owner == name else ():
            if perm not in declared:
                problems.append(f"report '{key}' needs undeclared permission '{perm}'")
    for key, (ent, owner) in registry.workflow_entities.items():
        if owner != name or not ent.default_workflow:
            continue
        for tkey, t in (ent.default_workflow.get("transitions") or {}).items():
            tperm = (t or {}).get("permission")
            if tperm and tperm not in declared:
                problems.append(f"built-in workflow '{key}' transition '{tkey}' needs undeclared "
                                f"permission '{tperm}'")
    return problems


# ---------------------------------------------------------------------------
# Building apps and smoke checks
# ---------------------------------------------------------------------------


@contextmanager
def built_app(plugins: Iterable[str], *, config_dir: Path, database_url: str,
              extra: Mapping[str, Any] | None = None, tables: bool = True) -> Iterator[Any]:
    """An app with ``plugins`` enabled, inside its app context; disposed afterwards."""
    from core.app import create_app, create_tables
    from core.db import db

    app = create_app(config_dir, plugins=list(plugins), extra_plugins=dict(extra or {}),
                     testing=True,
                     config={"database_url": database_url, "secret_key": "conformance",
                             "security": {"argon2_time_cost": 1, "argon2_memory_kib": 64}})
    app.instance_path = str(Path(config_dir).parent / "instance")
    if tables:
        create_tables(app)
    with app.app_context():
        try:
            yield app
        finally:
            db.session.remove()
            db.engine.dispose()


def admin_token(app: Any, username: str = "conformance_admin") -> tuple[Any, str]:
    from sqlalchemy import select

    from core.auth import create_user, issue_token
    from core.db import db
    from core.models import User

    user = db.session.scalar(select(User).where(User.username == username))
    if user is None:
        role = "admin" if "admin" in dovetail(app).config.roles else None
        if role is None:
            raise AssertionError("roles.yaml has no 'admin' role for the smoke checks")
        user = create_user(username, "conformance-password", [role])
    token = issue_token(user, "conformance")
    db.session.commit()
    return user, token


def openapi_problems(doc: Any) -> list[str]:
    if not isinstance(doc, dict) or not str(doc.get("openapi", "")).startswith("3."):
        return ["/api/v1/openapi.json is not an OpenAPI 3 document"]
    try:
        from openapi_spec_validator import validate
    except ImportError:  # pragma: no cover - the dev extras install it
        return [] if isinstance(doc.get("paths"), dict) else ["openapi.json has no paths"]
    try:
        validate(doc)
    except Exception as exc:  # noqa: BLE001 - any validation failure is a problem
        where = "/".join(str(p) for p in getattr(exc, "absolute_path", []) or [])
        message = getattr(exc, "message", None) or str(exc).splitlines()[0]
        return [f"/api/v1/openapi.json is invalid at {where or '(root)'}: {message[:300]}"]
    return []


def plugin_rules(app: Any, name: str, *, web: bool = False) -> list[Any]:
    reg = dovetail(app).registry
    bps = {bp.name for bp, owner in (reg.web_blueprints if web else reg.api_blueprints) if owner == name}
    return [r for r in app.url_map.iter_rules() if r.endpoint.split(".", 1)[0] in bps]


def _has_required_query(doc: Mapping[str, Any], rule: str) -> bool:
    path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)
    op = ((doc.get("paths") or {}).get(path) or {}).get("get") or {}
    return any(p.get("required") and p.get("in") == "query" for p in op.get("parameters", []))


def smoke_problems(app: Any, names: Iterable[str]) -> list[str]:
    """/healthz, openapi.json, every plain GET endpoint and menu page of ``names``."""
    problems: list[str] = []
    client = app.test_client()
    r = client.get("/healthz")
    if r.status_code != 200:
        problems.append(f"/healthz answered {r.status_code}")
    doc = client.get("/api/v1/openapi.json").get_json()
    problems += openapi_problems(doc)
    user, token = admin_token(app)
    headers = {"Authorization": f"Bearer {token}"}
    for name in names:
        for rule in plugin_rules(app, name):
            if "GET" not in rule.methods or rule.arguments:
                continue
            r = client.get(rule.rule, headers=headers)
            if r.status_code == 422 and _has_required_query(doc or {}, rule.rule):
                continue
            if r.status_code != 200:
                body = r.get_json(silent=True)
                problems.append(f"{name}: GET {rule.rule} answered {r.status_code} for an admin: "
                                f"{(body or {}).get('error', {}).get('message', '') if isinstance(body, dict) else ''}")
    web = app.test_client()
    login = web.post("/login", data={"username": user.username, "password": "conformance-password"})
    if login.status_code not in (302, 303):
        problems.append(f"web login answered {login.status_code}")
        return problems
    reg = dovetail(app).registry
    for item, owner in reg.menu:
        if owner not in names or item.endpoint not in app.view_functions:
            continue
        rules = [r for r in app.url_map.iter_rules() if r.endpoint == item.endpoint and not r.arguments]
        if not rules:
            continue
        r = web.get(rules[0].rule)
        if r.status_code != 200:
            problems.append(f"{owner}: menu page {rules[0].rule} ({item.key}) answered {r.status_code}")
    return problems


# ---------------------------------------------------------------------------
# Migrations
# ---------------------------------------------------------------------------


def migration_problems(app: Any, name: str) -> list[str]:
    """Apply the core's and dependencies' migrations, then the plugin's: match, down, up."""
    from sqlalchemy import inspect

    from core import migrate
    from core.db import db

    reg = dovetail(app).registry
    av = next(p for p in reg.plugins if p.name == name)
    tables = {t.name for t in reg.tables_of(name)}
    if av.loaded.migrations is None:
        return [f"owns tables {', '.join(sorted(tables))} but declares no migrations folder"] if tables else []
    if tables and not list(Path(av.loaded.migrations).glob("*.py")):
        return [f"owns tables but {av.loaded.migrations} holds no revision"]
    problems: list[str] = []
    migrate.upgrade_all(app)

    def existing() -> set[str]:
        with db.engine.connect() as conn:
            return set(inspect(conn).get_table_names())

    missing = tables - existing()
    if missing:
        problems.append(f"after upgrade, tables missing: {', '.join(sorted(missing))}")
    diff = migrate.pending_diff(app, name)
    if diff:
        problems.append(f"migrations do not match the models: {diff[:5]}")
    others = {t.name for p in reg.plugins if p.name != name for t in reg.tables_of(p.name)}
    others_before = others & existing()
    migrate.downgrade(app, name, "base")
    after = existing()
    left = tables & after
    if left:
        problems.append(f"downgrade to base left tables: {', '.join(sorted(left))}")
    lost = others_before - after
    if lost:
        problems.append(f"downgrading '{name}' dropped other tables: {', '.join(sorted(lost))}")
    if migrate.current(app, name) is not None:
        problems.append("after downgrade to base the version table still names a revision")
    migrate.upgrade_all(app, only=name)
    if tables - existing():
        problems.append("upgrade after downgrade did not recreate the tables")
    return problems


# ---------------------------------------------------------------------------
# Response contract: every reachable GET answers what the document says
# ---------------------------------------------------------------------------

#: Demo data size for the contract probe: enough rows that every list has items.
CONTRACT_DEMO_SCALE = 0.01
#: Ids taken from a list answer to call a detail route with.
CONTRACT_IDS_PER_LIST = 2


def closed_schemas(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``doc`` where every documented object (a schema with ``properties``)
    refuses undocumented fields (``additionalProperties: false`` unless it says otherwise),
    so an extra field on the wire is a mismatch, not a silent addition."""
    import copy

    closed = copy.deepcopy(dict(doc))

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("properties"), dict) and "additionalProperties" not in node:
                node["additionalProperties"] = False
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(closed.get("components", {}))
    walk(closed.get("paths", {}))
    return closed


def _json_path(parts: Iterable[Any]) -> str:
    out = "$"
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


def body_problems(doc: Mapping[str, Any], schema: Mapping[str, Any], body: Any) -> list[str]:
    """``"JSON path: message"`` for every place ``body`` differs from ``schema``.

    ``doc`` is the (closed) OpenAPI document whose ``components`` the ``$ref`` s name;
    the body is read as a response (``writeOnly`` fields must not appear).
    """
    from openapi_schema_validator import OAS30ReadValidator, oas30_format_checker

    root = {**schema, "components": doc.get("components", {})}
    validator = OAS30ReadValidator(root, format_checker=oas30_format_checker)
    out = []
    for err in sorted(validator.iter_errors(body), key=lambda e: list(map(str, e.absolute_path))):
        out.append(f"{_json_path(err.absolute_path)}: {err.message[:300]}")
    return out


def _rule_path(rule: str) -> str:
    """Werkzeug ``/orders/<int:order_id>`` → OpenAPI ``/orders/{order_id}``."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


class ContractProbe:
    """Calls GET routes with one identity and checks each 2xx JSON body against the
    documented response schema; collects ``problems`` and the routes it could not reach."""

    def __init__(self, app: Any, doc: Mapping[str, Any], token: str, who: str) -> None:
        self.client = app.test_client()
        self.doc = closed_schemas(doc)
        self.headers = {"Authorization": f"Bearer {token}"}
        self.who = who
        self.problems: list[str] = []
        self.checked: list[str] = []
        self.unreached: list[str] = []
        self._answers: dict[str, Any] = {}

    def get(self, template: str, url: str) -> Any:
        """GET ``url`` (an instance of the documented path ``template``) and check it."""
        if url in self._answers:
            return self._answers[url]
        op = ((self.doc.get("paths") or {}).get(template) or {}).get("get") or {}
        r = self.client.get(url, headers=self.headers)
        body = r.get_json(silent=True)
        self._answers[url] = body if 200 <= r.status_code < 300 else None
        where = f"GET {url} (as {self.who})"
        if r.status_code >= 500:
            self.problems.append(f"{where}: answered {r.status_code}")
            return None
        if not 200 <= r.status_code < 300 or r.mimetype != "application/json":
            return self._answers[url]
        self.checked.append(url)
        response = (op.get("responses") or {}).get(str(r.status_code))
        if response is None:
            self.problems.append(f"{where}: answered {r.status_code}, which the document does not list")
            return body
        schema = ((response.get("content") or {}).get("application/json") or {}).get("schema")
        if schema is None:
            self.problems.append(f"{where}: answered a JSON body; the document has no JSON schema for "
                                 f"{r.status_code}")
            return body
        self.problems += [f"{where}: {p}" for p in body_problems(self.doc, schema, body)]
        return body

    def visit(self, templates: Iterable[str]) -> None:
        """Every template: lists first, then detail routes with ids from the answers of the
        lists above them; what is still unreached is tried with ids from any list of that noun."""
        paths = self.doc.get("paths") or {}
        todo = []
        for template in sorted(set(templates), key=lambda t: (t.count("{"), t)):
            op = (paths.get(template) or {}).get("get")
            if op is None or any(p.get("required") and p.get("in") == "query" for p in op.get("parameters", [])):
                continue
            todo.append(template)
        missed = []
        for template in todo:
            urls = self._instances(template)
            if not urls:
                missed.append(template)
            for url in urls:
                self.get(template, url)
        for template in missed:
            urls = self._instances(template, by_noun=True)
            if not urls:
                self.unreached.append(template)
            for url in urls:
                self.get(template, url)

    def _instances(self, template: str, *, by_noun: bool = False) -> list[str]:
        """Concrete URLs for ``template``: each ``{param}``, left to right, filled from the items
        of the nearest documented list above it (``/orders`` for ``/orders/{order_id}``; an item
        also fills later parameters it names, like ``entity`` and ``key``). With ``by_noun``, a
        parameter without such a list takes ids from any answer listing that noun
        (``activity_id`` from ``/customers/1/activities``)."""
        urls = [template]
        while urls and "{" in urls[0]:
            nxt: list[str] = []
            for url in urls:
                m = re.search(r"\{([^}]+)\}", url)
                assert m is not None
                param = m.group(1)
                bodies = self._lists_above(url[:m.start()].rstrip("/"))
                if not bodies and by_noun:
                    bodies = self._lists_of(param)
                for body in bodies:
                    for item in _items_of(body)[:CONTRACT_IDS_PER_LIST * 2]:
                        value = _value_for(item, param)
                        if value is None:
                            continue
                        filled = url[:m.start()] + str(value) + url[m.end():]
                        for later in re.findall(r"\{([^}]+)\}", filled):
                            if item.get(later) not in (None, ""):
                                filled = filled.replace("{" + later + "}", str(item[later]), 1)
                        if filled not in nxt:
                            nxt.append(filled)
            urls = nxt[:CONTRACT_IDS_PER_LIST]
        return urls

    def _lists_above(self, prefix: str) -> list[Any]:
        """The answer of the nearest documented GET path at or above ``prefix``."""
        while prefix.count("/") > 2:
            template = self._template_of(prefix)
            if template is not None:
                body = self.get(template, prefix)
                return [body] if body is not None else []
            prefix = prefix.rsplit("/", 1)[0]
        return []

    def _lists_of(self, param: str) -> list[Any]:
        """Answers already fetched whose last path segment is the plural of ``param``'s noun."""
        noun = param.removesuffix("_id")
        plurals = {noun + "s", noun + "es", noun[:-1] + "ies" if noun.endswith("y") else noun + "s"}
        return [body for url, body in self._answers.items()
                if body is not None and url.rstrip("/").rsplit("/", 1)[-1] in plurals]

    def _template_of(self, url: str) -> str | None:
        """The documented GET path a concrete URL is an instance of (a static path first)."""
        paths = self.doc.get("paths") or {}
        if "get" in (paths.get(url) or {}):
            return url
        for template, item in paths.items():
            if "get" not in item:
                continue
            pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
            if re.match(pattern, url):
                return template
        return None


def _items_of(body: Any) -> list[dict[str, Any]]:
    items = body.get("items") if isinstance(body, dict) else body
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def _value_for(item: Mapping[str, Any], param: str) -> Any:
    """The value of an item that fills the path parameter ``param``."""
    keys = [param, "id"] if param.endswith("_id") or param == "id" else [param, "key", "name", "id"]
    return next((item[k] for k in keys if item.get(k) not in (None, "")), None)


def contract_users(app: Any) -> dict[str, str]:
    """Bearer tokens for an admin and for a scoped rep (a demo rep who owns records when
    the demo made one, else a new rep in the first team)."""
    from sqlalchemy import select

    from core.auth import create_user, issue_token
    from core.db import db
    from core.models import Team, User

    _admin, admin = admin_token(app, "contract_admin")
    tokens = {"admin": admin}
    if "rep" in dovetail(app).config.roles:
        reps = [u for u in db.session.scalars(select(User).order_by(User.id)) if "rep" in u.role_names]
        rep = reps[0] if reps else None
        if rep is None:
            team = db.session.scalar(select(Team).order_by(Team.id))
            rep = create_user("contract_rep", "conformance-password", ["rep"],
                              team_id=team.id if team is not None else None)
        tokens["rep"] = issue_token(rep, "contract")
        db.session.commit()
    return tokens


def contract_problems(app: Any, names: Iterable[str], *, demo: bool = True) -> tuple[list[str], dict[str, Any]]:
    """Call every GET route of the plugins ``names`` as an admin and as a rep and check each
    2xx body against ``/api/v1/openapi.json``. Returns (problems, stats) where each problem is
    ``GET url (as role): JSON path: message`` and stats counts checked and unreached routes."""
    if demo:
        from core.cli_commands import populate_demo

        populate_demo(app, CONTRACT_DEMO_SCALE, 7)
    names = list(names)
    tokens = contract_users(app)
    doc = app.test_client().get("/api/v1/openapi.json").get_json()
    problems = openapi_problems(doc)
    if problems:
        return problems, {}
    templates = ["/api/v1" + _rule_path(r.rule.removeprefix("/api/v1")) if r.rule.startswith("/api/v1")
                 else _rule_path(r.rule)
                 for name in names for r in plugin_rules(app, name) if "GET" in r.methods]
    stats: dict[str, Any] = {}
    for who, token in tokens.items():
        probe = ContractProbe(app, doc, token, who)
        probe.visit(templates)
        problems += probe.problems
        stats[who] = {"checked": len(probe.checked), "unreached": probe.unreached}
    return problems, stats


# ---------------------------------------------------------------------------
# The suite
# ---------------------------------------------------------------------------


class PluginConformance:
    """Subclass as ``TestConformance`` and set ``plugin``; every test below runs for it."""

    #: the plugin under test (its entry-point / manifest name)
    plugin: str = ""
    #: the set in which the plugin is disabled: a tuple of names, "all" (every installed
    #: plugin that can load), or None (the ``dovetail_plugins`` fixture's value; "all" when
    #: that is None too)
    enabled: tuple[str, ...] | str | None = None
    #: strings shaped like permissions that are not (event names …)
    not_permissions: tuple[str, ...] = ()

    @pytest.fixture
    def conformance(self, dovetail_extra_plugins, dovetail_config_dir, dovetail_database_url,
                    dovetail_plugins) -> Any:
        assert self.plugin, "set `plugin = \"<name>\"` on the conformance test class"
        extra = dict(dovetail_extra_plugins or {})
        available = available_plugins(extra)

        env: Any = SimpleNamespace()
        env.available = available
        env.extra = extra
        env.config_dir = dovetail_config_dir
        env.database_url = dovetail_database_url
        env.enabled = self.enabled if self.enabled is not None else dovetail_plugins
        if env.enabled == "all":
            env.enabled = None

        def build(plugins: Iterable[str], **kw: Any) -> Any:
            return built_app(plugins, config_dir=dovetail_config_dir, database_url=dovetail_database_url,
                             extra=extra, **kw)

        env.build = build
        return env

    def _require_loadable(self, env: Any) -> None:
        problems = manifest_problems(self.plugin, env.available)
        if self.plugin not in env.available or env.available[self.plugin].error:
            pytest.fail("\n".join(problems))

    def test_manifest_is_valid(self, conformance):
        problems = manifest_problems(self.plugin, conformance.available)
        assert not problems, "\n".join(problems)

    def test_hooks_exist_documented_and_match(self, conformance):
        self._require_loadable(conformance)
        problems = hook_problems(self.plugin, conformance.available)
        assert not problems, "\n".join(problems)

    def test_permissions_used_are_declared(self, conformance):
        self._require_loadable(conformance)
        names = closure([self.plugin], conformance.available, optional=True)
        names = startable(conformance.available, names)
        with conformance.build(names, tables=False) as app:
            problems = permission_problems(self.plugin, conformance.available,
                                           dovetail(app).registry, self.not_permissions)
        assert not problems, "\n".join(problems)

    def test_starts_and_passes_smoke_checks(self, conformance):
        self._require_loadable(conformance)
        names = closure([self.plugin], conformance.available)
        with conformance.build(names) as app:
            problems = smoke_problems(app, [self.plugin])
        assert not problems, "\n".join(problems)

    def test_get_answers_match_the_documented_schemas(self, conformance):
        """Every GET route of the plugin, with demo data, as an admin and as a rep: each 2xx
        body is valid against its schema in /api/v1/openapi.json (no undocumented field)."""
        self._require_loadable(conformance)
        names = closure([self.plugin], conformance.available)
        with conformance.build(names) as app:
            problems, stats = contract_problems(app, [self.plugin])
            has_get = any("GET" in r.methods for r in plugin_rules(app, self.plugin))
        assert not problems, f"{len(problems)} answers differ from the document:\n" + "\n".join(problems[:60])
        assert stats["admin"]["checked"] or not has_get, "no GET answer of the plugin was checked"

    def test_migrations_apply_match_and_downgrade(self, conformance):
        self._require_loadable(conformance)
        names = closure([self.plugin], conformance.available)
        with conformance.build(names, tables=False) as app:
            problems = migration_problems(app, self.plugin)
        assert not problems, "\n".join(problems)

    def test_disabling_leaves_the_others_working(self, conformance):
        self._require_loadable(conformance)
        av = conformance.available
        base = startable(av, conformance.enabled)
        if self.plugin not in base:
            base = closure([*base, self.plugin], av)
        gone = {self.plugin} | dependents(self.plugin, base, av)
        remaining = [n for n in base if n not in gone]
        prefixes = [bp.url_prefix or "" for bp in (getattr(av[self.plugin].module, "register_blueprints",
                                                           lambda: [])() or [])]
        with conformance.build(remaining) as app:
            problems = smoke_problems(app, remaining)
            client = app.test_client()
            _user, token = admin_token(app)
            for prefix in prefixes:
                r = client.get("/api/v1" + prefix, headers={"Authorization": f"Bearer {token}"})
                if r.status_code != 404:
                    problems.append(f"GET /api/v1{prefix} answered {r.status_code} with "
                                    f"'{self.plugin}' disabled (expected 404)")
                elif set((r.get_json(silent=True) or {}).get("error", {})) != {"code", "message", "fields"}:
                    problems.append(f"GET /api/v1{prefix}: 404 without the JSON error shape")
        assert not problems, "\n".join(problems)


def conformance_tests(plugin: str, **options: Any) -> type:
    """``TestConformance = conformance_tests("crm")``: the suite as a ready test class."""
    return type("TestConformance", (PluginConformance,), {"plugin": plugin, **options})


__all__ = ["PluginConformance", "conformance_tests", "manifest_problems", "hook_problems", "permission_problems",
           "used_permissions", "not_permissions", "smoke_problems", "migration_problems", "openapi_problems",
           "built_app", "closure", "dependents", "available_plugins", "contract_problems", "body_problems",
           "closed_schemas", "ContractProbe"]
