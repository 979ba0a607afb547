"""Fixtures for the performance tests: crm + catalog + orders + performance, a small sales
organisation, commission rules written into the test's config folder, and orders built
directly with exact amounts, states and times (the order API is exercised separately)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest


@pytest.fixture
def dovetail_plugins():
    return ["crm", "catalog", "orders", "performance"]


@pytest.fixture
def write_rules(dovetail_config_dir):
    """``write_rules("categories: ...")`` replaces config/commission.yaml of this test."""

    def write(text: str) -> None:
        (dovetail_config_dir / "commission.yaml").write_text(text, encoding="utf-8")

    return write


@pytest.fixture
def category(app):
    from core.db import db
    from plugins.catalog.models import Category

    def make(name: str, parent: Any = None) -> Any:
        cat = Category(name=name, parent_id=getattr(parent, "id", parent))
        db.session.add(cat)
        db.session.commit()
        return cat

    return make


@pytest.fixture
def product(app):
    from core.db import db
    from plugins.catalog.models import Product

    counter = {"n": 0}

    def make(cat: Any, price: str = "100.00", *, sku: str | None = None, active: bool = True) -> Any:
        counter["n"] += 1
        p = Product(sku=sku or f"P-{counter['n']:03d}", name=f"Product {counter['n']}",
                    category_id=getattr(cat, "id", cat), unit="件", price=Decimal(price), cost=Decimal("1.00"),
                    active=active, custom={})
        db.session.add(p)
        db.session.commit()
        return p

    return make


@pytest.fixture
def customer(app):
    from core.db import db
    from plugins.crm.models import Customer

    counter = {"n": 0}

    def make(owner: Any = None) -> Any:
        counter["n"] += 1
        phone = f"139{counter['n']:08d}"
        c = Customer(name=f"客户{counter['n']}", phone=phone, phones=[phone], region="华东", tier="standard",
                     tags=[], owner_id=getattr(owner, "id", owner), custom={})
        db.session.add(c)
        db.session.commit()
        return c

    return make


STAMPS = ("confirmed", "paid", "shipped", "completed")


@pytest.fixture
def sale(app, customer):
    """``sale(rep, [(product, qty), (product, qty, "unit price")], placed=…, status="completed",
    completed=…, total=…)`` → a committed order. ``total`` below the line sum is an order-level
    discount. State times up to ``status`` are ``placed`` unless ``completed`` is given."""
    from core.db import db, quantize
    from plugins.orders.models import Order, OrderLine

    counter = {"n": 0}

    def make(rep: Any, lines: list[tuple], *, placed: datetime = datetime(2026, 1, 10, 4),
             status: str = "completed", completed: datetime | None = None, total: str | None = None,
             cust: Any = None, gifts: list[tuple] = ()) -> Any:
        counter["n"] += 1
        order = Order(number=f"SO-T-{counter['n']:06d}", customer_id=(cust or customer(rep)).id,
                      owner_id=getattr(rep, "id", rep), status=status, currency="CNY", placed_at=placed,
                      custom={})
        subtotal = Decimal("0.00")
        for i, ln in enumerate(list(lines) + [(g[0], g[1], "0.00", True) for g in gifts]):
            p, qty = ln[0], ln[1]
            price = Decimal(ln[2]) if len(ln) > 2 else p.price
            gift = len(ln) > 3 and ln[3]
            line_total = quantize(price * qty) if not gift else Decimal("0.00")
            subtotal += line_total
            order.lines.append(OrderLine(position=i, product_id=p.id, sku=p.sku, name=p.name,
                                         category_id=p.category_id, quantity=qty, unit_price=price,
                                         unit_cost=Decimal("1.00"), line_discount=Decimal("0.00"),
                                         line_total=line_total, is_gift=bool(gift)))
        order.subtotal = subtotal
        order.total = Decimal(total) if total is not None else subtotal
        order.discount_total = subtotal - order.total
        reached = STAMPS[:STAMPS.index(status) + 1] if status in STAMPS else ()
        for st in reached:
            setattr(order, f"{st}_at", placed)
        if completed is not None:
            order.completed_at = completed
        db.session.add(order)
        db.session.commit()
        return order

    return make


@pytest.fixture
def give_back(app):
    """``give_back(order, {line_index: units})``: units received back (as the orders plugin's
    receive action records them: ``returned_quantity``) and refunded at what they cost the
    customer (a ``refund`` payment, as its refund action records it)."""
    from core.db import db, quantize, utcnow
    from plugins.orders.models import Payment
    from plugins.orders.public import unit_net

    def ret(order: Any, units: dict[int, int], *, whole: bool = False) -> None:
        refund = Decimal("0.00")
        for idx, qty in units.items():
            order.lines[idx].returned_quantity += qty
            refund += quantize(unit_net(order.lines[idx], order) * qty)
        if refund > 0:
            db.session.add(Payment(order=order, kind="refund", amount=refund, method="cash", paid_at=utcnow()))
        if whole:
            order.status = "returned"
        db.session.commit()

    return ret


@pytest.fixture
def org(make_team, make_user, api_client, admin_api):
    """Team East (rep1, rep2, manager1), team South (rep3), a finance user; API clients for all."""
    east, south = make_team("East"), make_team("South")
    users = {"rep1": make_user("rep1", "rep", team=east), "rep2": make_user("rep2", "rep", team=east),
             "manager1": make_user("manager1", "manager", team=east),
             "rep3": make_user("rep3", "rep", team=south),
             "manager2": make_user("manager2", "manager", team=south),
             "finance": make_user("finance", "finance")}
    ns = SimpleNamespace(east=east, south=south, admin=admin_api, users=users, **users)
    ns.api = {name: api_client(user) for name, user in users.items()}
    return ns


@pytest.fixture
def generate(app):
    """``generate("2026-01")`` → the commission Result, committed."""
    from core.db import db
    from plugins.performance.commission import generate as gen

    def run(period: str, **kw: Any) -> Any:
        result = gen(period, **kw)
        db.session.commit()
        return result

    return run


@pytest.fixture
def statement_of(app):
    from sqlalchemy import select

    from core.db import db
    from plugins.performance.models import Statement

    def get(rep: Any, period: str) -> Any:
        db.session.expire_all()
        return db.session.scalar(select(Statement).where(Statement.rep_id == rep.id, Statement.period == period))

    return get


@pytest.fixture
def approve(app):
    """Approve (and optionally pay) a statement through the workflow, as ``user``."""
    from core import statemachine
    from core.db import db

    def run(st: Any, user: Any, *, pay: bool = False) -> None:
        statemachine.perform("commission_statement", st, "approve", user)
        if pay:
            statemachine.perform("commission_statement", st, "pay", user, inputs={"reference": "BANK-1"})
        db.session.commit()

    return run
