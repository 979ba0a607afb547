"""The core's plugin conformance suite, run for customfields."""

import pytest

from core.testing.conformance import PluginConformance


@pytest.fixture
def dovetail_plugins():
    return None  # disabling customfields is checked against every installed plugin that can load


@pytest.fixture
def dovetail_extra_plugins():
    return {}


class TestCustomfieldsConformance(PluginConformance):
    plugin = "customfields"


EVERY_TYPE = """
fields:
  customer:
    wechat_id: {type: string, label: {en: WeChat ID}, max_length: 20}
    birthday: {type: date, label: {en: Birthday}}
    vip: {type: boolean, label: {en: VIP}}
    hobbies: {type: multi_choice, label: {en: Hobbies}, choices: [tea, golf]}
    work_email: {type: email, label: {en: Work email}}
    office_phone: {type: phone, label: {en: Office phone}}
  order:
    delivery_window: {type: choice, label: {en: Delivery window}, choices: [morning, evening]}
    deliver_at: {type: datetime, label: {en: Deliver at}}
    gift_note: {type: text, label: {en: Gift note}}
  product:
    shelf_life_days: {type: integer, label: {en: Shelf life}, min: 1, max: 3650}
    weight_kg: {type: decimal, label: {en: Weight}, places: 3}
"""

VALUES = {
    "customers": {"wechat_id": "wx_li", "birthday": "1990-05-01", "vip": True, "hobbies": ["tea"],
                  "work_email": "li@example.cn", "office_phone": "+8613800138000"},
    "orders": {"delivery_window": "evening", "deliver_at": "2026-03-01T09:30:00", "gift_note": "生日快乐"},
    "products": {"shelf_life_days": 365, "weight_kg": "0.250"},
}


@pytest.mark.parametrize("who", ["admin", "rep"])
def test_answers_with_custom_fields_of_every_type_match_the_document(app, fields_file, who):
    """Custom fields of every type, with values on records, as the document describes them:
    the probe over crm, catalog and orders finds no difference as admin and as rep."""
    from core.cli_commands import populate_demo
    from core.testing.conformance import contract_problems

    populate_demo(app, 0.01, 3)
    fields_file(EVERY_TYPE)
    client = app.test_client()
    from core.testing.conformance import contract_users

    token = contract_users(app)["admin"]
    headers = {"Authorization": f"Bearer {token}"}
    for resource, values in VALUES.items():
        if resource == "orders":
            url = "/api/v1/orders?status=draft"
        else:
            url = f"/api/v1/{resource}"
        first = client.get(url, headers=headers).get_json()["items"][0]
        r = client.patch(f"/api/v1/{resource}/{first['id']}", json={"custom": values}, headers=headers)
        assert r.status_code == 200, r.get_json()
        assert r.get_json()["custom"] == values
    problems, stats = contract_problems(app, ["crm", "catalog", "orders", "customfields"], demo=False)
    problems = [p for p in problems if f"(as {who})" in p]
    assert not problems, "\n".join(problems)
    assert stats[who]["checked"] > 10
