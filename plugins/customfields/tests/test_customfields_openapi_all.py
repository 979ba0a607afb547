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


def test_shipped_file_is_valid_and_its_commented_example_too(app, runner, fields_file):
    from pathlib import Path

    shipped = (Path(__file__).resolve().parents[3] / "config" / "custom_fields.yaml").read_text(encoding="utf-8")
    fields_file(shipped)
    result = runner.invoke(["fields", "check"])
    assert result.exit_code == 0 and "custom_fields.yaml: 0 field(s), 0 hidden" in result.output, result.output
    lines = shipped.splitlines()
    start = lines.index("# fields:")
    example = "\n".join(ln[2:] for ln in lines[start:] if ln.startswith("# "))
    fields_file(example + "\n")
    result = runner.invoke(["fields", "check"])
    assert result.exit_code == 0, result.output
    out = runner.invoke(["fields", "list"]).output.splitlines()
    assert [ln.split("\t")[0] for ln in out] == ["customer.vip_level", "customer.wechat_id",
                                                 "order.delivery_window", "product.shelf_life_days"]
