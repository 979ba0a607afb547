"""The OpenAPI convention against the real business plugins: Custom<Model> per entity,
referenced from every schema named after the model that has a ``custom`` property."""

import pytest

FILE = """
fields:
  customer:
    wechat_id: {type: string, label: {en: WeChat ID}, max_length: 20}
  order:
    delivery_window: {type: choice, label: {en: Delivery window}, choices: [morning, evening]}
  product:
    shelf_life_days: {type: integer, label: {en: Shelf life}, min: 1, max: 3650}
"""


@pytest.fixture
def dovetail_plugins():
    return ["crm", "catalog", "orders", "customfields"]


def test_every_entity_schema_points_at_its_custom_fields(admin_api, fields_file):
    fields_file(FILE)
    schemas = admin_api.get("/api/v1/openapi.json").json["components"]["schemas"]
    assert schemas["CustomCustomer"]["properties"]["wechat_id"] == {
        "type": "string", "maxLength": 20, "title": "WeChat ID", "x-label": {"en": "WeChat ID"}}
    assert schemas["CustomOrder"]["properties"]["delivery_window"]["enum"] == ["morning", "evening"]
    assert schemas["CustomProduct"]["properties"]["shelf_life_days"]["maximum"] == 3650
    for model in ("Customer", "Order", "Product"):
        ref = {"$ref": f"#/components/schemas/Custom{model}"}
        named = [n for n, s in schemas.items() if n.startswith(model) and "custom" in s.get("properties", {})]
        assert named, model
        assert all(schemas[n]["properties"]["custom"] == ref for n in named)
