"""``dovetail workflow simulate``: walk transitions over a JSON record as a role, writing nothing."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from core.auth import has_permission, has_role
from core.errors import ValidationError
from core.expressions import GuardError, GuardUser, ReadOnly, evaluate
from core.statemachine import Machine


@dataclass
class SimUser:
    """A user holding one role, with no database row: what simulate acts as."""

    role: str
    id: int = 0
    team_id: int | None = None
    role_names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.role_names = [self.role]
        self.username = f"simulated {self.role}"


def parse_record(text: str, machine: Machine, context_names: Mapping[str, Any]) -> dict[str, Any]:
    """The guard context from JSON: either keyed by context name or the record itself."""
    try:
        raw = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"--record is not valid JSON: {exc.msg} at column {exc.colno}.",
                              fields={"record": [exc.msg]}) from None
    if not isinstance(raw, dict):
        raise ValidationError("--record must be a JSON object, e.g. '{\"status\": \"draft\"}'.")
    names = list(context_names)
    if names and all(k in context_names for k in raw) and all(isinstance(v, dict) for v in raw.values()):
        ctx = {k: dict(v) for k, v in raw.items()}
    else:
        ctx = {names[0] if names else machine.entity: dict(raw)}
    return ctx


def _notes(t: Any) -> list[str]:
    """What running transition ``t`` would also ask for or do (comment, inputs, approvals, actions)."""
    notes = []
    if t.comment_required:
        notes.append("needs a comment")
    if t.inputs:
        notes.append("inputs: " + ", ".join(i.key + ("*" if i.required else "") for i in t.inputs))
    if t.approvals_count:
        notes.append(f"needs {t.approvals_count} approval(s) by role {t.approvals_role}")
    if t.actions:
        notes.append("would run: " + ", ".join(t.actions))
    return notes


def simulate(machine: Machine, ent: Any, user: Any, record_ctx: dict[str, dict[str, Any]],
             steps: list[str] | None) -> list[dict[str, Any]]:
    """Each step's outcome. Without steps: what is possible from the record's state."""
    main = next(iter(record_ctx))
    state = record_ctx[main].get(machine.field) or machine.initial
    out: list[dict[str, Any]] = []

    def verdict(key: str, current: str) -> dict[str, Any]:
        t = machine.transitions.get(key)
        if t is None:
            return {"step": key, "from": current, "to": None, "allowed": False,
                    "reason": f"no transition '{key}' (known: {', '.join(machine.transitions)})"}
        item = {"step": key, "from": current, "to": t.target, "allowed": False, "reason": None}
        if current not in t.sources:
            item["reason"] = f"not possible from state '{current}' (only from {', '.join(t.sources)})"
        elif t.permission and not has_permission(user, t.permission):
            item["reason"] = f"requires the permission '{t.permission}'"
        elif t.roles and not any(has_role(user, r) for r in t.roles) and not has_permission(user, "*"):
            item["reason"] = f"restricted to the role(s) {', '.join(t.roles)}"
        elif t.guard:
            values = {k: ReadOnly({**v, machine.field: current} if k == main else v)
                      for k, v in record_ctx.items()}
            values["user"] = GuardUser(user)
            try:
                ok = evaluate(t.guard, values)
            except GuardError as exc:
                item["reason"] = str(exc)
                return item
            if not ok:
                item["reason"] = t.guard_message or f"condition not met: {t.guard}"
                return item
            item["allowed"] = True
        else:
            item["allowed"] = True
        item["notes"] = _notes(t)
        return item

    if not steps:
        return [verdict(t.key, state) for t in machine.transitions.values() if state in t.sources]
    for key in steps:
        item = verdict(key, state)
        out.append(item)
        if not item["allowed"]:
            break
        state = item["to"]
    return out
