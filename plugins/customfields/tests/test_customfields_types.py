"""Every field type validates like a built-in field, with exact messages."""

import pytest

FILE = """
fields:
  gadget:
    s:
      type: string
      label: {en: S}
      max_length: 8
      pattern: '[a-z]+\\d*'
    t:
      type: text
      label: {en: T}
      max_length: 20
    i:
      type: integer
      label: {en: I}
      min: 1
      max: 10
    d:
      type: decimal
      label: {en: D}
      min: 0
      max: 100
    b:
      type: boolean
      label: {en: B}
    dt:
      type: date
      label: {en: Date}
      min: 2026-01-01
    ts:
      type: datetime
      label: {en: Timestamp}
    c:
      type: choice
      label: {en: C}
      choices: [silver, gold]
    m:
      type: multi_choice
      label: {en: M}
      choices: [red, green, blue]
    e:
      type: email
      label: {en: E}
    p:
      type: phone
      label: {en: P}
    req:
      type: string
      label: {en: Required one}
      required: true
    dflt:
      type: integer
      label: {en: With default}
      default: 7
"""


@pytest.fixture
def api(admin_api, fields_file):
    fields_file(FILE)
    return admin_api


def post(api, custom):
    return api.post("/api/v1/cftest-gadgets", json={"name": "g", "custom": {"req": "x", **custom}})


@pytest.mark.parametrize("key,value,message", [
    ("s", 5, "Not a valid string."),
    ("s", "abcdefghi", "Longer than maximum length 8."),
    ("s", "ABC", "Does not match the required format."),
    ("s", "abc1x", "Does not match the required format."),  # whole value must match
    ("t", "x" * 21, "Longer than maximum length 20."),
    ("t", "a\x00b", "Must not contain NUL characters."),
    ("i", "ten", "Not a valid integer."),
    ("i", 11, "Must be greater than or equal to 1 and less than or equal to 10."),
    ("i", 0, "Must be greater than or equal to 1 and less than or equal to 10."),
    ("d", "abc", "Not a valid number."),
    ("d", "100.01", "Must be greater than or equal to 0 and less than or equal to 100."),
    ("d", "NaN", "Special numeric values (nan or infinity) are not permitted."),
    ("b", "maybe", "Not a valid boolean."),
    ("dt", "2026-13-01", "Not a valid date."),
    ("dt", "2025-12-31", "Must be greater than or equal to 2026-01-01."),
    ("ts", "yesterday", "Not a valid datetime."),
    ("c", "bronze", "Must be one of: silver, gold."),
    ("e", "not-an-email", "Not a valid email address."),
    ("p", "12345abc", "Not a valid phone number."),
    ("p", "1380013800", "Not a valid phone number."),  # 10 digits starting with 1: a broken mobile
    ("zz", "x", "Unknown field."),
])
def test_invalid_values_have_exact_messages(api, key, value, message):
    r = post(api, {key: value})
    assert r.status_code == 422
    assert r.json["error"]["fields"] == {"custom": {key: [message]}}


def test_multi_choice_reports_the_bad_item(api):
    r = post(api, {"m": ["red", "pink"]})
    assert r.status_code == 422
    assert r.json["error"]["fields"] == {"custom": {"m": {"1": ["Must be one of: red, green, blue."]}}}


def test_required_field_on_create_and_not_on_patch(api):
    r = api.post("/api/v1/cftest-gadgets", json={"name": "g", "custom": {}})
    assert r.status_code == 422
    assert r.json["error"]["fields"] == {"custom": {"req": ["Missing data for required field."]}}
    gid = post(api, {}).json["id"]
    r = api.patch(f"/api/v1/cftest-gadgets/{gid}", json={"custom": {"i": 3}})
    assert r.status_code == 200
    assert r.json["custom"]["i"] == 3 and r.json["custom"]["req"] == "x"


def test_valid_values_are_normalised_for_storage(api):
    r = post(api, {"s": "abc12", "t": "free text", "i": "4", "d": "12.345", "b": "true", "dt": "2026-03-01",
                   "ts": "2026-03-01T10:30:00+08:00", "c": "gold", "m": "red, blue,red", "e": "a@b.cn",
                   "p": "+86 138-0013-8000"})
    assert r.status_code == 201, r.json
    assert r.json["custom"] == {
        "s": "abc12", "t": "free text", "i": 4, "d": "12.35", "b": True, "dt": "2026-03-01",
        "ts": "2026-03-01T02:30:00", "c": "gold", "m": ["red", "blue"], "e": "a@b.cn", "p": "+8613800138000",
        "req": "x", "dflt": 7}


def test_default_applies_on_create_only(api):
    gid = post(api, {"dflt": 2}).json["id"]
    r = api.patch(f"/api/v1/cftest-gadgets/{gid}", json={"custom": {"s": "ab"}})
    assert r.json["custom"]["dflt"] == 2
    assert post(api, {}).json["custom"]["dflt"] == 7


def test_decimal_rounds_half_up_to_places(api):
    assert post(api, {"d": "0.005"}).json["custom"]["d"] == "0.01"
    assert post(api, {"d": 2.675}).json["custom"]["d"] == "2.68"
