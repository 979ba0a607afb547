"""Customer custom fields through core.custom, with the customfields plugin enabled:
API validation and filters, import and export as custom.<key> columns."""

import csv
import io

import pytest
from sqlalchemy import select

from core.db import db
from plugins.crm.models import Customer

FIELDS = """
fields:
  customer:
    wechat_id:
      type: string
      label: {en: WeChat ID, zh_CN: 微信号}
      pattern: '[A-Za-z][-_A-Za-z0-9]{5,19}'
    vip_level:
      type: choice
      label: {en: VIP level, zh_CN: 会员等级}
      choices: [silver, gold, diamond]
"""


@pytest.fixture
def dovetail_plugins():
    return ["crm", "customfields"]


@pytest.fixture
def dovetail_config_dir(dovetail_config_dir):
    (dovetail_config_dir / "custom_fields.yaml").write_text(FIELDS, encoding="utf-8")
    return dovetail_config_dir


def test_api_validates_filters_and_exports_custom_fields(app, org, new_customer):
    r = org.rep1.post("/api/v1/customers", json={"name": "x", "custom": {"wechat_id": "1bad", "vip_level": "tin"}})
    assert r.status_code == 422
    assert set(r.json["error"]["fields"]["custom"]) == {"wechat_id", "vip_level"}
    a = new_customer(org.rep1, name="A", phone="13800000001", custom={"wechat_id": "zhang_wei", "vip_level": "gold"})
    assert a["custom"] == {"wechat_id": "zhang_wei", "vip_level": "gold"}
    new_customer(org.rep1, name="B", phone="13800000002", custom={"vip_level": "silver"})
    r = org.rep1.get("/api/v1/customers?custom.vip_level=gold")
    assert [i["name"] for i in r.json["items"]] == ["A"]
    r = org.rep1.get("/api/v1/customers?custom.wechat_id=' OR 1=1 --")
    assert r.status_code == 200 and r.json["items"] == []
    r = org.rep1.patch(f"/api/v1/customers/{a['id']}", json={"custom": {"vip_level": "diamond"}})
    assert r.json["custom"] == {"wechat_id": "zhang_wei", "vip_level": "diamond"}
    r = org.manager1.get("/api/v1/customers/export")
    rows = list(csv.DictReader(io.StringIO(r.get_data(as_text=True).lstrip("\ufeff"))))
    assert {row["name"]: (row["custom.wechat_id"], row["custom.vip_level"]) for row in rows} == {
        "A": ("zhang_wei", "diamond"), "B": ("", "silver")}


def test_import_custom_columns_with_row_errors(app, org, runner, tmp_path):
    f = tmp_path / "c.csv"
    f.write_text("name,phone,custom.wechat_id,custom.vip_level\n"
                 "甲,13800000001,jia_001,gold\n"
                 "乙,13800000002,9bad,gold\n"
                 "丙,13800000003,,platinum\n", encoding="utf-8")
    r = runner.invoke(["import", "customers", str(f)])
    assert r.exit_code == 2, r.output  # rows were rejected
    assert "3 rows read: 1 created" in r.stdout
    assert "line 3, column custom.wechat_id:" in r.stderr
    assert "line 4, column custom.vip_level:" in r.stderr
    c = db.session.scalar(select(Customer).where(Customer.name == "甲"))
    assert c.custom == {"wechat_id": "jia_001", "vip_level": "gold"}
