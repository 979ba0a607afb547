"""Duplicate detection and merge (rows move, hook called, audited, all-or-nothing)."""

import types

import pytest
from sqlalchemy import select

from core import hookimpl
from core.db import db
from core.errors import Conflict
from core.models import AuditEntry
from core.registry import PluginManifest
from plugins.crm.history import record_order
from plugins.crm.models import Activity, Contact, Customer, Purchase


def report(_hook: str, returned_amount=None, **order):
    """What crm's order_created / order_status_changed / order_returned hooks record."""
    record_order(order, returned_amount=returned_amount)

CALLS = []


def _spy_module():
    mod = types.ModuleType("crm_merge_spy")

    @hookimpl
    def plugin_manifest():
        return PluginManifest(name="mergespy", version="0.1", depends=("crm",))

    @hookimpl(optionalhook=True)
    def customer_merged(survivor_id, merged_id):
        CALLS.append((survivor_id, merged_id))
        if db.session.get(Customer, merged_id).notes == "refuse":
            raise Conflict("Orders of this customer are locked by an audit.")

    mod.plugin_manifest = plugin_manifest
    mod.customer_merged = customer_merged
    return mod


@pytest.fixture
def dovetail_extra_plugins():
    return {"mergespy": _spy_module()}


@pytest.fixture
def dovetail_plugins():
    return ["crm", "mergespy"]


@pytest.fixture(autouse=True)
def _reset():
    CALLS.clear()


def test_duplicates_on_any_phone_and_email(app, org, new_customer):
    a = new_customer(org.rep1, name="张伟", phone="13800000001", email="ZW@example.cn")
    b = new_customer(org.rep1, name="张伟2", phone="+86 138 0000 0002", phones=["13800000001"])
    c = new_customer(org.rep1, name="张伟3", phone="13800000003", email="zw@example.cn")
    new_customer(org.rep1, name="other", phone="13800000009")
    r = org.rep1.get("/api/v1/customers/duplicates")
    assert r.status_code == 200
    groups = [(g["kind"], g["value"], g["customer_ids"]) for g in r.json["items"]]
    assert groups == [("email", "zw@example.cn", sorted([a["id"], c["id"]])),
                      ("phone", "+8613800000001", sorted([a["id"], b["id"]]))]
    assert [x["name"] for x in r.json["items"][1]["customers"]] == ["张伟", "张伟2"]
    r = org.marketer.get("/api/v1/customers/duplicates")
    assert [g["value"] for g in r.json["items"]] == ["z***@example.cn", "+86 138****0001"]


def test_merge_moves_everything_and_is_audited(app, org, new_customer):
    s = new_customer(org.rep1, name="张伟", phone="13800000001", tags=["复购"])
    m = new_customer(org.rep1, name="张伟(重复)", phone="13800000002", email="zw@example.cn",
                     region="上海", tags=["团购"], external_code="OLD-1", notes="老系统导入")
    org.rep1.post(f"/api/v1/customers/{m['id']}/contacts", json={"name": "张太太"})
    org.rep1.post(f"/api/v1/customers/{m['id']}/activities", json={"subject": "回访"})
    report("order_created", order_id=77, number="SO-77", customer_id=m["id"], status="paid", total="88.80",
         discount_total="0", currency="CNY", placed_at="2026-05-01T08:00:00", lines=[], promotion_ids=[])
    db.session.commit()

    r = org.manager1.post("/api/v1/customers/merge", json={"survivor_id": s["id"], "merged_ids": [m["id"]]})
    assert r.status_code == 200, r.json
    body = r.json
    assert body["phones"] == ["+8613800000001", "+8613800000002"]
    assert body["email"] == "zw@example.cn" and body["region"] == "上海"
    assert body["tags"] == ["复购", "团购"]
    assert body["external_code"] == "OLD-1" and body["notes"] == "老系统导入"
    assert body["order_count"] == 1 and body["total_spent"] == "88.80"
    assert CALLS == [(s["id"], m["id"])]
    assert org.manager1.get(f"/api/v1/customers/{m['id']}").status_code == 404
    assert db.session.scalar(select(Contact.customer_id)) == s["id"]
    assert db.session.scalar(select(Activity.customer_id)) == s["id"]
    assert db.session.scalar(select(Purchase.customer_id)) == s["id"]
    notes = db.session.scalars(select(AuditEntry.action).where(AuditEntry.entity == "crm_customer")).all()
    assert "merge" in notes and "delete" in notes
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "merge"))
    assert entry.entity_id == str(s["id"]) and entry.before["merged_id"] == m["id"]
    assert entry.actor == "manager1"


def test_merge_refused_by_a_hook_rolls_everything_back(app, org, new_customer):
    s = new_customer(org.rep1, name="A", phone="13800000001")
    m = new_customer(org.rep1, name="B", phone="13800000002", notes="refuse")
    org.rep1.post(f"/api/v1/customers/{m['id']}/contacts", json={"name": "联系人"})
    r = org.manager1.post("/api/v1/customers/merge", json={"survivor_id": s["id"], "merged_ids": [m["id"]]})
    assert r.status_code == 409 and "locked" in r.json["error"]["message"]
    assert org.manager1.get(f"/api/v1/customers/{m['id']}").status_code == 200
    assert db.session.scalar(select(Contact.customer_id)) == m["id"]
    assert org.manager1.get(f"/api/v1/customers/{s['id']}").json["phones"] == ["+8613800000001"]


def test_merge_validation(app, org, new_customer):
    s = new_customer(org.rep1)
    r = org.manager1.post("/api/v1/customers/merge", json={"survivor_id": s["id"], "merged_ids": [s["id"]]})
    assert r.status_code == 422 and "merged_ids" in r.json["error"]["fields"]
    r = org.manager1.post("/api/v1/customers/merge", json={"survivor_id": s["id"], "merged_ids": []})
    assert r.status_code == 422
    r = org.manager1.post("/api/v1/customers/merge", json={"survivor_id": s["id"], "merged_ids": [999]})
    assert r.status_code == 404
