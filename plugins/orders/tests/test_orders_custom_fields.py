"""Order custom fields (customfields plugin): validated on create/patch, filtered in lists, exported."""

from __future__ import annotations

import pytest


@pytest.fixture
def dovetail_plugins():
    return ["crm", "catalog", "orders", "customfields"]


@pytest.fixture
def dovetail_config_dir(dovetail_config_dir):
    (dovetail_config_dir / "custom_fields.yaml").write_text(
        "fields:\n  order:\n    delivery_window:\n      type: choice\n"
        "      label: {en: Delivery window, zh_CN: 送货时段}\n      choices: [morning, afternoon, evening]\n",
        encoding="utf-8")
    return dovetail_config_dir


def test_custom_values_validated_filtered_and_patched(admin_api, make_customer, make_product):
    c, p = make_customer(), make_product()
    base = {"customer_id": c.id, "lines": [{"product_id": p.id, "quantity": 1}]}
    bad = admin_api.post("/api/v1/orders", json={**base, "custom": {"delivery_window": "midnight"}})
    assert bad.status_code == 422 and "delivery_window" in bad.json["error"]["fields"]["custom"]
    ok = admin_api.post("/api/v1/orders", json={**base, "custom": {"delivery_window": "morning"}})
    assert ok.status_code == 201 and ok.json["custom"] == {"delivery_window": "morning"}
    other = admin_api.post("/api/v1/orders", json=base).json
    assert admin_api.get("/api/v1/orders?custom.delivery_window=morning").json["total"] == 1
    assert admin_api.get("/api/v1/orders?custom.delivery_window=x' OR '1'='1").json["total"] == 0
    r = admin_api.patch(f"/api/v1/orders/{other['id']}", json={"custom": {"delivery_window": "evening"}})
    assert r.status_code == 200 and r.json["custom"]["delivery_window"] == "evening"
    assert admin_api.get("/api/v1/orders?custom.delivery_window=evening").json["total"] == 1


def test_import_and_export_carry_custom_fields(runner, tmp_path, make_customer, make_product, admin_api):
    make_customer(external_code="C1")
    make_product(sku="TEA")
    f = tmp_path / "o.csv"
    f.write_text("external_number,order_date,status,customer,sku,quantity,unit_price,custom.delivery_window\n"
                 "A1,2025-01-02,completed,C1,TEA,1,10,evening\n"
                 "A2,2025-01-02,completed,C1,TEA,1,10,midnight\n", encoding="utf-8")
    res = runner.invoke(["import", "orders", str(f)])
    assert res.exit_code == 2 and "line 3, column custom.delivery_window" in res.output
    assert admin_api.get("/api/v1/orders?custom.delivery_window=evening").json["total"] == 1
    out = tmp_path / "x.csv"
    assert runner.invoke(["export", "orders", "-o", str(out)]).exit_code == 0
    lines = out.read_text(encoding="utf-8-sig").splitlines()
    assert lines[0].endswith(",custom.delivery_window") and lines[1].endswith(",evening")
