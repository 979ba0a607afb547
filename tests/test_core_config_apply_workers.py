"""Acceptance: two real server processes on one database run the config version applied by
``dovetail config apply``; a broken file is refused with file:line:column and both keep the
previous version; the admin sees the located error in the API answer and on the web page.

Two ``dovetail serve --workers 1`` (gunicorn) processes on two ports, so each answer is known
to come from its own worker process. SQLite file per test, or a throwaway PostgreSQL schema
when DOVETAIL_TEST_DATABASE_URL is set (the ``dovetail_database_url`` fixture).
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from html import unescape
from pathlib import Path
from typing import Any

import pytest

from core.auth import issue_token
from core.db import db

PLUGINS = ["crm", "catalog", "orders", "workflows"]


@pytest.fixture
def dovetail_plugins():
    return PLUGINS


@pytest.fixture
def dovetail_config_dir(dovetail_config_dir):
    """The same plugins for the test app (which creates the tables) and the servers."""
    (dovetail_config_dir / "dovetail.yaml").write_text(
        f"plugins: {{enabled: [{', '.join(PLUGINS)}]}}\nlocale: en\n", encoding="utf-8")
    return dovetail_config_dir


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def env(monkeypatch, dovetail_database_url) -> dict[str, str]:
    monkeypatch.delenv("DOVETAIL_REDIS_URL", raising=False)
    monkeypatch.delenv("DOVETAIL_CONFIG_CHECK_SECONDS", raising=False)
    return {**os.environ, "DOVETAIL_DATABASE_URL": dovetail_database_url, "DOVETAIL_SECRET_KEY": "apply-test"}


def dovetail(env: dict[str, str], config_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from core.cli import main; main()", "--config", str(config_dir),
                           *args], env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture
def servers(app, env, dovetail_config_dir) -> Any:
    """Two gunicorn servers of one worker each; yields their base URLs."""
    ports = [_free_port(), _free_port()]
    procs = [subprocess.Popen(
        [sys.executable, "-c", "from core.cli import main; main()", "--config", str(dovetail_config_dir),
         "serve", "--port", str(port), "--workers", "1"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for port in ports]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        deadline = time.monotonic() + 60
        for url, proc in zip(urls, procs, strict=True):
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/healthz", timeout=2):
                        break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        out = proc.communicate(timeout=5)[0] if proc.poll() is not None else b""
                        pytest.fail(f"server did not start: {out.decode(errors='replace')[-2000:]}")
                    time.sleep(0.2)
        yield urls
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGINT)  # gunicorn: quick shutdown (TERM waits for its workers)
        for proc in procs:
            try:
                proc.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()


def call(url: str, token: str, method: str = "GET") -> tuple[int, Any]:
    req = urllib.request.Request(url, method=method, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def labels(base: str, token: str) -> str:
    """The order workflow one process serves."""
    status, body = call(f"{base}/api/v1/workflows/order", token)
    assert status == 200, body
    # the definition (not when this process checked its file)
    return json.dumps({k: body.get(k) for k in ("version", "states", "transitions")}, ensure_ascii=False)


def wait_until(check: Any, seconds: float = 8.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return check()


class WebSession:
    """A browser-like admin session (cookies, CSRF token from each form)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def open(self, path: str, data: dict[str, str] | None = None) -> tuple[int, str]:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        try:
            with self.opener.open(f"{self.base}{path}", data=body, timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def post_form(self, path: str, data: dict[str, str]) -> tuple[int, str]:
        _status, page = self.open(path)
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
        assert token, page[:500]
        return self.open(path, {**data, "csrf_token": token.group(1)})


def test_two_workers_run_what_is_applied_and_keep_it_when_a_file_is_broken(app, make_user, servers, env,
                                                                           dovetail_config_dir):
    admin = make_user("boss", role="admin")
    token = issue_token(admin, "test")
    db.session.commit()
    first = dovetail(env, dovetail_config_dir, "config", "apply")
    assert first.returncode == 0, first.stderr
    before = [labels(u, token) for u in servers]
    assert before[0] == before[1] and "Paid and checked" not in before[0]

    # an edit takes effect in both processes once applied, not before
    path = dovetail_config_dir / "workflows" / "order.yaml"
    good = path.read_text(encoding="utf-8")
    assert "{en: Paid," in good
    path.write_text(good.replace("{en: Paid,", "{en: Paid and checked,", 1), encoding="utf-8")
    time.sleep(1.2)  # longer than the version-check interval: editing alone changes nothing
    assert [labels(u, token) for u in servers] == before
    started = time.monotonic()
    done = dovetail(env, dovetail_config_dir, "config", "apply")
    assert done.returncode == 0 and "applied" in done.stdout, done.stdout + done.stderr
    finished = time.monotonic()
    assert wait_until(lambda: all("Paid and checked" in labels(u, token) for u in servers), seconds=5), \
        [labels(u, token) for u in servers]
    now = time.monotonic()
    print(f"\nboth workers serve the applied definition {now - finished:.2f} s after 'config apply' "
          f"exited ({now - started:.2f} s after it was started)")
    applied = [labels(u, token) for u in servers]

    # a YAML syntax error: refused with file:line:column, both keep the version in force
    path.write_text(path.read_text(encoding="utf-8") + "states: [unclosed\n", encoding="utf-8")
    refused = dovetail(env, dovetail_config_dir, "config", "apply")
    assert refused.returncode != 0
    # stderr: the log record of the refusal, then one line per located error
    lines = [ln for ln in refused.stderr.strip().splitlines() if not ln.startswith("config apply refused")]
    assert lines and all(re.match(r"\S*workflows/order\.yaml:\d+:\d+: error: ", ln) for ln in lines), lines
    time.sleep(1.2)
    assert [labels(u, token) for u in servers] == applied

    # the admin sees the located error: the API answer (first process) and the web page (second)
    status, body = call(f"{servers[0]}/api/v1/config/apply", token, method="POST")
    assert status == 422, body
    files = body["error"]["fields"]["files"]
    assert files and all(re.match(r"\S*workflows/order\.yaml:\d+:\d+: error: ", f) for f in files), files
    web = WebSession(servers[1])
    status, _page = web.post_form("/login", {"username": "boss", "password": "password123"})
    assert status == 200  # followed the redirect to the dashboard
    status, page = web.post_form("/admin/config", {"action": "apply"})
    assert status == 422
    located = [unescape(e) for e in re.findall(r"<li><code>(.*?)</code></li>", page, re.S)]
    assert located and all(re.match(r"\S*workflows/order\.yaml:\d+:\d+: error: ", e) for e in located), located
    assert [labels(u, token) for u in servers] == applied
