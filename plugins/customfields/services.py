"""What the custom-field hooks do, and the public API other plugins may use.

Public API:

* :func:`fields_for(entity, user=None)` — the visible :class:`FieldDef` s a user may read.
* :func:`schema_for(entity, user)` — the marshmallow schema validating ``custom`` input.
* :func:`dump_values(entity, values, user)` — the stored values a user may read.
* :func:`filter_query(entity, model, query, params)` — ``custom.<key>`` filters.
* :func:`columns(entity, user)` — ``[(key, label)]`` for lists and exports.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask_babel import get_locale
from marshmallow import RAISE, Schema, post_load
from marshmallow import ValidationError as MarshmallowError

from core.auth import current_user, has_permission, has_role
from core.state import dovetail
from core.web import locale_code
from plugins.customfields import store
from plugins.customfields.definitions import MSG_READ_ONLY, FieldDef, build_field, to_storage
from plugins.customfields.filters import apply_filters

ADMIN_PERMISSION = "customfields.field.write"


def _locale() -> str:
    try:
        loc = get_locale()
        if loc is not None:
            return locale_code(loc)
    except Exception:  # noqa: BLE001 - outside a request Babel has no locale; use the configured one
        pass
    return dovetail().config.locale


def _system(user: Any) -> bool:
    """No user (CLI, imports, background) or a custom-fields admin: sees and writes everything."""
    return user is None or has_permission(user, ADMIN_PERMISSION)


def can_read(fd: FieldDef, user: Any) -> bool:
    if _system(user):
        return True
    roles = set(fd.read_roles) | set(fd.write_roles) if fd.read_roles else set()
    return not roles or any(has_role(user, r) for r in roles)


def can_write(fd: FieldDef, user: Any) -> bool:
    if _system(user):
        return True
    return (not fd.write_roles or any(has_role(user, r) for r in fd.write_roles)) and can_read(fd, user)


def fields_for(entity: str, user: Any = None, *, include_hidden: bool = False) -> list[FieldDef]:
    """The fields of ``entity`` in force that ``user`` may read (all of them for None)."""
    st = store.refresh()
    return [fd for fd in st.fields_of(entity, include_hidden=include_hidden) if can_read(fd, user)]


def has_entity(entity: str) -> bool:
    return entity in dovetail().registry.custom_field_entities


# ---------------------------------------------------------------------------
# Hooks
# ---------------------------------------------------------------------------


def schema_for(entity: str, user: Any) -> Schema | None:
    """A schema validating ``custom`` input: unknown keys → "Unknown field.", the user's
    read-only keys → "You may not change this field."; output is storable JSON."""
    if not has_entity(entity):
        return None
    defs = fields_for(entity, user)
    attrs: dict[str, Any] = {}
    readonly: list[str] = []
    for fd in defs:
        if can_write(fd, user):
            attrs[fd.key] = build_field(fd)
        else:
            readonly.append(fd.key)
    by_key = {fd.key: fd for fd in defs}

    def _store(self: Any, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        return {k: to_storage(by_key[k], v) for k, v in data.items() if k in by_key}

    def load(self: Any, data: Any, *args: Any, **kw: Any) -> Any:
        if isinstance(data, Mapping):
            bad = {k: [MSG_READ_ONLY] for k in data if k in readonly}
            if bad:
                try:
                    Schema.load(self, {k: v for k, v in data.items() if k not in readonly}, *args, **kw)
                except MarshmallowError as err:
                    msgs = err.messages if isinstance(err.messages, dict) else {"_schema": err.messages}
                    bad.update(msgs)
                raise MarshmallowError(bad)
        return Schema.load(self, data, *args, **kw)

    attrs["Meta"] = type("Meta", (), {"unknown": RAISE})
    attrs["_store"] = post_load(_store)
    attrs["load"] = load
    cls = type(f"Custom{entity.title().replace('_', '')}Input", (Schema,), attrs)
    return cls()


def dump_values(entity: str, values: Mapping[str, Any], user: Any) -> dict[str, Any] | None:
    """The values of visible fields ``user`` may read; hidden and removed keys stay stored, unshown."""
    if not has_entity(entity):
        return None
    values = values or {}
    return {fd.key: values.get(fd.key) for fd in fields_for(entity, user) if fd.key in values}


def columns(entity: str, user: Any) -> list[tuple[str, str]] | None:
    if not has_entity(entity):
        return None
    loc = _locale()
    return [(fd.key, fd.label_for(loc)) for fd in fields_for(entity, user)]


def filter_query(entity: str, model: Any, query: Any, params: Mapping[str, str]) -> Any:
    if not has_entity(entity):
        return None
    ent = dovetail().registry.custom_field_entities[entity][0]
    readable = {fd.key: fd for fd in fields_for(entity, current_user())}
    return apply_filters(model, getattr(model, ent.column), query, params, readable)
