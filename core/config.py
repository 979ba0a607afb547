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


def parse_yaml(text: str, file: str) -> YamlDoc:
    """Parse ``text`` keeping marks; raise :class:`ConfigError` on syntax or duplicate keys."""
    loader = yaml.SafeLoader(text)
    doc = YamlDoc(file, None)
    issues: list[ConfigIssue] = []
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = _pos(mark) if mark else (1, 1)
        problem = exc.problem or str(exc)
        if exc.context:
            problem = f"{exc.context}: {problem}"
        raise ConfigError([ConfigIssue(file, line, col, f"YAML syntax: {problem}")]) from None
    finally:
        loader.dispose()

    def walk(n: yaml.Node, path: Path_) -> Any:
        doc.value_marks[path] = _pos(n.start_mark)
        if isinstance(n, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in n.value:
                key = loader.construct_object(key_node, deep=True)
                if not isinstance(key, str | int):
                    line, col = _pos(key_node.start_mark)
                    issues.append(ConfigIssue(file, line, col, "keys must be plain text"))
                    continue
                if key in out:
                    line, col = _pos(key_node.start_mark)
                    first = doc.key_marks[path + (key,)]
                    issues.append(ConfigIssue(
                        file, line, col,
                        f"duplicate key '{key}' (first defined at line {first[0]})"))
                    continue
                doc.key_marks[path + (key,)] = _pos(key_node.start_mark)
                out[key] = walk(value_node, path + (key,))
            return out
        if isinstance(n, yaml.SequenceNode):
            return [walk(item, path + (i,)) for i, item in enumerate(n.value)]
        try:
            return loader.construct_object(n, deep=True)
        except yaml.constructor.ConstructorError as exc:
            line, col = _pos(n.start_mark)
            issues.append(ConfigIssue(file, line, col, f"YAML value: {exc.problem}"))
            return None

    doc.data = walk(node, ()) if node is not None else None
    if issues:
        raise ConfigError(issues)
    return doc


def load_yaml_file(path: Path | str, display: str | None = None) -> YamlDoc:
    """Read and parse one YAML file; a missing or unreadable file is a ConfigError too."""
    path = Path(path)
    name = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([ConfigIssue(name, 1, 1, "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([ConfigIssue(name, 1, 1, f"cannot read: {exc}")]) from None
    return parse_yaml(text, name)


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
    testing: bool = False

    def plugin_settings(self, name: str) -> Mapping[str, Any]:
        return self.settings.get(name, MappingProxyType({}))

    @property
    def main_file(self) -> Path:
        return self.config_dir / "dovetail.yaml"

    @property
    def roles_file(self) -> Path:
        return self.config_dir / "roles.yaml"


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
            main_doc = load_yaml_file(main_path, _rel(main_path))
            main = validate_doc(main_doc, MainSchema())
        except ConfigError as exc:
            issues.extend(exc.issues)
    elif "enabled" not in overrides:
        issues.append(ConfigIssue(_rel(main_path), 1, 1,
                                  "file not found (run 'dovetail init' or pass --config DIR)"))
    roles: dict[str, Role] = {}
    roles_path = cdir / "roles.yaml"
    if "roles" in overrides:
        raw_roles = overrides.pop("roles")
    elif roles_path.exists():
        raw_roles = None
        try:
            roles_doc = load_yaml_file(roles_path, _rel(roles_path))
            raw_roles = validate_doc(roles_doc, RolesFile())["roles"]
        except ConfigError as exc:
            issues.extend(exc.issues)
    else:
        raw_roles = {"admin": {"permissions": ["*"], "scope": "all", "label": {}}}
    if issues:
        raise ConfigError(issues)
    for name, r in (raw_roles or {}).items():
        roles[name] = Role(name, tuple(r.get("permissions", ())), r.get("scope", "own"),
                           MappingProxyType(dict(r.get("label", {}))), r.get("description", ""))

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
        settings=MappingProxyType(settings), roles=MappingProxyType(roles),
        main_doc=main_doc, roles_doc=roles_doc, testing=testing,
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


__all__ = ["Config", "Role", "YamlDoc", "load_config", "parse_yaml", "load_yaml_file",
           "validate_doc", "issues_from_marshmallow", "validate_plugin_settings", "EXCLUDE"]
