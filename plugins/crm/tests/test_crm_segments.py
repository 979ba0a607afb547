"""Segments: saved filters resolving to customer lists; the public segment_customer_ids."""

from datetime import datetime
from decimal import Decimal

from core.db import db
from plugins.crm.models import Customer
from plugins.crm.services import segment_customer_ids


def _spend(customer_id, total, last):
    c = db.session.get(Customer, customer_id)
    c.total_spent, c.order_count = Decimal(total), 1 if Decimal(total) else 0
    c.last_purchase_at = datetime.fromisoformat(last) if last else None
    db.session.commit()


def test_segment_filters_resolve(app, org, new_customer):
    a = new_customer(org.rep1, name="A", phone="13800000001", tier="gold", tags=["复购"], region="上海",
                     consent_marketing=True)["id"]
    b = new_customer(org.rep1, name="B", phone="13800000002", tier="vip", tags=["团购"], region="广东")["id"]
    c = new_customer(org.rep2, name="C", phone="13800000003", tier="standard", tags=["复购", "礼品"],
                     region="上海")["id"]
    _spend(a, "5200.00", "2026-01-10T00:00:00")
    _spend(b, "800.50", "2026-06-01T00:00:00")
    _spend(c, "0", None)

    def members(filters):
        r = org.manager1.post("/api/v1/segments", json={"name": str(filters), "filters": filters})
        assert r.status_code == 201, r.json
        ids = sorted(db.session.scalars(segment_customer_ids(r.json["id"])).all())
        listed = org.manager1.get(f"/api/v1/segments/{r.json['id']}/customers").json
        assert sorted(i["id"] for i in listed["items"]) == ids  # manager1 sees the whole East team
        assert r.json["customer_count"] == len(ids)
        return ids

    assert members({"tier": ["gold", "vip"]}) == sorted([a, b])
    assert members({"tags": ["复购"]}) == sorted([a, c])
    assert members({"tags": ["礼品", "团购"]}) == sorted([b, c])
    assert members({"region": ["上海"], "tags": ["复购"]}) == sorted([a, c])
    assert members({"min_spend": "800.50"}) == sorted([a, b])
    assert members({"min_spend": "800.51", "max_spend": "6000"}) == [a]
    assert members({"last_purchase_before": "2026-03-01"}) == [a]
    assert members({"last_purchase_after": "2026-03-01"}) == [b]
    assert members({"consent_marketing": True}) == [a]
    assert members({"min_orders": 1}) == sorted([a, b])
    assert members({}) == sorted([a, b, c])


def test_segment_validation_and_permissions(app, org):
    r = org.manager1.post("/api/v1/segments", json={"name": "x", "filters": {
        "min_spend": "100", "max_spend": "50", "last_purchase_after": "2026-05-01",
        "last_purchase_before": "2026-01-01", "colour": "red"}})
    assert r.status_code == 422
    assert r.json["error"]["fields"]["filters"] == {"colour": ["Unknown field."]}
    r = org.manager1.post("/api/v1/segments", json={"name": "x", "filters": {
        "last_purchase_after": "2026-05-01", "last_purchase_before": "2026-01-01"}})
    assert r.json["error"]["fields"]["filters"] == {
        "last_purchase_before": ["Must not be before last_purchase_after."]}
    r = org.manager1.post("/api/v1/segments", json={"name": "x", "filters": {"min_spend": "100", "max_spend": "50"}})
    assert r.json["error"]["fields"]["filters"] == {"max_spend": ["Must not be below min_spend."]}
    assert org.rep1.post("/api/v1/segments", json={"name": "x"}).status_code == 403
    r = org.manager1.post("/api/v1/segments", json={"name": "dup"})
    assert r.status_code == 201
    seg = r.json["id"]
    r = org.manager1.post("/api/v1/segments", json={"name": "dup"})
    assert r.status_code == 409 and r.json["error"]["fields"] == {"name": ["Already used."]}
    r = org.manager1.patch(f"/api/v1/segments/{seg}", json={"filters": {"tier": ["gold"]}})
    assert r.status_code == 200 and r.json["filters"] == {"tier": ["gold"]} and r.json["name"] == "dup"
    assert org.rep1.get(f"/api/v1/segments/{seg}").status_code == 200  # reps may read segments
    assert org.rep1.delete(f"/api/v1/segments/{seg}").status_code == 403
    assert org.manager1.delete(f"/api/v1/segments/{seg}").status_code == 204
    assert org.manager1.get(f"/api/v1/segments/{seg}").status_code == 404
