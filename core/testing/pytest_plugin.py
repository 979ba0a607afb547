"""Pytest fixtures for Dovetail and its plugins (entry point ``pytest11``).

Override ``dovetail_plugins`` (the enabled set) and ``dovetail_extra_plugins``
(modules not installed through the entry point) in your ``conftest.py``::

    @pytest.fixture
    def dovetail_plugins():
        return ["crm"]

Each test gets a fresh database: a file in ``tmp_path`` on SQLite, or a fresh
schema on the server named by ``DOVETAIL_TEST_DATABASE_URL`` (PostgreSQL).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROLES_FALLBACK = {"admin": {"permissions": ["*"], "scope": "all", "label": {}}}


def _repo_config_dir(start: Path) -> Path | None:
    for parent in [start, *start.parents]:
        cand = parent / "config" / "roles.yaml"
        if cand.exists():
            return cand.parent
    return None


@pytest.fixture
def dovetail_plugins() -> list[str] | None:
    """The enabled plugins for ``app`` (None: every available plugin)."""
    return None


@pytest.fixture
def dovetail_extra_plugins() -> dict[str, Any]:
    """Plugin modules to make available besides the entry points."""
    return {}


@pytest.fixture
def dovetail_settings() -> dict[str, dict[str, Any]]:
    """Per-plugin settings overrides (``{"crm": {"pool_claim_limit": 3}}``)."""
    return {}


@pytest.fixture
def dovetail_config_dir(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A config folder: the project's ``config/`` copied (roles, workflows, fields), so
    tests may edit files freely; an admin-only roles file if the project has none."""
    import shutil

    src = _repo_config_dir(Path(str(request.config.rootpath)))
    dst = tmp_path / "config"
    if src is not None:
        shutil.copytree(src, dst)
    else:
        import yaml

        dst.mkdir()
        (dst / "roles.yaml").write_text(yaml.safe_dump({"roles": ROLES_FALLBACK}))
    # Tests read English page text; the instance default (zh_CN) stays in config/.
    (dst / "dovetail.yaml").write_text("locale: en\n", encoding="utf-8")
    return dst


@pytest.fixture
def dovetail_database_url(tmp_path: Path) -> Iterator[str]:
    """SQLite file per test, or a throwaway schema on DOVETAIL_TEST_DATABASE_URL."""
    server = os.environ.get("DOVETAIL_TEST_DATABASE_URL")
    if not server:
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    import sqlalchemy as sa

    schema = "t_" + uuid.uuid4().hex[:12]
    engine = sa.create_engine(server)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in server else "?"
    yield f"{server}{sep}options=-csearch_path%3D{schema}"
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


def _all_plugins(extra: dict[str, Any]) -> list[str]:
    from core.plugins import discover

    return [name for name, av in discover(extra).items() if av.error is None]


@pytest.fixture
def app(dovetail_plugins, dovetail_extra_plugins, dovetail_settings, dovetail_config_dir,
        dovetail_database_url, tmp_path) -> Iterator[Any]:
    """A fresh app with the chosen plugins and their tables created."""
    from core.app import create_app, create_tables
    from core.db import db

    plugins = dovetail_plugins if dovetail_plugins is not None else _all_plugins(
        dovetail_extra_plugins)
    application = create_app(
        dovetail_config_dir, plugins=plugins, extra_plugins=dovetail_extra_plugins,
        testing=True,
        config={"database_url": dovetail_database_url, "secret_key": "test-secret",
                "settings": dovetail_settings,
                "security": {"argon2_time_cost": 1, "argon2_memory_kib": 64}})
    application.instance_path = str(tmp_path / "instance")
    create_tables(application)
    with application.app_context():
        yield application
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def apply_config(app) -> Any:
    """``apply_config(force=False)``: apply the config files as they are on disk now (what
    ``dovetail config apply`` does) and return the :class:`core.activation.Applied`; a refused
    apply raises the located :class:`core.errors.ConfigError` (the version in force stays).
    Tests that edit a run-time config file by hand call this for the edit to take effect."""
    from core import activation

    def do_apply(*, force: bool = False, actor: str | None = "test") -> Any:
        return activation.apply(app, actor=actor, force=force)

    return do_apply


@pytest.fixture
def client(app) -> Any:
    return app.test_client()


@pytest.fixture
def runner(app) -> Any:
    """Click runner invoking the ``dovetail`` CLI against this test's app."""
    from click.testing import CliRunner

    from core.cli import cli as main

    class Runner:
        def invoke(self, args: list[str], **kw: Any) -> Any:
            kw.setdefault("catch_exceptions", False)
            return CliRunner().invoke(main, args, obj={"app": app}, **kw)

    return Runner()


class ApiClient:
    """A test client that sends the user's bearer token and JSON bodies."""

    def __init__(self, client: Any, token: str, user: Any) -> None:
        self.client, self.token, self.user = client, token, user

    def _call(self, method: str, url: str, json: Any = None, headers: dict | None = None,
              **kw: Any) -> Any:
        h = {"Authorization": f"Bearer {self.token}", **(headers or {})}
        return self.client.open(url, method=method, json=json, headers=h, **kw)

    def get(self, url: str, **kw: Any) -> Any:
        return self._call("GET", url, **kw)

    def post(self, url: str, json: Any = None, **kw: Any) -> Any:
        return self._call("POST", url, json=json, **kw)

    def patch(self, url: str, json: Any = None, **kw: Any) -> Any:
        return self._call("PATCH", url, json=json, **kw)

    def put(self, url: str, json: Any = None, **kw: Any) -> Any:
        return self._call("PUT", url, json=json, **kw)

    def delete(self, url: str, **kw: Any) -> Any:
        return self._call("DELETE", url, **kw)


@pytest.fixture
def make_team(app) -> Any:
    from core.db import db
    from core.models import Team

    def factory(name: str = "Team A", region: str | None = None) -> Team:
        team = Team(name=name, region=region)
        db.session.add(team)
        db.session.commit()
        return team

    return factory


@pytest.fixture
def make_user(app) -> Any:
    """``make_user("alice", role="rep", team=team)`` → a committed user (password 'password123')."""
    from core.auth import create_user
    from core.db import db

    def factory(username: str | None = None, role: str | list[str] = "admin", *,
                team: Any = None, password: str = "password123", **kw: Any) -> Any:
        roles = [role] if isinstance(role, str) else list(role)
        user = create_user(username or f"user{uuid.uuid4().hex[:6]}", password, roles,
                           team_id=getattr(team, "id", team), **kw)
        db.session.commit()
        return user

    return factory


@pytest.fixture
def web_login(app, make_user) -> Any:
    """``web_login("rep")`` → a fresh test client signed in to the web pages as a new user of that role.

    ``web_login(username="bob")`` signs in an existing user instead (password 'password123' unless given).
    """

    def login(role: str = "admin", *, username: str | None = None, password: str = "password123") -> Any:
        if username is None:
            username = make_user(f"web_{role}", role=role).username
        web = app.test_client()
        r = web.post("/login", data={"username": username, "password": password})
        assert r.status_code == 302, r.get_data(as_text=True)[:500]
        return web

    return login


@pytest.fixture
def api_client(app, client, make_user) -> Any:
    """``api_client(user)`` or ``api_client(role="rep")`` → an authenticated ApiClient."""
    from core.auth import issue_token
    from core.db import db

    def factory(user: Any = None, **kw: Any) -> ApiClient:
        user = user if user is not None else make_user(**kw)
        token = issue_token(user, "test")
        db.session.commit()
        return ApiClient(client, token, user)

    return factory


@pytest.fixture
def admin_api(api_client) -> ApiClient:
    return api_client(role="admin", username="admin")


def pytest_sessionstart(session: pytest.Session) -> None:
    """With DOVETAIL_TEST_DATABASE_URL set, an unreachable server fails the run at once."""
    url = os.environ.get("DOVETAIL_TEST_DATABASE_URL")
    if not url:
        return
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # noqa: BLE001 - any failure means the run cannot be trusted
        pytest.exit(f"DOVETAIL_TEST_DATABASE_URL is set but the server is unreachable: {exc}",
                    returncode=3)
