"""Configuration files under ``config/``: loaded, validated strictly, then frozen.

Every YAML file is composed node by node so each value keeps its position; a
marshmallow error or a duplicate key is reported as ``file:line:column: message``.
Environment variables override secrets and URLs: ``DOVETAIL_CONFIG``,
``DOVETAIL_DATABASE_URL``, ``DOVETAIL_SECRET_KEY``, ``DOVETAIL_REDIS_URL``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml
from marshmallow import EXCLUDE, RAISE, Schema, fields, validate
from marshmallow import ValidationError as MarshmallowError

from core.errors import ConfigError, ConfigIssue

Path_ = tuple[Any, ...]


@dataclass
class YamlDoc:
    """A parsed YAML file with the position of every key and value."""

    file: str
    data: Any
    value_marks: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    key_marks: dict[Path_, tuple[int, int]] = field(default_factory=dict)

    def mark(self, path: Path_, *, key: bool = False) -> tuple[int, int]:
        """Line and column (1-based) of ``path``, or of its nearest known ancestor."""
        path = tuple(path)
        while True:
            marks = self.key_marks if key and path in self.key_marks else self.value_marks
            if path in marks:
                return marks[path]
            if not path:
                return (1, 1)
            path = path[:-1]

    def issue(self, path: Path_, message: str, *, key: bool = False, severity: str = "error"):
        line, col = self.mark(path, key=key)
        return ConfigIssue(self.file, line, col, message, severity)


def _pos(mark: yaml.Mark) -> tuple[int, int]:
    return (mark.line + 1, mark.column + 1)


#: Deepest nesting of mappings and lists a config file may have (real files use about 6).
MAX_DEPTH = 64


class _Refused(yaml.MarkedYAMLError):
    """A construct the config loader refuses; ``parse_yaml`` turns it into a located issue."""


class ConfigLoader(yaml.SafeLoader):
    """The one YAML loader for config files: safe tags only, no aliases, bounded nesting.

    An alias (``*name``) is refused when composed, before anything is expanded: a few
    lines of nested aliases (a "billion laughs") would otherwise expand to billions of
    values. Nesting is capped so a hostile file cannot exhaust the stack.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise _Refused(problem=f"alias '*{event.anchor}' is not allowed in config files "
                                   "(hint: write the value out in full)", problem_mark=event.start_mark)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _Refused(problem=f"nested more than {MAX_DEPTH} levels deep",
                               problem_mark=self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _offset_position(text: str, offset: int) -> tuple[int, int]:
    """Line and column (1-based) of character ``offset`` in ``text``."""
    before = text[:offset]
    line = before.count("\n") + 1
    return line, offset - (before.rfind("\n") + 1) + 1


def _single_node(text: str, file: str) -> tuple[ConfigLoader, Any]:
    """The loader and the document's root node, or a located :class:`ConfigError` (syntax, a
    refused character or construct)."""
    loader = None
    try:
        loader = ConfigLoader(text)  # reads the whole text: refuses control characters here
        node = loader.get_single_node()
    except _Refused as exc:
        line, col = _pos(exc.problem_mark)
        raise ConfigError([ConfigIssue(file, line, col, f"YAML: {exc.problem}")]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = _pos(mark) if mark else (1, 1)
        problem = exc.problem or str(exc)
        if exc.context:
            problem = f"{exc.context}: {problem}"
        raise ConfigError([ConfigIssue(file, line, col, f"YAML syntax: {problem}")]) from None
    except yaml.reader.ReaderError as exc:
        line, col = _offset_position(text, exc.position)
        char = f"U+{exc.character:04X}" if isinstance(exc.character, int) else repr(exc.character)
        raise ConfigError([ConfigIssue(file, line, col, f"character {char} is not allowed in YAML "
                                                       "(hint: remove it or quote it as an escape)")]) from None
    finally:
        if loader is not None:
            loader.dispose()
    return loader, node


def compose(text: str, file: str) -> tuple[YamlDoc, list[ConfigIssue]]:
    """Parse ``text`` keeping marks; return the document and its non-fatal issues.

    Raises :class:`ConfigError` when the file cannot be read past a point (syntax, an
    alias, a forbidden character, too deep). Duplicate keys (the first one is kept),
    non-text keys and values that cannot be built are returned as issues, so a checker
    can go on reporting the rest of the file; :func:`parse_yaml` raises on them.
    """
    doc = YamlDoc(file, None)
    issues: list[ConfigIssue] = []
    loader, node = _single_node(text, file)

    def value(n: yaml.Node) -> Any:
        try:
            return loader.construct_object(n, deep=True)
        except yaml.constructor.ConstructorError as exc:
            problem = exc.problem
        except (ValueError, TypeError, OverflowError) as exc:  # e.g. a date 2026-13-45
            problem = f"cannot read {n.value!r}: {exc}"
        line, col = _pos(n.start_mark)
        issues.append(ConfigIssue(file, line, col, f"YAML value: {problem}"))
        return None

    def walk(n: yaml.Node, path: Path_) -> Any:
        doc.value_marks[path] = _pos(n.start_mark)
        if isinstance(n, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in n.value:
                line, col = _pos(key_node.start_mark)
                key = value(key_node) if isinstance(key_node, yaml.ScalarNode) else None
                if isinstance(key, bool):
                    issues.append(ConfigIssue(file, line, col, f"key '{key_node.value}' reads as "
                                              f"{str(key).lower()} (hint: quote it: '{key_node.value}')"))
                    continue
                if not isinstance(key, str | int):
                    issues.append(ConfigIssue(file, line, col, "keys must be plain text"))
                    continue
                if key in out:
                    first = doc.key_marks[path + (key,)]
                    issues.append(ConfigIssue(
                        file, line, col,
                        f"duplicate key '{key}' (first defined at line {first[0]})"))
                    continue
                doc.key_marks[path + (key,)] = (line, col)
                out[key] = walk(value_node, path + (key,))
            return out
        if isinstance(n, yaml.SequenceNode):
            return [walk(item, path + (i,)) for i, item in enumerate(n.value)]
        return value(n)

    doc.data = walk(node, ()) if node is not None else None
    return doc, issues


def parse_yaml(text: str, file: str) -> YamlDoc:
    """Parse ``text`` keeping marks; raise :class:`ConfigError` on any mistake."""
    doc, issues = compose(text, file)
    if issues:
        raise ConfigError(issues)
    return doc


def decode_text(raw: bytes, file: str) -> str:
    """``raw`` as UTF-8 text; invalid bytes are a located :class:`ConfigError`."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        good = raw[:exc.start].decode("utf-8")
        line, col = _offset_position(good, len(good))
        raise ConfigError([ConfigIssue(file, line, col, f"invalid UTF-8 (byte 0x{raw[exc.start]:02x}): "
                                                        "save the file as UTF-8")]) from None


def read_text(path: Path | str, display: str | None = None) -> str:
    """Read a config file as UTF-8; missing, unreadable or not UTF-8 is a located ConfigError."""
    path = Path(path)
    name = display or str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError([ConfigIssue(name, 1, 1, "file not found")]) from None
    except OSError as exc:
        raise ConfigError([ConfigIssue(name, 1, 1, f"cannot read: {exc.strerror or exc}")]) from None
    return decode_text(raw, name)


def load_yaml_file(path: Path | str, display: str | None = None) -> YamlDoc:
    """Read and parse one YAML file; a missing or unreadable file is a ConfigError too."""
    name = display or str(path)
    return parse_yaml(read_text(path, name), name)


def require_mapping(doc: YamlDoc, empty_hint: str) -> dict[Any, Any]:
    """The document as a mapping; an empty (or comments-only) file or another shape is a
    located error. ``empty_hint`` says what the file should hold."""
    if doc.data is None:
        raise ConfigError([doc.issue((), f"the file is empty (hint: {empty_hint})")])
    if not isinstance(doc.data, Mapping):
        raise ConfigError([doc.issue((), f"the file must be a mapping of keys, not a "
                                         f"{_kind(doc.data)} (hint: {empty_hint})")])
    return dict(doc.data)


def _kind(value: Any) -> str:
    return {list: "list", str: "text", int: "number", float: "number", bool: "true/false"}.get(
        type(value), type(value).__name__)


def _flatten(messages: Any, path: Path_ = ()) -> list[tuple[Path_, str]]:
    out: list[tuple[Path_, str]] = []
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            sub = path if key == "_schema" else path + (key,)
            out.extend(_flatten(value, sub))
    elif isinstance(messages, list | tuple):
        for item in messages:
            if isinstance(item, str):
                out.append((path, item))
            else:
                out.extend(_flatten(item, path))
    else:
        out.append((path, str(messages)))
    return out


def _dict_path(doc: YamlDoc, prefix: Path_, path: Path_) -> Path_:
    """marshmallow nests ``Dict`` errors as ``{key: {"value": ...}}``; drop that level."""
    full: Path_ = tuple(prefix)
    for part in path:
        if part in ("key", "value") and full + (part,) not in doc.value_marks and full in doc.value_marks:
            continue
        full += (part,)
    return full


def issues_from_marshmallow(doc: YamlDoc, err: MarshmallowError, prefix: Path_ = ()) -> list:
    """Locate every marshmallow message at its key or value in ``doc``."""
    issues = []
    for path, msg in _flatten(err.messages):
        full = _dict_path(doc, prefix, path)
        dotted = ".".join(str(p) for p in full) or "(document)"
        if msg == "Unknown field.":
            where = dotted.rsplit(".", 1)[0] if len(full) > 1 else "top level"
            issues.append(doc.issue(full, f"unknown key '{full[-1]}' in {where}", key=True))
        else:
            issues.append(doc.issue(full, f"{dotted}: {msg}"))
    return sorted(issues, key=lambda i: (i.line, i.column))


def validate_doc(doc: YamlDoc, schema: Schema, prefix: Path_ = (), data: Any = None) -> Any:
    """Load ``data`` (default: the whole doc) with ``schema``; ConfigError on any mistake."""
    payload = doc.data if data is None else data
    if payload is None:
        payload = {}
    try:
        return schema.load(payload)
    except MarshmallowError as err:
        raise ConfigError(issues_from_marshmallow(doc, err, prefix)) from None


# ---------------------------------------------------------------------------
# dovetail.yaml
# ---------------------------------------------------------------------------


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class PluginsSection(_Strict):
    enabled = fields.List(fields.String(), load_default=list)


class DatabaseSection(_Strict):
    url = fields.String(load_default=None)


class SecuritySection(_Strict):
    login_max_failures = fields.Integer(load_default=5, validate=validate.Range(min=1))
    login_ip_max_failures = fields.Integer(load_default=30, validate=validate.Range(min=1))
    login_window_seconds = fields.Integer(load_default=900, validate=validate.Range(min=10))
    token_ttl_days = fields.Integer(load_default=90, validate=validate.Range(min=1))
    argon2_time_cost = fields.Integer(load_default=3, validate=validate.Range(min=1))
    argon2_memory_kib = fields.Integer(load_default=65536, validate=validate.Range(min=8))
    # Reverse proxies in front of the app whose X-Forwarded-For/-Proto are believed (0: none).
    trusted_proxies = fields.Integer(load_default=0, validate=validate.Range(min=0, max=5))


class MainSchema(_Strict):
    plugins = fields.Nested(PluginsSection, load_default=lambda: {"enabled": []})
    database = fields.Nested(DatabaseSection, load_default=lambda: {"url": None})
    locale = fields.String(load_default="zh_CN", validate=validate.OneOf(["zh_CN", "en"]))
    timezone = fields.String(load_default="Asia/Shanghai")
    currency = fields.String(load_default="CNY", validate=validate.Length(equal=3))
    redis_url = fields.String(load_default=None, allow_none=True)
    instance_path = fields.String(load_default="instance")
    security = fields.Nested(SecuritySection, load_default=lambda: SecuritySection().load({}))
    settings = fields.Dict(keys=fields.String(), values=fields.Dict(), load_default=dict)


class RoleSchema(_Strict):
    label = fields.Dict(keys=fields.String(), values=fields.String(), load_default=dict)
    description = fields.String(load_default="")
    permissions = fields.List(fields.String(), load_default=list)
    scope = fields.String(load_default="own", validate=validate.OneOf(["own", "team", "all"]))


class RolesFile(_Strict):
    roles = fields.Dict(keys=fields.String(validate=validate.Regexp(r"^[a-z][a-z0-9_]*$")),
                        values=fields.Nested(RoleSchema), required=True)


@dataclass(frozen=True)
class Role:
    name: str
    permissions: tuple[str, ...]
    scope: str
    label: Mapping[str, str]
    description: str = ""


@dataclass(frozen=True)
class Config:
    """The frozen configuration of one app."""

    config_dir: Path
    enabled: tuple[str, ...]
    database_url: str
    secret_key: str
    locale: str
    timezone: str
    currency: str
    redis_url: str | None
    instance_path: Path
    security: Mapping[str, Any]
    settings: Mapping[str, Mapping[str, Any]]
    roles: Mapping[str, Role]
    main_doc: YamlDoc | None = None
    roles_doc: YamlDoc | None = None
    roles_overridden: bool = False      # roles given to create_app(config=...), not read from roles.yaml
    testing: bool = False

    def plugin_settings(self, name: str) -> Mapping[str, Any]:
        return self.settings.get(name, MappingProxyType({}))

    @property
    def main_file(self) -> Path:
        return self.config_dir / "dovetail.yaml"

    @property
    def roles_file(self) -> Path:
        return self.config_dir / "roles.yaml"


MAIN_HINT = ("list the enabled plugins, e.g. 'plugins: {enabled: [crm, catalog]}' ('enabled: []' for "
             "none); 'dovetail plugins list' shows what is installed")
ROLES_HINT = "define the roles, e.g. 'roles: {admin: {permissions: [\"*\"], scope: all}}'"
DEFAULT_ROLES = {"admin": {"permissions": ["*"], "scope": "all", "label": {}}}


def read_main(path: Path | str, display: str | None = None, *,
              plugins_required: bool = True, text: str | None = None) -> tuple[YamlDoc, dict[str, Any]]:
    """Read and validate ``dovetail.yaml``: ``(doc, validated values)`` or a located ConfigError.

    ``plugins_required``: an empty file or one without ``plugins.enabled`` is refused (it
    would start with every plugin disabled); off when the caller names the plugins itself.
    """
    doc = load_yaml_file(path, display) if text is None else parse_yaml(text, display or str(path))
    if doc.data is not None or plugins_required:
        data = require_mapping(doc, MAIN_HINT)
        plugins = data.get("plugins")
        if plugins_required and (plugins is None and "plugins" not in data
                                 or isinstance(plugins, Mapping) and "enabled" not in plugins):
            where = ("plugins",) if "plugins" in data else ()
            raise ConfigError([doc.issue(where, f"plugins.enabled is missing (hint: {MAIN_HINT})",
                                         key=bool(where))])
    return doc, validate_doc(doc, MainSchema())


def roles_from(raw: Mapping[str, Any]) -> Mapping[str, Role]:
    """Frozen :class:`Role` objects from validated (or overridden) role data."""
    return MappingProxyType({
        name: Role(name, tuple(r.get("permissions", ())), r.get("scope", "own"),
                   MappingProxyType(dict(r.get("label", {}))), r.get("description", ""))
        for name, r in raw.items()})


def read_roles(path: Path | str, display: str | None = None, *,
               text: str | None = None) -> tuple[YamlDoc, Mapping[str, Role]]:
    """Read and validate ``roles.yaml`` on its own (shape, keys, scopes): ``(doc, roles)``.

    Whether each permission is declared needs the plugins: :func:`core.plugins.check_roles`.
    """
    doc = load_yaml_file(path, display) if text is None else parse_yaml(text, display or str(path))
    require_mapping(doc, ROLES_HINT)
    raw = validate_doc(doc, RolesFile())["roles"]
    if not raw:
        raise ConfigError([doc.issue(("roles",), f"no roles are defined (hint: {ROLES_HINT})")])
    return doc, roles_from(raw)


def default_config_dir() -> Path:
    return Path(os.environ.get("DOVETAIL_CONFIG") or "config")


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _secret_key(instance: Path) -> str:
    env = os.environ.get("DOVETAIL_SECRET_KEY")
    if env:
        return env
    keyfile = instance / "secret_key"
    if keyfile.exists():
        return keyfile.read_text().strip()
    try:
        instance.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        keyfile.write_text(key)
        keyfile.chmod(0o600)
        return key
    except OSError:
        return secrets.token_urlsafe(48)


def load_config(config_dir: Path | str | None = None, *, overrides: Mapping[str, Any] | None = None,
                testing: bool = False) -> Config:
    """Load ``dovetail.yaml`` and ``roles.yaml`` from ``config_dir`` and freeze them.

    ``overrides`` (tests, ``create_app(config=...)``) replace top-level values after
    validation: ``enabled``, ``database_url``, ``secret_key``, ``roles``.
    """
    cdir = Path(config_dir) if config_dir else default_config_dir()
    overrides = dict(overrides or {})
    main_path = cdir / "dovetail.yaml"
    issues: list[ConfigIssue] = []
    main_doc = roles_doc = None
    main: dict[str, Any] = MainSchema().load({})
    if main_path.exists():
        try:
            main_doc, main = read_main(main_path, _rel(main_path), plugins_required="enabled" not in overrides)
        except ConfigError as exc:
            issues.extend(exc.issues)
    elif "enabled" not in overrides:
        issues.append(ConfigIssue(_rel(main_path), 1, 1,
                                  "file not found (run 'dovetail init' or pass --config DIR)"))
    roles: Mapping[str, Role] = MappingProxyType({})
    roles_path = cdir / "roles.yaml"
    roles_overridden = "roles" in overrides
    if roles_overridden:
        roles = roles_from(overrides.pop("roles") or {})
    elif roles_path.exists():
        try:
            roles_doc, roles = read_roles(roles_path, _rel(roles_path))
        except ConfigError as exc:
            issues.extend(exc.issues)
    else:
        roles = roles_from(DEFAULT_ROLES)
    if issues:
        raise ConfigError(issues)

    base = cdir.parent if cdir.name == "config" else cdir
    instance = Path(main["instance_path"])
    if not instance.is_absolute():
        instance = (base / instance).resolve()
    db_url = (overrides.pop("database_url", None) or os.environ.get("DOVETAIL_DATABASE_URL")
              or main["database"]["url"] or f"sqlite:///{instance / 'dovetail.db'}")
    secret = overrides.pop("secret_key", None) or _secret_key(instance)
    enabled = tuple(overrides.pop("enabled", None) or main["plugins"]["enabled"])
    redis_url = overrides.pop("redis_url", None) or os.environ.get("DOVETAIL_REDIS_URL") \
        or main["redis_url"]
    security = dict(main["security"])
    security.update(overrides.pop("security", {}) or {})
    settings = {k: MappingProxyType(dict(v)) for k, v in main["settings"].items()}
    for k, v in (overrides.pop("settings", {}) or {}).items():
        settings[k] = MappingProxyType({**settings.get(k, {}), **v})
    if overrides:
        raise TypeError(f"unknown config overrides: {sorted(overrides)}")
    return Config(
        config_dir=cdir, enabled=enabled, database_url=db_url, secret_key=secret,
        locale=main["locale"], timezone=main["timezone"], currency=main["currency"],
        redis_url=redis_url, instance_path=instance, security=MappingProxyType(security),
        settings=MappingProxyType(settings), roles=roles,
        main_doc=main_doc, roles_doc=roles_doc, roles_overridden=roles_overridden, testing=testing,
    )


def validate_plugin_settings(config: Config, name: str, schema_cls: Any) -> Mapping[str, Any]:
    """Validate a plugin's section of ``settings`` with its schema; located errors."""
    raw = dict(config.settings.get(name, {}))
    schema = schema_cls(unknown=RAISE) if schema_cls else None
    if schema is None:
        if raw and config.main_doc:
            msg = f"plugin '{name}' takes no settings"
            raise ConfigError([config.main_doc.issue(("settings", name), msg, key=True)])
        return MappingProxyType(raw)
    try:
        return MappingProxyType(schema.load(raw))
    except MarshmallowError as err:
        if config.main_doc is None:
            raise ConfigError([ConfigIssue("settings", 1, 1, f"settings.{name}: {err.messages}")]) from None
        raise ConfigError(issues_from_marshmallow(config.main_doc, err, ("settings", name))) from None


__all__ = ["Config", "Role", "YamlDoc", "load_config", "parse_yaml", "compose", "load_yaml_file",
           "read_text", "decode_text", "require_mapping", "read_main", "read_roles", "roles_from",
           "validate_doc", "issues_from_marshmallow", "validate_plugin_settings", "EXCLUDE"]
