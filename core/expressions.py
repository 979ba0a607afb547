"""Safe guard expressions (``order.total >= 5000``, ``days_since(order.shipped_at) <= 30``,
``user.has_role('manager')``), checked against the names an entity registered and
evaluated by simpleeval over read-only plain data — never ``eval``."""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from simpleeval import EvalWithCompoundTypes, InvalidExpression


def _today() -> date:
    return datetime.now(UTC).date()


def days_since(value: Any) -> int | None:
    """Whole days from ``value`` (date/datetime/ISO text) to today; None stays None."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        value = value.date()
    return (_today() - value).days


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "days_since": days_since,
    "today": _today,
    "len": len,
    "abs": abs,
    "min": min,
    "max": max,
    "Decimal": Decimal,
}

USER_NAMES = ("id", "username", "roles", "team_id", "has_role", "has_permission")


class ReadOnly:
    """Plain data with attribute access and no way to write or reach the ORM."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_data", dict(data))

    def __getattr__(self, name: str) -> Any:
        try:
            return self._data[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("guard values are read-only")

    def __repr__(self) -> str:
        return f"ReadOnly({self._data!r})"


class GuardUser(ReadOnly):
    """What a guard sees of the user: id, name, roles and two pure predicates."""

    __slots__ = ()

    def __init__(self, user: Any) -> None:
        from core.auth import has_permission, permissions_of

        perms = permissions_of(user)
        roles = tuple(user.role_names) if user else ()
        super().__init__({
            "id": getattr(user, "id", None), "username": getattr(user, "username", None),
            "roles": roles, "team_id": getattr(user, "team_id", None),
            "has_role": lambda name: name in roles,
            "has_permission": lambda perm, _p=perms, _u=user: has_permission(_u, perm),
        })


def check(source: str, names: Mapping[str, Iterable[str] | None]) -> list[tuple[int, str]]:
    """Problems in ``source`` as ``(column offset, message)``; empty when it is fine.

    ``names`` maps each top-level name to its allowed attributes (None: any).
    """
    if not isinstance(source, str) or not source.strip():
        return [(0, "guard must be a non-empty expression")]
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        return [(max((exc.offset or 1) - 1, 0), f"syntax error: {exc.msg}")]
    problems: list[tuple[int, str]] = []
    allowed = {k: (set(v) if v is not None else None) for k, v in names.items()}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            if node.attr.startswith("_"):
                problems.append((node.col_offset, f"'{node.attr}' is not allowed"))
            elif isinstance(node.value, ast.Name) and node.value.id in allowed:
                attrs = allowed[node.value.id]
                if attrs is not None and node.attr not in attrs:
                    hint = ", ".join(sorted(attrs)[:12])
                    problems.append((node.col_offset, f"unknown name '{node.value.id}.{node.attr}'"
                                                      f" (known: {hint})"))
        elif isinstance(node, ast.Name):
            if node.id not in allowed and node.id not in FUNCTIONS and node.id not in (
                    "True", "False", "None"):
                known = ", ".join(sorted(list(allowed) + list(FUNCTIONS)))
                problems.append((node.col_offset, f"unknown name '{node.id}' (known: {known})"))
        elif isinstance(node, ast.Lambda | ast.ListComp | ast.DictComp | ast.SetComp |
                        ast.GeneratorExp | ast.NamedExpr):
            problems.append((node.col_offset, f"{type(node).__name__} is not allowed in guards"))
    return sorted(set(problems))


def evaluate(source: str, values: Mapping[str, Any]) -> Any:
    """Evaluate a checked expression over read-only ``values``."""
    ev = EvalWithCompoundTypes(names=dict(values), functions=dict(FUNCTIONS))
    try:
        return ev.eval(source)
    except (InvalidExpression, TypeError, ArithmeticError, AttributeError, KeyError) as exc:
        raise GuardError(f"guard '{source}' could not be evaluated: {exc}") from None


class GuardError(Exception):
    pass
