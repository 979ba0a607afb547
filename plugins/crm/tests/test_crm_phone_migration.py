"""crm_0002 rewrites mainland mobiles stored as 11 digits to E.164, and back on downgrade."""

from __future__ import annotations

import json

from sqlalchemy import text

from core import migrate
from core.db import db
from core.testing import conformance


def _phones(table: str) -> list:
    return list(db.session.scalars(text(f"SELECT phone FROM {table} ORDER BY id")))


def test_old_mobiles_become_e164_and_other_values_stay(dovetail_config_dir, dovetail_database_url):
    with conformance.built_app(["crm"], config_dir=dovetail_config_dir,
                               database_url=dovetail_database_url, tables=False) as app:
        migrate.upgrade_all(app)
        migrate.downgrade(app, "crm", "crm_0001")
        now = "2026-01-01 00:00:00"
        for name, phone, phones in (("old", "13812345678", ["13812345678", "13700000001"]),
                                    ("new", "+861087654321", ["+861087654321"]), ("none", None, [])):
            db.session.execute(text(
                "INSERT INTO crm_customer (name, phone, phones, tags, tier, total_spent, order_count, "
                "consent_marketing, created_at, updated_at, custom) VALUES (:n, :p, :ps, '[]', 'standard', 0, 0, "
                "false, :t, :t, '{}')"), {"n": name, "p": phone, "ps": json.dumps(phones), "t": now})
        db.session.commit()
        db.session.remove()
        migrate.upgrade_all(app)
        assert _phones("crm_customer") == ["+8613812345678", "+861087654321", None]
        stored = [json.loads(p) if isinstance(p, str) else p
                  for p in db.session.scalars(text("SELECT phones FROM crm_customer ORDER BY id"))]
        assert stored == [["+8613812345678", "+8613700000001"], ["+861087654321"], []]
        db.session.remove()
        migrate.downgrade(app, "crm", "crm_0001")
        assert _phones("crm_customer") == ["13812345678", "+861087654321", None]
        db.session.remove()
