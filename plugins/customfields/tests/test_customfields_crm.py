"""Acceptance 1 and 2 end to end on /api/v1/customers (crm + customfields, no restart)."""

import csv
import io

import pytest
from sqlalchemy import func, select

NO_FIELDS = "# acme\nfields: {}\n"
WITH_FIELDS = """# acme
fields:
  customer:
    wechat_id:
      type: string
      label: {en: WeChat ID, zh_CN: 微信号}
      pattern: '[A-Za-z][-_A-Za-z0-9]{5,19}'
    vip_level:
      type: choice
      label: {en: VIP level, zh_CN: 会员等级}
      choices:
        - {value: silver, label: {en: Silver, zh_CN: 银卡}}
        - {value: gold, label: {en: Gold, zh_CN: 金卡}}
"""


@pytest.fixture
def dovetail_plugins():
    return ["crm", "customfields"]


def customer(client, **kw):
    body = {"name": "张三", "phone": "13800138000", **kw}
    return client.post("/api/v1/customers", json=body)


def test_admin_adds_fields_in_yaml_and_the_customer_api_uses_them_at_once(admin_api, api_client, fields_file):
    fields_file(NO_FIELDS)
    r = customer(admin_api, custom={"wechat_id": "zhang_san88"})
    assert r.status_code == 422
    assert r.json["error"]["fields"] == {"custom": {"wechat_id": ["Unknown field."]}}

    fields_file(WITH_FIELDS)  # no restart from here on
    # accepts
    r = customer(admin_api, custom={"wechat_id": "zhang_san88", "vip_level": "gold"})
    assert r.status_code == 201, r.json
    assert r.json["custom"] == {"wechat_id": "zhang_san88", "vip_level": "gold"}
    cid = r.json["id"]
    assert customer(admin_api, name="李四", phone="13900139000",
                    custom={"wechat_id": "lisi_2026", "vip_level": "silver"}).status_code == 201
    # validates
    r = customer(admin_api, name="王五", phone="13700137000", custom={"wechat_id": "9bad", "vip_level": "bronze"})
    assert r.status_code == 422
    assert r.json["error"]["fields"] == {"custom": {"wechat_id": ["Does not match the required format."],
                                                    "vip_level": ["Must be one of: silver, gold."]}}
    r = admin_api.patch(f"/api/v1/customers/{cid}", json={"custom": {"vip_level": "silver"}})
    assert r.status_code == 200, r.json
    assert r.json["custom"] == {"wechat_id": "zhang_san88", "vip_level": "silver"}
    # filters
    r = admin_api.get("/api/v1/customers?custom.wechat_id=zhang_san88")
    assert [c["id"] for c in r.json["items"]] == [cid]
    assert admin_api.get("/api/v1/customers?custom.vip_level=silver").json["total"] == 2
    assert admin_api.get("/api/v1/customers?custom.vip_level=gold").json["total"] == 0
    # exports
    text = admin_api.get("/api/v1/customers/export?format=csv").get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {(r["name"], r["custom.wechat_id"], r["custom.vip_level"]) for r in rows} == {
        ("张三", "zhang_san88", "silver"), ("李四", "lisi_2026", "silver")}
    # OpenAPI shows them
    doc = admin_api.get("/api/v1/openapi.json").json
    schemas = doc["components"]["schemas"]
    props = schemas["CustomCustomer"]["properties"]
    assert props["wechat_id"]["type"] == "string" and "pattern" in props["wechat_id"]
    assert props["vip_level"]["enum"] == ["silver", "gold"]
    refs = {name for name, s in schemas.items()
            if s.get("properties", {}).get("custom") == {"$ref": "#/components/schemas/CustomCustomer"}}
    assert {"CustomerIn", "CustomerOut"} <= refs


@pytest.mark.parametrize("value", ["' OR 1=1 --", "%", "_", "\\", "\"; DROP TABLE crm_customer; --",
                                   "zhang%", "zhang_san8_", "\x00"])
def test_sql_metacharacters_on_customer_filters(admin_api, fields_file, value):
    from core.db import db
    from plugins.crm.models import Customer

    fields_file(WITH_FIELDS)
    assert customer(admin_api, custom={"wechat_id": "zhang_san88", "vip_level": "gold"}).status_code == 201
    for key in ("wechat_id", "vip_level"):
        r = admin_api.get("/api/v1/customers", query_string={f"custom.{key}": value})
        assert r.status_code == 200, r.json
        assert r.json["items"] == [] and r.json["total"] == 0
    assert db.session.scalar(select(func.count()).select_from(Customer)) == 1


def test_custom_filters_keep_record_scope(api_client, fields_file):
    fields_file(WITH_FIELDS)
    rep1, rep2 = api_client(role="rep", username="rep1"), api_client(role="rep", username="rep2")
    assert customer(rep1, custom={"vip_level": "gold"}).status_code == 201
    assert customer(rep2, name="李四", phone="13900139000", custom={"vip_level": "gold"}).status_code == 201
    assert rep1.get("/api/v1/customers?custom.vip_level=gold").json["total"] == 1


def test_import_and_cli_export_carry_custom_fields(app, runner, fields_file, tmp_path, make_user):
    from core.db import db
    from plugins.crm.models import Customer

    fields_file(WITH_FIELDS)
    make_user("admin", role="admin")
    src = tmp_path / "in.csv"
    src.write_text("name,phone,custom.wechat_id,custom.vip_level\n"
                   "张三,13800138000,zhang_san88,gold\n"
                   "李四,13900139000,9bad,gold\n"
                   "王五,13700137000,wangwu_01,bronze\n", encoding="utf-8")
    result = runner.invoke(["import", "customers", str(src)])
    assert "3 rows read: 1 created, 0 updated, 0 unchanged, 2 rejected." in result.output
    db.session.expire_all()
    rows = db.session.scalars(select(Customer)).all()
    assert [(c.name, c.custom) for c in rows] == [("张三", {"wechat_id": "zhang_san88", "vip_level": "gold"})]
    assert "line 3, column custom.wechat_id: Does not match the required format." in result.output
    assert "line 4, column custom.vip_level: Must be one of: silver, gold." in result.output
    out = tmp_path / "out.csv"
    result = runner.invoke(["export", "customers", "-o", str(out)])
    assert result.exit_code == 0, result.output
    exported = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert [(r["custom.wechat_id"], r["custom.vip_level"]) for r in exported] == [("zhang_san88", "gold")]
