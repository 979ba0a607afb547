"""Fixtures for the orders tests: crm + catalog + orders unless a test module overrides it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest


@pytest.fixture
def dovetail_plugins():
    return ["crm", "catalog", "orders"]


@pytest.fixture
def make_product(app):
    from core.db import db
    from plugins.catalog.models import Category, Product

    counter = {"n": 0}

    def factory(price: str = "100.00", cost: str = "60.00", *, sku: str | None = None,
                category: str | None = "Skincare", active: bool = True) -> Any:
        counter["n"] += 1
        cat = None
        if category:
            cat = db.session.query(Category).filter_by(name=category).one_or_none()
            if cat is None:
                cat = Category(name=category)
                db.session.add(cat)
                db.session.flush()
        p = Product(sku=sku or f"SKU-{counter['n']:04d}", name=f"Product {counter['n']}",
                    category_id=cat.id if cat else None, unit="件", price=Decimal(price),
                    cost=Decimal(cost), active=active, custom={})
        db.session.add(p)
        db.session.commit()
        return p

    return factory


@pytest.fixture
def make_customer(app):
    from core.db import db
    from plugins.crm.models import Customer

    counter = {"n": 0}

    def factory(owner: Any = None, *, name: str = "张三丰", region: str = "华东", tier: str = "standard",
                external_code: str | None = None, phone: str | None = None) -> Any:
        counter["n"] += 1
        phone = phone or f"138{counter['n']:08d}"
        c = Customer(name=name, phone=phone, phones=[phone], region=region, tier=tier, tags=[],
                     owner_id=getattr(owner, "id", owner), external_code=external_code, custom={})
        db.session.add(c)
        db.session.commit()
        return c

    return factory


@pytest.fixture
def rep(make_user):
    return make_user("rep1", role="rep")


@pytest.fixture
def rep_api(api_client, rep):
    return api_client(rep)
