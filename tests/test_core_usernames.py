"""User names are normalised (zero-width and other format characters removed, NFKC,
case-folded, surrounding spaces stripped) by one function, ``core.auth.normalize_username``:
``Admin``, ``ＡＤＭＩＮ``, ``ad\\u200bmin`` and ``admin `` cannot coexist with ``admin`` and
all log in as it, through the API, the web form and the ``users`` CLI."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.auth import create_user, normalize_username
from core.db import db
from core.errors import Conflict, ValidationError
from core.models import User

VARIANTS = ["Admin", "ＡＤＭＩＮ", "ad\u200bmin", "admin ", " \ufeffADMIN\u2060\t", "ａｄｍｉｎ\u3000"]
TOKEN_URL = "/api/v1/auth/token"


@pytest.mark.parametrize("raw", VARIANTS)
def test_every_variant_normalises_to_the_same_name(raw):
    assert normalize_username(raw) == "admin"


@pytest.mark.parametrize("raw", ["Straße", "ＭÜＬＬＥＲ", "e\u200d\u0301", "Ⅻ-ﬁ", "张三", "\u202eevil"])
def test_normalising_is_idempotent(raw):
    once = normalize_username(raw)
    assert normalize_username(once) == once
    assert "\u200d" not in once and "\u202e" not in once


@pytest.mark.parametrize("raw", ["", "   ", "\u200b\u200c", "a" * 81, "ad\nmin", "ad\x00min"])
def test_unusable_names_are_refused_when_creating(app, raw):
    with pytest.raises(ValidationError) as err:
        create_user(raw, "long-enough-password", ["admin"])
    assert "username" in err.value.fields


@pytest.mark.parametrize("raw", VARIANTS)
def test_creating_a_variant_of_an_existing_name_is_a_conflict(app, make_user, raw):
    make_user("admin")
    with pytest.raises(Conflict):
        create_user(raw, "long-enough-password", ["admin"])
    db.session.rollback()
    assert db.session.scalars(select(User.username)).all() == ["admin"]


def test_a_name_is_stored_normalised(app, make_user):
    user = make_user("ＲＩＴＡ\u200b ")
    assert user.username == "rita"


@pytest.mark.parametrize("raw", VARIANTS)
def test_every_variant_logs_in_as_the_same_user(client, make_user, raw):
    user = make_user("admin", password="right-password")
    r = client.post(TOKEN_URL, json={"username": raw, "password": "right-password"})
    assert r.status_code == 201, r.json
    me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {r.json['token']}"})
    assert me.json["id"] == user.id


def test_the_web_login_form_accepts_a_variant(client, make_user):
    make_user("admin", password="right-password")
    r = client.post("/login", data={"username": "ＡＤＭＩＮ", "password": "right-password"})
    assert r.status_code == 302


def test_variants_share_one_failure_counter(client, make_user):
    make_user("admin", password="right-password")
    for raw in VARIANTS[:5]:
        r = client.post(TOKEN_URL, json={"username": raw, "password": "wrong-password"})
        assert r.status_code == 401
    r = client.post(TOKEN_URL, json={"username": VARIANTS[5], "password": "right-password"})
    assert r.status_code == 429


ROLES = "roles:\n  admin: {permissions: [\"*\"], scope: all}\n"


def test_users_cli_refuses_variants_and_finds_the_user_by_any_of_them(config_dir, cli):
    cfg = config_dir([], roles=ROLES)
    assert cli(cfg, "db", "upgrade").exit_code == 0
    made = cli(cfg, "users", "create", "Admin", "--role", "admin", "--password-stdin",
               input="first-password\n")
    assert made.exit_code == 0 and "Created user admin (admin)." in made.output, made.output
    for raw in VARIANTS:
        dup = cli(cfg, "users", "create", raw, "--role", "admin", "--password-stdin",
                  input="first-password\n")
        assert dup.exit_code == 1 and dup.output.strip() == "error: User 'admin' already exists.", \
            (raw, dup.output)
    assert [ln.split()[0] for ln in cli(cfg, "users", "list").output.splitlines()] == ["admin"]
    changed = cli(cfg, "users", "set-password", "ＡＤＭＩＮ", "--password-stdin",
                  input="second-password\n")
    assert changed.exit_code == 0, changed.output
    assert cli(cfg, "users", "disable", "ad\u200bmin ").exit_code == 0
    assert cli(cfg, "users", "list").output.split()[-1] == "disabled"
