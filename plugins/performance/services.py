"""Sellers, team managers, targets, and performance views with scope. This module (with
:mod:`plugins.performance.commission` and :mod:`plugins.performance.figures`) is the
plugin's public API: :func:`rep_performance`, :func:`team_performance`,
:func:`leaderboard`, :func:`set_target`, :func:`target_for`, :func:`visible_users`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from marshmallow import Schema
from marshmallow import ValidationError as MarshmallowError
from sqlalchemy import Select, or_, select

from core import audit
from core.auth import scope_of
from core.db import db, quantize, savepoint_or_conflict, utcnow
from core.errors import Conflict, NotFound, ValidationError
from core.models import Team, User
from core.scope import restrict
from plugins.performance.figures import METRICS, Figures, combine, rep_figures
from plugins.performance.models import SellerProfile, Target
from plugins.performance.periods import Period
from plugins.performance.sources import orders_settings

log = logging.getLogger("dovetail.plugins.performance")
ZERO = Decimal("0.00")
TARGET_METRICS = ("revenue", "orders", "new_customers")


# ---------------------------------------------------------------------------
# Scope: which reps and teams may a user see?
# ---------------------------------------------------------------------------


class _Users:
    """core.scope's owner rule applied to ``core_user.id`` itself: own → me, team → my
    team's members, all → everyone (so reps are scoped exactly as their records are)."""

    __scope_owner__ = "id"
    id = User.id


def visible_users(user: User) -> Select:
    """``SELECT core_user.id`` of the reps ``user`` may see (own / team / all)."""
    return restrict(select(User.id), _Users, user)


def can_see_rep(user: User | None, rep_id: int) -> bool:
    """Whether ``user`` may see rep ``rep_id`` (None: the CLI, which sees everyone)."""
    if user is None:
        return True
    return db.session.scalar(visible_users(user).where(User.id == rep_id)) is not None


def visible_rep_ids(user: User) -> set[int] | None:
    """None when ``user`` sees every rep."""
    if scope_of(user) == "all":
        return None
    return set(db.session.scalars(visible_users(user)))


def can_see_team(user: User | None, team_id: int) -> bool:
    if user is None:
        return True
    return scope_of(user) == "all" or (user.team_id is not None and user.team_id == team_id)


def get_rep(rep_id: int, user: User) -> User:
    rep = db.session.get(User, rep_id)
    if rep is None or not can_see_rep(user, rep_id):
        raise NotFound(f"No rep with id {rep_id}.")
    return rep


def get_team(team_id: int, user: User) -> Team:
    team = db.session.get(Team, team_id)
    if team is None or not can_see_team(user, team_id):
        raise NotFound(f"No team with id {team_id}.")
    return team


def load(schema: Schema, raw: Any, *, partial: bool = False) -> dict[str, Any]:
    try:
        return schema.load(raw if raw is not None else {}, partial=partial)
    except MarshmallowError as err:
        raise ValidationError("Invalid input; see fields.", fields=err.messages_dict) from None


# ---------------------------------------------------------------------------
# Seller profiles
# ---------------------------------------------------------------------------


def _user_label(u: User | None) -> str | None:
    return (u.display_name or u.username) if u is not None else None


def seller_dict(p: SellerProfile) -> dict[str, Any]:
    u = p.user
    return {"id": p.id, "user_id": p.user_id, "username": u.username if u else None,
            "display_name": _user_label(u), "team_id": u.team_id if u else None,
            "certificate_no": p.certificate_no, "status": p.status,
            "joined_on": p.joined_on.isoformat() if p.joined_on else None,
            "status_changed_at": p.status_changed_at.isoformat() if p.status_changed_at else None,
            "notes": p.notes}


def _certificate(value: Any) -> str | None:
    text = (value or "").strip() if isinstance(value, str) else value
    return text or None


def create_seller(data: Mapping[str, Any], user: User) -> SellerProfile:
    rep_id = data["user_id"]
    target = db.session.get(User, rep_id)
    if target is None or not can_see_rep(user, rep_id):
        raise ValidationError(f"No user with id {rep_id} that you may manage.",
                              fields={"user_id": ["Unknown user."]})
    if db.session.scalar(select(SellerProfile.id).where(SellerProfile.user_id == rep_id)):
        raise Conflict(f"User {target.username} already has a seller profile; change it instead.",
                       fields={"user_id": ["Already a seller."]})
    prof = SellerProfile(user_id=rep_id, user=target, status=data.get("status") or "active",
                         certificate_no=_certificate(data.get("certificate_no")),
                         joined_on=data.get("joined_on"), notes=data.get("notes"),
                         status_changed_at=utcnow(), created_by_id=user.id)
    _save(prof, add=True)
    return prof


def update_seller(prof: SellerProfile, data: Mapping[str, Any]) -> SellerProfile:
    if "status" in data and data["status"] != prof.status:
        prof.status = data["status"]
        prof.status_changed_at = utcnow()
    if "certificate_no" in data:
        prof.certificate_no = _certificate(data["certificate_no"])
    for key in ("joined_on", "notes"):
        if key in data:
            setattr(prof, key, data[key])
    _save(prof)
    return prof


def _save(prof: SellerProfile, add: bool = False) -> None:
    with savepoint_or_conflict(f"Certificate number {prof.certificate_no} belongs to another seller.",
                               fields={"certificate_no": ["Already used."]}):
        if add:
            db.session.add(prof)


# ---------------------------------------------------------------------------
# Teams and their managers (core teams; the manager is core_team.manager_id)
# ---------------------------------------------------------------------------


def team_dict(team: Team, members: int | None = None) -> dict[str, Any]:
    manager = db.session.get(User, team.manager_id) if team.manager_id else None
    if members is None:
        members = len(team_member_ids(team.id))
    return {"id": team.id, "name": team.name, "region": team.region, "manager_id": team.manager_id,
            "manager": _user_label(manager), "members": members}


def visible_teams(user: User) -> list[Team]:
    stmt = select(Team).order_by(Team.name)
    if scope_of(user) != "all":
        stmt = stmt.where(Team.id == (user.team_id if user.team_id is not None else -1))
    return list(db.session.scalars(stmt))


def team_member_ids(team_id: int) -> list[int]:
    return list(db.session.scalars(select(User.id).where(User.team_id == team_id).order_by(User.id)))


def set_team_manager(team: Team, manager_id: int | None, user: User) -> Team:
    """Name the team's manager (a member of the team), or clear it with None. Caller commits."""
    if manager_id is not None:
        mgr = db.session.get(User, manager_id)
        if mgr is None or not mgr.active:
            raise ValidationError(f"No active user with id {manager_id}.", fields={"manager_id": ["Unknown user."]})
        if mgr.team_id != team.id:
            raise ValidationError(f"{mgr.username} is not a member of team {team.name}; a manager sees the "
                                  "records of the team they belong to, so make them a member first.",
                                  fields={"manager_id": ["Not a member of this team."]})
    before = team.manager_id
    team.manager_id = manager_id
    audit.record(db.session, "update", "core_team", team.id, before={"manager_id": before},
                 after={"manager_id": manager_id}, note="team manager (performance)")
    db.session.flush()
    return team


# ---------------------------------------------------------------------------
# Targets
# ---------------------------------------------------------------------------


def target_select(user: User) -> Select:
    """Targets ``user`` may see: rep targets of visible reps, and team targets of visible teams."""
    stmt = select(Target)
    if scope_of(user) == "all":
        return stmt
    team = Target.team_id == user.team_id if user.team_id is not None else Target.id.is_(None)
    return stmt.where(or_(Target.rep_id.in_(visible_users(user)), team))


def target_dict(t: Target) -> dict[str, Any]:
    rep = db.session.get(User, t.rep_id) if t.rep_id else None
    team = db.session.get(Team, t.team_id) if t.team_id else None
    return {"id": t.id, "period": t.period, "rep_id": t.rep_id, "rep": rep.username if rep else None,
            "team_id": t.team_id, "team": team.name if team else None,
            "revenue": None if t.revenue is None else str(t.revenue), "orders": t.orders,
            "new_customers": t.new_customers, "currency": t.currency, "notes": t.notes,
            "updated_at": t.updated_at.isoformat() if t.updated_at else None}


def _check_target_owner(data: Mapping[str, Any], user: User | None) -> None:
    rep_id, team_id = data.get("rep_id"), data.get("team_id")
    if (rep_id is None) == (team_id is None):
        raise ValidationError("A target is for one rep (rep_id) or one team (team_id).",
                              fields={"rep_id": ["Give rep_id or team_id, not both."]})
    if rep_id is not None:
        if db.session.get(User, rep_id) is None or not can_see_rep(user, rep_id):
            raise ValidationError(f"No rep with id {rep_id} that you may set targets for.",
                                  fields={"rep_id": ["Unknown rep."]})
    elif db.session.get(Team, team_id) is None or not can_see_team(user, team_id):
        raise ValidationError(f"No team with id {team_id} that you may set targets for.",
                              fields={"team_id": ["Unknown team."]})


def set_target(data: Mapping[str, Any], user: User | None) -> tuple[Target, str]:
    """Create or change the target of (period, rep or team). Metrics not given stay as they are
    (a new target leaves them empty); ``null`` clears one. Returns ``(target, "created" |
    "updated" | "unchanged")``. Caller commits."""
    _check_target_owner(data, user)
    period = data["period"]
    owner = (Target.rep_id == data["rep_id"]) if data.get("rep_id") is not None else \
        (Target.team_id == data["team_id"])
    t = db.session.scalar(select(Target).where(Target.period == period, owner))
    outcome = "updated"
    if t is None:
        t = Target(period=period, rep_id=data.get("rep_id"), team_id=data.get("team_id"),
                   currency=str(orders_settings().get("currency", "CNY")),
                   created_by_id=getattr(user, "id", None))
        outcome = "created"
    before = {k: getattr(t, k) for k in (*TARGET_METRICS, "notes")}
    for key in (*TARGET_METRICS, "notes"):
        if key in data:
            setattr(t, key, quantize(data[key]) if key == "revenue" and data[key] is not None else data[key])
    if outcome == "updated" and before == {k: getattr(t, k) for k in before}:
        return t, "unchanged"
    with savepoint_or_conflict("Someone else set this target at the same moment; try again."):
        db.session.add(t)
    return t, outcome


def target_for(period: Period, *, rep_id: int | None = None, team_id: int | None = None) \
        -> tuple[dict[str, Any] | None, str | None]:
    """The target of a rep or team for ``period`` (only whole months have targets: the sum of
    each month's target; a metric missing in any month has no target). For a team without its
    own target for a metric, the sum of its members' targets (source ``members``)."""
    months = period.months()
    if not months:
        return None, None
    owner = Target.rep_id == rep_id if rep_id is not None else Target.team_id == team_id
    rows = list(db.session.scalars(select(Target).where(Target.period.in_(months), owner)))
    out: dict[str, Any] = {}
    source = "own"
    for key in TARGET_METRICS:
        values = {t.period: getattr(t, key) for t in rows if getattr(t, key) is not None}
        out[key] = sum(values.values()) if len(values) == len(months) else None
    if team_id is not None and any(v is None for v in out.values()):
        members = team_member_ids(team_id)
        mrows = list(db.session.scalars(select(Target).where(Target.period.in_(months),
                                                             Target.rep_id.in_(members or [-1]))))
        for key in TARGET_METRICS:
            if out[key] is None:
                vals = [getattr(t, key) for t in mrows if getattr(t, key) is not None]
                if vals:
                    out[key] = sum(vals)
                    source = "members"
    if all(v is None for v in out.values()):
        return None, None
    if out["revenue"] is not None:
        out["revenue"] = str(quantize(out["revenue"]))
    return out, source


def attainment(figures: Figures, target: Mapping[str, Any] | None) -> dict[str, str | None]:
    """Percent of each target reached (half-up to 0.01), None without a (positive) target."""
    out: dict[str, str | None] = {}
    for key in TARGET_METRICS:
        goal = (target or {}).get(key)
        goal = Decimal(str(goal)) if goal is not None else None
        value = Decimal(str(figures.value(key)))
        out[key] = str(quantize(value * 100 / goal)) if goal else None
    return out


# ---------------------------------------------------------------------------
# Performance views
# ---------------------------------------------------------------------------


def period_dict(p: Period) -> dict[str, Any]:
    return {"label": p.label, "month": p.month, "date_from": p.start.isoformat(), "date_to": p.end.isoformat()}


def change(now: Figures, then: Figures) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in METRICS:
        a, b = Decimal(str(now.value(key))), Decimal(str(then.value(key)))
        diff = a - b
        out[key] = {"difference": str(quantize(diff)) if key == "revenue" else int(diff),
                    "percent": str(quantize(diff * 100 / b)) if b else None}
    return out


def _comparison(period: Period, now: Figures, compute: Any) -> dict[str, Any]:
    out = {}
    for name, other in (("previous", period.previous()), ("last_year", period.last_year())):
        f = compute(other)
        out[name] = {"period": period_dict(other), "figures": f.as_dict(), "change": change(now, f)}
    return out


def rep_info(rep: User) -> dict[str, Any]:
    prof = db.session.scalar(select(SellerProfile).where(SellerProfile.user_id == rep.id))
    team = db.session.get(Team, rep.team_id) if rep.team_id else None
    return {"id": rep.id, "username": rep.username, "display_name": _user_label(rep),
            "team_id": rep.team_id, "team": team.name if team else None,
            "seller": seller_dict(prof) if prof else None}


def population(period: Period, team_id: int | None = None) -> dict[int, Figures]:
    """Figures of every rep who competes: active sellers plus anyone with sales in the period."""
    figs = rep_figures(period)
    active = set(db.session.scalars(select(SellerProfile.user_id).where(SellerProfile.status == "active")))
    everyone = {rid: figs.get(rid, Figures()) for rid in set(figs) | active}
    if team_id is not None:
        members = set(team_member_ids(team_id))
        everyone = {k: v for k, v in everyone.items() if k in members}
    return everyone


def ranks(values: Mapping[int, Any]) -> dict[int, int]:
    """Competition ranking (1, 2, 2, 4) from the highest value; None ranks last."""
    ordered = sorted(values.items(), key=lambda kv: (kv[1] is None, -(kv[1] or 0)))
    out: dict[int, int] = {}
    prev, rank = object(), 0
    for i, (k, v) in enumerate(ordered, start=1):
        if v != prev:
            rank, prev = i, v
        out[k] = rank
    return out


def rep_performance(rep: User, period: Period) -> dict[str, Any]:
    """One rep's figures, target, attainment, rank among all reps, and the two comparisons."""
    everyone = population(period)
    fig = everyone.get(rep.id) or rep_figures(period, [rep.id])[rep.id]
    target, _src = target_for(period, rep_id=rep.id)
    rank_map = ranks({k: v.value("revenue") for k, v in {**everyone, rep.id: fig}.items()})

    def compute(p: Period) -> Figures:
        return rep_figures(p, [rep.id])[rep.id]

    return {"rep": rep_info(rep), "period": period_dict(period), "figures": fig.as_dict(),
            "target": target, "attainment": attainment(fig, target),
            "rank": {"by": "revenue", "rank": rank_map[rep.id], "of": len(rank_map)},
            "currency": str(orders_settings().get("currency", "CNY")),
            **_comparison(period, fig, compute)}


def team_performance(team: Team, period: Period, user: User) -> dict[str, Any]:
    members = team_member_ids(team.id)
    figs = rep_figures(period, members)
    total = combine(figs.values())
    target, source = target_for(period, team_id=team.id)
    visible = visible_rep_ids(user)
    rows = []
    rank_map = ranks({k: v.value("revenue") for k, v in figs.items()})
    for rid in members:
        if visible is not None and rid not in visible:
            continue
        rep = db.session.get(User, rid)
        rt, _s = target_for(period, rep_id=rid)
        rows.append({"rank": rank_map.get(rid), "rep_id": rid, "username": rep.username,
                     "display_name": _user_label(rep), **figs[rid].as_dict(),
                     "target": rt, "attainment": attainment(figs[rid], rt)})
    rows.sort(key=lambda r: (r["rank"], r["username"]))

    def compute(p: Period) -> Figures:
        return combine(rep_figures(p, members).values())

    return {"team": team_dict(team, len(members)), "period": period_dict(period), "figures": total.as_dict(),
            "target": target, "target_source": source, "attainment": attainment(total, target),
            "members": rows, "currency": str(orders_settings().get("currency", "CNY")),
            **_comparison(period, total, compute)}


LEADERBOARD_METRICS = (*METRICS, "attainment")


def leaderboard(period: Period, user: User, *, by: str = "revenue", level: str = "rep",
                team_id: int | None = None) -> dict[str, Any]:
    """Ranked reps (or teams) for ``period``. Ranks are among everyone competing; the rows are
    only those ``user`` may see (a rep sees their own row and rank)."""
    if by not in LEADERBOARD_METRICS:
        raise ValidationError(f"Cannot rank by '{by}'; use one of {', '.join(LEADERBOARD_METRICS)}.",
                              fields={"by": ["Unknown metric."]})
    if level == "team":
        return _team_board(period, user, by)
    if team_id is not None:
        get_team(team_id, user)
    everyone = population(period, team_id)
    targets = {rid: target_for(period, rep_id=rid)[0] for rid in everyone}
    att = {rid: attainment(f, targets[rid]) for rid, f in everyone.items()}
    if by == "attainment":
        values = {rid: (Decimal(a["revenue"]) if a["revenue"] is not None else None) for rid, a in att.items()}
    else:
        values = {rid: f.value(by) for rid, f in everyone.items()}
    rank_map = ranks(values)
    visible = visible_rep_ids(user)
    users = {u.id: u for u in db.session.scalars(select(User).where(User.id.in_(list(everyone) or [-1])))}
    teams = {t.id: t.name for t in db.session.scalars(select(Team))}
    items = []
    for rid, f in everyone.items():
        if visible is not None and rid not in visible:
            continue
        u = users.get(rid)
        items.append({"rank": rank_map[rid], "rep_id": rid, "username": u.username if u else None,
                      "display_name": _user_label(u), "team_id": u.team_id if u else None,
                      "team": teams.get(u.team_id) if u else None, **f.as_dict(),
                      "target_revenue": (targets[rid] or {}).get("revenue"),
                      "attainment": att[rid]["revenue"]})
    items.sort(key=lambda r: (r["rank"], r["username"] or ""))
    return {"period": period_dict(period), "by": by, "level": "rep", "competitors": len(everyone),
            "currency": str(orders_settings().get("currency", "CNY")), "items": items}


def _team_board(period: Period, user: User, by: str) -> dict[str, Any]:
    figs = rep_figures(period)
    teams = list(db.session.scalars(select(Team).order_by(Team.name)))
    totals: dict[int, Figures] = {}
    targets: dict[int, Any] = {}
    for t in teams:
        totals[t.id] = combine(figs.get(rid, Figures()) for rid in team_member_ids(t.id))
        targets[t.id] = target_for(period, team_id=t.id)[0]
    att = {tid: attainment(f, targets[tid]) for tid, f in totals.items()}
    if by == "attainment":
        values = {tid: (Decimal(a["revenue"]) if a["revenue"] is not None else None) for tid, a in att.items()}
    else:
        values = {tid: f.value(by) for tid, f in totals.items()}
    rank_map = ranks(values)
    items = [{"rank": rank_map[t.id], "team_id": t.id, "team": t.name, **totals[t.id].as_dict(),
              "target_revenue": (targets[t.id] or {}).get("revenue"), "attainment": att[t.id]["revenue"]}
             for t in teams if can_see_team(user, t.id)]
    items.sort(key=lambda r: (r["rank"], r["team"]))
    return {"period": period_dict(period), "by": by, "level": "team", "competitors": len(teams),
            "currency": str(orders_settings().get("currency", "CNY")), "items": items}


def reps_with_ids(ids: Iterable[int]) -> dict[int, User]:
    ids = list(ids)
    return {u.id: u for u in db.session.scalars(select(User).where(User.id.in_(ids or [-1])))}
