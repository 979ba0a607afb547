"""core_0003 rewrites user names stored before normalisation, and refuses to merge two."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from core import migrate
from core.auth import create_user
from core.db import db
from core.testing import conformance


def _old_rows(app, names: dict[str, str]) -> None:
    """Users as an older release stored them: spelled as typed."""
    migrate.upgrade_all(app)
    for typed in names:
        create_user(f"tmp-{len(typed)}-{abs(hash(typed))}", "password-123", ["admin"])
    db.session.flush()
    for (typed, _), user_id in zip(names.items(), db.session.scalars(
            text("SELECT id FROM core_user ORDER BY id")), strict=True):
        db.session.execute(text("UPDATE core_user SET username = :u WHERE id = :i"),
                           {"u": typed, "i": user_id})
    db.session.commit()
    db.session.remove()
    migrate.downgrade(app, "core", "core_0002")


def test_upgrade_normalises_old_names(dovetail_config_dir, dovetail_database_url):
    names = {"Admin": "admin", "ＢＯＢ ": "bob", "ca\u200brol": "carol", "dave": "dave"}
    with conformance.built_app([], config_dir=dovetail_config_dir,
                               database_url=dovetail_database_url, tables=False) as app:
        _old_rows(app, names)
        migrate.upgrade_all(app)
        stored = list(db.session.scalars(text("SELECT username FROM core_user ORDER BY id")))
        assert stored == list(names.values())
        db.session.remove()


def test_upgrade_stops_on_names_that_collapse(dovetail_config_dir, dovetail_database_url):
    with conformance.built_app([], config_dir=dovetail_config_dir,
                               database_url=dovetail_database_url, tables=False) as app:
        _old_rows(app, {"Admin": "admin", "admin ": "admin", "eve": "eve"})
        with pytest.raises(RuntimeError, match=r"'Admin', 'admin ' → 'admin'"):
            migrate.upgrade_all(app)
        stored = list(db.session.scalars(text("SELECT username FROM core_user ORDER BY id")))
        assert stored == ["Admin", "admin ", "eve"]  # nothing half-done
        db.session.remove()
