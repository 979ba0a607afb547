"""The one transition function every workflow-driven entity goes through.

A :class:`Machine` (states, transitions with permissions/roles, guard expressions,
named actions, required comment and inputs, approvals) comes from the workflows
plugin (``config/workflows/*.yaml``) or, when that plugin is disabled, from the
entity's built-in ``default_workflow`` dict (same shape as the YAML file).

:func:`perform` checks everything, then runs the state change, the actions, the
history row, the audit entry and the domain event inside one savepoint: any failure
rolls all of it back and re-raises.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import current_app
from flask_babel import get_locale
from sqlalchemy import func, select

from core import audit
from core.auth import has_permission, has_role
from core.db import db
from core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from core.expressions import GuardError, GuardUser, ReadOnly, evaluate
from core.i18n import M_, Message
from core.models import TransitionApproval, TransitionLog
from core.state import dovetail


@dataclass(frozen=True)
class State:
    key: str
    label: Mapping[str, str]
    initial: bool = False
    final: bool = False


@dataclass(frozen=True)
class Input:
    key: str
    label: Mapping[str, str]
    type: str = "string"  # string, text, integer, decimal, date
    required: bool = True
    max_length: int | None = None
    pattern: str | None = None
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Transition:
    key: str
    sources: tuple[str, ...]
    target: str
    label: Mapping[str, str]
    permission: str | None = None
    roles: tuple[str, ...] = ()
    guard: str | None = None
    guard_message: str | None = None  # English (API, logs)
    guard_labels: Mapping[str, str] | None = None  # per language, when the file gives them
    actions: tuple[str, ...] = ()
    comment_required: bool = False
    inputs: tuple[Input, ...] = ()
    approvals_role: str | None = None
    approvals_count: int = 0
    #: what the transition means to other plugins (``cancelled``, ``paid`` …), declared in
    #: the workflow file as ``marks: [cancelled]``; behaviour keys on these, never on names.
    marks: tuple[str, ...] = ()


@dataclass(frozen=True)
class Machine:
    name: str
    entity: str
    field: str
    states: Mapping[str, State]
    transitions: Mapping[str, Transition]
    source: str = "built-in"
    version: str = ""
    state_map: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @property
    def initial(self) -> str:
        return next(s.key for s in self.states.values() if s.initial)

    def states_marked(self, *marks: str) -> frozenset[str]:
        """The target states of the transitions carrying any of ``marks``."""
        return frozenset(t.target for t in self.transitions.values() if set(t.marks) & set(marks))


def _label(raw: Any, default: str) -> dict[str, str]:
    if isinstance(raw, Mapping):
        return {str(k): str(v) for k, v in raw.items()}
    return {"en": str(raw) if raw else default}


def _marks(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    return (str(raw),) if isinstance(raw, str) else tuple(str(m) for m in raw)


def _guard_text(raw: Any) -> str | None:
    """The English guard message of ``guard_message: text`` or ``{en: …, zh_CN: …}``."""
    if isinstance(raw, Mapping):
        lab = _label(raw, "")
        return lab.get("en") or next(iter(lab.values()), None)
    return raw


def machine_from_dict(data: Mapping[str, Any], *, name: str, source: str = "built-in") -> Machine:
    """Build a Machine from a (validated) workflow dict shaped like the YAML files."""
    states = {}
    for key, s in (data.get("states") or {}).items():
        s = s or {}
        states[key] = State(key, _label(s.get("label"), key), bool(s.get("initial")),
                            bool(s.get("final")))
    transitions = {}
    for key, t in (data.get("transitions") or {}).items():
        src = t["from"]
        inputs = tuple(Input(k, _label(i.get("label"), k), i.get("type", "string"),
                             bool(i.get("required", True)), i.get("max_length"), i.get("pattern"),
                             tuple(i.get("choices") or ())) for k, i in (t.get("inputs") or {}).items())
        appr = t.get("approvals") or {}
        transitions[key] = Transition(
            key=key, sources=tuple(src if isinstance(src, list) else [src]), target=t["to"],
            label=_label(t.get("label"), key), permission=t.get("permission"),
            roles=tuple(t.get("roles") or ()), guard=t.get("guard"),
            guard_message=_guard_text(t.get("guard_message")),
            guard_labels=_label(t["guard_message"], "") if isinstance(t.get("guard_message"), Mapping) else None,
            actions=tuple(t.get("actions") or ()),
            comment_required=bool(t.get("comment_required")), inputs=inputs,
            approvals_role=appr.get("role"), approvals_count=int(appr.get("count") or 0),
            marks=_marks(t.get("marks")))
    version = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()
    return Machine(name=name, entity=data["entity"], field=data.get("field", "status"),
                   states=states, transitions=transitions, source=source, version=version[:12],
                   state_map=dict(data.get("state_map") or {}))


# ---------------------------------------------------------------------------
# Lookup
# ---------------------------------------------------------------------------


def entity(name: str) -> Any:
    pair = dovetail().registry.workflow_entities.get(name)
    if pair is None:
        raise NotFound(f"No workflow entity '{name}'.")
    return pair[0]


def machine_for(name: str) -> Machine:
    """The workflow in force for entity ``name`` (workflows plugin first, then built-in)."""
    found = dovetail().pm.hook.workflow_definition(entity=name)
    if found is not None:
        return found
    ent = entity(name)
    if ent.default_workflow is None:
        raise NotFound(f"No workflow is defined for '{name}'.")
    cache = current_app.extensions.setdefault("dovetail_default_machines", {})
    if name not in cache:
        cache[name] = machine_from_dict(ent.default_workflow, name=name)
    return cache[name]


def label_of(lab: Mapping[str, str]) -> str:
    try:
        from core.web import locale_code  # noqa: PLC0415 - core.web -> core.dashboard -> core.i18n imports this module

        loc = locale_code(get_locale()) or "en"
    except Exception:  # noqa: BLE001 - outside a request: English
        loc = "en"
    return lab.get(loc) or lab.get("en") or next(iter(lab.values()), "")


def guard_values(ent: Any, record: Any, user: Any) -> dict[str, Any]:
    ctx = dict(ent.context(record))
    values: dict[str, Any] = {k: ReadOnly(v) if isinstance(v, Mapping) else v
                              for k, v in ctx.items()}
    values["user"] = GuardUser(user)
    return values


# ---------------------------------------------------------------------------
# What may the user do now?
# ---------------------------------------------------------------------------


@dataclass
class Check:
    allowed: bool
    reason: str = ""
    status: int = 200


def check(machine: Machine, ent: Any, t: Transition, record: Any, user: Any) -> Check:
    # reasons are English strings (API, errors) that a page shows translated (core.i18n.Message)
    current = getattr(record, machine.field)
    if current not in t.sources:
        return Check(False, M_("not possible from state '%(state)s' (only from %(sources)s)",
                                    state=current, sources=", ".join(t.sources)), 409)
    if t.permission and not has_permission(user, t.permission):
        return Check(False, M_("requires the permission '%(permission)s'", permission=t.permission), 403)
    if t.roles and not any(has_role(user, r) for r in t.roles) and not has_permission(user, "*"):
        return Check(False, M_("restricted to the role(s) %(roles)s", roles=", ".join(t.roles),
                                    shown={"roles": _role_labels(t.roles)}), 403)
    if t.guard:
        try:
            ok = evaluate(t.guard, guard_values(ent, record, user))
        except GuardError as exc:
            return Check(False, str(exc), 409)
        if not ok:
            if t.guard_labels:
                return Check(False, Message("%(text)s", {"text": t.guard_message},
                                            {"text": label_of(t.guard_labels)}), 409)
            if t.guard_message:  # a text of the catalogue is translated, any other shown as written
                return Check(False, Message(t.guard_message), 409)
            return Check(False, M_("condition not met: %(guard)s", guard=t.guard), 409)
    return Check(True)


def _role_labels(roles: tuple[str, ...]) -> str:
    """The roles' labels in the request's language (keys for roles not in roles.yaml)."""
    known = dovetail().config.roles
    return ", ".join(label_of(known[r].label) if r in known and known[r].label else r for r in roles)


def available(name: str, record: Any, user: Any) -> list[dict[str, Any]]:
    """Transitions from the record's current state, each with allowed/why-not."""
    machine, ent = machine_for(name), entity(name)
    current = getattr(record, machine.field)
    out = []
    for t in machine.transitions.values():
        if current not in t.sources:
            continue
        c = check(machine, ent, t, record, user)
        item = {"key": t.key, "label": label_of(t.label), "to": t.target,
                "allowed": c.allowed, "reason": c.reason or None,
                "comment_required": t.comment_required,
                "inputs": [{"key": i.key, "label": label_of(i.label), "type": i.type,
                            "required": i.required, "choices": list(i.choices)} for i in t.inputs]}
        if t.approvals_count:
            item["approvals"] = {"role": t.approvals_role, "required": t.approvals_count,
                                 "given": _approvals(name, record.id, t.key, _round(name, record))}
        out.append(item)
    return out


# ---------------------------------------------------------------------------
# Perform
# ---------------------------------------------------------------------------


@dataclass
class ActionContext:
    """What an action receives besides the record."""

    entity: str
    transition: str
    from_state: str
    to_state: str
    user: Any
    comment: str | None
    inputs: Mapping[str, Any]
    marks: tuple[str, ...] = ()


def _coerce_inputs(t: Transition, raw: Mapping[str, Any]) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    out: dict[str, Any] = {}
    known = {i.key for i in t.inputs}
    for key in raw:
        if key not in known:
            errors[key] = ["Unknown input for this transition."]
    for i in t.inputs:
        value = raw.get(i.key)
        if value in (None, ""):
            if i.required:
                errors[i.key] = ["Required for this transition."]
            continue
        try:
            if i.type == "integer":
                value = int(value)
            elif i.type == "decimal":
                value = Decimal(str(value))
            elif i.type == "date":
                value = date.fromisoformat(str(value)).isoformat()
            else:
                value = str(value)
                if i.max_length and len(value) > i.max_length:
                    raise ValueError(f"At most {i.max_length} characters.")
                if i.pattern and not re.fullmatch(i.pattern, value):
                    raise ValueError(f"Does not match the pattern {i.pattern}.")
        except (ValueError, InvalidOperation) as exc:
            errors[i.key] = [str(exc) if str(exc).endswith(".") else f"Not a valid {i.type}."]
            continue
        if i.choices and str(value) not in i.choices:
            errors[i.key] = [f"Must be one of: {', '.join(i.choices)}."]
            continue
        out[i.key] = value
    if errors:
        raise ValidationError(f"Transition '{t.key}' needs valid inputs.", fields=errors)
    return out


def _round(name: str, record: Any) -> int:
    """Approvals restart each time the record comes back to the source state."""
    return db.session.scalar(select(func.count()).select_from(TransitionLog).where(
        TransitionLog.entity == name, TransitionLog.record_id == record.id)) or 0


def _approvals(name: str, record_id: int, key: str, rnd: int) -> int:
    return db.session.scalar(select(func.count()).select_from(TransitionApproval).where(
        TransitionApproval.entity == name, TransitionApproval.record_id == record_id,
        TransitionApproval.transition == key, TransitionApproval.round == rnd)) or 0


def perform(name: str, record: Any, key: str, user: Any, *, comment: str | None = None,
            inputs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Run transition ``key`` on ``record`` as ``user``; the caller commits.

    Returns ``{"status": "done" | "pending_approval", "from", "to", ...}``.
    Raises 404 (unknown transition), 403 (permission/role), 409 (wrong state, guard)
    or 422 (comment/inputs); anything raised by an action rolls everything back.
    """
    machine, ent = machine_for(name), entity(name)
    t = machine.transitions.get(key)
    if t is None:
        raise NotFound(f"Workflow '{machine.name}' has no transition '{key}'; known: "
                       f"{', '.join(machine.transitions)}.", fields={"transition": ["Unknown."]})
    c = check(machine, ent, t, record, user)
    what = ent.label(record) if ent.label else f"{name} {record.id}"
    if not c.allowed:
        exc = {403: PermissionDenied, 409: Conflict}.get(c.status, Conflict)
        english = t.label.get("en") or label_of(t.label)
        raise exc(M_("Cannot %(action)s %(what)s: %(reason)s.", action=english.lower(), what=what, reason=c.reason,
                     shown={"action": label_of(t.label).lower(), "what": what,
                            "reason": c.reason.translated() if isinstance(c.reason, Message) else c.reason}))
    if t.comment_required and not (comment or "").strip():
        raise ValidationError(f"A comment is required to {label_of(t.label).lower()} {what}.",
                              fields={"comment": ["Required for this transition."]})
    values = _coerce_inputs(t, inputs or {})
    from_state = getattr(record, machine.field)
    if t.approvals_count:
        if t.approvals_role and not has_role(user, t.approvals_role):
            raise PermissionDenied(f"Only role '{t.approvals_role}' may approve this.")
        rnd = _round(name, record)
        already = db.session.scalar(select(TransitionApproval.id).where(
            TransitionApproval.entity == name, TransitionApproval.record_id == record.id,
            TransitionApproval.transition == key, TransitionApproval.round == rnd,
            TransitionApproval.user_id == user.id))
        if already:
            raise Conflict(f"You already approved '{key}' for {what}.")
        db.session.add(TransitionApproval(entity=name, record_id=record.id, transition=key,
                                          user_id=user.id, round=rnd, comment=comment))
        db.session.flush()
        given = _approvals(name, record.id, key, rnd)
        if given < t.approvals_count:
            audit.record(db.session, "approve", name, record.id, note=f"{key} {given}/"
                         f"{t.approvals_count}" + (f": {comment}" if comment else ""))
            return {"status": "pending_approval", "from": from_state, "to": from_state,
                    "approvals": {"given": given, "required": t.approvals_count}}
    ctx = ActionContext(name, key, from_state, t.target, user, comment, values, t.marks)
    actions = dovetail().registry.actions
    try:
        with db.session.begin_nested():
            setattr(record, machine.field, t.target)
            for action_name in t.actions:
                pair = actions.get(action_name)
                if pair is None:
                    raise Conflict(f"Workflow action '{action_name}' is not available "
                                   "(is its plugin enabled?).")
                pair[0].func(record, ctx)
            db.session.add(TransitionLog(entity=name, record_id=record.id, transition=key,
                                         from_state=from_state, to_state=t.target,
                                         actor_id=getattr(user, "id", None), comment=comment,
                                         inputs=audit._plain(values) or None))
            # No flush here: the hooks below stamp more columns (an order's confirmed_at), and
            # flushing after them writes the record once instead of twice (and audits it once).
            audit.record(db.session, "transition", name, record.id,
                         before={machine.field: from_state}, after={machine.field: t.target},
                         note=f"{key}" + (f": {comment}" if comment else ""))
            dovetail().pm.hook.workflow_transitioned(entity=name, record=record, transition=key,
                                                from_state=from_state, to_state=t.target,
                                                marks=t.marks, user=user)
            from core.events import TRANSITION_EVENT, emit  # noqa: PLC0415 - core.events -> core.state -> core.app imports this module

            emit(TRANSITION_EVENT, entity=name, id=record.id, transition=key,
                 from_state=from_state, to_state=t.target, marks=list(t.marks))
            db.session.flush()
    except Exception:
        db.session.expire(record)
        raise
    return {"status": "done", "from": from_state, "to": t.target}


def history(name: str, record_id: int) -> list[TransitionLog]:
    return list(db.session.scalars(select(TransitionLog).where(
        TransitionLog.entity == name, TransitionLog.record_id == record_id)
        .order_by(TransitionLog.id)))
