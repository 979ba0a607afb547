"""Marketing tests run with what marketing depends on: crm, catalog and orders."""

from __future__ import annotations

from decimal import Decimal

import pytest


@pytest.fixture
def dovetail_plugins():
    return ["crm", "catalog", "orders", "marketing"]


@pytest.fixture
def shop(app):
    """Two categories (cosmetics with a child 'masks', and food) and four products."""
    from core.db import db
    from plugins.catalog.models import Category, Product

    beauty = Category(name="美妆")
    db.session.add(beauty)
    db.session.flush()
    masks = Category(name="面膜", parent_id=beauty.id)
    food = Category(name="食品")
    db.session.add_all([masks, food])
    db.session.flush()
    items = {
        "cream": Product(sku="CREAM", name="面霜", category_id=beauty.id, price=Decimal("199.00"),
                         cost=Decimal("80.00")),
        "mask": Product(sku="MASK", name="补水面膜", category_id=masks.id, price=Decimal("39.00"),
                        cost=Decimal("10.00")),
        "tea": Product(sku="TEA", name="乌龙茶", category_id=food.id, price=Decimal("158.00"),
                       cost=Decimal("60.00")),
        "sample": Product(sku="SAMPLE", name="小样", category_id=beauty.id, price=Decimal("25.00"),
                          cost=Decimal("5.00")),
    }
    db.session.add_all(items.values())
    db.session.commit()
    return {"beauty": beauty, "masks": masks, "food": food, **items}


@pytest.fixture
def make_customer(app):
    from core.db import db
    from plugins.crm.models import Customer

    counter = {"n": 0}

    def factory(name="王芳", tier="standard", tags=(), owner=None, consent=True, region="上海"):
        counter["n"] += 1
        c = Customer(name=name, phone=f"1380013{counter['n']:04d}", phones=[], email=f"c{counter['n']}@example.cn",
                     tier=tier, tags=list(tags), region=region, owner_id=getattr(owner, "id", owner),
                     consent_marketing=consent, custom={})
        db.session.add(c)
        db.session.commit()
        return c

    return factory
