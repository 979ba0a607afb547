"""Real threads against a real database: number allocation, Idempotency-Key races, and
20 clients confirming orders for 5 units of stock (crm + catalog + inventory + orders)."""

from __future__ import annotations

import threading

import pytest


def _race(app, n, work):
    """Run ``work(i, client)`` in ``n`` threads, each with its own app context and client."""
    from core.db import db

    db.session.rollback()  # the main thread must not hold SQLite's write lock during the race
    barrier = threading.Barrier(n)
    results: list = [None] * n
    errors: list = []

    def run(i):
        from core.db import db

        try:
            with app.app_context():
                client = app.test_client()
                barrier.wait(timeout=30)
                results[i] = work(i, client)
                db.session.remove()
        except Exception as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    return results


def _token(app, user):
    from core.auth import issue_token
    from core.db import db

    token = issue_token(user, "race")
    db.session.commit()
    return {"Authorization": f"Bearer {token}"}


def test_concurrent_identical_posts_create_one_order(app, make_user, make_customer, make_product):
    rep = make_user("rep1", role="rep")
    c, p = make_customer(rep), make_product()
    headers = {**_token(app, rep), "Idempotency-Key": "same-key-1"}
    body = {"customer_id": c.id, "lines": [{"product_id": p.id, "quantity": 1}]}
    results = _race(app, 8, lambda i, cl: (lambda r: (r.status_code, r.get_json()))(
        cl.post("/api/v1/orders", json=body, headers=headers)))
    codes = sorted(code for code, _ in results)
    assert codes.count(201) == 1 and set(codes) <= {200, 201}, results
    assert len({b["id"] for _, b in results}) == 1
    from sqlalchemy import func, select

    from core.db import db
    from plugins.orders.models import Order

    assert db.session.scalar(select(func.count()).select_from(Order)) == 1


def test_concurrent_creation_never_duplicates_numbers(app, make_user, make_customer, make_product):
    rep = make_user("rep1", role="rep")
    c, p = make_customer(rep), make_product()
    headers = _token(app, rep)
    body = {"customer_id": c.id, "lines": [{"product_id": p.id, "quantity": 1}]}
    results = _race(app, 10, lambda i, cl: (lambda r: (r.status_code, r.get_json()))(
        cl.post("/api/v1/orders", json=body, headers=headers)))
    assert [code for code, _ in results] == [201] * 10
    numbers = sorted(b["number"] for _, b in results)
    assert len(set(numbers)) == 10
    seqs = [int(n.rsplit("-", 1)[1]) for n in numbers]
    assert seqs == list(range(seqs[0], seqs[0] + 10))


class TestWithInventory:
    @pytest.fixture
    def dovetail_plugins(self):
        return ["crm", "catalog", "inventory", "orders"]

    def test_twenty_clients_five_units(self, app, admin_api, make_customer, make_product):
        from core.db import db
        from plugins.inventory import services as inv

        p = make_product("99.00")
        wh = inv.create_warehouse({"code": "MAIN", "name": "主仓"})
        inv.receive(p.id, wh.id, 5)
        db.session.commit()
        c = make_customer()
        ids = []
        for _ in range(20):
            r = admin_api.post("/api/v1/orders", json={"customer_id": c.id,
                                                       "lines": [{"product_id": p.id, "quantity": 1}]})
            assert r.status_code == 201
            ids.append(r.json["id"])
        headers = {"Authorization": f"Bearer {admin_api.token}"}
        results = _race(app, 20, lambda i, cl: (lambda r: (r.status_code, r.get_json()))(
            cl.post(f"/api/v1/orders/{ids[i]}/transitions", json={"transition": "confirm"}, headers=headers)))
        codes = [code for code, _ in results]
        assert codes.count(200) == 5 and codes.count(409) == 15, codes
        for code, body in results:
            if code == 409:
                assert body["error"]["code"] == "conflict" and body["error"]["message"]
        db.session.expire_all()
        level = inv.stock_of(p.id, wh.id)
        assert (level.on_hand, level.reserved) == (5, 5)
        assert inv.check_ledger() == []
        statuses = [admin_api.get(f"/api/v1/orders/{i}").json["status"] for i in ids]
        assert statuses.count("confirmed") == 5 and statuses.count("draft") == 15
        # a cancelled confirmed order gives its unit back; a shipped one issues it
        confirmed = [i for i, s in zip(ids, statuses, strict=True) if s == "confirmed"]
        assert admin_api.post(f"/api/v1/orders/{confirmed[0]}/transitions",
                              json={"transition": "cancel"}).status_code == 200
        o2 = confirmed[1]
        admin_api.post(f"/api/v1/orders/{o2}/transitions", json={"transition": "pay", "inputs": {"method": "cash"}})
        r = admin_api.post(f"/api/v1/orders/{o2}/transitions", json={
            "transition": "ship", "inputs": {"carrier": "EMS", "tracking_no": "E9"}})
        assert r.status_code == 200, r.json
        db.session.expire_all()
        level = inv.stock_of(p.id, wh.id)
        assert (level.on_hand, level.reserved) == (4, 3)
        r = admin_api.post(f"/api/v1/orders/{o2}/transitions", json={"transition": "return", "comment": "x"})
        assert r.status_code == 200, r.json
        db.session.expire_all()
        level = inv.stock_of(p.id, wh.id)
        assert (level.on_hand, level.reserved) == (5, 3)
        assert inv.check_ledger() == []
