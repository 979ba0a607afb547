"""Custom fields in the served OpenAPI document.

Convention: for every custom-field entity a components schema ``Custom<Model>`` is
added (``CustomCustomer``, ``CustomProduct``, ``CustomOrder``) describing its visible
fields with their types, and every components schema whose name starts with the
entity's model class name (``Customer``, ``CustomerIn``, ``ProductOut`` …) and has a
property ``custom`` gets that property pointed at it. Business plugins therefore only
name their schemas after their model and keep the values under ``custom``.
"""

from __future__ import annotations

from typing import Any

from core.api import DATETIME_PATTERN
from core.state import dovetail
from plugins.customfields import store
from plugins.customfields.definitions import FieldDef
from plugins.customfields.definitions import _plain as plain_value

# The base schema of each field type; decimal and choice types add their details in _base_schema.
_BASE: dict[str, dict[str, Any]] = {
    "string": {"type": "string"}, "text": {"type": "string"}, "phone": {"type": "string"},
    "email": {"type": "string", "format": "email"},
    "integer": {"type": "integer"},
    "decimal": {"type": "string", "format": "decimal"},
    "boolean": {"type": "boolean"},
    "date": {"type": "string", "format": "date"},
    # ISO 8601 as stored; UTC when there is no offset (as core datetimes)
    "datetime": {"type": "string", "pattern": DATETIME_PATTERN},
}


def _base_schema(fd: FieldDef) -> dict[str, Any]:
    """The type part of a field's schema (a fresh dict the caller may extend)."""
    if fd.type == "choice":
        return {"type": "string", "enum": fd.choice_values}
    if fd.type == "multi_choice":
        return {"type": "array", "items": {"type": "string", "enum": fd.choice_values}, "uniqueItems": True}
    out = dict(_BASE[fd.type])
    if fd.type == "decimal":
        out["description"] = f"Decimal with {fd.places} places, as text (numbers accepted on input)"
    return out


def _add_bounds(out: dict[str, Any], fd: FieldDef) -> None:
    """Length, pattern and range: ``minimum``/``maximum`` for integers, a sentence otherwise."""
    if fd.max_length:
        out["maxLength"] = fd.max_length
    if fd.pattern:
        out["pattern"] = f"^(?:{fd.pattern})$"
    if fd.type == "integer":
        if fd.min is not None:
            out["minimum"] = fd.min
        if fd.max is not None:
            out["maximum"] = fd.max
    elif fd.type in ("decimal", "date", "datetime") and (fd.min is not None or fd.max is not None):
        lo = "" if fd.min is None else f" from {fd.min}"
        hi = "" if fd.max is None else f" to {fd.max}"
        out["description"] = (out.get("description", "") + f" Range{lo}{hi}.").strip()


def field_schema(fd: FieldDef) -> dict[str, Any]:
    """The OpenAPI (3.0) schema of one field's values."""
    out = _base_schema(fd)
    _add_bounds(out, fd)
    out["title"] = fd.label_for("en")
    if fd.help:
        out["description"] = (fd.help_for("en") + " " + out.get("description", "")).strip()
    if fd.default is not None:
        out["default"] = plain_value(fd.default)
    out["x-label"] = dict(fd.label)
    if fd.read_roles or fd.write_roles:
        out["x-roles"] = {"read": list(fd.read_roles), "write": list(fd.write_roles)}
    return out


def amend(spec: dict[str, Any]) -> None:
    """Add ``Custom<Model>`` schemas and point matching ``custom`` properties at them."""
    st = store.refresh()
    reg = dovetail().registry
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    for name, (ent, _owner) in sorted(reg.custom_field_entities.items()):
        model_name = getattr(ent.model, "__name__", name.title())
        comp = f"Custom{model_name}"
        fds = st.fields_of(name)
        required = [fd.key for fd in fds if fd.required]
        body: dict[str, Any] = {
            "type": "object", "additionalProperties": False,
            "description": f"Custom fields of {name} (config/custom_fields.yaml)",
            "properties": {fd.key: field_schema(fd) for fd in fds},
        }
        if required:
            body["x-required-on-create"] = required
        schemas[comp] = body
        for sname, schema in list(schemas.items()):
            if sname == comp or not sname.startswith(model_name):
                continue
            props = schema.get("properties") if isinstance(schema, dict) else None
            if isinstance(props, dict) and "custom" in props:
                props["custom"] = {"$ref": f"#/components/schemas/{comp}"}
