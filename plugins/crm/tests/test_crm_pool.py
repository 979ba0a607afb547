"""The public customer pool: listing (masked), atomic claims, the daily limit, release,
and the automatic return of neglected customers (audited)."""

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from core.db import db, utcnow
from core.models import AuditEntry
from plugins.crm.models import Customer, PoolLog


@pytest.fixture
def dovetail_settings():
    return {"crm": {"pool_claim_limit": 3, "pool_return_days": 30}}


@pytest.fixture
def pooled(org, new_customer):
    """Four customers in the pool (created by the admin with owner_id null)."""
    return [new_customer(org.admin, name=f"公海{i}", phone=f"1380000000{i}", owner_id=None)["id"]
            for i in range(4)]


def test_pool_list_is_masked_and_claim_moves_ownership(app, org, pooled):
    r = org.rep1.get("/api/v1/customers/pool")
    assert r.status_code == 200 and r.json["total"] == 4
    assert {i["phone"] for i in r.json["items"]} == {f"+86 138****000{i}" for i in range(4)}
    assert org.rep1.get(f"/api/v1/customers/{pooled[0]}").status_code == 404  # not yours yet
    r = org.rep1.post("/api/v1/customers/pool/claim", json={"customer_ids": [pooled[0]]})
    assert r.status_code == 200, r.json
    assert r.json == {"claimed": [pooled[0]], "unavailable": [], "claimed_today": 1, "daily_limit": 3}
    c = org.rep1.get(f"/api/v1/customers/{pooled[0]}").json
    assert c["owner_id"] == org.users["rep1"].id and c["phone"] == "+8613800000000" and c["owned_since"]
    assert org.rep1.get("/api/v1/customers/pool").json["total"] == 3
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "pool_claim"))
    assert entry.entity_id == str(pooled[0]) and entry.actor == "rep1"
    r = org.rep2.post("/api/v1/customers/pool/claim", json={"customer_ids": [pooled[0]]})
    assert r.status_code == 409 and "no longer in the pool" in r.json["error"]["message"]


def test_daily_claim_limit(app, org, pooled):
    r = org.rep1.post("/api/v1/customers/pool/claim", json={"customer_ids": pooled})
    assert r.status_code == 409
    assert r.json["error"]["message"] == "You may claim 3 customers per day and have 3 left today."
    assert org.rep1.post("/api/v1/customers/pool/claim", json={"customer_ids": pooled[:2]}).status_code == 200
    r = org.rep1.post("/api/v1/customers/pool/claim", json={"customer_ids": pooled[2:]})
    assert r.status_code == 409 and r.json["error"]["fields"] == {"customer_ids": ["At most 1 more today."]}
    assert org.rep1.post("/api/v1/customers/pool/claim", json={"customer_ids": pooled[2:3]}).status_code == 200
    assert org.rep2.post("/api/v1/customers/pool/claim", json={"customer_ids": pooled[3:]}).status_code == 200


def test_pool_needs_permission(app, org, pooled):
    assert org.marketer.get("/api/v1/customers/pool").status_code == 403
    assert org.analyst.post("/api/v1/customers/pool/claim", json={"customer_ids": pooled}).status_code == 403


def test_two_reps_racing_for_one_customer_exactly_one_wins(app, org, pooled):
    target = pooled[0]
    barrier = threading.Barrier(4)
    results = {}
    clients = {name: getattr(org, name) for name in ("rep1", "rep2", "rep3", "manager1")}

    def claim(name):
        client = app.test_client()
        token = clients[name].token
        barrier.wait()
        r = client.post("/api/v1/customers/pool/claim", json={"customer_ids": [target]},
                        headers={"Authorization": f"Bearer {token}"})
        results[name] = r.status_code

    threads = [threading.Thread(target=claim, args=(n,)) for n in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results.values()) == [200, 409, 409, 409], results
    winner = next(n for n, s in results.items() if s == 200)
    db.session.expire_all()
    assert db.session.get(Customer, target).owner_id == org.users[winner].id
    logs = db.session.scalars(select(PoolLog).where(PoolLog.customer_id == target)).all()
    assert [(log.action, log.user_id) for log in logs] == [("claim", org.users[winner].id)]


def test_one_rep_racing_itself_cannot_exceed_the_limit(app, org, pooled):
    barrier = threading.Barrier(4)
    codes = []

    def claim(cid):
        client = app.test_client()
        barrier.wait()
        r = client.post("/api/v1/customers/pool/claim", json={"customer_ids": [cid]},
                        headers={"Authorization": f"Bearer {org.rep1.token}"})
        codes.append(r.status_code)

    threads = [threading.Thread(target=claim, args=(cid,)) for cid in pooled]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [200, 200, 200, 409]
    db.session.expire_all()
    owned = db.session.scalars(select(Customer.id).where(Customer.owner_id == org.users["rep1"].id)).all()
    assert len(owned) == 3


def _age(customer_id, days, contact_days=None):
    c = db.session.get(Customer, customer_id)
    c.owned_since = utcnow() - timedelta(days=days)
    c.last_contact_at = utcnow() - timedelta(days=contact_days) if contact_days is not None else None
    db.session.commit()


def test_recycle_command_returns_neglected_customers_with_audit(app, org, new_customer, runner):
    stale = new_customer(org.rep1, name="久未跟进", phone="13800000011")["id"]
    contacted = new_customer(org.rep1, name="刚联系", phone="13800000012")["id"]
    fresh = new_customer(org.rep1, name="新分配", phone="13800000013")["id"]
    _age(stale, 40, contact_days=31)
    _age(contacted, 40, contact_days=2)
    _age(fresh, 5)
    r = runner.invoke(["crm", "recycle", "--dry-run"])
    assert r.exit_code == 0 and f"customer {stale} " in r.output and "1 customers would return" in r.output
    assert db.session.get(Customer, stale).owner_id is not None
    r = runner.invoke(["crm", "recycle"])
    assert r.exit_code == 0, r.output
    assert "1 customers returned to the pool (no follow-up for 30 days)." in r.output
    db.session.expire_all()
    assert db.session.get(Customer, stale).owner_id is None
    assert db.session.get(Customer, stale).pool_entered_at is not None
    assert db.session.get(Customer, contacted).owner_id == org.users["rep1"].id
    assert db.session.get(Customer, fresh).owner_id == org.users["rep1"].id
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "pool_return"))
    assert entry.entity_id == str(stale) and entry.before == {"owner_id": org.users["rep1"].id}
    assert "no follow-up for 30 days" in entry.note
    r = runner.invoke(["crm", "recycle", "--days", "3"])
    assert "1 customers returned" in r.output  # 'fresh' (5 days, no contact); 'contacted' stays
    db.session.expire_all()
    assert db.session.get(Customer, fresh).owner_id is None
    assert db.session.get(Customer, contacted).owner_id is not None


def test_listing_the_pool_runs_the_automatic_check(app, org, new_customer):
    stale = new_customer(org.rep1, name="久未跟进", phone="13800000011")["id"]
    org.rep1.post(f"/api/v1/customers/{stale}/activities", json={"subject": "open task", "due_date": "2030-01-01"})
    _age(stale, 45, contact_days=45)
    r = org.rep2.get("/api/v1/customers/pool")
    assert [i["id"] for i in r.json["items"]] == [stale]
    assert org.rep1.get(f"/api/v1/customers/{stale}").status_code == 404
    r = org.rep2.post("/api/v1/customers/pool/claim", json={"customer_ids": [stale]})
    assert r.status_code == 200
    # the open task follows the customer to its new owner
    assert [t["subject"] for t in org.rep2.get("/api/v1/activities/due?date=2030-01-01").json["items"]] == ["open task"]


def test_release_by_owner_or_manager(app, org, new_customer):
    c = new_customer(org.rep1)["id"]
    r = org.rep1.post(f"/api/v1/customers/{c}/release", json={"reason": "号码空号"})
    assert r.status_code == 200 and r.json["owner_id"] is None
    r = org.rep1.post(f"/api/v1/customers/{c}/release", json={})
    assert r.status_code == 404  # no longer yours
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "pool_release"))
    assert entry.note.endswith("号码空号")
    d = new_customer(org.rep2, phone="13900000000")["id"]
    assert org.manager1.post(f"/api/v1/customers/{d}/release", json={}).status_code == 200
