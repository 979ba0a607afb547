"""Sales leads / opportunities and the ``lead`` workflow entity.

The default workflow (``workflows/lead.yaml``) is new → contacted → qualified → won,
with lost from any open state and reopen for managers. Transitions run through
:mod:`core.statemachine`, so a ``config/workflows/lead.yaml`` (workflows plugin)
replaces it without code changes. Workflow actions offered by crm:

* ``crm.convert_lead`` – the lead becomes (or is linked to) a customer (on qualify, and
  on win for workflows that skip qualify);
* ``crm.create_task`` – a follow-up call task for the record's customer, due tomorrow
  (any entity whose records have ``customer_id``; records without a customer are skipped).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select

from core import statemachine
from core.db import db, utcnow
from core.errors import ValidationError
from core.models import User
from core.registry import WorkflowAction, WorkflowEntity
from core.scope import dump, get_for, restrict
from plugins.crm.models import Activity, Customer, Lead
from plugins.crm.schemas import LeadIn, LeadOut
from plugins.crm.services import _check_owner, check_tier, load, today_local, touch

WORKFLOW_FILE = Path(__file__).parent / "workflows" / "lead.yaml"
CONTEXT_FIELDS = ("id", "title", "status", "source", "expected_amount", "expected_close", "owner_id",
                  "customer_id", "has_customer", "has_phone", "created_at")


def default_workflow() -> dict[str, Any]:
    with WORKFLOW_FILE.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def lead_context(lead: Lead) -> dict[str, Any]:
    return {"lead": {"id": lead.id, "title": lead.title, "status": lead.status, "source": lead.source,
                     "expected_amount": lead.expected_amount, "expected_close": lead.expected_close,
                     "owner_id": lead.owner_id, "customer_id": lead.customer_id,
                     "has_customer": lead.customer_id is not None, "has_phone": bool(lead.phone),
                     "created_at": lead.created_at}}


def workflow_entity() -> WorkflowEntity:
    return WorkflowEntity(
        name="lead", model=Lead, state_field="status", context=lead_context,
        context_names={"lead": CONTEXT_FIELDS}, permission_prefix="crm.lead",
        default_workflow=default_workflow(), get_record=lambda i: db.session.get(Lead, i),
        label=lambda lead: f"lead {lead.id} ({lead.title})")


def lead_dict(obj: Any, user: User | None, many: bool = False) -> Any:
    return dump(LeadOut(), obj, Lead, user, many=many)


def save_lead(raw: Any, user: User, lead: Lead | None = None) -> Lead:
    data = load(LeadIn(), raw, partial=lead is not None)
    if data.get("customer_id") is not None:
        get_for(Customer, data["customer_id"], "crm.customer.read", user, label="customer")
    # Check the owner before a new lead joins the session: the check queries, and an
    # autoflush of a lead without its fields yet would fail on NOT NULL (a 500).
    owner_now = lead.owner_id if lead is not None else user.id
    if "owner_id" in data and data["owner_id"] != owner_now:
        if data["owner_id"] is None:
            raise ValidationError("A lead needs an owner.", fields={"owner_id": ["Required."]})
        _check_owner(data["owner_id"], user)
    if lead is None:
        lead = Lead(status=statemachine.machine_for("lead").initial, created_by_id=user.id,
                    owner_id=user.id)
        db.session.add(lead)
    for key, value in data.items():
        setattr(lead, key, value)
    db.session.flush()
    return lead


# ---------------------------------------------------------------------------
# Workflow actions
# ---------------------------------------------------------------------------


def convert_lead(record: Lead, ctx: Any) -> None:
    """Link the lead to a customer: an existing one with the same phone, else a new one."""
    if record.customer_id is not None:
        return
    c = None
    if record.phone:  # only a customer the acting user may see; else a new one (dedupe later)
        stmt = select(Customer).where(Customer.phone == record.phone).order_by(Customer.id).limit(1)
        c = db.session.scalar(restrict(stmt, Customer, ctx.user) if ctx.user is not None else stmt)
    if c is None:
        now = utcnow()
        c = Customer(name=record.contact_name or record.title, phone=record.phone,
                     phones=[record.phone] if record.phone else [], email=record.email,
                     source=record.source or "lead", owner_id=record.owner_id,
                     owned_since=now if record.owner_id else None,
                     pool_entered_at=None if record.owner_id else now, tier=check_tier(None), tags=[],
                     custom={}, consent_marketing=False, last_contact_at=now,
                     created_by_id=getattr(ctx.user, "id", None))
        db.session.add(c)
        db.session.flush()
    record.customer_id = c.id


def create_task(record: Any, ctx: Any) -> None:
    """A follow-up call task for the record's customer, due tomorrow (company time zone)."""
    customer_id = getattr(record, "customer_id", None)
    if customer_id is None:
        return
    customer = db.session.get(Customer, customer_id)
    if customer is None:
        return
    what = f"{ctx.entity} {getattr(record, 'number', None) or record.id}"
    db.session.add(Activity(
        customer_id=customer_id, type="call", subject=f"Follow up {what} ({ctx.transition})"[:200],
        due_date=today_local() + timedelta(days=1), done=False,
        assignee_id=getattr(record, "owner_id", None) or customer.owner_id or getattr(ctx.user, "id", None),
        created_by_id=getattr(ctx.user, "id", None)))
    if ctx.entity == "lead":
        touch(customer)
    db.session.flush()


def workflow_actions() -> list[WorkflowAction]:
    return [
        WorkflowAction("crm.convert_lead", convert_lead,
                       "Create or link the customer of a lead", entities=("lead",)),
        WorkflowAction("crm.create_task", create_task,
                       "Schedule a follow-up call for the record's customer, due tomorrow"),
    ]
