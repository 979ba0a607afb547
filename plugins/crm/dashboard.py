"""The crm plugin's dashboard cards (reports ``crm.tasks_due``, ``crm.follow_up`` and
``crm.pipeline``), each limited to the user's record scope by :mod:`core.scope`.

Customer names are personal data: shown masked to users without
``crm.customer.read_personal``, and an unmasked view is logged (PIPL).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, or_, select

from core.db import db, quantize
from core.i18n import N_
from core.models import User
from core.scope import can_read_personal, log_personal_access, mask_value, restrict
from core.statemachine import label_of, machine_for
from plugins.crm.models import Activity, Customer, Lead
from plugins.crm.services import company_tz, due_tasks_stmt, settings

#: rows a card lists
CARD_ROWS = 50

#: the headers of the cards' columns
COLUMN_LABELS = (N_("Due date"), N_("Customer"), N_("Subject"), N_("Last contact"), N_("Days left"),
                 N_("Stage"), N_("Leads"), N_("Expected amount"))


def _to_local_date(moment: datetime) -> Any:
    """A stored naive-UTC moment as the company's local day."""
    return moment.replace(tzinfo=UTC).astimezone(company_tz()).date()


def _names(customers: list[Customer], user: User) -> dict[int, str]:
    """Customer id → name as ``user`` may see it (masked, or logged as a personal-data access)."""
    if can_read_personal(Customer, user):
        log_personal_access(Customer, [c.id for c in customers], user)
        return {c.id: c.name for c in customers}
    return {c.id: mask_value(c.name, "name") for c in customers}


def tasks_due(params: Mapping[str, Any], user: User) -> tuple[list[str], list[list[Any]]]:
    """The user's open follow-up tasks due today or overdue, oldest first."""
    stmt = due_tasks_stmt(user).order_by(Activity.due_date, Activity.id).limit(CARD_ROWS)
    tasks = list(db.session.scalars(stmt))
    names = _names(list({t.customer.id: t.customer for t in tasks}.values()), user)
    return ["due_date", "customer", "subject"], [[t.due_date, names[t.customer_id], t.subject] for t in tasks]


def follow_up(params: Mapping[str, Any], user: User) -> tuple[list[str], list[list[Any]]]:
    """Customers in the user's scope without a follow-up for half the pool's return period
    (``pool_return_days``): last contact and the days left before they return to the pool,
    fewest first."""
    days = int(settings().get("pool_return_days", 30))
    now = datetime.utcnow()  # noqa: DTZ003 - naive UTC like the stored times
    cutoff = now - timedelta(days=days - days // 2)
    since = func.coalesce(Customer.last_contact_at, Customer.owned_since, Customer.created_at)
    stmt = restrict(select(Customer), Customer, user).where(
        Customer.owner_id.is_not(None), func.coalesce(Customer.owned_since, Customer.created_at) < cutoff,
        or_(Customer.last_contact_at.is_(None), Customer.last_contact_at < cutoff)) \
        .order_by(since, Customer.id).limit(CARD_ROWS)
    customers = list(db.session.scalars(stmt))
    names = _names(customers, user)
    rows = []
    for c in customers:
        base = max(m for m in (c.last_contact_at, c.owned_since or c.created_at) if m is not None)
        left = max(days - (now - base).days, 0)
        last = c.last_contact_at
        rows.append([names[c.id], _to_local_date(last) if last else "—", left])
    return ["customer", "last_contact", "days_left"], rows


def pipeline(params: Mapping[str, Any], user: User) -> tuple[list[str], list[list[Any]]]:
    """Open and closed leads in the user's scope per workflow state (its label, in the
    workflow's order) with their expected amount."""
    machine = machine_for("lead")
    stmt = restrict(select(Lead.status, func.count(Lead.id), func.sum(Lead.expected_amount)), Lead, user) \
        .group_by(Lead.status)
    found = {s: (n, quantize(Decimal(total or 0))) for s, n, total in db.session.execute(stmt)}
    rows = []
    for key, state in machine.states.items():
        n, total = found.pop(key, (0, quantize(Decimal(0))))
        rows.append([label_of(state.label), n, total])
    rows.extend([key, n, total] for key, (n, total) in sorted(found.items()))
    return ["stage", "leads", "expected_amount"], rows


__all__ = ["follow_up", "pipeline", "tasks_due"]
