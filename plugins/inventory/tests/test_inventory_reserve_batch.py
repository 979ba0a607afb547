"""Reserving an order's stock costs the same number of statements whatever its size, and a
shortage on several products names each of them and changes nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import event, func, select

from core.db import db
from core.errors import Conflict
from plugins.catalog.models import Product
from plugins.inventory import services
from plugins.inventory.models import Reservation, StockLevel


@pytest.fixture
def shelf(app, stockroom):
    """Twelve products with 10 units each in WH-SH (the stockroom's three plus nine more)."""
    extra = [Product(sku=f"SKU-1{i:02d}", name=f"产品1{i:02d}", price="5.00", cost="1.00") for i in range(9)]
    db.session.add_all(extra)
    db.session.flush()
    ids = [stockroom.p1, stockroom.p2, stockroom.p3, *(p.id for p in extra)]
    for pid in ids:
        services.receive(pid, stockroom.sh, 10)
    db.session.commit()
    return ids


def _statements(fn) -> int:
    seen: list[str] = []

    def count(_conn, _cursor, statement, *_args):
        seen.append(statement)

    engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        fn()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return len(seen)


def test_statements_do_not_grow_with_lines(shelf):
    one = _statements(lambda: services.reserve_for("order", 1, [{"product_id": shelf[0], "quantity": 1}]))
    db.session.commit()
    twelve = _statements(lambda: services.reserve_for(
        "order", 2, [{"product_id": pid, "quantity": 2} for pid in shelf]))
    db.session.commit()
    assert one == twelve
    assert db.session.scalar(select(func.count()).select_from(Reservation)
                             .where(Reservation.source_id == 2)) == len(shelf)
    assert set(db.session.scalars(select(StockLevel.reserved).where(StockLevel.product_id.in_(shelf[1:])))) == {2}


def test_several_short_products_are_all_named_and_nothing_is_reserved(shelf, stockroom):
    lines = [{"product_id": shelf[0], "quantity": 3}, {"product_id": shelf[1], "quantity": 11},
             {"product_id": shelf[2], "quantity": 12}]
    with pytest.raises(Conflict) as err:
        with db.session.begin_nested():
            services.reserve_for("order", 3, lines)
    assert err.value.message == ("Only 10 of SKU-002 available in WH-SH; 11 requested. "
                                 "Only 10 of SKU-003 available in WH-SH; 12 requested")
    assert err.value.http_status == 409
    db.session.commit()
    assert set(db.session.scalars(select(StockLevel.reserved).where(StockLevel.warehouse_id == stockroom.sh))) == {0}
    assert db.session.scalar(select(func.count()).select_from(Reservation)) == 0


def test_the_same_product_on_several_lines_is_reserved_once_in_total(shelf):
    services.reserve_for("order", 4, [{"product_id": shelf[0], "quantity": 4},
                                      {"product_id": shelf[0], "quantity": 6}])
    db.session.commit()
    assert db.session.scalar(select(StockLevel.reserved).where(StockLevel.product_id == shelf[0])) == 10
    with pytest.raises(Conflict, match="Only 0 of SKU-001 available in WH-SH; 1 requested"):
        services.reserve_for("order", 5, [{"product_id": shelf[0], "quantity": 1}])
    db.session.rollback()


def test_unknown_product_is_a_field_error(shelf):
    from core.errors import ValidationError

    with pytest.raises(ValidationError, match="No product with id 999999"):
        services.reserve_for("order", 6, [{"product_id": 999999, "quantity": 1}])
    db.session.rollback()
