"""The permission-aware query layer: record scope and personal-data masking.

Every list, detail view, report, export and search goes through :func:`select_for`
(or :func:`get_for`) so a user only ever sees rows their role's scope allows:

* ``own`` – rows whose owner column is the user;
* ``team`` – rows owned by anyone in the user's team;
* ``all`` – every row.

Models declare how they are owned:

* ``__scope_owner__ = "owner_id"`` – a column holding a ``core_user.id``;
* ``__scope_via__ = "customer"`` – a relationship to a scoped parent (an order's
  lines follow the order, an activity follows its customer).

Personal fields (``__personal_fields__ = {"phone": "phone", "email": "email"}``,
field name to mask kind) are masked in :func:`dump` for users lacking
``__personal_permission__``; each unmasked read is logged (PIPL).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import phonenumbers
from flask import has_request_context, request
from sqlalchemy import Select, select
from sqlalchemy.sql import ColumnElement

from core.auth import has_permission, require, scope_of
from core.db import db
from core.errors import NotFound
from core.fields import parse_phone
from core.models import User


def scope_clause(model: type[Any], user: User) -> ColumnElement[bool] | None:
    """The WHERE clause restricting ``model`` to ``user``'s scope (None: no restriction)."""
    scope = scope_of(user)
    if scope == "all":
        return None
    owner = getattr(model, "__scope_owner__", None)
    if owner:
        col = getattr(model, owner)
        if scope == "team" and user.team_id is not None:
            return col.in_(select(User.id).where(User.team_id == user.team_id))
        return col == user.id
    via = getattr(model, "__scope_via__", None)
    if via:
        rel = getattr(model, via)
        parent = rel.property.mapper.class_
        inner = scope_clause(parent, user)
        return None if inner is None else rel.has(inner)
    return None


def select_for(model: type[Any], permission: str | None = None, user: User | None = None) -> Select:
    """``SELECT model`` limited to what the current user may see (checks ``permission``)."""
    if permission:
        user = require(permission) if user is None else user
    elif user is None:
        from core.auth import require_user  # noqa: PLC0415 - core.auth -> core.state -> core.app imports this module

        user = require_user()
    stmt: Select = select(model)
    clause = scope_clause(model, user)
    return stmt if clause is None else stmt.where(clause)


def restrict(stmt: Select, model: type[Any], user: User) -> Select:
    """Add ``user``'s scope for ``model`` to an existing statement (reports, joins)."""
    clause = scope_clause(model, user)
    return stmt if clause is None else stmt.where(clause)


def visible(model: type[Any], record: Any, user: User) -> bool:
    clause = scope_clause(model, user)
    if clause is None:
        return True
    pk = model.__mapper__.primary_key[0]
    return db.session.scalar(select(pk).where(pk == record.id, clause)) is not None


def get_for(model: type[Any], record_id: Any, permission: str | None = None,
            user: User | None = None, *, label: str | None = None) -> Any:
    """One record the user may see, else 404 (never reveal that it exists)."""
    stmt = select_for(model, permission, user).where(model.id == record_id)
    obj = db.session.scalar(stmt)
    if obj is None:
        name = label or getattr(model, "__label__", model.__name__.lower())
        raise NotFound(f"No {name} with id {record_id}.")
    return obj


# ---------------------------------------------------------------------------
# Masking
# ---------------------------------------------------------------------------


def mask_value(value: Any, kind: str) -> Any:
    """Mask one personal value: phone +86 138****5678 (138****5678 for older values), email z***@x.cn, name 张**."""
    if value is None or value == "":
        return value
    if isinstance(value, list):
        return [mask_value(v, kind) for v in value]
    if isinstance(value, Mapping):
        return {k: mask_value(v, kind) for k, v in value.items()}
    text = str(value)
    if kind == "phone":
        return _mask_phone(text)
    if kind == "email":
        local, _, domain = text.partition("@")
        return (local[:1] + "***@" + domain) if domain else "***"
    if kind == "name":
        return text[:1] + "*" * max(len(text) - 1, 1)
    if kind == "address":
        return text[:6] + "****"
    return text[:1] + "****"


def _mask_phone(text: str) -> str:
    """``+8613812345678`` → ``+86 138****5678`` (E.164: country code, first 3 and last 4 digits of
    a national number of 10 digits or more); a stored value without ``+`` (older rows) → ``138****5678``."""
    if text.startswith("+"):
        num = parse_phone(text)
        if num is not None:
            nsn = phonenumbers.national_significant_number(num)
            return f"+{num.country_code} " + (nsn[:3] + "****" + nsn[-4:] if len(nsn) >= 10 else "****" + nsn[-4:])
    if len(text) >= 7:
        return text[:3] + "****" + text[-4:]
    return "*" * len(text)


def can_read_personal(model: type[Any], user: User | None) -> bool:
    perm = getattr(model, "__personal_permission__", None)
    return perm is None or has_permission(user, perm)


def mask(model: type[Any], data: dict[str, Any], user: User | None) -> dict[str, Any]:
    """Mask personal fields of one dumped record for users without the right."""
    fields = getattr(model, "__personal_fields__", None)
    if not fields or can_read_personal(model, user):
        return data
    out = dict(data)
    for key, kind in fields.items():
        if key in out:
            out[key] = mask_value(out[key], kind)
    return out


def log_personal_access(model: type[Any], ids: Iterable[Any], user: User | None,
                        channel: str | None = None) -> None:
    """Record that ``user`` saw these records' personal data unmasked."""
    ids = [i for i in ids if i is not None]
    if not ids or not getattr(model, "__personal_fields__", None):
        return
    if channel is None:
        channel = f"{request.method} {request.path}" if has_request_context() else "cli"
    from core import accesslog  # noqa: PLC0415 - core.accesslog imports this module (queued in read requests, written once at the end)

    accesslog.record(user.id if user else None, model.__tablename__, list(ids)[:1000], channel[:200])


def dump(schema: Any, obj: Any, model: type[Any], user: User | None, *, many: bool = False,
         channel: str | None = None) -> Any:
    """Serialise with ``schema`` then mask; logs unmasked personal access."""
    data = schema.dump(obj, many=many)
    rows = data if many else [data]
    if getattr(model, "__personal_fields__", None):
        if can_read_personal(model, user):
            log_personal_access(model, [r.get("id") for r in rows], user, channel)
        else:
            rows = [mask(model, r, user) for r in rows]
    return rows if many else rows[0]


# ---------------------------------------------------------------------------
# Another plugin's personal fields, by declared entity and field
# ---------------------------------------------------------------------------


def personal_model(entity: str) -> type[Any]:
    """The model behind ``entity`` (``"crm.customer"`` → table ``crm_customer``) that declares
    ``__personal_fields__``; the owning plugin names its fields and permission there, once."""
    table = entity.replace(".", "_")
    for mapper in db.Model.registry.mappers:  # type: ignore[attr-defined]
        cls = mapper.class_
        if getattr(cls, "__tablename__", None) == table and getattr(cls, "__personal_fields__", None):
            return cls
    raise LookupError(f"No model declares personal fields for '{entity}'.")


def can_read_entity(entity: str, user: User | None) -> bool:
    """Whether ``user`` may see ``entity``'s personal fields unmasked (the owner's permission)."""
    return can_read_personal(personal_model(entity), user)


def mask_field(entity: str, field: str, value: Any, user: User | None = None) -> Any:
    """``value`` of ``entity``'s declared personal ``field``, masked unless ``user`` may read it.

    With ``user=None`` the value is always masked. Another plugin calls this instead of
    naming the owner's permission or mask kind itself.
    """
    model = personal_model(entity)
    kind = model.__personal_fields__.get(field)
    if kind is None:
        raise LookupError(f"'{field}' is not a declared personal field of '{entity}'.")
    if user is not None and can_read_personal(model, user):
        return value
    return mask_value(value, kind)


def reveal_field(entity: str, field: str, values: Mapping[Any, Any], user: User | None,
                 channel: str | None = None) -> dict[Any, Any]:
    """``{record id: value}`` of one declared personal field: unmasked (and the access logged)
    for users with the owner's permission, masked for the rest."""
    model = personal_model(entity)
    if can_read_personal(model, user):
        log_personal_access(model, list(values), user, channel)
        return dict(values)
    return {k: mask_field(entity, field, v, None) for k, v in values.items()}
