"""The "waiting for my approval" dashboard card (report ``workflows.approvals``).

A transition is an approval step for a user when the workflow says so: it asks for
``approvals`` by one of the user's roles, it is restricted to ``roles`` the user has, or it
carries the ``approved`` mark (a commission statement's approval). Records wait for the user
when they sit in one of its source states, are in the user's record scope
(:func:`core.scope.restrict`) and the user may take the transition now (permission, roles and
guard, as the buttons on the record's page are decided).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from core.auth import has_permission, has_role
from core.db import db
from core.errors import DovetailError
from core.i18n import N_
from core.scope import restrict
from core.state import dovetail
from core.statemachine import Transition, check, label_of, machine_for

#: records checked per transition (each needs its guard evaluated)
CHECK_LIMIT = 500

#: the headers of the card's columns
COLUMN_LABELS = (N_("Action"), N_("State"), N_("Records"))


def is_approval_for(t: Transition, user: Any) -> bool:
    """Whether ``t`` is an approval step that ``user``'s role lets them take."""
    if t.permission and not has_permission(user, t.permission):
        return False
    if t.approvals_count and t.approvals_role and has_role(user, t.approvals_role):
        return True
    if t.roles and any(has_role(user, r) for r in t.roles):
        return True
    return "approved" in t.marks


def approvals_waiting(params: Mapping[str, Any], user: Any) -> tuple[list[str], list[list[Any]]]:
    """Per approval step the user may take: its label, the state records wait in, how many."""
    rows = []
    for name, (ent, _owner) in sorted(dovetail().registry.workflow_entities.items()):
        try:
            machine = machine_for(name)
        except DovetailError:
            continue  # no workflow in force for this entity
        field = getattr(ent.model, ent.state_field)
        for t in machine.transitions.values():
            if not is_approval_for(t, user):
                continue
            for source in t.sources:
                stmt = restrict(select(ent.model).where(field == source), ent.model, user) \
                    .order_by(ent.model.id).limit(CHECK_LIMIT)
                n = sum(1 for rec in db.session.scalars(stmt) if check(machine, ent, t, rec, user).allowed)
                if n:
                    state = machine.states.get(source)
                    rows.append([label_of(t.label), label_of(state.label) if state else source, n])
    return ["action", "state", "records"], rows
