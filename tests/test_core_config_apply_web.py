"""The Configuration page (``/admin/config``): the version in force with when and by whom,
Check and Apply buttons (POST with CSRF), located errors listed when refused, admins only,
translated; and the worker-side version check never writes in a read request."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

import pytest
from sqlalchemy import event

from core import activation
from core.db import db


@pytest.fixture
def dovetail_plugins():
    return ["crm", "catalog", "orders", "workflows", "customfields"]


def order_yaml(app) -> Path:
    return Path(app.extensions["dovetail"].config.config_dir) / "workflows" / "order.yaml"


def login(client, username: str, lang: str | None = None) -> None:
    if lang:
        client.get(f"/login?lang={lang}")
    r = client.post("/login", data={"username": username, "password": "password123"})
    assert r.status_code == 302, r.data[:300]


def text_of(resp) -> str:
    return unescape(resp.get_data(as_text=True))


def test_the_page_shows_the_version_and_apply_puts_an_edit_in_force(app, client, make_user, admin_api, runner):
    assert runner.invoke(["config", "apply"]).exit_code == 0
    make_user("boss", role="admin")
    login(client, "boss")
    page = text_of(client.get("/admin/config"))
    version = activation.state(app).version
    assert f'id="config-version">{version}<' in page and "cli" in page
    assert 'value="check"' in page and 'value="apply"' in page and 'name="csrf_token"' in page
    assert "/admin/config" in text_of(client.get("/"))  # in the admin's menu
    path = order_yaml(app)
    path.write_text(path.read_text(encoding="utf-8").replace("{en: Paid,", "{en: Paid by web,", 1), encoding="utf-8")
    r = client.post("/admin/config", data={"action": "check"})
    assert r.status_code == 200 and "passed the check" in text_of(r)
    assert "Paid by web" not in str(admin_api.get("/api/v1/workflows/order").json)  # a check changes nothing
    r = client.post("/admin/config", data={"action": "apply"})
    page = text_of(r)
    assert r.status_code == 200 and f"Config version {version + 1} applied" in page
    assert f'id="config-version">{version + 1}<' in page and "boss" in page
    assert "Paid by web" in str(admin_api.get("/api/v1/workflows/order").json)


def test_a_broken_file_is_listed_with_its_location_and_nothing_changes(app, client, make_user, admin_api, runner):
    assert runner.invoke(["config", "apply"]).exit_code == 0
    version = activation.state(app).version
    before = admin_api.get("/api/v1/workflows/order").json
    path = order_yaml(app)
    path.write_text(path.read_text(encoding="utf-8") + "states: [unclosed\n", encoding="utf-8")
    make_user("boss", role="admin")
    login(client, "boss")
    shown = activation.display(app, "workflows/order.yaml")
    for action in ("check", "apply"):
        r = client.post("/admin/config", data={"action": action})
        page = r.get_data(as_text=True)
        assert r.status_code == 422, page
        located = [unescape(e) for e in re.findall(r"<li><code>(.*?)</code></li>", page, re.S)]
        assert located and all(re.match(rf"{re.escape(shown)}:\d+:\d+: error: ", e) for e in located), located
    assert "nothing was applied and the version in force stays" in unescape(page)
    assert activation.state(app).version == version
    assert admin_api.get("/api/v1/workflows/order").json == before
    page = text_of(client.get("/admin/config"))  # the refusal stays visible until an apply succeeds
    assert f'id="config-version">{version}<' in page and f"{shown}:" in page


def test_only_admins_see_the_page(app, client, make_user):
    make_user("rep1", role="rep")
    login(client, "rep1")
    assert client.get("/admin/config").status_code == 403
    assert client.post("/admin/config", data={"action": "apply"}).status_code == 403
    assert "/admin/config" not in text_of(client.get("/"))


def test_apply_needs_the_csrf_token(app, client, make_user):
    make_user("boss", role="admin")
    login(client, "boss")
    version = activation.state(app).version
    app.config["WTF_CSRF_ENABLED"] = True
    assert client.post("/admin/config", data={"action": "apply"}).status_code == 400
    assert activation.state(app).version == version


def test_the_page_is_translated(app, client, make_user):
    make_user("boss", role="admin")
    login(client, "boss", lang="zh_CN")
    page = text_of(client.get("/admin/config"))
    assert "配置" in page and "应用" in page and "检查" in page


def test_the_version_check_of_a_read_request_only_reads(app, admin_api, runner):
    """A worker loads a newly applied version in a GET with SELECTs only: a write there would
    take the SQLite write lock inside a deferred read transaction ('database is locked')."""
    assert runner.invoke(["config", "apply"]).exit_code == 0
    admin_api.get("/api/v1/workflows/order")
    path = order_yaml(app)
    path.write_text(path.read_text(encoding="utf-8").replace("{en: Paid,", "{en: Paid again,", 1), encoding="utf-8")
    assert runner.invoke(["config", "apply"]).exit_code == 0
    st = activation.state(app)
    newest = st.version
    st.version -= 1  # this process has not loaded the newest version yet, like another worker
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args):
        seen.append(" ".join(statement.split()[:2]).upper())

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        r = admin_api.get("/api/v1/workflows/order")
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert r.status_code == 200 and "Paid again" in str(r.json)
    assert st.version == newest and seen, seen
    # a deferred BEGIN takes no lock; BEGIN IMMEDIATE, INSERT, UPDATE, DELETE would
    writes = [s for s in seen if s.split()[0] not in ("SELECT", "WITH", "PRAGMA") and s != "BEGIN"]
    assert not writes, seen
