"""Movements, the ledger invariant, negative stock and reorder alerts (service level)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from core import hookimpl
from core.db import db
from core.errors import Conflict, ValidationError
from core.state import dovetail
from plugins.inventory import services
from plugins.inventory.models import Movement, StockLevel


def level(pid, wid):
    row = services.stock_of(pid, wid)
    db.session.refresh(row)
    return row.on_hand, row.reserved, row.available


def assert_ledger_agrees():
    assert services.check_ledger() == []


def test_mixed_operations_keep_ledger_equal_to_on_hand(stockroom):
    s = stockroom
    services.receive(s.p1, s.sh, 100, unit_cost="12.345", reference="PO-1")
    services.issue(s.p1, s.sh, 30, reason="sample")
    services.adjust(s.p1, s.sh, -5, "damaged")
    services.adjust(s.p1, s.sh, 2, "found")
    a, b = services.transfer(s.p1, s.sh, s.gz, 20)
    services.count(s.p1, s.gz, 18)
    services.receive_return("order", 7, [(s.p1, 3)])
    db.session.commit()
    # a return with no earlier issue for its source goes to the default (first active) warehouse
    assert level(s.p1, s.sh) == (100 - 30 - 5 + 2 - 20 + 3, 0, 50)
    assert level(s.p1, s.gz) == (18, 0, 18)
    assert_ledger_agrees()
    assert a.transfer_id == b.transfer_id and a.quantity == -20 and b.quantity == 20
    assert a.kind == b.kind == "transfer"
    kinds = db.session.scalars(select(Movement.kind).order_by(Movement.id)).all()
    assert kinds == ["receipt", "issue", "adjustment", "adjustment", "transfer", "transfer", "adjustment", "return"]
    receipt = db.session.scalar(select(Movement).where(Movement.kind == "receipt"))
    assert str(receipt.unit_cost) == "12.35" and receipt.balance_after == 100
    count_row = db.session.scalar(select(Movement).where(Movement.warehouse_id == s.gz, Movement.kind == "adjustment"))
    assert count_row.reason == "stock count" and count_row.quantity == -2
    assert services.count(s.p1, s.gz, 18) is None  # already matches: no movement


def test_negative_stock_refused(stockroom):
    s = stockroom
    services.receive(s.p1, s.sh, 5)
    db.session.commit()
    with pytest.raises(Conflict, match="Only 5 of SKU-001 available in WH-SH; 6 requested"):
        services.issue(s.p1, s.sh, 6)
    with pytest.raises(Conflict, match="only 5 on hand"):
        services.adjust(s.p1, s.sh, -6, "count")
    with pytest.raises(Conflict):
        services.transfer(s.p1, s.sh, s.gz, 6)
    with pytest.raises(ValidationError):
        services.count(s.p1, s.sh, -1)
    with pytest.raises(ValidationError) as err:
        services.issue(s.p1, s.sh, 0)
    assert err.value.fields == {"quantity": ["Must be a whole number above zero."]}
    with pytest.raises(ValidationError) as err:
        services.adjust(s.p1, s.sh, -1, "  ")
    assert "reason" in err.value.fields
    with pytest.raises(ValidationError):
        services.transfer(s.p1, s.sh, s.sh, 1)
    db.session.rollback()
    assert level(s.p1, s.sh) == (5, 0, 5)
    assert_ledger_agrees()


def test_issue_never_takes_reserved_stock(stockroom):
    s = stockroom
    services.receive(s.p1, s.sh, 5)
    services.reserve_for("order", 1, [{"product_id": s.p1, "quantity": 4}])
    db.session.commit()
    with pytest.raises(Conflict, match="Only 1 of SKU-001 available in WH-SH; 2 requested"):
        services.issue(s.p1, s.sh, 2)
    db.session.rollback()
    services.issue(s.p1, s.sh, 1)
    db.session.commit()
    assert level(s.p1, s.sh) == (4, 4, 0)


@pytest.fixture
def dovetail_settings():
    return {}


class TestNegativeAllowed:
    @pytest.fixture
    def dovetail_settings(self):
        return {"inventory": {"allow_negative_stock": True, "default_warehouse": "WH-GZ"}}

    def test_setting_allows_negative_and_picks_default_warehouse(self, stockroom):
        s = stockroom
        services.issue(s.p1, s.sh, 3)
        services.reserve_for("order", 1, [{"product_id": s.p2, "quantity": 2}])
        db.session.commit()
        assert level(s.p1, s.sh) == (-3, 0, -3)
        assert level(s.p2, s.gz) == (0, 2, -2)  # default warehouse from the setting
        assert services.default_warehouse().code == "WH-GZ"
        assert_ledger_agrees()


def test_ledger_is_append_only(stockroom):
    s = stockroom
    mv = services.receive(s.p1, s.sh, 5)
    db.session.commit()
    mv.quantity = 50
    with pytest.raises(Conflict, match="append-only"):
        db.session.commit()
    db.session.rollback()
    db.session.delete(db.session.get(Movement, mv.id))
    with pytest.raises(Conflict, match="append-only"):
        db.session.flush()
    db.session.rollback()
    assert db.session.scalar(select(func.sum(Movement.quantity))) == 5


class Probe:
    def __init__(self):
        self.events = []

    @hookimpl
    def on_event(self, event):
        if event.name == "inventory.stock.low":
            self.events.append(dict(event.payload))


@pytest.fixture
def probe(app):
    pm = dovetail(app).pm
    p = Probe()
    pm.register(p, name="low-stock-probe")
    yield p
    pm.unregister(p)


def test_low_stock_event_when_crossing_below_reorder_point(stockroom, probe):
    s = stockroom
    services.receive(s.p1, s.sh, 20)
    services.set_reorder_point(s.p1, 10)  # product default
    db.session.commit()
    services.issue(s.p1, s.sh, 10)  # available 10: not below
    assert probe.events == []
    services.reserve_for("order", 1, [{"product_id": s.p1, "quantity": 1}])  # 9 < 10: crosses
    assert len(probe.events) == 1
    ev = probe.events[0]
    assert ev["sku"] == "SKU-001" and ev["warehouse_code"] == "WH-SH"
    assert (ev["on_hand"], ev["reserved"], ev["available"], ev["reorder_point"]) == (10, 1, 9, 10)
    services.issue(s.p1, s.sh, 1)  # still below: no new event
    assert len(probe.events) == 1
    services.receive(s.p1, s.sh, 10)  # back above
    services.adjust(s.p1, s.sh, -12, "damaged")  # crosses again
    assert len(probe.events) == 2
    db.session.commit()


def test_warehouse_reorder_point_overrides_default_and_alerts(stockroom):
    s = stockroom
    services.receive(s.p1, s.sh, 8)
    services.receive(s.p1, s.gz, 8)
    services.receive(s.p2, s.sh, 100)
    services.set_reorder_point(s.p1, 10)
    services.set_reorder_point(s.p1, 5, s.gz)
    services.set_reorder_point(s.p3, 1)  # no stock at all: listed for the default warehouse
    db.session.commit()
    rows = db.session.scalars(services.alerts_query(select(StockLevel)).order_by(StockLevel.id)).all()
    got = {(r.product_id, r.warehouse_id) for r in rows}
    assert got == {(s.p1, s.sh), (s.p3, s.sh)}
    with pytest.raises(ValidationError):
        services.set_reorder_point(s.p1, -1)
    services.set_reorder_point(s.p1, None)
    db.session.commit()
    rows = db.session.scalars(services.alerts_query(select(StockLevel))).all()
    assert {(r.product_id, r.warehouse_id) for r in rows} == {(s.p3, s.sh)}
