"""Duplicate detection (same normalised phone, any of a customer's numbers, or the same
e-mail) within what the user may see, and merge into a survivor."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import select, update

from core import audit
from core.db import db, savepoint_or_conflict
from core.errors import ValidationError
from core.models import User
from core.scope import can_read_personal, get_for, mask_value, select_for
from core.state import dovetail
from plugins.crm import history
from plugins.crm.models import Activity, Contact, Customer, Lead, PoolLog
from plugins.crm.services import READ


def duplicate_groups(user: User) -> list[dict[str, Any]]:
    """Groups of ≥2 visible customers sharing a phone number or an e-mail address.

    A customer appears in one group per shared value. Sorted by kind, then value.
    """
    stmt = select_for(Customer, READ, user).with_only_columns(
        Customer.id, Customer.phone, Customer.phones, Customer.email)
    by_key: dict[tuple[str, str], set[int]] = defaultdict(set)
    for cid, phone, phones, email in db.session.execute(stmt):
        for p in {phone, *(phones or [])}:
            if p:
                by_key[("phone", p)].add(cid)
        if email:
            by_key[("email", email.strip().lower())].add(cid)
    groups = [(kind, value, sorted(ids)) for (kind, value), ids in by_key.items() if len(ids) > 1]
    groups.sort(key=lambda g: (g[0], g[1]))
    show = can_read_personal(Customer, user)
    return [{"kind": kind, "value": value if show else mask_value(value, kind), "customer_ids": ids}
            for kind, value, ids in groups]


def _fill(survivor: Customer, merged: Customer) -> None:
    for key in ("phone", "email", "address", "region", "source"):
        if not getattr(survivor, key) and getattr(merged, key):
            setattr(survivor, key, getattr(merged, key))
    phones = list(survivor.phones or [])
    for p in [survivor.phone, merged.phone, *(merged.phones or [])]:
        if p and p not in phones:
            phones.append(p)
    if survivor.phone and phones and phones[0] != survivor.phone:
        phones.remove(survivor.phone)
        phones.insert(0, survivor.phone)
    survivor.phones = phones
    survivor.tags = list(dict.fromkeys([*(survivor.tags or []), *(merged.tags or [])]))
    if merged.notes:
        survivor.notes = f"{survivor.notes}\n{merged.notes}" if survivor.notes else merged.notes
    extra = {k: v for k, v in (merged.custom or {}).items() if k not in (survivor.custom or {})}
    if extra:
        survivor.custom = {**(survivor.custom or {}), **extra}
    # The most recent consent decision of the person wins.
    if merged.consent_at and (survivor.consent_at is None or merged.consent_at > survivor.consent_at):
        survivor.consent_marketing = merged.consent_marketing
        survivor.consent_at = merged.consent_at
    if merged.last_contact_at and (survivor.last_contact_at is None
                                   or merged.last_contact_at > survivor.last_contact_at):
        survivor.last_contact_at = merged.last_contact_at


def merge(survivor: Customer, merged: list[Customer], user: User | None) -> Customer:
    """Merge ``merged`` customers into ``survivor``; the caller commits.

    Contacts, activities, purchase history, leads and pool history move to the
    survivor; empty survivor fields are filled, phones/tags united; the
    ``customer_merged`` hook lets other plugins (orders) move their rows; an audit
    entry per merged customer; then the merged customers are deleted.
    """
    hook = dovetail().pm.hook
    for m in merged:
        if m.id == survivor.id:
            raise ValidationError("A customer cannot be merged into itself.",
                                  fields={"merged_ids": [f"{m.id} is the survivor."]})
    for m in merged:
        mid = m.id
        moved = {}
        for model in (Contact, Activity, Lead, PoolLog):
            res = db.session.execute(update(model).where(model.customer_id == mid)
                                     .values(customer_id=survivor.id)
                                     .execution_options(synchronize_session=False))
            moved[model.__tablename__] = res.rowcount
        history.move_purchases(mid, survivor.id)
        history.absorb_stats(survivor, m)
        _fill(survivor, m)
        code = None
        if not survivor.external_code and m.external_code:
            code, m.external_code = m.external_code, None
        hook.customer_merged(survivor_id=survivor.id, merged_id=mid)
        audit.record(db.session, "merge", Customer.__tablename__, survivor.id,
                     before={"merged_id": mid, "merged_owner_id": m.owner_id,
                             "merged_external_code": code or m.external_code},
                     after={"survivor_id": survivor.id, "moved": moved},
                     note=f"customer {mid} merged into {survivor.id}")
        with savepoint_or_conflict(f"Customer {mid} is still referenced by records of a plugin that did not "
                                   "move them (is the plugin owning them enabled?); nothing was merged."):
            db.session.delete(m)
        if code:
            survivor.external_code = code
    db.session.flush()
    for model in (Contact, Activity, Lead):
        for obj in list(db.session.identity_map.values()):
            if isinstance(obj, model):
                db.session.expire(obj)
    db.session.flush()
    return survivor


def load_for_merge(survivor_id: int, merged_ids: list[int], user: User) -> tuple[Customer, list[Customer]]:
    survivor = get_for(Customer, survivor_id, "crm.customer.merge", user, label="customer")
    merged = [get_for(Customer, i, "crm.customer.merge", user, label="customer")
              for i in dict.fromkeys(merged_ids)]
    return survivor, merged


__all__ = ["duplicate_groups", "merge", "load_for_merge", "select"]
