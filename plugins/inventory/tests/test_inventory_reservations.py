"""Reservations for orders: the orders hooks, workflow actions, and concurrency."""

from __future__ import annotations

import random
import threading
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from core.db import db
from core.errors import Conflict
from core.state import dovetail
from plugins.inventory import plugin, services
from plugins.inventory.models import Movement, Reservation


def order(oid, *lines, number=None):
    """An order-like object as the orders plugin passes to hooks: (product_id, quantity[, is_gift])."""
    return SimpleNamespace(id=oid, number=number or f"SO-2026-{oid:06d}", lines=[
        SimpleNamespace(product_id=line[0], sku=f"SKU-{line[0]}", quantity=line[1],
                        is_gift=bool(line[2]) if len(line) > 2 else False) for line in lines])


def level(pid, wid):
    row = services.stock_of(pid, wid)
    db.session.refresh(row)
    return row.on_hand, row.reserved


def active(source_id):
    return {(r.product_id, r.quantity) for r in services.active_reservations("order", source_id)}


def test_order_lifecycle_through_hooks(stockroom):
    s = stockroom
    services.receive(s.p1, s.sh, 10)
    services.receive(s.p2, s.sh, 10)
    db.session.commit()
    o = order(1, (s.p1, 2), (s.p2, 3), (s.p1, 1, True))  # the gift line reserves stock too
    plugin.order_reserve(o)
    db.session.commit()
    assert active(1) == {(s.p1, 3), (s.p2, 3)}
    assert level(s.p1, s.sh) == (10, 3) and level(s.p2, s.sh) == (10, 3)
    plugin.order_reserve(o)  # confirming twice reserves nothing more
    assert level(s.p1, s.sh) == (10, 3)
    assert plugin.order_availability([s.p1, s.p2, s.p3]) == {s.p1: 7, s.p2: 7, s.p3: 0}

    plugin.order_issue(o)
    db.session.commit()
    assert level(s.p1, s.sh) == (7, 0) and level(s.p2, s.sh) == (7, 0)
    assert active(1) == set()
    issues = db.session.scalars(select(Movement).where(Movement.kind == "issue")).all()
    assert sorted((m.product_id, m.quantity, m.source_type, m.source_id, m.reference) for m in issues) == [
        (s.p1, -3, "order", 1, "SO-2026-000001"), (s.p2, -3, "order", 1, "SO-2026-000001")]

    line = o.lines[1]
    plugin.order_return_received(o, [(line, 2)])
    db.session.commit()
    assert level(s.p2, s.sh) == (9, 0)
    ret = db.session.scalar(select(Movement).where(Movement.kind == "return"))
    assert (ret.quantity, ret.source_id, ret.warehouse_id) == (2, 1, s.sh)
    assert services.check_ledger() == []


def test_release_on_cancel(stockroom):
    s = stockroom
    services.receive(s.p1, s.sh, 5)
    o = order(2, (s.p1, 4))
    plugin.order_reserve(o)
    db.session.commit()
    plugin.order_release(o)
    db.session.commit()
    assert level(s.p1, s.sh) == (5, 0)
    statuses = db.session.scalars(select(Reservation.status)).all()
    assert statuses == ["released"]
    plugin.order_release(o)  # nothing left to release: no error
    assert level(s.p1, s.sh) == (5, 0)


def test_short_stock_is_a_clear_conflict_and_rolls_back_every_line(stockroom):
    s = stockroom
    services.receive(s.p1, s.sh, 10)
    services.receive(s.p2, s.sh, 3)
    db.session.commit()
    o = order(3, (s.p1, 4), (s.p2, 5))
    with pytest.raises(Conflict) as err:
        with db.session.begin_nested():  # the order's transaction
            plugin.order_reserve(o)
    assert err.value.message == "Only 3 of SKU-002 available in WH-SH; 5 requested"
    assert err.value.http_status == 409
    db.session.commit()
    assert level(s.p1, s.sh) == (10, 0)  # the first line's reservation was rolled back too
    assert db.session.scalar(select(func.count()).select_from(Reservation)) == 0


def test_changed_lines_reserve_only_the_difference(stockroom):
    s = stockroom
    services.receive(s.p1, s.sh, 10)
    services.reserve_for("order", 4, [{"product_id": s.p1, "quantity": 6}])
    services.reserve_for("order", 4, [{"product_id": s.p1, "quantity": 8}])
    assert level(s.p1, s.sh) == (10, 8)
    services.reserve_for("order", 4, [{"product_id": s.p1, "quantity": 2}])
    assert level(s.p1, s.sh) == (10, 2)
    assert sum(q for _p, q in active(4)) == 2
    db.session.commit()


def test_issue_without_reservation_takes_available_stock(stockroom):
    s = stockroom
    services.receive(s.p1, s.sh, 3)
    db.session.commit()
    services.issue_for("order", 5, order(5, (s.p1, 2)).lines)
    assert level(s.p1, s.sh) == (1, 0)
    with pytest.raises(Conflict, match="Only 1 of SKU-001 available in WH-SH; 2 requested"):
        services.issue_for("order", 6, order(6, (s.p1, 2)).lines)
    db.session.rollback()


def test_workflow_actions_share_the_services(app, stockroom):
    s = stockroom
    actions = {k: a for k, (a, _o) in dovetail(app).registry.actions.items()}
    assert {"inventory.reserve", "inventory.release", "inventory.issue", "inventory.receive_return"} <= set(actions)
    services.receive(s.p1, s.sh, 5)
    rec = order(9, (s.p1, 2))
    ctx = SimpleNamespace(entity="order")
    actions["inventory.reserve"].func(rec, ctx)
    assert level(s.p1, s.sh) == (5, 2)
    plugin.order_reserve(rec)  # hook and action agree on the same reservation
    assert level(s.p1, s.sh) == (5, 2)
    actions["inventory.issue"].func(rec, ctx)
    assert level(s.p1, s.sh) == (3, 0)
    services.transfer(s.p1, s.sh, s.gz, 3)
    services.set_reorder_point(s.p1, 0)
    ship = order(10, (s.p1, 2))
    services.reserve_for("order", 10, ship.lines, warehouse_id=s.gz)
    actions["inventory.issue"].func(ship, ctx)
    assert level(s.p1, s.gz) == (1, 0)
    ret = SimpleNamespace(id=1, order_id=10, number="RT-1",
                          lines=[SimpleNamespace(order_line=ship.lines[0], quantity=1)])
    actions["inventory.receive_return"].func(ret, SimpleNamespace(entity="return"))
    assert level(s.p1, s.gz) == (2, 0)  # back where order 10 was shipped from
    mv = db.session.scalar(select(Movement).where(Movement.kind == "return"))
    assert (mv.source_type, mv.source_id, mv.reference) == ("return", 1, "RT-1")
    db.session.commit()
    assert services.check_ledger() == []


def _run_threads(app, n, work):
    """Run ``work(i)`` in n threads, each with its own app context and session."""
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def target(i):
        with app.app_context():
            barrier.wait()
            try:
                results[i] = work(i)
                db.session.commit()
            except Exception as exc:  # noqa: BLE001 - collected and asserted by the test
                db.session.rollback()
                results[i] = exc
            finally:
                db.session.remove()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_twenty_concurrent_confirmations_for_five_units(app, stockroom):
    """Acceptance: exactly 5 confirm, the rest get a clear 409, stock and ledger agree."""
    s = stockroom
    services.receive(s.p1, s.sh, 5)
    db.session.commit()

    def confirm(i):
        plugin.order_reserve(order(100 + i, (s.p1, 1)))
        return "ok"

    results = _run_threads(app, 20, confirm)
    ok = [r for r in results if r == "ok"]
    refused = [r for r in results if isinstance(r, Conflict)]
    assert len(ok) == 5 and len(refused) == 15, results
    assert all(r.http_status == 409 and "available in WH-SH; 1 requested" in r.message for r in refused)
    db.session.expire_all()
    assert level(s.p1, s.sh) == (5, 5)
    assert db.session.scalar(select(func.sum(Reservation.quantity)).where(Reservation.status == "active")) == 5
    assert services.ledger_sum(s.p1, s.sh) == 5
    assert services.check_ledger() == []


def test_concurrent_mixed_operations_keep_the_invariant(app, stockroom):
    s = stockroom
    for pid in (s.p1, s.p2):
        services.receive(pid, s.sh, 30)
        services.receive(pid, s.gz, 30)
    db.session.commit()

    def work(i):
        rng = random.Random(i)
        pid = (s.p1, s.p2)[i % 2]
        for _step in range(6):
            op = rng.choice(["receipt", "issue", "transfer", "back", "adjust", "reserve", "release", "ship"])
            try:
                with db.session.begin_nested():
                    if op == "receipt":
                        services.receive(pid, s.gz, rng.randrange(1, 5))
                    elif op == "issue":
                        services.issue(pid, s.sh, rng.randrange(1, 5))
                    elif op == "transfer":
                        services.transfer(pid, s.sh, s.gz, rng.randrange(1, 5))
                    elif op == "back":  # opposite transfers must not deadlock
                        services.transfer(pid, s.gz, s.sh, rng.randrange(1, 5))
                    elif op == "adjust":
                        services.adjust(pid, s.gz, rng.choice([-2, -1, 1, 2]), "count")
                    elif op == "reserve":
                        services.reserve_for("order", 1000 + i, [{"product_id": pid, "quantity": 2}])
                    elif op == "release":
                        services.release_for("order", 1000 + i)
                    else:
                        services.issue_for("order", 1000 + i)
            except Conflict:
                pass
            db.session.commit()
        return "done"

    results = _run_threads(app, 12, work)
    assert results == ["done"] * 12
    db.session.expire_all()
    assert services.check_ledger() == []
    held = dict(db.session.execute(select(Reservation.product_id, func.sum(Reservation.quantity)).where(
        Reservation.status == "active").group_by(Reservation.product_id)).all())
    for pid in (s.p1, s.p2):
        on_hand, reserved = level(pid, s.sh)
        assert reserved == held.get(pid, 0)
        assert on_hand >= reserved >= 0
        assert level(pid, s.gz)[0] >= 0
