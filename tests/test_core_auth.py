"""Login throttling (database counter shared by every process), one answer for unknown
user and wrong password, Argon2id password hashes, hashed and revocable API tokens."""

from __future__ import annotations

import hashlib

from sqlalchemy import func, select

from core.app import create_app
from core.db import db
from core.models import ApiToken, LoginAttempt, User

TOKEN_URL = "/api/v1/auth/token"


def login(client, username, password):
    return client.post(TOKEN_URL, json={"username": username, "password": password})


def test_same_answer_for_unknown_user_and_wrong_password(client, make_user):
    make_user("alice", password="right-password")
    unknown, wrong = login(client, "nobody", "whatever-pass"), login(client, "alice", "wrong-password")
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json == wrong.json
    assert login(client, "alice", "right-password").status_code == 201


def test_sixth_failure_is_429_even_with_the_right_password_across_processes(
        app, client, make_user, dovetail_config_dir, dovetail_database_url):
    make_user("bob", password="right-password")
    for _ in range(5):
        assert login(client, "bob", "wrong-password").status_code == 401
    r = login(client, "bob", "right-password")
    assert r.status_code == 429 and r.json["error"]["code"] == "too_many_requests"
    assert db.session.scalar(select(func.count()).select_from(LoginAttempt)
                             .where(LoginAttempt.key == "user:bob")) == 5
    db.session.rollback()  # end this read (SQLite transactions begin IMMEDIATE)
    # A second app (another worker process) on the same database sees the same counter.
    other = create_app(dovetail_config_dir, plugins=[], testing=True,
                       config={"database_url": dovetail_database_url, "secret_key": "x"})
    with other.app_context():
        r = other.test_client().post(TOKEN_URL, json={"username": "bob", "password": "right-password"})
        assert r.status_code == 429
        db.session.remove()
    # the web login form is throttled by the same counter
    page = client.post("/login", data={"username": "bob", "password": "right-password"})
    assert page.status_code == 401 and "Too many failed logins" in page.get_data(as_text=True)


def test_passwords_are_argon2id_and_tokens_stored_hashed_and_revocable(client, make_user):
    user = make_user("carol", password="right-password")
    assert user.password_hash.startswith("$argon2id$") and "right-password" not in user.password_hash
    token = login(client, "carol", "right-password").json["token"]
    row = db.session.scalar(select(ApiToken).where(ApiToken.user_id == user.id))
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest() and token not in row.token_hash
    auth = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/auth/me", headers=auth).json["username"] == "carol"
    assert client.delete(TOKEN_URL, headers=auth).status_code == 204
    r = client.get("/api/v1/auth/me", headers=auth)
    assert r.status_code == 401 and "revoked" in r.json["error"]["message"]


def test_disabling_a_user_revokes_their_tokens(client, make_user, runner):
    make_user("dave", password="right-password")
    token = login(client, "dave", "right-password").json["token"]
    result = runner.invoke(["users", "disable", "dave"])
    assert result.exit_code == 0, result.output
    assert client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert login(client, "dave", "right-password").status_code == 401
    assert db.session.scalar(select(User.active).where(User.username == "dave")) is False
