"""Safe guard expressions (``order.total >= 5000``, ``days_since(order.shipped_at) <= 30``,
``user.has_role('manager')``), checked against the names an entity registered and
evaluated by simpleeval over read-only plain data — never ``eval``."""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import simpleeval
from simpleeval import EvalWithCompoundTypes, InvalidExpression

from core.auth import has_permission, permissions_of


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

# ---------------------------------------------------------------------------
# Limits: a guard runs on every transition check and must never hang a worker.
# ``**``, ``*``, ``+`` and ``<<`` refuse results beyond these; ``check`` reports a
# constant sub-expression over them (``9**9**9``, ``'a'*10**9``) where it stands.
# ---------------------------------------------------------------------------

MAX_SOURCE = 1000        # characters of guard text
MAX_EXPONENT = 1000      # |b| in a ** b
MAX_INT_BITS = 4096      # whole numbers up to 2**4096 (about 1233 digits)
MAX_LENGTH = 10_000      # items of a text or list built by * or +

_SEQUENCES = (str, bytes, list, tuple)


class GuardLimit(ArithmeticError):
    """A guard would compute something beyond the limits above."""


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _power(a: Any, b: Any) -> Any:
    if isinstance(b, int | float | Decimal) and abs(b) > MAX_EXPONENT:  # type: ignore[operator]
        raise GuardLimit(f"exponent {b} is over the limit of {MAX_EXPONENT}")
    if _whole(a) and _whole(b) and b > 0 and abs(a).bit_length() * b > MAX_INT_BITS:
        raise GuardLimit(f"{a} ** {b} has more than {MAX_INT_BITS} bits (the limit for whole numbers)")
    return a ** b


def _mult(a: Any, b: Any) -> Any:
    for seq, times in ((a, b), (b, a)):
        if isinstance(seq, _SEQUENCES) and _whole(times) and len(seq) * times > MAX_LENGTH:
            raise GuardLimit(f"repeating {len(seq)} item(s) {times} times is over the limit of "
                             f"{MAX_LENGTH}")
    if _whole(a) and _whole(b) and abs(a).bit_length() + abs(b).bit_length() > MAX_INT_BITS + 1:
        raise GuardLimit(f"a product of more than {MAX_INT_BITS} bits (the limit for whole numbers)")
    return a * b


def _add(a: Any, b: Any) -> Any:
    if isinstance(a, _SEQUENCES) and isinstance(b, _SEQUENCES) and len(a) + len(b) > MAX_LENGTH:
        raise GuardLimit(f"joining {len(a)} and {len(b)} item(s) is over the limit of {MAX_LENGTH}")
    return a + b


def _lshift(a: Any, b: Any) -> Any:
    if _whole(a) and _whole(b) and a.bit_length() + b > MAX_INT_BITS:
        raise GuardLimit(f"{a} << {b} has more than {MAX_INT_BITS} bits (the limit for whole numbers)")
    return a << b


def _mod(a: Any, b: Any) -> Any:
    if isinstance(a, str | bytes):  # '%0999999999d' % 1 would build a gigabyte of text
        raise GuardLimit("text formatting with % is not allowed in guards")
    return a % b


#: simpleeval's operators with the limited ones above.
OPERATORS: dict[type, Callable[..., Any]] = {
    **simpleeval.DEFAULT_OPERATORS,
    ast.Pow: _power, ast.Mult: _mult, ast.Add: _add, ast.LShift: _lshift, ast.Mod: _mod,
}
_BINARY = {ast.Pow, ast.Mult, ast.Add, ast.Sub, ast.Div, ast.FloorDiv, ast.Mod, ast.LShift,
           ast.RShift, ast.BitAnd, ast.BitOr, ast.BitXor}
_UNARY = {ast.USub, ast.UAdd, ast.Not, ast.Invert}
_NOT_CONSTANT = object()


def _fold(node: ast.AST, source: str, problems: list[tuple[int, str]]) -> Any:
    """The value of a constant sub-expression (``_NOT_CONSTANT`` otherwise), computed with the
    limited operators; a limit hit is recorded at the sub-expression that hits it."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        value = _fold(node.operand, source, problems)
        return _apply(node, source, problems, value) if value is not _NOT_CONSTANT else value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _fold(node.left, source, problems), _fold(node.right, source, problems)
        if isinstance(node.op, ast.Pow) and isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
            return _apply(node, source, problems, 2, right)  # any base: the exponent alone is too large
        if _NOT_CONSTANT in (left, right):
            return _NOT_CONSTANT
        return _apply(node, source, problems, left, right)
    if isinstance(node, ast.List | ast.Tuple):
        items = [_fold(e, source, problems) for e in node.elts]
        if _NOT_CONSTANT in items:
            return _NOT_CONSTANT
        return items if isinstance(node, ast.List) else tuple(items)
    for child in ast.iter_child_nodes(node):
        _fold(child, source, problems)
    return _NOT_CONSTANT


def _apply(node: ast.AST, source: str, problems: list[tuple[int, str]], *args: Any) -> Any:
    op = node.op  # type: ignore[attr-defined]
    fn = OPERATORS.get(type(op))
    try:
        return fn(*args) if fn else _NOT_CONSTANT
    except GuardLimit as exc:
        text = ast.get_source_segment(source, node) or ""
        hint = " (hint: guards compare values; keep constants small)" if "limit" in str(exc) else ""
        problems.append((getattr(node, "col_offset", 0), f"{text} is refused: {exc}{hint}"))
    except (ArithmeticError, TypeError, ValueError):
        pass  # 1/0, 'a' - 1 …: left to evaluation, which reports them
    return _NOT_CONSTANT


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
    if len(source) > MAX_SOURCE:
        return [(0, f"guard is {len(source)} characters long; the limit is {MAX_SOURCE}")]
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        return [(max((exc.offset or 1) - 1, 0), f"syntax error: {exc.msg}")]
    except (ValueError, RecursionError, MemoryError) as exc:  # a 5000-digit literal, deep nesting
        return [(0, f"guard cannot be read: {exc or type(exc).__name__}")]
    problems: list[tuple[int, str]] = []
    _fold(tree.body, source, problems)
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
    """Evaluate a checked expression over read-only ``values``; never hangs: a result over
    the limits (``9**9**9``) fails the guard with :class:`GuardError`."""
    if len(source) > MAX_SOURCE:
        raise GuardError(f"guard refused: {len(source)} characters long; the limit is {MAX_SOURCE}")
    ev = EvalWithCompoundTypes(operators=dict(OPERATORS), names=dict(values), functions=dict(FUNCTIONS))
    try:
        return ev.eval(source)
    except GuardLimit as exc:
        raise GuardError(f"guard '{source}' refused: {exc}") from None
    except (InvalidExpression, TypeError, ArithmeticError, AttributeError, KeyError, ValueError,
            RecursionError, SyntaxError) as exc:
        raise GuardError(f"guard '{source}' could not be evaluated: {exc}") from None


class GuardError(Exception):
    pass
