"""Field definitions: the YAML format, its validation, and the marshmallow fields built from it.

A definition file looks like::

    fields:
      customer:                 # a registered custom-field entity
        wechat_id:              # the key stored under ``custom``
          type: string
          label: {en: WeChat ID, zh_CN: 微信号}
          pattern: '[A-Za-z][-_A-Za-z0-9]{5,19}'

Every mistake is a :class:`core.errors.ConfigIssue` located at file:line:column.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from marshmallow import RAISE, Schema, fields, validate, validates_schema
from marshmallow import ValidationError as MarshmallowError

from core.config import YamlDoc, require_mapping, validate_doc
from core.errors import ConfigError, ConfigIssue
from core.fields import PhoneError
from core.fields import normalise_phone as core_normalise_phone

TYPES = ("string", "text", "integer", "decimal", "boolean", "date", "datetime", "choice",
         "multi_choice", "email", "phone")
#: Options that only make sense for some types (everything else applies to all).
APPLIES = {
    "min": ("integer", "decimal", "date", "datetime"),
    "max": ("integer", "decimal", "date", "datetime"),
    "max_length": ("string", "text", "email", "phone"),
    "pattern": ("string", "text"),
    "choices": ("choice", "multi_choice"),
    "places": ("decimal",),
}
KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
LOCALES = ("en", "zh_CN")

# Messages users see in the API (tests pin them).
MSG_PATTERN = "Does not match the required format."
MSG_PHONE = "Not a valid phone number."
MSG_READ_ONLY = "You may not change this field."
MSG_NUL = "Must not contain NUL characters."


# ---------------------------------------------------------------------------
# The definition of one field
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldDef:
    """One custom field as in force; ``hidden`` fields keep their stored values."""

    entity: str
    key: str
    type: str
    label: Mapping[str, str]
    required: bool = False
    default: Any = None
    min: Any = None
    max: Any = None
    max_length: int | None = None
    places: int = 2
    pattern: str | None = None
    choices: tuple[tuple[str, Mapping[str, str]], ...] = ()
    help: Mapping[str, str] = field(default_factory=dict)
    read_roles: tuple[str, ...] = ()
    write_roles: tuple[str, ...] = ()
    hidden: bool = False

    def label_for(self, locale: str | None) -> str:
        return _pick(self.label, locale) or self.key

    def help_for(self, locale: str | None) -> str:
        return _pick(self.help, locale)

    @property
    def choice_values(self) -> list[str]:
        return [v for v, _ in self.choices]

    def shape(self) -> dict[str, Any]:
        """What decides whether a stored value fits (a change here triggers the count)."""
        return {"type": self.type, "min": _plain(self.min), "max": _plain(self.max),
                "max_length": self.max_length, "pattern": self.pattern,
                "choices": self.choice_values, "places": self.places if self.type == "decimal" else None}

    def to_json(self) -> dict[str, Any]:
        return {"entity": self.entity, "key": self.key, "type": self.type, "label": dict(self.label),
                "required": self.required, "default": _plain(self.default), "min": _plain(self.min),
                "max": _plain(self.max), "max_length": self.max_length,
                "places": self.places if self.type == "decimal" else None, "pattern": self.pattern,
                "choices": [{"value": v, "label": dict(lab)} for v, lab in self.choices],
                "help": dict(self.help), "read_roles": list(self.read_roles),
                "write_roles": list(self.write_roles), "hidden": self.hidden}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> FieldDef:
        t = d["type"]
        return cls(entity=d["entity"], key=d["key"], type=t, label=dict(d.get("label") or {}),
                   required=bool(d.get("required")), default=_typed(t, d.get("default")),
                   min=_typed(t, d.get("min")), max=_typed(t, d.get("max")),
                   max_length=d.get("max_length"), places=d.get("places") or 2,
                   pattern=d.get("pattern"),
                   choices=tuple((c["value"], dict(c.get("label") or {})) for c in d.get("choices") or ()),
                   help=dict(d.get("help") or {}), read_roles=tuple(d.get("read_roles") or ()),
                   write_roles=tuple(d.get("write_roles") or ()), hidden=bool(d.get("hidden")))


def _pick(texts: Mapping[str, str], locale: str | None) -> str:
    if not texts:
        return ""
    if locale and locale in texts:
        return texts[locale]
    return texts.get("en") or texts.get("zh_CN") or next(iter(texts.values()))


def _plain(value: Any) -> Any:
    """JSON-friendly form of a bound or default."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    return value


def _typed(type_: str, value: Any) -> Any:
    """Inverse of :func:`_plain` for bounds and defaults read back from JSON."""
    if value is None:
        return None
    if type_ == "decimal":
        return Decimal(str(value))
    if type_ == "date" and isinstance(value, str):
        return date.fromisoformat(value)
    if type_ == "datetime" and isinstance(value, str):
        return datetime.fromisoformat(value)
    if type_ == "multi_choice" and isinstance(value, list):
        return tuple(value)
    return value


# ---------------------------------------------------------------------------
# Runtime marshmallow fields (what the API validates with)
# ---------------------------------------------------------------------------


def normalise_phone(text: str) -> str | None:
    """The number in E.164 (core.fields: mobiles, landlines with area code, HK/MO/TW, foreign);
    None when it is not a phone number."""
    try:
        return core_normalise_phone(text)
    except PhoneError:
        return None


class _Phone(fields.String):
    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> str:
        text = super()._deserialize(value, attr, data, **kw)
        out = normalise_phone(text)
        if out is None:
            raise MarshmallowError(MSG_PHONE)
        return out


class _MultiChoice(fields.List):
    """A list of choice values; a string is split on commas or | (CSV import, forms)."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> list[Any]:
        if isinstance(value, str):
            value = [p.strip() for p in re.split(r"[,|，]", value) if p.strip()]
        out = super()._deserialize(value, attr, data, **kw)
        seen: list[Any] = []
        for v in out:
            if v not in seen:
                seen.append(v)
        return seen


class _DateTime(fields.DateTime):
    """ISO datetimes; aware values are stored as naive UTC so text order is time order."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> datetime:
        out = super()._deserialize(value, attr, data, **kw)
        if out.tzinfo is not None:
            out = out.astimezone(UTC).replace(tzinfo=None)
        return out.replace(microsecond=0)


class _Date(fields.Date):
    """ISO dates; a datetime value from JSON is not silently truncated."""


def _fullmatch(pattern: str) -> Any:
    rx = re.compile(pattern)

    def check(value: str) -> None:
        if rx.fullmatch(value) is None:
            raise MarshmallowError(MSG_PATTERN)

    return check


def _no_nul(value: str) -> None:
    if "\x00" in value:
        raise MarshmallowError(MSG_NUL)


def _range(fd: FieldDef) -> Any:
    if fd.min is None and fd.max is None:
        return None
    return validate.Range(min=fd.min, max=fd.max)


def _validators(fd: FieldDef) -> list[Any]:
    """The value checks of ``fd``: no NUL in text, length, pattern, range and choices."""
    vals: list[Any] = []
    if fd.type in ("string", "text", "email", "phone", "choice"):
        vals.append(_no_nul)
    if fd.type in ("string", "text", "email", "phone") and fd.max_length:
        vals.append(validate.Length(max=fd.max_length))
    if fd.pattern:
        vals.append(_fullmatch(fd.pattern))
    rng = _range(fd)
    if rng is not None:
        vals.append(rng)
    if fd.type == "choice":
        vals.append(validate.OneOf(fd.choice_values))
    return vals


# Field type → the marshmallow field built from the definition and the common keyword arguments.
_FIELD_FACTORIES: dict[str, Any] = {
    "string": lambda fd, kw: fields.String(**kw),
    "text": lambda fd, kw: fields.String(**kw),
    "choice": lambda fd, kw: fields.String(**kw),
    "email": lambda fd, kw: fields.Email(**kw),
    "phone": lambda fd, kw: _Phone(**kw),
    "integer": lambda fd, kw: fields.Integer(strict=False, **kw),
    "decimal": lambda fd, kw: fields.Decimal(places=fd.places, rounding=ROUND_HALF_UP, allow_nan=False, **kw),
    "boolean": lambda fd, kw: fields.Boolean(**kw),
    "date": lambda fd, kw: _Date(**kw),
    "datetime": lambda fd, kw: _DateTime(**kw),
    "multi_choice": lambda fd, kw: _MultiChoice(fields.String(validate=validate.OneOf(fd.choice_values)), **kw),
}


def build_field(fd: FieldDef, *, required: bool | None = None, with_default: bool = True) -> fields.Field:
    """The marshmallow field validating values of ``fd``; output is storable JSON."""
    kw: dict[str, Any] = {"required": fd.required if required is None else required}
    kw["validate"] = _validators(fd)
    if with_default and fd.default is not None and not kw["required"]:
        kw["load_default"] = _plain(fd.default)
    factory = _FIELD_FACTORIES.get(fd.type)
    if factory is None:
        raise ValueError(f"unknown custom field type {fd.type!r}")  # definitions are validated first
    field: fields.Field = factory(fd, kw)
    return field


def to_storage(fd: FieldDef, value: Any) -> Any:
    """A loaded value as kept in the JSON column (Decimal and dates as ISO text)."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def coerce(fd: FieldDef, value: Any) -> Any:
    """Validate one value against ``fd``; returns the storable value or raises."""
    f = build_field(fd, required=False, with_default=False)
    return to_storage(fd, f.deserialize(value))


def fits(fd: FieldDef, value: Any) -> bool:
    """Whether a stored value is still valid under ``fd`` (for type-change counting)."""
    if value is None:
        return True
    try:
        coerce(fd, value)
    except MarshmallowError:
        return False
    return True


# ---------------------------------------------------------------------------
# The file format
# ---------------------------------------------------------------------------


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class LabelSchema(_Strict):
    en = fields.String(validate=validate.Length(min=1, max=200))
    zh_CN = fields.String(validate=validate.Length(min=1, max=200))

    @validates_schema
    def _one(self, data: dict[str, Any], **_: Any) -> None:
        if not data:
            raise MarshmallowError("give at least one of en, zh_CN")


def _check_bounds(data: dict[str, Any], t: str, errors: dict[str, list[str]], err: Any) -> None:
    """Parse ``min``/``max`` as values of type ``t`` (in place) and check min <= max."""
    for bound in ("min", "max"):
        if data.get(bound) is not None and t in APPLIES[bound]:
            try:
                data[bound] = _parse_bound(t, data[bound])
            except ValueError:
                err(bound, f"not a valid {t}: {data[bound]!r}")
    lo, hi = data.get("min"), data.get("max")
    if "min" not in errors and "max" not in errors and lo is not None and hi is not None \
            and t in APPLIES["min"] and lo > hi:
        err("min", f"min ({_plain(lo)}) is greater than max ({_plain(hi)})")


def _check_roles(data: dict[str, Any], roles: set[str], err: Any) -> None:
    """Every role in ``read_roles``/``write_roles`` must be defined in roles.yaml."""
    for key in ("read_roles", "write_roles"):
        for role in data.get(key) or ():
            if role not in roles:
                err(key, f"unknown role '{role}'; roles.yaml defines: {', '.join(sorted(roles))}")


class FieldSchema(_Strict):
    """One field's definition in the file (or the API body, with ``entity`` and ``key``)."""

    type = fields.String(required=True, validate=validate.OneOf(
        TYPES, error="unknown type '{input}'; use one of: {choices}"))
    label = fields.Nested(LabelSchema, required=True)
    help = fields.Nested(LabelSchema)
    required = fields.Boolean(load_default=False)
    default = fields.Raw(allow_none=True)
    min = fields.Raw(allow_none=True)
    max = fields.Raw(allow_none=True)
    max_length = fields.Integer(allow_none=True, validate=validate.Range(min=1, max=100000))
    places = fields.Integer(allow_none=True, validate=validate.Range(min=0, max=6))
    pattern = fields.String(allow_none=True)
    choices = fields.List(fields.Raw())
    read_roles = fields.List(fields.String())
    write_roles = fields.List(fields.String())
    hidden = fields.Boolean(load_default=False)

    def __init__(self, *args: Any, roles: Iterable[str] | None = None, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.roles = set(roles) if roles is not None else None

    @validates_schema
    def _consistent(self, data: dict[str, Any], **_: Any) -> None:
        t = data.get("type")
        if t not in TYPES:
            return
        errors: dict[str, list[str]] = {}

        def err(key: str, msg: str) -> None:
            errors.setdefault(key, []).append(msg)

        for opt, types in APPLIES.items():
            if data.get(opt) is not None and t not in types:
                err(opt, f"'{opt}' does not apply to type {t} (only {', '.join(types)})")
        if t in ("choice", "multi_choice"):
            parsed = _parse_choices(data.get("choices"), err)
            data["choices"] = parsed
        if data.get("pattern") is not None and t in APPLIES["pattern"]:
            try:
                re.compile(data["pattern"])
            except re.error as exc:
                err("pattern", f"not a valid regular expression: {exc}")
        _check_bounds(data, t, errors, err)
        if self.roles is not None:
            _check_roles(data, self.roles, err)
        if data.get("default") is not None and not errors:
            fd = fielddef_from(data, "x", "x")
            try:
                coerce(fd, data["default"])
            except MarshmallowError as exc:
                msgs = exc.messages if isinstance(exc.messages, list) else [str(exc.messages)]
                err("default", "default does not fit the field: " + " ".join(_flat(msgs)))
        if errors:
            raise MarshmallowError(errors)


def _flat(msgs: Any) -> list[str]:
    if isinstance(msgs, Mapping):
        return [m for v in msgs.values() for m in _flat(v)]
    if isinstance(msgs, list | tuple):
        return [m for v in msgs for m in _flat(v)]
    return [str(msgs)]


def _parse_bound(type_: str, value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError(value)
    if type_ == "integer":
        if isinstance(value, int) or (isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip())):
            return int(value)
        raise ValueError(value)
    if type_ == "decimal":
        try:
            out = Decimal(str(value))
        except InvalidOperation:
            raise ValueError(value) from None
        if not out.is_finite():
            raise ValueError(value)
        return out
    if type_ == "date":
        if isinstance(value, datetime):
            raise ValueError(value)
        if isinstance(value, date):
            return value
        return date.fromisoformat(str(value))
    if type_ == "datetime":
        if isinstance(value, datetime):
            return value.replace(tzinfo=None) if value.tzinfo is None else \
                value.astimezone(UTC).replace(tzinfo=None)
        if isinstance(value, date):
            return datetime(value.year, value.month, value.day)
        out = datetime.fromisoformat(str(value))
        return out if out.tzinfo is None else out.astimezone(UTC).replace(tzinfo=None)
    raise ValueError(value)


def _parse_choices(raw: Any, err: Any) -> list[tuple[str, dict[str, str]]]:
    """``choices`` items are plain values or ``{value: ..., label: {en:, zh_CN:}}``."""
    if not raw:
        err("choices", "a choice field needs a non-empty list of choices")
        return []
    out: list[tuple[str, dict[str, str]]] = []
    for i, item in enumerate(raw):
        if isinstance(item, str | int) and not isinstance(item, bool):
            value, label = str(item), {}
        elif isinstance(item, Mapping) and set(item) <= {"value", "label"} and "value" in item \
                and isinstance(item["value"], str | int) and not isinstance(item["value"], bool):
            value = str(item["value"])
            label = item.get("label") or {}
            if not isinstance(label, Mapping) or not set(label) <= set(LOCALES) or \
                    not all(isinstance(v, str) for v in label.values()):
                err("choices", f"choice {i + 1}: label must be a mapping of en/zh_CN texts")
                continue
        else:
            err("choices", f"choice {i + 1}: give a value, or a mapping with 'value' and 'label'")
            continue
        if any(value == v for v, _ in out):
            err("choices", f"duplicate choice '{value}'")
            continue
        out.append((value, dict(label)))
    return out


def fielddef_from(data: Mapping[str, Any], entity: str, key: str) -> FieldDef:
    """Build a :class:`FieldDef` from a dict loaded by :class:`FieldSchema`."""
    t = data["type"]
    default = data.get("default")
    if default is not None and t == "multi_choice" and isinstance(default, list):
        default = tuple(default)
    return FieldDef(
        entity=entity, key=key, type=t, label=dict(data["label"]), required=data.get("required", False),
        default=default, min=data.get("min"), max=data.get("max"), max_length=data.get("max_length"),
        places=data.get("places") if data.get("places") is not None else 2, pattern=data.get("pattern"),
        choices=tuple((v, dict(lab)) for v, lab in data.get("choices") or ()),
        help=dict(data.get("help") or {}), read_roles=tuple(data.get("read_roles") or ()),
        write_roles=tuple(data.get("write_roles") or ()), hidden=data.get("hidden", False))


class FileSchema(_Strict):
    fields = fields.Dict(keys=fields.String(), values=fields.Dict(), load_default=dict, allow_none=True)


Defs = dict[tuple[str, str], FieldDef]


def definitions_from_doc(doc: YamlDoc, entities: Iterable[str], roles: Iterable[str],
                         inert_entities: Mapping[str, str] | None = None) -> tuple[Defs, list[ConfigIssue]]:
    """Validate a parsed file; returns ``(definitions, warnings)`` or raises with every error.

    ``inert_entities`` maps entities of installed but disabled plugins to that plugin:
    their fields are kept (a warning), so disabling a plugin never breaks this file.
    """
    entities = set(entities)
    inert = dict(inert_entities or {})
    require_mapping(doc, "write 'fields: {}' for no custom fields, or delete the file")
    top = validate_doc(doc, FileSchema())
    issues: list[ConfigIssue] = []
    warnings: list[ConfigIssue] = []
    out: Defs = {}
    for entity, keys in (top.get("fields") or {}).items():
        if entity not in entities:
            if entity in inert:
                warnings.append(doc.issue(("fields", entity), f"entity '{entity}' belongs to disabled "
                                          f"plugin '{inert[entity]}'; its fields are inactive",
                                          key=True, severity="warning"))
                continue
            known = ", ".join(sorted(entities)) or "none (enable crm, orders or catalog)"
            issues.append(doc.issue(("fields", entity), f"unknown entity '{entity}'; custom-field "
                                    f"entities: {known}", key=True))
            continue
        for key, body in (keys or {}).items():
            path = ("fields", entity, key)
            if not isinstance(key, str) or not KEY_RE.match(key):
                issues.append(doc.issue(path, f"field key '{key}' must be lowercase letters, digits "
                                        "and _ and start with a letter", key=True))
                continue
            if not isinstance(body, Mapping):
                issues.append(doc.issue(path, f"fields.{entity}.{key}: expected a mapping of options"))
                continue
            try:
                data = validate_doc(doc, FieldSchema(roles=roles), prefix=path, data=dict(body))
            except ConfigError as exc:
                issues.extend(exc.issues)
                continue
            out[(entity, key)] = fielddef_from(data, entity, key)
    if issues:
        raise ConfigError(sorted(issues, key=lambda i: (i.line, i.column)))
    return out, warnings
