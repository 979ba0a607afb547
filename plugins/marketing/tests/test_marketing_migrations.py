"""The marketing migration creates exactly the tables of its models and rolls back."""

from __future__ import annotations

import sqlalchemy as sa


def test_migration_matches_models_and_downgrades(dovetail_config_dir, dovetail_database_url, tmp_path):
    from core import migrate
    from core.app import create_app
    from core.db import db

    app = create_app(dovetail_config_dir, plugins=["crm", "catalog", "orders", "marketing"], testing=True,
                     config={"database_url": dovetail_database_url, "secret_key": "test"})
    app.instance_path = str(tmp_path / "instance")
    with app.app_context():
        try:
            for name in ("core", "catalog", "marketing"):
                migrate.upgrade_all(app, only=name)
            assert migrate.current(app, "marketing") == "marketing_0001"
            tables = set(sa.inspect(db.engine).get_table_names())
            assert {"marketing_campaign", "marketing_promotion", "marketing_coupon",
                    "marketing_coupon_redemption"} <= tables
            assert migrate.pending_diff(app, "marketing") == []
            migrate.downgrade(app, "marketing")
            assert not {t for t in sa.inspect(db.engine).get_table_names() if t.startswith("marketing_")}
            assert "catalog_product" in sa.inspect(db.engine).get_table_names()
        finally:
            db.session.remove()
            db.engine.dispose()
