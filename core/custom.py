"""Custom-field plumbing for business plugins; the customfields plugin fills it in.

A plugin whose entity is custom-field capable (``register_custom_field_entities``)
keeps values in a JSON column ``custom`` and calls these helpers, which delegate to
the ``custom_fields_*`` hooks. With the customfields plugin disabled, records accept
no custom values (a non-empty ``custom`` is a field error) and show ``{}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import ValidationError as MarshmallowError

from core.errors import ValidationError
from core.state import dovetail


def _hook() -> Any:
    return dovetail().pm.hook


def validate(entity: str, values: Mapping[str, Any] | None, user: Any, *,
             existing: Mapping[str, Any] | None = None, partial: bool = False) -> dict[str, Any]:
    """Validate ``custom`` input; returns the merged values to store.

    Raises :class:`ValidationError` with ``fields={"custom": {key: [msg]}}``, the same
    shape as built-in fields. ``partial`` (PATCH) validates only the keys given.
    """
    values = dict(values or {})
    schema = _hook().custom_fields_schema(entity=entity, user=user)
    if schema is None:
        if values:
            raise ValidationError("Custom fields are not enabled.",
                                  fields={"custom": {k: ["Unknown field."] for k in values}})
        return dict(existing or {})
    try:
        loaded = schema.load(values, partial=partial)
    except MarshmallowError as err:
        raise ValidationError("Invalid custom field values.",
                              fields={"custom": err.messages}) from None
    merged = dict(existing or {})
    merged.update(loaded)
    return merged


def dump(entity: str, values: Mapping[str, Any] | None, user: Any) -> dict[str, Any]:
    """The custom values ``user`` may read."""
    out = _hook().custom_fields_dump(entity=entity, values=dict(values or {}), user=user)
    return dict(out) if out is not None else {}


def filter_query(entity: str, model: Any, query: Any, params: Mapping[str, str]) -> Any:
    """Apply ``custom.<key>=…`` filters (bound parameters only) to ``query``."""
    if not any(k.startswith("custom.") for k in params):
        return query
    out = _hook().custom_fields_filter(entity=entity, model=model, query=query, params=params)
    if out is None:
        bad = [k for k in params if k.startswith("custom.")]
        raise ValidationError("Custom fields are not enabled.",
                              fields={k: ["Unknown filter."] for k in bad})
    return out


def columns(entity: str, user: Any) -> list[tuple[str, str]]:
    """``[(key, label)]`` of custom fields shown in lists and exports."""
    return list(_hook().custom_fields_columns(entity=entity, user=user) or [])
