"""Web hardening: redirects after login stay on the site, signing out ends the session on
the server, cookies are ``Secure`` over HTTPS (also behind a configured proxy), every
response carries the security headers, and an unreachable database answers 503 (a page
on the web, the JSON error shape on the API)."""

from __future__ import annotations

import base64
import hashlib
import re
from urllib.parse import quote, urlsplit

import pytest
from flask.testing import FlaskClient

from core.app import create_app
from core.state import dovetail

FAST = {"argon2_time_cost": 1, "argon2_memory_kib": 64}


class FreshContextClient(FlaskClient):
    """Each request in its own app context, as in production. The ``app`` fixture keeps one
    app context open for the whole test, and Flask reuses it for requests: ``g`` (where
    Flask-Login caches the user) would carry the signed-in user from one request to the
    next and hide whether a cookie still opens a session."""

    def open(self, *args, **kwargs):
        with self.application.app_context():
            return super().open(*args, **kwargs)


@pytest.fixture
def app(app):
    app.test_client_class = FreshContextClient
    return app


def web_login(client, username="alice", password="password123", next_=None):
    url = "/login" if next_ is None else f"/login?next={quote(next_, safe='')}"
    return client.post(url, data={"username": username, "password": password})


# ---------------------------------------------------------------------------
# Open redirect
# ---------------------------------------------------------------------------

NASTY_NEXT = [
    "/\t/evil.example",          # browsers drop tabs: //evil.example
    "/\n/evil.example",
    "/\r\n/evil.example",
    "//evil.example",
    "///evil.example",
    "/\\evil.example",           # browsers read a backslash as a slash
    "\\\\evil.example",
    "\\/evil.example",
    " //evil.example",
    "/\u3000/evil.example",
    "/\x00/evil.example",
    "https://evil.example/",
    "http:evil.example",
    "javascript:alert(1)",
    "evil.example",
    "%2F%2Fevil.example",
]


@pytest.mark.parametrize("target", NASTY_NEXT)
def test_login_never_redirects_off_site(client, make_user, target):
    make_user("alice")
    r = web_login(client, next_=target)
    assert r.status_code == 302
    location = r.headers["Location"]
    parts = urlsplit(location)
    assert location == "/" and not parts.netloc and not parts.scheme, (target, location)


@pytest.mark.parametrize("target", ["/admin/users", "/audit?entity=core_user&page=2", "/"])
def test_login_follows_a_same_site_path(client, make_user, target):
    make_user("alice")
    r = web_login(client, next_=target)
    assert r.status_code == 302 and r.headers["Location"] == target


# ---------------------------------------------------------------------------
# Sessions end on the server
# ---------------------------------------------------------------------------


def session_cookie(client) -> str:
    cookie = client.get_cookie("session")
    assert cookie is not None
    return cookie.value


def test_a_copied_session_cookie_stops_working_after_logout(client, make_user):
    make_user("alice")
    assert web_login(client).status_code == 302
    assert client.get("/").status_code == 200
    copied = session_cookie(client)
    assert client.post("/logout").status_code == 302
    client.set_cookie("session", copied)
    r = client.get("/")
    assert r.status_code == 302 and urlsplit(r.headers["Location"]).path == "/login"


def test_logout_ends_only_that_session(app, make_user):
    make_user("alice")
    laptop, phone = app.test_client(), app.test_client()
    web_login(laptop), web_login(phone)
    laptop.post("/logout")
    assert laptop.get("/").status_code == 302
    assert phone.get("/").status_code == 200


def test_password_change_and_disable_end_every_session(app, make_user, runner):
    make_user("alice"), make_user("bob")
    alice, bob = app.test_client(), app.test_client()
    web_login(alice), web_login(bob, "bob")
    assert alice.get("/").status_code == 200 and bob.get("/").status_code == 200
    result = runner.invoke(["users", "set-password", "alice", "--password-stdin"],
                           input="another-password-1\n")
    assert result.exit_code == 0, result.output
    assert alice.get("/").status_code == 302
    assert bob.get("/").status_code == 200
    assert web_login(alice, password="another-password-1").status_code == 302
    assert alice.get("/").status_code == 200
    assert runner.invoke(["users", "disable", "bob"]).exit_code == 0
    assert bob.get("/").status_code == 302


# ---------------------------------------------------------------------------
# Secure cookies over HTTPS, behind a configured proxy
# ---------------------------------------------------------------------------


@pytest.fixture
def trusted_proxies():
    return 0


@pytest.fixture
def dovetail_config_dir(dovetail_config_dir, trusted_proxies):
    if trusted_proxies:
        (dovetail_config_dir / "dovetail.yaml").write_text(
            f"locale: en\nsecurity:\n  trusted_proxies: {trusted_proxies}\n", encoding="utf-8")
    return dovetail_config_dir


def set_cookie_headers(response) -> list[str]:
    return [v for k, v in response.headers.items() if k.lower() == "set-cookie"]


def test_cookies_are_not_secure_over_plain_http(client, make_user):
    make_user("alice")
    r = web_login(client)
    cookies = set_cookie_headers(r)
    assert cookies and not any("Secure" in c for c in cookies)


def test_cookies_are_secure_when_served_over_https(app, make_user):
    make_user("alice")
    client = app.test_client()
    r = client.post("/login", data={"username": "alice", "password": "password123"},
                    base_url="https://localhost")
    cookies = set_cookie_headers(r)
    assert cookies and all("; Secure" in c for c in cookies)
    assert r.headers["Strict-Transport-Security"].startswith("max-age=")


def test_forwarded_proto_is_ignored_without_a_trusted_proxy(client, make_user):
    make_user("alice")
    r = client.post("/login", data={"username": "alice", "password": "password123"},
                    headers={"X-Forwarded-Proto": "https"})
    cookies = set_cookie_headers(r)
    assert cookies and not any("Secure" in c for c in cookies)
    assert "Strict-Transport-Security" not in r.headers


@pytest.mark.parametrize("trusted_proxies", [1])
def test_forwarded_proto_from_a_trusted_proxy_makes_cookies_secure(app, client, make_user):
    assert dovetail(app).config.security["trusted_proxies"] == 1
    make_user("alice")
    r = client.post("/login", data={"username": "alice", "password": "password123"},
                    headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"})
    cookies = set_cookie_headers(r)
    assert cookies and all("; Secure" in c for c in cookies)
    # the secure session works on the next request through the proxy
    assert client.get("/", headers={"X-Forwarded-Proto": "https"}).status_code == 200


def test_trusted_proxies_is_validated(tmp_path):
    from core.errors import ConfigError

    (tmp_path / "dovetail.yaml").write_text("security:\n  trusted_proxies: -1\n")
    with pytest.raises(ConfigError, match="dovetail.yaml:2:20: error: security.trusted_proxies"):
        create_app(tmp_path, plugins=[], config={"database_url": "sqlite://",
                                                 "secret_key": "x"})


# ---------------------------------------------------------------------------
# Security headers
# ---------------------------------------------------------------------------


def csp(response) -> dict[str, list[str]]:
    out = {}
    for part in response.headers["Content-Security-Policy"].split(";"):
        name, *values = part.split()
        out[name] = values
    return out


def assert_hardened(response):
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    policy = csp(response)
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["base-uri"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    return policy


def test_every_response_carries_the_security_headers(app, client, api_client, make_user):
    make_user("alice")
    responses = [client.get("/login"), web_login(client), client.get("/"),
                 client.get("/no-such-page"), client.get("/static/dovetail.css"),
                 client.get("/api/v1/openapi.json"), client.get("/api/v1/auth/me"),
                 api_client(role="admin").get("/api/v1/auth/me"), client.get("/healthz")]
    for r in responses:
        policy = assert_hardened(r)
        assert policy["default-src"] == ["'self'"]
        assert policy["script-src"] == ["'self'"], r.request.path
        assert policy["style-src"] == ["'self'"]
        assert "'unsafe-inline'" not in r.headers["Content-Security-Policy"]


def test_api_docs_get_a_narrow_policy_that_allows_exactly_their_inline_script(client):
    r = client.get("/api/v1/docs")
    assert r.status_code == 200
    policy = assert_hardened(r)
    body = r.get_data(as_text=True)
    inline = [m for m in re.findall(r"<script>(.*?)</script>", body, re.S)]
    assert inline
    allowed = {f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'"
               for s in inline}
    assert allowed <= set(policy["script-src"])
    assert "'unsafe-inline'" not in policy["script-src"]
    # Swagger UI is vendored: no other origin is allowed
    assert not [src for src in policy["script-src"] + policy["style-src"] if "://" in src]
    # the relaxation stays on that page
    assert csp(client.get("/api/v1/openapi.json"))["script-src"] == ["'self'"]


# ---------------------------------------------------------------------------
# Database unreachable: 503, a page on the web and the JSON shape on the API
# ---------------------------------------------------------------------------


@pytest.fixture(params=["postgresql+psycopg://postgres@127.0.0.1:1/nowhere",
                        "sqlite:///{tmp}/no/such/dir/x.db"], ids=["postgresql", "sqlite"])
def down_app(request, dovetail_config_dir, tmp_path):
    url = request.param.format(tmp=tmp_path)
    return create_app(dovetail_config_dir, plugins=[], testing=True,
                      config={"database_url": url, "secret_key": "test", "security": FAST})


def assert_503_page(r):
    assert r.status_code == 503, r.get_data(as_text=True)[:300]
    assert r.mimetype == "text/html"
    body = r.get_data(as_text=True)
    assert "<html" in body and "database" in body.lower()
    assert r.headers["Retry-After"]


def test_web_pages_answer_a_503_page_when_the_database_is_down(down_app):
    client = down_app.test_client()
    assert_503_page(client.post("/login", data={"username": "alice", "password": "pw-1234567"}))
    with client.session_transaction() as s:  # a signed-in browser
        s["_user_id"] = "1"
        s["_dovetail_sid"] = "x"
    assert_503_page(client.get("/"))
    assert_503_page(client.get("/login"))


def test_api_answers_json_503_when_the_database_is_down(down_app):
    client = down_app.test_client()
    for r in [client.post("/api/v1/auth/token", json={"username": "a", "password": "b"}),
              client.get("/api/v1/auth/me", headers={"Authorization": "Bearer dvt_abc"})]:
        assert r.status_code == 503 and r.mimetype == "application/json"
        assert r.json["error"]["code"] == "service_unavailable"
        assert r.headers["Retry-After"]


def test_a_query_error_on_a_working_database_stays_a_500_page(app, client):
    from sqlalchemy import text

    from core.db import database_unreachable, db

    def broken():
        db.session.execute(text("SELECT nope FROM no_such_table"))

    app.add_url_rule("/_broken", "web_broken", broken)
    r = client.get("/_broken")
    assert r.status_code == 500 and r.mimetype == "text/html"
    with pytest.raises(Exception) as info:
        broken()
    db.session.rollback()
    assert not database_unreachable(info.value)


def test_web_http_errors_answer_pages_not_json(app, client):
    assert client.get("/no-such-page").mimetype == "text/html"
    app.config["WTF_CSRF_ENABLED"] = True
    r = client.post("/login", data={"username": "alice", "password": "x"})
    assert r.status_code == 400 and r.mimetype == "text/html"
    assert "CSRF" in r.get_data(as_text=True)
