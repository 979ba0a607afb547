"""Demo data: a seller profile for every rep, and monthly targets (rep and team) for the last
three months and this one, set a little above what each rep sold in the year before."""

from __future__ import annotations

import random
from datetime import date
from decimal import Decimal

from sqlalchemy import select

from core.audit import acting_as
from core.db import db, quantize
from core.models import Team, User, UserRole
from plugins.performance.figures import rep_figures
from plugins.performance.models import SellerProfile, Target
from plugins.performance.periods import Period, add_months, current_month, month_end


def populate(scale: float, seed: int) -> None:
    rng = random.Random(seed)
    with acting_as(None, "demo"):
        reps = list(db.session.scalars(select(User).join(UserRole, UserRole.user_id == User.id)
                                       .where(UserRole.role == "rep").order_by(User.id)))
        have = set(db.session.scalars(select(SellerProfile.user_id)))
        for u in reps:
            if u.id not in have:
                db.session.add(SellerProfile(user_id=u.id, certificate_no=f"ZX{seed % 100:02d}{u.id:06d}",
                                             status="active", joined_on=date(2024, 1 + u.id % 12, 1)))
        db.session.flush()
        this = current_month()
        year = Period(add_months(this.start, -12), month_end(add_months(this.start, -1)))
        figs = rep_figures(year, [u.id for u in reps]) if reps else {}
        existing = {(t.period, t.rep_id, t.team_id) for t in db.session.scalars(select(Target))}
        for k in range(-3, 1):
            month = f"{add_months(this.start, k):%Y-%m}"
            team_sum: dict[int, Decimal] = {}
            for u in reps:
                f = figs.get(u.id)
                monthly = (f.revenue / 12) if f else Decimal(0)
                goal = quantize((monthly * Decimal(str(1 + rng.uniform(0.0, 0.25)))).quantize(Decimal("100")))
                if goal <= 0:
                    goal = Decimal("10000.00")
                if u.team_id is not None:
                    team_sum[u.team_id] = team_sum.get(u.team_id, Decimal(0)) + goal
                if (month, u.id, None) not in existing:
                    orders = max(int((f.orders if f else 0) / 12 * 1.1), 5)
                    db.session.add(Target(period=month, rep_id=u.id, revenue=goal, orders=orders,
                                          new_customers=max(orders // 4, 1)))
            for team in db.session.scalars(select(Team)):
                if team.id in team_sum and (month, None, team.id) not in existing:
                    db.session.add(Target(period=month, team_id=team.id, revenue=quantize(team_sum[team.id])))
        db.session.commit()
