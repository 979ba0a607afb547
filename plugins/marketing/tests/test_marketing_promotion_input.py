"""One schema carries every promotion rule: the API, the web form and Python callers load
through it; a change is checked on the promotion as it will be; the document states the rules."""

from __future__ import annotations

from core.db import db


def _promo(admin_api, **body):
    r = admin_api.post("/api/v1/promotions", json={"name": "减5", "kind": "amount", "amount": "5", **body})
    assert r.status_code == 201, r.json
    return r.json


def test_a_change_is_checked_on_the_whole_promotion_and_nothing_changes(admin_api, shop):
    p = _promo(admin_api)
    r = admin_api.patch(f"/api/v1/promotions/{p['id']}", json={"kind": "percent"})
    assert r.status_code == 422
    assert r.json["error"]["fields"] == {"percent": ["A percentage above 0 and at most 100 (10 = 10% off)."]}
    r = admin_api.patch(f"/api/v1/promotions/{p['id']}", json={"tiers": [{"threshold": "300", "discount": "400"}]})
    assert r.status_code == 422
    assert r.json["error"]["fields"]["tiers"] == ["Tier 1: the discount 400.00 is more than the threshold 300.00."]
    r = admin_api.patch(f"/api/v1/promotions/{p['id']}", json={"starts_on": "2026-05-02", "ends_on": "2026-05-01"})
    assert r.status_code == 422 and r.json["error"]["fields"] == {"ends_on": ["The end date is before the start date."]}
    assert admin_api.get(f"/api/v1/promotions/{p['id']}").json == p
    r = admin_api.patch(f"/api/v1/promotions/{p['id']}", json={"kind": "percent", "percent": "12.5"})
    assert r.status_code == 200 and r.json["kind"] == "percent" and r.json["percent"] == "12.50"


def test_field_rules_are_field_specific(admin_api, shop):
    r = admin_api.post("/api/v1/promotions", json={
        "name": " ", "kind": "amount", "amount": "abc", "priority": 1001, "customer_tags": ["x" * 41],
        "tiers": [{"threshold": "300"}]})
    assert r.status_code == 422
    fields = r.json["error"]["fields"]
    assert fields["amount"] == ["Enter an amount such as 30 or 29.90."]
    assert set(fields) == {"amount", "priority", "customer_tags", "tiers"}  # "name" waits for the fields
    assert fields["tiers"] == {"0": {"discount": ["Missing data for required field."]}}
    r = admin_api.post("/api/v1/promotions", json={"name": " ", "kind": "amount", "amount": "1"})
    assert r.status_code == 422 and r.json["error"]["fields"] == {"name": ["1 to 120 characters."]}


def test_loaded_and_plain_input_save_the_same_promotion(app, shop):
    from plugins.marketing import services
    from plugins.marketing.schemas import PromotionIn

    raw = {"name": " 满减 ", "kind": "tiered", "tiers": "500:60, 300:30", "customer_tags": [" 老客户", "复购", "复购"],
           "product_ids": [shop["tea"].id, shop["mask"].id, shop["tea"].id]}
    plain = services.save_promotion(None, raw)
    loaded = services.save_promotion(None, PromotionIn().load({**raw, "tiers": [
        {"threshold": "500", "discount": "60"}, {"threshold": "300", "discount": "30"}]}))
    db.session.commit()
    for p in (plain, loaded):
        assert p.name == "满减"
        assert p.tiers == [{"threshold": "300.00", "discount": "30.00"}, {"threshold": "500.00", "discount": "60.00"}]
        assert p.customer_tags == ["复购", "老客户"]
        assert p.product_ids == sorted({shop["tea"].id, shop["mask"].id})


def test_the_document_states_the_rules(admin_api):
    schemas = admin_api.get("/api/v1/openapi.json").json["components"]["schemas"]
    promo = schemas["PromotionIn"]["properties"]
    assert promo["priority"]["minimum"] == -1000 and promo["priority"]["maximum"] == 1000
    assert promo["name"]["maxLength"] == 120 and promo["percent"]["maximum"] == 100
    assert set(schemas["PromotionIn"]["required"]) == {"name", "kind"}
    assert set(schemas["Tier"]["required"]) == {"threshold", "discount"}


def test_the_web_form_loads_through_the_same_schema(client, make_user, shop):
    from plugins.marketing.models import Promotion

    user = make_user("webadmin", role="admin")
    assert client.post("/login", data={"username": user.username, "password": "password123"}).status_code == 302
    r = client.post("/marketing/promotions/new", data={"name": "满减", "kind": "tiered", "scope": "order",
                                                       "tiers": "300-30", "priority": "0", "min_spend": "0"})
    assert r.status_code == 422
    assert "Write each tier as threshold:discount, e.g. 300:30 (got &#39;300-30&#39;)." in r.get_data(as_text=True)
    r = client.post("/marketing/promotions/new", data={"name": "满减", "kind": "tiered", "scope": "lines",
                                                       "tiers": "300:30", "priority": "0", "min_spend": "0"})
    assert r.status_code == 422
    assert "满减 and gift promotions work on the eligible subtotal (scope order)." in r.get_data(as_text=True)
    assert db.session.query(Promotion).count() == 0
