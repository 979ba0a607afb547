"""Demo stock: two warehouses, receipts for every product, a few adjustments, reorder points."""

from __future__ import annotations

import random

from sqlalchemy import select

from core.db import db
from plugins.catalog.public import Product
from plugins.inventory import services
from plugins.inventory.models import Movement, Warehouse

WAREHOUSES = [("WH-SH", "上海仓", "上海市青浦区华新镇华志路1688号"),
              ("WH-GZ", "广州仓", "广州市白云区太和镇广从五路88号")]
ADJUST_REASONS = ["盘点差异", "破损报废", "临期销毁", "样品领用"]


def populate(scale: float, seed: int) -> None:
    rng = random.Random(seed + 7)
    whs = {}
    for code, name, address in WAREHOUSES:
        wh = db.session.scalar(select(Warehouse).where(Warehouse.code == code))
        if wh is None:
            wh = Warehouse(code=code, name=name, address=address, active=True)
            db.session.add(wh)
        whs[code] = wh
    db.session.flush()
    stocked = set(db.session.execute(select(Movement.product_id).distinct()).scalars())
    products = db.session.scalars(select(Product).order_by(Product.id)).all()
    for p in products:
        if p.id in stocked:
            continue
        services.receive(p.id, whs["WH-SH"].id, rng.randrange(40, 400), unit_cost=p.cost,
                         reference=f"PO-{rng.randrange(100000, 999999)}", reason="采购入库")
        if rng.random() < 0.6:
            services.receive(p.id, whs["WH-GZ"].id, rng.randrange(10, 150), unit_cost=p.cost,
                             reference=f"PO-{rng.randrange(100000, 999999)}", reason="采购入库")
        if rng.random() < 0.5:
            services.set_reorder_point(p.id, rng.choice([20, 30, 50, 80]))
        if rng.random() < 0.1:
            services.set_reorder_point(p.id, rng.choice([10, 20]), whs["WH-GZ"].id)
    fresh = [p for p in products if p.id not in stocked]
    for p in rng.sample(fresh, min(len(fresh), max(3, len(fresh) // 12))):
        services.adjust(p.id, whs["WH-SH"].id, -rng.randrange(1, 6), rng.choice(ADJUST_REASONS))
    if len(fresh) >= 2:
        p = fresh[0]
        services.transfer(p.id, whs["WH-SH"].id, whs["WH-GZ"].id, 10, reason="调拨补货")
    db.session.commit()


