"""The API documentation page and the dashboard load every script, style sheet and image
from Dovetail itself (vendored under core/web/static), so they work offline and under the
strict Content-Security-Policy; the vendored files exist, with their licences, and are served."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

STATIC = Path(__file__).resolve().parent.parent / "core" / "web" / "static"
ASSET = re.compile(r"""<(?:script|link|img)\b[^>]*?\b(?:src|href)=["']([^"']+)["']""", re.I)


def asset_urls(body: str) -> list[str]:
    return ASSET.findall(body)


def assert_same_origin(client, body: str) -> list[str]:
    urls = asset_urls(body)
    assert urls
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), url
        r = client.get(url)
        assert r.status_code == 200, url
    return urls


def test_the_asset_pattern_sees_foreign_urls():
    urls = asset_urls('<script src="https://cdn.example/x.js"></script><link rel="x" href="//cdn/y.css">')
    assert urls == ["https://cdn.example/x.js", "//cdn/y.css"]


def test_api_docs_load_only_vendored_assets(client):
    r = client.get("/api/v1/docs")
    assert r.status_code == 200
    urls = assert_same_origin(client, r.get_data(as_text=True))
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in urls
    assert "/static/vendor/swagger-ui/swagger-ui.css" in urls


@pytest.mark.parametrize("path", ["echarts/echarts.min.js", "echarts/LICENSE.txt", "swagger-ui/LICENSE.txt",
                                  "swagger-ui/swagger-ui-standalone-preset.js"])
def test_vendored_files_and_licences_are_in_the_package(path):
    f = STATIC / "vendor" / path
    assert f.is_file() and f.stat().st_size > 0
    # pyproject.toml package-data takes **/*.js, **/*.css and **/*.txt
    assert f.suffix in (".js", ".css", ".txt")


def test_the_dashboard_loads_only_same_origin_assets(app, client, make_user):
    from core.db import db

    make_user("alice", role="admin")
    db.session.commit()
    db.session.close()  # no open read transaction while the requests run (SQLite lock)
    r = client.post("/login", data={"username": "alice", "password": "password123"})
    assert r.status_code in (302, 303)
    r = client.get("/")
    assert r.status_code == 200
    urls = assert_same_origin(client, r.get_data(as_text=True))
    assert "/static/vendor/echarts/echarts.min.js" in urls and "/static/charts.js" in urls
