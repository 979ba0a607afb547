"""CRM domain logic. The public API other plugins may import:

* :func:`normalise_phone` (text → E.164 number, or :class:`PhoneError`);
* :func:`customer_snapshot` (plain data about one customer for pricing/eligibility);
* :func:`segment_customer_ids` (a ``SELECT`` of the customer ids in a saved segment);
* :class:`plugins.crm.models.Customer`.

Everything else here is used by crm's own API, web pages and CLI.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from marshmallow import ValidationError as MarshmallowError
from sqlalchemy import Select, cast, column, exists, func, literal, or_, select
from sqlalchemy.dialects.postgresql import JSONB

from core import custom
from core.auth import has_permission, scope_of
from core.db import db, is_postgres, savepoint_or_conflict, utcnow
from core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from core.models import User
from core.scope import dump, get_for, select_for
from core.state import dovetail
from plugins.crm.models import Activity, Contact, Customer, Segment
from plugins.crm.phone import PhoneError, normalise_phone, phone_search_digits
from plugins.crm.schemas import (
    ActivityIn,
    ActivityOut,
    ActivityPatch,
    ContactIn,
    ContactOut,
    CustomerOut,
    SegmentFilters,
    SegmentIn,
)

__all__ = ["normalise_phone", "PhoneError", "customer_snapshot", "segment_customer_ids"]

READ, CREATE, UPDATE, DELETE = ("crm.customer.read", "crm.customer.create", "crm.customer.update",
                                "crm.customer.delete")
ACT_READ, ACT_WRITE = "crm.activity.read", "crm.activity.write"
POOL_MANAGE = "crm.pool.manage"
#: Purchase history and the figures kept from it come from orders, so they follow the
#: orders plugin's read permission (only the name is compared; crm never imports orders).
PURCHASES = "orders.order.read"
PURCHASE_FIELDS = ("order_count", "total_spent", "last_purchase_at")


def can_see_purchases(user: User | None) -> bool:
    """Whether ``user`` may see purchase history and totals; ``None`` (CLI, system) may."""
    return user is None or has_permission(user, PURCHASES)


def hide_purchases(items: list[dict[str, Any]], user: User | None) -> list[dict[str, Any]]:
    """Drop :data:`PURCHASE_FIELDS` from dumped customers for users who may not see them."""
    if not can_see_purchases(user):
        for data in items:
            for key in PURCHASE_FIELDS:
                data.pop(key, None)
    return items


def check_purchase_sort(sort: str | None, user: User | None) -> None:
    """Sorting by a purchase figure would reveal it: 403 for users who may not see it."""
    key = (sort or "").lstrip("-")
    if key in PURCHASE_FIELDS and not can_see_purchases(user):
        raise PermissionDenied(f"You need the permission '{PURCHASES}' to sort by {key}.")


# ---------------------------------------------------------------------------
# Settings, time, small helpers
# ---------------------------------------------------------------------------


def settings() -> Mapping[str, Any]:
    return dovetail().settings("crm")


def company_tz() -> ZoneInfo:
    try:
        return ZoneInfo(dovetail().config.timezone)
    except Exception:  # noqa: BLE001 - an unknown zone name falls back to UTC
        return ZoneInfo("UTC")


def today_local() -> date:
    """Today in the company's time zone (``timezone`` in dovetail.yaml)."""
    return datetime.now(company_tz()).date()


def day_start_utc(day: date) -> datetime:
    """Midnight of ``day`` in the company time zone, as naive UTC (how times are stored)."""
    local = datetime.combine(day, time.min, tzinfo=company_tz())
    return local.astimezone(UTC).replace(tzinfo=None)


def load(schema: Any, raw: Any, *, partial: bool = False) -> dict[str, Any]:
    """Validate ``raw`` with a marshmallow schema; field errors become a 422."""
    if not isinstance(raw, Mapping):
        raise ValidationError("Send a JSON object.", fields={"_schema": ["Expected an object."]})
    try:
        return schema.load(raw, partial=partial)
    except MarshmallowError as err:
        messages = err.messages if isinstance(err.messages, Mapping) else {"_schema": err.messages}
        raise ValidationError("Invalid input; see fields.", fields=dict(messages)) from None


def tiers() -> list[str]:
    return list(settings().get("tiers") or ["standard"])


def check_tier(value: str | None) -> str:
    known = tiers()
    if value is None:
        return known[0]
    if value not in known:
        raise ValidationError(f"Unknown tier '{value}'.",
                              fields={"tier": [f"Must be one of: {', '.join(known)}."]})
    return value


# ---------------------------------------------------------------------------
# Tag matching on the JSON list (portable: json_each on SQLite, @> on PostgreSQL)
# ---------------------------------------------------------------------------


def tag_clause(tag: str) -> Any:
    if is_postgres():
        return cast(Customer.tags, JSONB).op("@>")(cast(literal(json.dumps([tag])), JSONB))
    each = func.json_each(Customer.tags).table_valued("value")
    return exists(select(literal(1)).select_from(each).where(column("value") == tag))


def any_tag_clause(tags: list[str]) -> Any:
    return or_(*[tag_clause(t) for t in tags])


# ---------------------------------------------------------------------------
# Customers
# ---------------------------------------------------------------------------


def customer_filters(stmt: Select, args: Mapping[str, Any], params: Mapping[str, str] | None = None
                     ) -> Select:
    """Search ``q`` and the whitelisted filters; ``custom.<key>`` through core.custom."""
    q = (args.get("q") or "").strip()
    if q:
        conds = [Customer.name.icontains(q, autoescape=True),
                 Customer.email.icontains(q, autoescape=True),
                 Customer.external_code.icontains(q, autoescape=True)]
        digits = phone_search_digits(q)
        if len(digits) >= 4:
            conds.append(Customer.phone.contains(digits[-11:], autoescape=True))
        stmt = stmt.where(or_(*conds))
    if args.get("tier"):
        stmt = stmt.where(Customer.tier == args["tier"])
    if args.get("region"):
        stmt = stmt.where(Customer.region == args["region"])
    if args.get("tag"):
        stmt = stmt.where(tag_clause(args["tag"]))
    if args.get("owner_id") is not None:
        stmt = stmt.where(Customer.owner_id == args["owner_id"])
    if args.get("consent_marketing") is not None:
        stmt = stmt.where(Customer.consent_marketing.is_(bool(args["consent_marketing"])))
    if params is not None:
        stmt = custom.filter_query("customer", Customer, stmt, params)
    return stmt


def customer_dict(c: Customer, user: User | None) -> dict[str, Any]:
    """One customer as ``user`` may see it (masking, custom fields, purchase figures)."""
    data = dump(CustomerOut(), c, Customer, user)
    data["custom"] = custom.dump("customer", c.custom, user)
    return hide_purchases([data], user)[0]


def customers_dump(rows: list[Customer], user: User | None) -> list[dict[str, Any]]:
    out = dump(CustomerOut(), rows, Customer, user, many=True)
    for data, c in zip(out, rows, strict=True):
        data["custom"] = custom.dump("customer", c.custom, user)
    return hide_purchases(out, user)


def _check_owner(owner_id: int | None, user: User | None) -> None:
    """Giving a customer to someone else (or to the pool) needs crm.pool.manage, in scope."""
    if user is None or owner_id == user.id:
        return
    if not has_permission(user, POOL_MANAGE):
        raise PermissionDenied("You need the permission 'crm.pool.manage' to give a customer to "
                               "another rep or to the pool.")
    if owner_id is None:
        return
    target = db.session.get(User, owner_id)
    if target is None or not target.active:
        raise ValidationError(f"No active user with id {owner_id}.",
                              fields={"owner_id": ["Unknown or disabled user."]})
    if scope_of(user) == "team" and target.team_id != user.team_id:
        raise ValidationError(f"User {target.username} is not in your team.",
                              fields={"owner_id": ["Not in your team."]})
    if scope_of(user) == "own":
        raise PermissionDenied("Your scope is your own customers; you cannot give one away.")


def _apply_phones(c: Customer, data: Mapping[str, Any]) -> None:
    if "phone" not in data and "phones" not in data:
        return
    primary = data["phone"] if "phone" in data else c.phone
    others = data["phones"] if "phones" in data else [p for p in (c.phones or []) if p != c.phone]
    phones: list[str] = []
    for p in ([primary] if primary else []) + list(others or []):
        if p and p not in phones:
            phones.append(p)
    c.phone = phones[0] if phones else None
    c.phones = phones


def _check_external_code(code: str | None, current_id: int | None) -> None:
    if not code:
        return
    with db.session.no_autoflush:  # the customer already holds the new code: do not flush it
        other = db.session.scalar(select(Customer.id).where(Customer.external_code == code))
    if other is not None and other != current_id:
        raise Conflict(f"External code '{code}' is already used by another customer.",
                       fields={"external_code": ["Already used."]})


def _apply(c: Customer, data: Mapping[str, Any], user: User | None, *, creating: bool) -> None:
    now = utcnow()
    for key in ("name", "email", "address", "region", "source", "notes", "external_code"):
        if key in data:
            setattr(c, key, data[key])
    if "tier" in data or creating:
        c.tier = check_tier(data.get("tier") or (c.tier if not creating else None))
    if "tags" in data:
        c.tags = list(dict.fromkeys(data["tags"] or []))
    elif creating:
        c.tags = []
    _apply_phones(c, data)
    if creating and c.phones is None:
        c.phones = []
    if "consent_marketing" in data and (creating or bool(data["consent_marketing"]) != c.consent_marketing):
        c.consent_marketing = bool(data["consent_marketing"])
        c.consent_at = now
    elif creating:
        c.consent_marketing = False
    if "custom" in data or creating:
        c.custom = custom.validate("customer", data.get("custom"), user,
                                   existing=None if creating else c.custom, partial=not creating)
    _check_external_code(c.external_code, c.id)


def create_customer(data: Mapping[str, Any], user: User | None, *, owner_default: bool = True) -> Customer:
    """Create from validated :class:`CustomerIn` data; the owner defaults to the creator."""
    c = Customer()
    _apply(c, data, user, creating=True)
    owner_id = data["owner_id"] if "owner_id" in data else (user.id if user and owner_default else None)
    _check_owner(owner_id, user)
    c.owner_id = owner_id
    if owner_id is None:
        c.pool_entered_at = utcnow()
    else:
        c.owned_since = utcnow()
    c.created_by_id = user.id if user else None
    db.session.add(c)
    db.session.flush()
    return c


def update_customer(c: Customer, data: Mapping[str, Any], user: User | None) -> Customer:
    _apply(c, data, user, creating=False)
    if "owner_id" in data and data["owner_id"] != c.owner_id:
        from plugins.crm import pool  # noqa: PLC0415 - plugins.crm.pool imports this module

        _check_owner(data["owner_id"], user)
        pool.set_owner(c, data["owner_id"], user, action="assign")
    db.session.flush()
    return c


def delete_customer(c: Customer) -> None:
    """Delete with contacts, activities and history; 409 while another plugin references it."""
    with savepoint_or_conflict(f"Customer {c.id} still has records elsewhere (orders …); it cannot be "
                               "deleted. Merge it into another customer instead."):
        db.session.delete(c)


def customer_snapshot(customer: Customer | int) -> dict[str, Any]:
    """Plain data about a customer for other plugins: id, tier, tags, region, owner_id."""
    c = customer if isinstance(customer, Customer) else db.session.get(Customer, customer)
    if c is None:
        raise NotFound(f"No customer with id {customer}.")
    return {"id": c.id, "tier": c.tier, "tags": list(c.tags or []), "region": c.region,
            "owner_id": c.owner_id}


def visible_customer(customer_id: int, permission: str, user: User) -> Customer:
    return get_for(Customer, customer_id, permission, user, label="customer")


# ---------------------------------------------------------------------------
# Contacts
# ---------------------------------------------------------------------------


def contact_dict(obj: Contact | list[Contact], user: User | None, many: bool = False) -> Any:
    return dump(ContactOut(), obj, Contact, user, many=many)


def save_contact(customer: Customer, raw: Any, user: User | None, contact: Contact | None = None
                 ) -> Contact:
    data = load(ContactIn(), raw, partial=contact is not None)
    if contact is None:
        contact = Contact(customer_id=customer.id, created_by_id=user.id if user else None)
        db.session.add(contact)
    for key, value in data.items():
        setattr(contact, key, value)
    if data.get("is_primary"):
        for other in db.session.scalars(select(Contact).where(
                Contact.customer_id == customer.id, Contact.is_primary.is_(True))):
            if other is not contact:
                other.is_primary = False
    db.session.flush()
    return contact


# ---------------------------------------------------------------------------
# Activities and call tasks
# ---------------------------------------------------------------------------


def activity_dict(obj: Any, user: User | None, many: bool = False) -> Any:
    return dump(ActivityOut(), obj, Activity, user, many=many)


def touch(customer: Customer, when: datetime | None = None) -> None:
    """A follow-up happened: the pool clock of this customer restarts."""
    when = when or utcnow()
    if customer.last_contact_at is None or customer.last_contact_at < when:
        customer.last_contact_at = when


def _assignee(customer: Customer, data: Mapping[str, Any], user: User | None) -> int | None:
    if data.get("assignee_id") is not None:
        target = db.session.get(User, data["assignee_id"])
        if target is None or not target.active:
            raise ValidationError(f"No active user with id {data['assignee_id']}.",
                                  fields={"assignee_id": ["Unknown or disabled user."]})
        return target.id
    return customer.owner_id or (user.id if user else None)


def _follow_up(customer: Customer, source: Activity, data: Mapping[str, Any], user: User | None) -> None:
    if data.get("next_step") and data.get("next_due_date"):
        task = Activity(customer_id=customer.id, type=source.type if source.type != "note" else "call",
                        subject=data["next_step"][:200], due_date=data["next_due_date"], done=False,
                        assignee_id=source.assignee_id, created_by_id=user.id if user else None)
        db.session.add(task)
        db.session.flush()
        source.follow_up_id = task.id


def create_activity(customer: Customer, raw: Any, user: User | None) -> Activity:
    """Log an interaction (done) or schedule a task (due_date, not done)."""
    data = load(ActivityIn(), raw)
    done = data.get("done")
    if done is None:
        done = data.get("due_date") is None  # no due date: something that already happened
    act = Activity(customer_id=customer.id, type=data.get("type", "call"), subject=data["subject"],
                   due_date=data.get("due_date"), done=bool(done), outcome=data.get("outcome"),
                   next_step=data.get("next_step"), assignee_id=_assignee(customer, data, user),
                   created_by_id=user.id if user else None)
    if act.done:
        act.done_at = utcnow()
        touch(customer, act.done_at)
    db.session.add(act)
    db.session.flush()
    _follow_up(customer, act, data, user)
    return act


def update_activity(act: Activity, raw: Any, user: User | None) -> Activity:
    """Change a task; ``done: true`` with ``outcome`` completes it (and touches the customer)."""
    data = load(ActivityPatch(), raw, partial=True)
    for key in ("type", "subject", "due_date", "outcome", "next_step"):
        if key in data:
            setattr(act, key, data[key])
    if "assignee_id" in data:
        act.assignee_id = _assignee(act.customer, data, user)
    if "done" in data and bool(data["done"]) != act.done:
        act.done = bool(data["done"])
        act.done_at = utcnow() if act.done else None
        if act.done:
            touch(act.customer, act.done_at)
    db.session.flush()
    if act.done and act.follow_up_id is None:
        _follow_up(act.customer, act, data, user)
    return act


def due_tasks_stmt(user: User, day: date | None = None, include_overdue: bool = True) -> Select:
    """Open tasks assigned to ``user`` due on ``day`` (default today), overdue ones too."""
    day = day or today_local()
    stmt = select_for(Activity, ACT_READ, user).where(
        Activity.assignee_id == user.id, Activity.done.is_(False), Activity.due_date.is_not(None))
    if include_overdue:
        return stmt.where(Activity.due_date <= day)
    return stmt.where(Activity.due_date == day)


# ---------------------------------------------------------------------------
# Segments
# ---------------------------------------------------------------------------


def segment_clauses(filters: Mapping[str, Any]) -> list[Any]:
    """WHERE clauses of a segment's saved filters (validated by :class:`SegmentFilters`)."""
    f = SegmentFilters().load(dict(filters or {}))
    out: list[Any] = []
    if f.get("tier"):
        out.append(Customer.tier.in_(f["tier"]))
    if f.get("tags"):
        out.append(any_tag_clause(f["tags"]))
    if f.get("region"):
        out.append(Customer.region.in_(f["region"]))
    if f.get("source"):
        out.append(Customer.source.in_(f["source"]))
    if f.get("min_spend") is not None:
        out.append(Customer.total_spent >= f["min_spend"])
    if f.get("max_spend") is not None:
        out.append(Customer.total_spent <= f["max_spend"])
    if f.get("min_orders") is not None:
        out.append(Customer.order_count >= f["min_orders"])
    if f.get("last_purchase_after") is not None:
        out.append(Customer.last_purchase_at >= day_start_utc(f["last_purchase_after"]))
    if f.get("last_purchase_before") is not None:
        out.append(Customer.last_purchase_at < day_start_utc(f["last_purchase_before"]))
    if f.get("consent_marketing") is not None:
        out.append(Customer.consent_marketing.is_(f["consent_marketing"]))
    return out


def segment_customer_ids(segment_id: int) -> Select:
    """``SELECT crm_customer.id`` of every customer in segment ``segment_id`` (no user scope:
    callers apply their own permission checks). Raises NotFound for an unknown segment."""
    seg = db.session.get(Segment, segment_id)
    if seg is None:
        raise NotFound(f"No segment with id {segment_id}.")
    clauses = segment_clauses(seg.filters)
    stmt = select(Customer.id)
    return stmt.where(*clauses) if clauses else stmt


def segment_customers_stmt(seg: Segment, base: Select) -> Select:
    clauses = segment_clauses(seg.filters)
    return base.where(*clauses) if clauses else base


def save_segment(raw: Any, user: User | None, seg: Segment | None = None) -> Segment:
    data = load(SegmentIn(), raw, partial=seg is not None)
    name = (data.get("name") or "").strip() if "name" in data else None
    if name is not None:
        clash = db.session.scalar(select(Segment.id).where(Segment.name == name))
        if clash is not None and (seg is None or clash != seg.id):
            raise Conflict(f"A segment named '{name}' already exists.", fields={"name": ["Already used."]})
    if seg is None:
        seg = Segment(created_by_id=user.id if user else None, filters={})
        db.session.add(seg)
    if name is not None:
        seg.name = name
    if "description" in data:
        seg.description = data["description"]
    if "filters" in data:
        seg.filters = SegmentFilters().dump(data["filters"])
    db.session.flush()
    return seg


def parse_iso(value: Any) -> datetime | None:
    """ISO text (with or without offset) → naive UTC datetime."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        dt = value
    else:
        try:
            dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return None
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC).replace(tzinfo=None)
    return dt


def days_ago(days: int) -> datetime:
    return utcnow() - timedelta(days=days)
