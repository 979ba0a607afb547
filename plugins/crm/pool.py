"""The public customer pool (公海): customers without an owner.

* Reps claim pool customers, at most ``pool_claim_limit`` per rep per day (company time
  zone). Claiming is one conditional ``UPDATE … WHERE owner_id IS NULL`` per customer,
  so two reps racing for one customer: exactly one wins, the other gets 409. A rep's
  own claims are serialised (row lock on the user on PostgreSQL; SQLite transactions
  begin IMMEDIATE) so parallel requests cannot exceed the daily limit.
* An owned customer with no follow-up for ``pool_return_days`` (no activity done since
  they were assigned) goes back to the pool: ``dovetail crm recycle``, and automatically
  whenever the pool is listed or claimed from (``pool_auto_recycle``). Each return
  leaves an audit entry and a pool log row.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update

from core import audit
from core.audit import acting_as
from core.auth import has_permission
from core.db import db, is_postgres, utcnow
from core.errors import Conflict, PermissionDenied, ValidationError
from core.models import User
from plugins.crm.models import Activity, Customer, PoolLog
from plugins.crm.services import day_start_utc, settings, today_local

CLAIM, MANAGE = "crm.pool.claim", "crm.pool.manage"


def require_pool_access(user: User) -> None:
    if not (has_permission(user, CLAIM) or has_permission(user, MANAGE)):
        raise PermissionDenied("You need the permission 'crm.pool.claim' to see the customer pool.")


def pool_stmt() -> Any:
    return select(Customer).where(Customer.owner_id.is_(None))


def _log(customer_id: int, user_id: int | None, action: str, reason: str | None = None,
         at: datetime | None = None) -> None:
    db.session.add(PoolLog(customer_id=customer_id, user_id=user_id, action=action,
                           at=at or utcnow(), reason=reason))


def set_owner(c: Customer, owner_id: int | None, actor: User | None, *, action: str,
              reason: str | None = None) -> None:
    """Give ``c`` to ``owner_id`` (None: to the pool), with a pool log row."""
    now = utcnow()
    previous = c.owner_id
    c.owner_id = owner_id
    c.owned_since = now if owner_id is not None else None
    c.pool_entered_at = None if owner_id is not None else now
    _log(c.id, owner_id if owner_id is not None else previous, action if owner_id is not None
         else "release", reason, now)
    if owner_id is not None:
        _reassign_open_tasks([c.id], owner_id)


def _reassign_open_tasks(customer_ids: list[int], owner_id: int) -> None:
    if customer_ids:
        db.session.execute(update(Activity).where(
            Activity.customer_id.in_(customer_ids), Activity.done.is_(False))
            .values(assignee_id=owner_id).execution_options(synchronize_session=False))


def claims_today(user: User) -> int:
    start = day_start_utc(today_local())
    return db.session.scalar(select(func.count()).select_from(PoolLog).where(
        PoolLog.user_id == user.id, PoolLog.action == "claim", PoolLog.at >= start)) or 0


def claim(user: User, customer_ids: list[int]) -> dict[str, list[int]]:
    """Claim pool customers for ``user``; the caller commits.

    Returns ``{"claimed": [...], "unavailable": [...]}`` (unavailable: claimed by someone
    else meanwhile, or not in the pool). 409 when nothing could be claimed or the daily
    limit would be exceeded.
    """
    if not has_permission(user, CLAIM):
        raise PermissionDenied("You need the permission 'crm.pool.claim' to claim customers.")
    ids = list(dict.fromkeys(int(i) for i in customer_ids))
    if not ids:
        raise ValidationError("Name the customers to claim.", fields={"customer_ids": ["Required."]})
    if is_postgres():  # serialise this rep's claims so the daily limit holds under concurrency
        db.session.execute(select(User.id).where(User.id == user.id).with_for_update())
    limit = int(settings().get("pool_claim_limit", 50))
    used = claims_today(user)
    if used + len(ids) > limit:
        left = max(limit - used, 0)
        raise Conflict(f"You may claim {limit} customers per day and have {left} left today.",
                       fields={"customer_ids": [f"At most {left} more today."]})
    now = utcnow()
    claimed, unavailable = [], []
    for cid in ids:
        res = db.session.execute(
            update(Customer).where(Customer.id == cid, Customer.owner_id.is_(None))
            .values(owner_id=user.id, owned_since=now, pool_entered_at=None, updated_at=now)
            .execution_options(synchronize_session=False))
        if res.rowcount == 1:
            claimed.append(cid)
            _log(cid, user.id, "claim", None, now)
            audit.record(db.session, "pool_claim", Customer.__tablename__, cid,
                         before={"owner_id": None}, after={"owner_id": user.id},
                         note=f"claimed from the pool by {user.username}")
        else:
            unavailable.append(cid)
    if not claimed:
        what = "This customer is" if len(ids) == 1 else "These customers are"
        raise Conflict(f"{what} no longer in the pool (claimed by someone else, or never there).",
                       fields={"customer_ids": [f"Not in the pool: {', '.join(map(str, unavailable))}."]})
    _reassign_open_tasks(claimed, user.id)
    db.session.flush()
    for c in db.session.identity_map.values():
        if isinstance(c, Customer) and c.id in claimed:
            db.session.expire(c)
    return {"claimed": claimed, "unavailable": unavailable}


def release(c: Customer, user: User, reason: str | None = None) -> None:
    """The owner (or a pool manager) gives a customer back to the pool."""
    if c.owner_id is None:
        raise Conflict(f"Customer {c.id} is already in the pool.")
    if c.owner_id != user.id and not has_permission(user, MANAGE):
        raise PermissionDenied("Only the owner or a pool manager may return this customer to the pool.")
    before = c.owner_id
    set_owner(c, None, user, action="release", reason=reason)
    db.session.flush()
    audit.record(db.session, "pool_release", Customer.__tablename__, c.id,
                 before={"owner_id": before}, after={"owner_id": None},
                 note=f"returned to the pool by {user.username}" + (f": {reason}" if reason else ""))


def stale_stmt(days: int, now: datetime) -> Any:
    cutoff = now - timedelta(days=days)
    return select(Customer.id, Customer.owner_id).where(
        Customer.owner_id.is_not(None),
        func.coalesce(Customer.owned_since, Customer.created_at) < cutoff,
        or_(Customer.last_contact_at.is_(None), Customer.last_contact_at < cutoff))


def recycle(days: int | None = None, now: datetime | None = None, limit: int | None = None
            ) -> list[int]:
    """Return owned customers without follow-up for ``days`` to the pool; the caller commits.

    Each one gets an audit entry naming the rule. Safe to run concurrently with claims
    and with itself (conditional update on the owner seen).
    """
    days = int(days if days is not None else settings().get("pool_return_days", 30))
    now = now or utcnow()
    stmt = stale_stmt(days, now).order_by(Customer.id)
    if limit:
        stmt = stmt.limit(limit)
    returned = []
    for cid, owner_id in db.session.execute(stmt).all():
        res = db.session.execute(
            update(Customer).where(Customer.id == cid, Customer.owner_id == owner_id)
            .values(owner_id=None, owned_since=None, pool_entered_at=now, updated_at=now)
            .execution_options(synchronize_session=False))
        if res.rowcount != 1:
            continue
        returned.append(cid)
        _log(cid, owner_id, "recycle", f"no follow-up for {days} days", now)
        audit.record(db.session, "pool_return", Customer.__tablename__, cid,
                     before={"owner_id": owner_id}, after={"owner_id": None},
                     note=f"returned to the pool automatically: no follow-up for {days} days")
    if returned:
        db.session.flush()
        for obj in list(db.session.identity_map.values()):
            if isinstance(obj, Customer) and obj.id in returned:
                db.session.expire(obj)
    return returned


def auto_recycle() -> list[int]:
    """The automatic check run on pool list/claim; commits its own work when it moved anyone."""
    if not settings().get("pool_auto_recycle", True):
        return []

    with acting_as(None, "crm.pool"):
        moved = recycle()
    if moved:
        db.session.commit()
    return moved
