"""core.db.savepoint_or_conflict: a write the database refuses is a 409 and the session stays usable."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from core.db import db, savepoint_or_conflict
from core.errors import Conflict
from core.models import User


def test_a_refused_write_becomes_a_conflict_and_only_the_savepoint_is_undone(app, make_user) -> None:
    make_user("alice")
    kept = make_user("bob")
    kept.display_name = "Bob B."
    with pytest.raises(Conflict) as exc, savepoint_or_conflict("Taken.", fields={"username": ["Taken."]}):
        db.session.add(User(username="alice", display_name="again", password_hash="x"))
    assert exc.value.message == "Taken." and exc.value.fields == {"username": ["Taken."]}
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(User).where(User.username == "alice")) == 1
    assert db.session.get(User, kept.id).display_name == "Bob B."


def test_an_accepted_write_is_flushed(app) -> None:
    with savepoint_or_conflict("Taken."):
        user = User(username="carol", display_name="Carol", password_hash="x")
        db.session.add(user)
    assert user.id is not None
