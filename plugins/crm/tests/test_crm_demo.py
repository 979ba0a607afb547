"""``dovetail demo`` fills crm with a small realistic company."""

from sqlalchemy import func, select

from core.db import db
from core.models import Team, User
from plugins.crm.models import Activity, Customer, Lead, Segment
from plugins.crm.phone import normalise_phone


def test_demo_data(app, runner):
    r = runner.invoke(["demo", "--scale", "0.05", "--seed", "7"])
    assert r.exit_code == 0, r.output
    assert "password" not in r.output.lower()
    reps = db.session.scalars(select(User).where(User.username.like("rep%"))).all()
    assert sorted(u.username for u in reps) == [f"rep{i}" for i in range(1, 7)]
    teams = {t.name: t for t in db.session.scalars(select(Team))}
    assert set(teams) == {"华东一组", "华南一组"}
    assert all(t.manager_id for t in teams.values())
    customers = db.session.scalars(select(Customer)).all()
    assert len(customers) == 50
    assert any(c.owner_id is None for c in customers) and any(c.owner_id for c in customers)
    assert all(normalise_phone(c.phone) == c.phone for c in customers)
    assert db.session.scalar(select(func.count()).select_from(Activity)) > 0
    assert db.session.scalar(select(func.count()).select_from(Segment)) == 4
    assert db.session.scalar(select(func.count()).select_from(Lead)) == 5
    # running it again reuses the demo users instead of failing
    r = runner.invoke(["demo", "--scale", "0.05", "--seed", "7"])
    assert r.exit_code == 0, r.output
    assert db.session.scalar(select(func.count()).select_from(Customer)) == 50
