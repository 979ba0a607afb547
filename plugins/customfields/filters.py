"""``custom.<key>`` list filters as SQL with bound parameters only, on SQLite and PostgreSQL.

* ``custom.<key>=v`` — equality (for multi-choice: the list contains ``v``). A value
  that cannot be a value of the field (``abc`` for an integer) matches no record.
* ``custom.<key>.min=v`` / ``custom.<key>.max=v`` — inclusive range for integer,
  decimal, date and datetime fields; a bound that is not a valid value is a 422.
* an empty value is no filter; an unknown key, or one the user may not read, is a 422.

The JSON key comes from the definitions (never from the request) and user values are
always bound parameters; stored values of another type (after a forced type change)
never raise a database error: numbers are cast only when the stored text is numeric.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from marshmallow import ValidationError as MarshmallowError
from sqlalchemy import String, and_, case, cast, false, func, literal, or_
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import Numeric

from core.db import db
from core.errors import ValidationError
from plugins.customfields.definitions import FieldDef, coerce

RANGE_TYPES = ("integer", "decimal", "date", "datetime")
NUMERIC = ("integer", "decimal")


def _pg() -> bool:
    return db.engine.dialect.name == "postgresql"


def _path(key: str) -> str:
    return f'$."{key}"'


def _text(col: Any, key: str) -> Any:
    """The stored value as text (NULL when absent)."""
    if _pg():
        return col.op("->>", return_type=String)(literal(key, String))
    return func.json_extract(col, literal(_path(key), String), type_=String)


def _number(col: Any, key: str) -> Any:
    """The stored value as a number, or NULL when it is not numeric (never a cast error)."""
    if _pg():
        text = col.op("->>", return_type=String)(literal(key, String))
        return case((text.op("~")(literal(r"^\s*-?[0-9]+(\.[0-9]+)?\s*$", String)),
                     cast(text, Numeric(38, 10))), else_=None)
    raw = func.json_extract(col, literal(_path(key), String), type_=String)
    kind = func.json_type(col, literal(_path(key), String))
    numeric_text = and_(kind == "text", raw != "", func.trim(raw, "0123456789.-") == "")
    return case((or_(kind.in_(["integer", "real"]), numeric_text), cast(raw, Numeric(38, 10))), else_=None)


def _boolean_is(col: Any, key: str, value: bool) -> Any:
    if _pg():
        return col.op("->>", return_type=String)(literal(key, String)) == literal("true" if value else "false", String)
    return func.json_type(col, literal(_path(key), String)) == ("true" if value else "false")


def _contains(col: Any, key: str, value: str) -> Any:
    """A JSON list at ``key`` holds ``value``."""
    if _pg():
        return col.op("->")(literal(key, String)).op("@>")(cast(literal(json.dumps([value]), String), JSONB))
    each = func.json_each(col, literal(_path(key), String)).table_valued("value", "type")
    return db.session.query(each).filter(each.c.type == "text", each.c.value == value).exists()


def _parse(fd: FieldDef, raw: str) -> Any:
    try:
        return coerce(fd, raw)
    except MarshmallowError:
        return _NOTHING


_NOTHING = object()


def _bound_value(fd: FieldDef, raw: str, param: str) -> Any:
    try:
        value = coerce(fd, raw) if fd.type not in NUMERIC else _num(fd, raw)
    except (MarshmallowError, ValueError, ArithmeticError):
        raise ValidationError("Invalid filter.", fields={param: [f"Not a valid {fd.type.replace('_', ' ')}."]}) \
            from None
    return Decimal(str(value)) if fd.type in NUMERIC else value


def _num(fd: FieldDef, raw: str) -> Any:
    out = Decimal(raw.strip())
    if not out.is_finite():
        raise ValueError(raw)
    if fd.type == "integer" and out != out.to_integral_value():
        raise ValueError(raw)
    return out


def apply_filters(model: Any, col: Any, query: Any, params: Mapping[str, str],
                  readable: Mapping[str, FieldDef]) -> Any:
    """Return ``query`` with every ``custom.*`` parameter applied (422 on unknown ones)."""
    unknown: dict[str, list[str]] = {}
    conds: list[Any] = []
    for param, raw in params.items():
        if not param.startswith("custom."):
            continue
        rest = param[len("custom."):]
        key, _, op = rest.partition(".")
        fd = readable.get(key)
        if fd is None:
            unknown[param] = ["Unknown filter."]
            continue
        if op not in ("", "min", "max"):
            unknown[param] = ["Unknown filter; use custom.<key>, custom.<key>.min or custom.<key>.max."]
            continue
        raw = "" if raw is None else str(raw)
        if raw.strip() == "":
            continue
        if "\x00" in raw:  # no stored value can hold NUL (PostgreSQL refuses it): nothing matches
            conds.append(false())
            continue
        if op:
            if fd.type not in RANGE_TYPES:
                unknown[param] = [f"Ranges apply to {', '.join(RANGE_TYPES)} fields only."]
                continue
            bound = _bound_value(fd, raw, param)
            if fd.type in NUMERIC:
                expr = _number(col, key)
                conds.append(expr >= bound if op == "min" else expr <= bound)
            else:
                expr = _text(col, key)
                conds.append(and_(expr.is_not(None), expr >= bound if op == "min" else expr <= bound))
            continue
        conds.append(_equals(col, fd, raw))
    if unknown:
        raise ValidationError("Unknown custom-field filter.", fields=unknown)
    for c in conds:
        query = query.where(c) if hasattr(query, "where") else query.filter(c)
    return query


def _equals(col: Any, fd: FieldDef, raw: str) -> Any:
    key = fd.key
    if fd.type == "multi_choice":
        return _contains(col, key, raw) if raw in fd.choice_values else false()
    value = _parse(fd, raw)
    if value is _NOTHING:
        return false()
    if fd.type == "boolean":
        return _boolean_is(col, key, bool(value))
    if fd.type in NUMERIC:
        return _number(col, key) == Decimal(str(value))
    return _text(col, key) == literal(str(value), String)
