"""``custom.<key>`` filters: equality, ranges, multi-choice, and SQL metacharacters."""

import pytest
from sqlalchemy import func, select

FILE = """
fields:
  gadget:
    wechat_id:
      type: string
      label: {en: WeChat ID}
    points:
      type: integer
      label: {en: Points}
    price:
      type: decimal
      label: {en: Price}
    since:
      type: date
      label: {en: Since}
    seen_at:
      type: datetime
      label: {en: Seen at}
    vip:
      type: boolean
      label: {en: VIP}
    level:
      type: choice
      label: {en: Level}
      choices: [silver, gold]
    tags:
      type: multi_choice
      label: {en: Tags}
      choices: [a, b, c]
"""

ROWS = [
    {"wechat_id": "alice_01", "points": 5, "price": "10.50", "since": "2026-01-05", "seen_at": "2026-01-05T08:00:00",
     "vip": True, "level": "gold", "tags": ["a", "b"]},
    {"wechat_id": "bob_02", "points": 50, "price": "99.99", "since": "2026-02-10", "seen_at": "2026-02-10T20:00:00",
     "vip": False, "level": "silver", "tags": ["c"]},
    {"wechat_id": "carol%_03", "points": 500, "price": "100.00", "since": "2026-03-15",
     "seen_at": "2026-03-15T12:00:00", "level": "gold", "tags": ["b"]},
    {},
]


@pytest.fixture
def api(admin_api, fields_file):
    fields_file(FILE)
    for i, custom in enumerate(ROWS):
        r = admin_api.post("/api/v1/cftest-gadgets", json={"name": f"g{i}", "custom": custom})
        assert r.status_code == 201, r.json
    return admin_api


def names(api, query):
    r = api.get("/api/v1/cftest-gadgets?" + query)
    assert r.status_code == 200, r.json
    return sorted(item["name"] for item in r.json["items"])


@pytest.mark.parametrize("query,expected", [
    ("custom.wechat_id=alice_01", ["g0"]),
    ("custom.wechat_id=ALICE_01", []),
    ("custom.points=50", ["g1"]),
    ("custom.points.min=50", ["g1", "g2"]),
    ("custom.points.max=50", ["g0", "g1"]),
    ("custom.points.min=6&custom.points.max=499", ["g1"]),
    ("custom.price=99.99", ["g1"]),
    ("custom.price.min=10.5&custom.price.max=99.99", ["g0", "g1"]),
    ("custom.price.min=100", ["g2"]),
    ("custom.since.min=2026-02-01", ["g1", "g2"]),
    ("custom.since.max=2026-02-10", ["g0", "g1"]),
    ("custom.since=2026-03-15", ["g2"]),
    ("custom.seen_at.min=2026-02-10T20:00:00&custom.seen_at.max=2026-03-15T12:00:00", ["g1", "g2"]),
    ("custom.vip=true", ["g0"]),
    ("custom.vip=false", ["g1"]),
    ("custom.level=gold", ["g0", "g2"]),
    ("custom.tags=b", ["g0", "g2"]),
    ("custom.tags=c", ["g1"]),
    ("custom.wechat_id=", ["g0", "g1", "g2", "g3"]),
    ("custom.points=abc", []),
    ("custom.level=platinum", []),
])
def test_filters(api, query, expected):
    assert names(api, query) == expected


@pytest.mark.parametrize("value", [
    "' OR 1=1 --", "%", "_", "\\", "\"; DROP TABLE cftest_gadget; --", "%' OR '1'='1", "alice_0_", "a%",
    "') OR ('a'='a", "$.points", "\x00", "1; SELECT pg_sleep(1)", "*", "'", "\"",
])
@pytest.mark.parametrize("key", ["wechat_id", "level", "tags", "points", "since", "vip"])
def test_sql_metacharacters_match_nothing_and_change_nothing(api, key, value):
    from cf_gadgets import Gadget

    from core.db import db

    r = api.get("/api/v1/cftest-gadgets", query_string={f"custom.{key}": value})
    assert r.status_code == 200, r.json
    assert r.json["items"] == [] and r.json["total"] == 0
    assert db.session.scalar(select(func.count()).select_from(Gadget)) == 4


def test_literal_percent_matches_only_itself(api):
    assert names(api, "custom.wechat_id=carol%25_03") == ["g2"]


def test_unknown_and_bad_filters_are_field_errors(api):
    r = api.get("/api/v1/cftest-gadgets?custom.nope=1")
    assert r.status_code == 422
    assert r.json["error"]["fields"] == {"custom.nope": ["Unknown filter."]}
    r = api.get("/api/v1/cftest-gadgets?custom.points.min=lots")
    assert r.status_code == 422
    assert r.json["error"]["fields"] == {"custom.points.min": ["Not a valid integer."]}
    r = api.get("/api/v1/cftest-gadgets?custom.since.max=2026-02-30")
    assert r.json["error"]["fields"] == {"custom.since.max": ["Not a valid date."]}
    r = api.get("/api/v1/cftest-gadgets?custom.level.min=a")
    assert r.json["error"]["fields"] == {
        "custom.level.min": ["Ranges apply to integer, decimal, date, datetime fields only."]}
    r = api.get("/api/v1/cftest-gadgets?custom.points.like=5")
    assert r.status_code == 422


def test_stored_values_of_another_type_never_break_a_range(api, fields_file):
    """After a forced type change, text values in a now-integer field are skipped, not a DB error."""
    api.post("/api/v1/cftest-gadgets", json={"name": "odd", "custom": {"wechat_id": "12"}})
    api.post("/api/v1/cftest-gadgets", json={"name": "odd2", "custom": {"wechat_id": "x9"}})
    from core.db import db

    fields_file(FILE.replace("wechat_id:\n      type: string", "wechat_id:\n      type: integer"), force=True)
    db.session.commit()
    assert names(api, "custom.wechat_id.min=1") == ["odd"]
    assert names(api, "custom.wechat_id=12") == ["odd"]
