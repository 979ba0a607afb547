"""Coupon uses are counted atomically: racing orders for the last uses, real threads and a
real database (SQLite file or a PostgreSQL schema)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from core.db import db
from core.errors import Conflict


@pytest.fixture
def coupon(app, shop):
    from plugins.marketing import services

    promo = services.save_promotion(None, {"name": "抢券 减20", "kind": "amount", "amount": "20",
                                           "requires_coupon": True})
    made = services.generate_coupons(promo, code="last3", usage_limit=3, per_customer_limit=1)[0]
    db.session.commit()
    return made


@pytest.fixture
def order_ids(app, make_customer):
    """Eight real draft orders (of eight customers) to hang coupon uses on."""
    from core.db import utcnow
    from plugins.orders.models import Order

    out = []
    for i in range(8):
        c = make_customer(name=f"顾客{i}")
        o = Order(number=f"SO-TEST-{i:04d}", customer_id=c.id, status="draft", placed_at=utcnow(), custom={})
        db.session.add(o)
        db.session.flush()
        out.append((o.id, c.id))
    db.session.commit()
    return out


def _race(app, n, work):
    db.session.commit()  # the test's own session must not hold the SQLite write lock meanwhile
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def run(i):
        with app.app_context():
            try:
                barrier.wait(timeout=30)
                results[i] = work(i)
            except Exception as exc:  # noqa: BLE001 - the outcome is asserted by the test
                results[i] = exc
                db.session.rollback()
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results


def test_service_claims_racing_for_the_last_uses(app, coupon, order_ids):
    from plugins.marketing.models import Coupon, CouponRedemption
    from plugins.marketing.services import claim_coupon

    def work(i):
        claim_coupon("LAST3", order_id=order_ids[i][0], customer_id=order_ids[i][1])
        db.session.commit()
        return "ok"

    results = _race(app, 8, work)
    assert results.count("ok") == 3
    losers = [r for r in results if r != "ok"]
    assert all(isinstance(r, Conflict) and r.message == "Coupon LAST3 has been used up." for r in losers)
    db.session.expire_all()
    assert db.session.get(Coupon, coupon.id).used == 3
    assert db.session.scalar(select(func.count()).select_from(CouponRedemption)) == 3


def test_service_same_customer_racing_gets_one_use(app, coupon, order_ids):
    from plugins.marketing.models import Coupon
    from plugins.marketing.services import claim_coupon

    def work(i):
        claim_coupon("last3", order_id=order_ids[i][0], customer_id=order_ids[0][1])
        db.session.commit()
        return "ok"

    results = _race(app, 4, work)
    assert results.count("ok") == 1
    assert all(isinstance(r, Conflict) for r in results if r != "ok")
    db.session.expire_all()
    assert db.session.get(Coupon, coupon.id).used == 1


def test_orders_racing_for_the_last_uses_through_the_api(app, api_client, coupon, shop, make_customer):
    from plugins.marketing.models import Coupon
    from plugins.orders.models import Order

    n = 6
    tokens = [api_client(role="admin").token for _ in range(n)]
    customers = [make_customer(name=f"客户{i}").id for i in range(n)]
    tea = shop["tea"].id

    def work(i):
        h = {"Authorization": f"Bearer {tokens[i]}"}
        r = app.test_client().post("/api/v1/orders", headers=h, json={
            "customer_id": customers[i], "lines": [{"product_id": tea, "quantity": 1}], "coupon_code": "LAST3"})
        return r.status_code, r.get_json()

    results = _race(app, n, work)
    codes = sorted(r[0] for r in results)
    assert codes == [201, 201, 201, 409, 409, 409], results
    assert {r[1]["error"]["message"] for r in results if r[0] == 409} == {"Coupon LAST3 has been used up."}
    assert {r[1]["total"] for r in results if r[0] == 201} == {"138.00"}
    db.session.expire_all()
    assert db.session.get(Coupon, coupon.id).used == 3
    assert db.session.scalar(select(func.count()).select_from(Order)) == 3
