"""Demo data: reps and teams, 1k customers × scale (Faker zh_CN), contacts, activities and
call tasks, a few deliberate duplicates, pool customers, segments and leads."""

from __future__ import annotations

import random
import secrets
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select

from core import extras
from core.audit import acting_as
from core.auth import create_user
from core.db import db, utcnow
from core.models import Team, User
from core.state import dovetail
from plugins.crm.models import Activity, Contact, Customer, Lead, Segment
from plugins.crm.phone import PhoneError, normalise_phone
from plugins.crm.services import tiers, today_local

TEAMS = {"华东一组": ("华东", ["rep1", "rep2", "rep3"], "manager1"),
         "华南一组": ("华南", ["rep4", "rep5", "rep6"], "manager2")}
TAGS = ["老客户", "复购", "团购", "高意向", "价格敏感", "礼品", "保健品", "美妆", "家居", "转介绍"]
SOURCES = ["电话营销", "门店", "转介绍", "线上广告", "展会", "微信"]
SUBJECTS = ["首次电话回访", "介绍新品", "确认收货满意度", "邀请参加体验会", "跟进报价", "节日问候"]
OUTCOMES = ["已接通，有意向", "未接通", "客户忙，约下次", "已下单", "暂无需求"]



def _phone(text: str, rng: random.Random) -> str:
    """Faker's number in E.164, or a mainland mobile when Faker's prefix is not a valid one."""
    try:
        return normalise_phone(text)
    except PhoneError:
        return f"+86138{rng.randrange(10**8):08d}"

def _ensure_users() -> list[User]:
    """rep1..rep6 in two teams with manager1/manager2; created only when missing."""
    roles = dovetail().config.roles
    if "rep" not in roles or "manager" not in roles:
        return []
    reps: list[User] = []
    for team_name, (region, rep_names, manager_name) in TEAMS.items():
        team = db.session.scalar(select(Team).where(Team.name == team_name))
        if team is None:
            team = Team(name=team_name, region=region)
            db.session.add(team)
            db.session.flush()
        for uname, role in [(manager_name, "manager")] + [(r, "rep") for r in rep_names]:
            user = db.session.scalar(select(User).where(User.username == uname))
            if user is None:
                user = create_user(uname, secrets.token_urlsafe(16), [role], team_id=team.id,
                                   display_name=uname)
            if role == "manager" and team.manager_id is None:
                team.manager_id = user.id
            if role == "rep":
                reps.append(user)
    db.session.commit()
    return reps


def populate(scale: float, seed: int) -> None:
    faker = extras.require("faker", "Demo data")
    rng = random.Random(seed)
    fake = faker.Faker("zh_CN")
    fake.seed_instance(seed)
    with acting_as(None, "demo"):
        reps = _ensure_users()
        n = max(int(1000 * scale), 5)
        now = utcnow()
        today = today_local()
        known = tiers()
        weights = [60, 25, 10, 5][:len(known)] + [5] * max(len(known) - 4, 0)
        prefix = f"C{seed % 1000:03d}"
        taken = set(db.session.scalars(select(Customer.external_code).where(
            Customer.external_code.like(f"{prefix}%"))))
        customers: list[Customer] = []
        for i in range(n):
            code = f"{prefix}{i + 1:06d}"
            if code in taken:  # the same seed again: these demo customers exist already
                continue
            owner = rng.choice(reps) if reps and rng.random() > 0.15 else None
            phone = _phone(fake.phone_number(), rng)
            if customers and i % 97 == 0:  # a few real-looking duplicates to merge
                phone = customers[rng.randrange(len(customers))].phone
            consent = rng.random() < 0.6
            created = now - timedelta(days=rng.randint(20, 400))
            c = Customer(name=fake.name(), phone=phone, phones=[phone],
                         email=fake.email() if rng.random() < 0.5 else None, address=fake.address(),
                         region=fake.province(), tier=rng.choices(known, weights=weights)[0],
                         tags=rng.sample(TAGS, rng.randint(0, 3)), source=rng.choice(SOURCES),
                         owner_id=owner.id if owner else None,
                         owned_since=created if owner else None,
                         pool_entered_at=None if owner else now - timedelta(days=rng.randint(0, 60)),
                         consent_marketing=consent, consent_at=created if consent else None,
                         notes=None, external_code=code, custom={},
                         last_contact_at=now - timedelta(days=rng.randint(0, 26)) if owner else None,
                         created_at=created)
            customers.append(c)
        db.session.add_all(customers)
        db.session.flush()
        for c in customers:
            if rng.random() < 0.2:
                db.session.add(Contact(customer_id=c.id, name=fake.name(), title=rng.choice(["配偶", "子女", "采购"]),
                                       phone=_phone(fake.phone_number(), rng), is_primary=False))
            for _k in range(rng.randint(0, 3)):
                when = now - timedelta(days=rng.randint(1, 60))
                db.session.add(Activity(customer_id=c.id, assignee_id=c.owner_id,
                                        type=rng.choice(["call", "call", "message", "visit", "note"]),
                                        subject=rng.choice(SUBJECTS), done=True, done_at=when,
                                        outcome=rng.choice(OUTCOMES), created_at=when))
            if c.owner_id and rng.random() < 0.3:
                db.session.add(Activity(customer_id=c.id, assignee_id=c.owner_id, type="call",
                                        subject=rng.choice(SUBJECTS), done=False,
                                        due_date=today + timedelta(days=rng.randint(-3, 7))))
        db.session.commit()
        for name, desc, filters in [
                ("高价值客户", "累计消费 5000 元以上", {"min_spend": "5000.00"}),
                ("金卡与VIP", "金卡及以上等级", {"tier": [t for t in known if t in ("gold", "vip")] or known[-1:]}),
                ("沉睡客户", "90 天未购买", {"last_purchase_before": (today - timedelta(days=90)).isoformat()}),
                ("营销可触达", "同意营销联系的复购客户", {"tags": ["复购"], "consent_marketing": True})]:
            if db.session.scalar(select(Segment.id).where(Segment.name == name)) is None:
                db.session.add(Segment(name=name, description=desc, filters=filters))
        statuses = ["new", "new", "contacted", "qualified", "won", "lost"]
        for _k in range(max(n // 10, 1)):
            owner = rng.choice(reps) if reps else None
            status = rng.choice(statuses)
            db.session.add(Lead(title=f"{fake.company()} 采购意向", status=status, contact_name=fake.name(),
                                phone=_phone(fake.phone_number(), rng), source=rng.choice(SOURCES),
                                owner_id=owner.id if owner else None,
                                expected_amount=Decimal(rng.randrange(500, 50000, 100)),
                                expected_close=today + timedelta(days=rng.randint(5, 90))))
        db.session.commit()
