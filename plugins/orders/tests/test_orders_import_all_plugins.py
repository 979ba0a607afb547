"""Every plugin enabled: historical orders keep the file's prices and touch no stock."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from core.db import db


@pytest.fixture
def dovetail_plugins():
    return None  # every available plugin


def test_historical_import_moves_no_stock_and_applies_no_promotion(app, runner, tmp_path, make_product,
                                                                   make_customer):
    from plugins.inventory import services as inv
    from plugins.inventory.models import Movement, Reservation, StockLevel
    from plugins.marketing import services as mk
    from plugins.orders.models import Order

    p = make_product("120.00", sku="TEA-1")
    wh = inv.create_warehouse({"code": "MAIN", "name": "主仓"})
    inv.receive(p.id, wh.id, 10)
    camp = mk.save_campaign(None, {"name": "双十一", "starts_on": str(date.today() - timedelta(days=400)),
                                   "ends_on": str(date.today() + timedelta(days=10))})
    camp.status = "active"
    db.session.flush()
    mk.save_promotion(None, {"name": "满300减30", "kind": "tiered", "campaign_id": camp.id, "tiers": "300:30"})
    make_customer(external_code="C1")
    db.session.commit()
    movements = db.session.scalar(select(func.count(Movement.id)))
    f = tmp_path / "history.csv"
    f.write_text("external_number,order_date,status,customer,sku,quantity,unit_price\n"
                 "H-1,2025-11-11,completed,C1,TEA-1,4,110\n"
                 "H-2,2025-11-12,confirmed,C1,TEA-1,6,120\n", encoding="utf-8")
    res = runner.invoke(["import", "orders", str(f)])
    assert res.exit_code == 0, res.output
    db.session.expire_all()
    level = db.session.scalar(select(StockLevel).where(StockLevel.product_id == p.id))
    assert (level.on_hand, level.reserved) == (10, 0)
    assert db.session.scalar(select(func.count(Movement.id))) == movements
    assert db.session.scalar(select(func.count(Reservation.id))) == 0
    totals = dict(db.session.execute(select(Order.external_number, Order.total)).all())
    assert {k: str(v) for k, v in totals.items()} == {"H-1": "440.00", "H-2": "720.00"}  # no 满减
