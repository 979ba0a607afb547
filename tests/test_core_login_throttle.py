"""The login throttle holds under concurrency: 20 wrong passwords sent at once to a real
threaded server get exactly ``login_max_failures`` (5) answers 401 and the rest 429, on the
database counter (SQLite and PostgreSQL) and on Redis."""

from __future__ import annotations

import http.client
import json
import os
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.serving import make_server

from core.app import create_app
from core.auth import Throttle
from core.db import db

TOKEN_URL = "/api/v1/auth/token"
REDIS_URL = os.environ.get("DOVETAIL_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
FAST = {"argon2_time_cost": 1, "argon2_memory_kib": 64}


def _redis_or_skip() -> None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"no Redis at {REDIS_URL}: {exc}")


@pytest.fixture(params=["database", "redis"])
def backend(request, monkeypatch) -> Iterator[str | None]:
    """The throttle's store: None (database) or a Redis URL with a key prefix of its own."""
    if request.param == "database":
        yield None
        return
    _redis_or_skip()
    prefix = f"dovetail-test:{uuid.uuid4().hex}:login:"
    monkeypatch.setattr(Throttle, "redis_prefix", prefix)
    yield REDIS_URL
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)


@pytest.fixture
def server(app, backend, dovetail_config_dir, dovetail_database_url) -> Iterator[Any]:
    """A second app on the same database served by a threaded werkzeug server."""
    served = create_app(dovetail_config_dir, plugins=[], testing=True,
                        config={"database_url": dovetail_database_url, "secret_key": "test-secret",
                                "redis_url": backend, "security": dict(FAST)})
    srv = make_server("127.0.0.1", 0, served, threaded=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    thread.join(10)
    with served.app_context():
        db.engine.dispose()


def post_login(port: int, username: str, password: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("POST", TOKEN_URL, body=json.dumps({"username": username, "password": password}),
                     headers={"Content-Type": "application/json"})
        return conn.getresponse().status
    finally:
        conn.close()


def concurrent_logins(port: int, username: str, password: str, n: int) -> Counter:
    barrier = threading.Barrier(n)
    statuses: list[int] = []
    lock = threading.Lock()

    def one() -> None:
        barrier.wait()
        status = post_login(port, username, password)
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return Counter(statuses)


def test_twenty_concurrent_wrong_passwords_get_exactly_five_401(server, make_user):
    make_user("erin", password="right-password")
    port = server.server_port
    assert concurrent_logins(port, "erin", "wrong-password", 20) == Counter({401: 5, 429: 15})
    # the limit is reached: even the right password is refused until the window passes
    assert post_login(port, "erin", "right-password") == 429


def test_a_success_resets_the_users_failures_and_is_not_an_ip_failure(server, make_user):
    make_user("fay", password="right-password")
    port = server.server_port
    for _ in range(4):
        assert post_login(port, "fay", "wrong-password") == 401
    assert post_login(port, "fay", "right-password") == 201
    # the four failures are forgotten: five more wrong passwords are answered 401
    assert [post_login(port, "fay", "wrong-password") for _ in range(6)] == [401] * 5 + [429]


def test_successful_logins_do_not_count_against_the_ip_limit(app, backend, dovetail_config_dir,
                                                              dovetail_database_url, make_user):
    make_user("gus", password="right-password")
    other = create_app(dovetail_config_dir, plugins=[], testing=True,
                       config={"database_url": dovetail_database_url, "secret_key": "x",
                               "redis_url": backend,
                               "security": {**FAST, "login_ip_max_failures": 3}})
    with other.app_context():
        client = other.test_client()
        for _ in range(6):
            r = client.post(TOKEN_URL, json={"username": "gus", "password": "right-password"})
            assert r.status_code == 201
        statuses = [client.post(TOKEN_URL, json={"username": "gus", "password": "wrong-password"})
                    .status_code for _ in range(4)]
        assert statuses == [401, 401, 401, 429]
        db.session.remove()
        db.engine.dispose()
