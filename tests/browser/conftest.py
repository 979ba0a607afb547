"""Browser tests: a real Dovetail server driven by Debian's Chromium through Playwright.

The server is the ``dovetail`` app on SQLite with demo data (on the PostgreSQL pass, when
``DOVETAIL_TEST_DATABASE_URL`` is set, a throwaway schema there), a fresh instance and a copy
of the project's config (locale zh_CN), served by werkzeug in a thread on a free port. The
browser is launched by executable path (``DOVETAIL_CHROMIUM``, default ``/usr/bin/chromium``;
``make chromium`` installs it); Playwright's own browser download is never used.

When Chromium is missing the tests skip with one line, unless ``DOVETAIL_REQUIRE_BROWSER=1``
(set by ``.ci/run``), which turns the skip into a failure so CI never passes without them.
"""

from __future__ import annotations

import os
import shutil
import threading
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("DOVETAIL_CHROMIUM", "/usr/bin/chromium"))
PASSWORD = "browser-pass-123"
FAST_SECURITY = {"argon2_time_cost": 1, "argon2_memory_kib": 64}
# Commission rules of the test instance (category → percent), so a statement has amounts.
COMMISSION_PERCENT = {"营养保健": Decimal("8"), "美容护肤": Decimal("10")}


def _chromium_or_skip() -> None:
    """Skip (or fail when the browser is required) without an executable Chromium."""
    if CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK):
        return
    reason = f"Chromium not found at {CHROMIUM} (run 'make chromium' as root to install it)"
    if os.environ.get("DOVETAIL_REQUIRE_BROWSER") == "1":
        pytest.fail(reason + "; DOVETAIL_REQUIRE_BROWSER=1 requires the browser tests to run")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """pytest-playwright's launch arguments, pointed at the system Chromium."""
    _chromium_or_skip()
    return {**browser_type_launch_args, "executable_path": str(CHROMIUM), "headless": True}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    """A Chinese browser with a desktop window."""
    return {**browser_context_args, "locale": "zh-CN", "viewport": {"width": 1280, "height": 900}}


@dataclass
class Shots:
    """Numbered full-page screenshots of the journey, in ``folder``."""

    folder: Path
    taken: list[Path] = field(default_factory=list)

    def __call__(self, page: Any, name: str) -> Path:
        path = self.folder / f"{len(self.taken) + 1:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        self.taken.append(path)
        return path


@pytest.fixture
def shots() -> Iterator[Shots]:
    """Where the screenshots go: ``sqlite/`` or ``postgresql/`` (the pass) under
    ``DOVETAIL_SCREENSHOTS`` or ``build/screenshots`` in the repository (kept out of git),
    named in the run's output at the end."""
    db = "postgresql" if os.environ.get("DOVETAIL_TEST_DATABASE_URL") else "sqlite"
    folder = Path(os.environ.get("DOVETAIL_SCREENSHOTS", REPO / "build" / "screenshots")) / db
    folder.mkdir(parents=True, exist_ok=True)  # files are overwritten, never deleted: runs may overlap
    taken = Shots(folder)
    yield taken
    # a warning is the one message pytest-xdist brings back from a worker to the run's output;
    # a built-in category, as the controller must unpickle it (a conftest class would not resolve)
    warnings.warn(UserWarning(f"{len(taken.taken)} browser screenshots in {folder}"), stacklevel=1)


@dataclass
class Server:
    """A running Dovetail server and what the setup made for the journey."""

    url: str
    app: Any
    promotion: str
    products: list[Product]
    password: str = PASSWORD
    commission_percent: dict[str, Decimal] = field(default_factory=lambda: dict(COMMISSION_PERCENT))


@dataclass(frozen=True)
class Product:
    """A product the journey orders: id, SKU, name and list price."""

    id: int
    sku: str
    name: str
    price: Decimal


def _config_copy(dst: Path) -> Path:
    """The project's config folder, copied, with zh_CN as the locale and fast password hashing."""
    shutil.copytree(REPO / "config", dst)
    main = dst / "dovetail.yaml"
    doc = yaml.safe_load(main.read_text(encoding="utf-8"))
    doc["locale"] = "zh_CN"
    doc["security"] = {**(doc.get("security") or {}), **FAST_SECURITY}
    main.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    rules = {"categories": {name: {"percent": int(pct)} for name, pct in COMMISSION_PERCENT.items()}}
    (dst / "commission.yaml").write_text(yaml.safe_dump(rules, allow_unicode=True), encoding="utf-8")
    return dst


def _prepare(app: Any) -> tuple[str, list[Product]]:
    """Demo data, known passwords for rep1 and manager1, a finance user, and one exclusive
    top-priority promotion (so exactly it applies to the journey's order)."""
    from sqlalchemy import select

    from core import activation, migrate
    from core.audit import acting_as
    from core.auth import create_user, hash_password
    from core.cli_commands import populate_demo
    from core.db import db
    from core.models import User
    from plugins.catalog.models import Category
    from plugins.catalog.models import Product as ProductRow
    from plugins.marketing.services import save_promotion

    with app.app_context():
        migrate.upgrade_all(app)
        activation.apply_initial(app)
        admin = create_user("admin", PASSWORD, ["admin"], display_name="管理员")
        db.session.commit()
        populate_demo(app, 0.02, 7)
        create_user("finance1", PASSWORD, ["finance"], display_name="财务一")
        for name in ("rep1", "manager1"):
            db.session.scalar(select(User).where(User.username == name)).password_hash = hash_password(PASSWORD)
        promotion = "浏览器测试九折"
        with acting_as(admin):
            save_promotion(None, {"name": promotion, "kind": "percent", "percent": "10", "scope": "order",
                                  "stackable": False, "priority": 1000, "active": True})
        # one product of each ruled category, so both commission rules show on the statement
        products = []
        for category in COMMISSION_PERCENT:
            row = db.session.scalar(select(ProductRow).join(Category, Category.id == ProductRow.category_id)
                                    .where(Category.name == category, ProductRow.active.is_(True))
                                    .order_by(ProductRow.id).limit(1))
            assert row is not None, f"the demo data has no active product in {category}"
            products.append(Product(row.id, row.sku, row.name, row.price))
        db.session.commit()
        db.session.remove()
    return promotion, products


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A fresh instance (config copy, SQLite file, demo data) served on a free port."""
    from werkzeug.serving import make_server

    from core.app import create_app
    from core.db import db

    _chromium_or_skip()
    root = tmp_path_factory.mktemp("browser")
    config = _config_copy(root / "config")
    with _database(root) as url:
        app = create_app(config, config={"database_url": url, "secret_key": "browser-test-secret"})
        app.instance_path = str(root / "instance")
        Path(app.instance_path).mkdir()
        promotion, products = _prepare(app)
        srv = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=srv.serve_forever, daemon=True)
        thread.start()
        try:
            yield Server(f"http://127.0.0.1:{srv.server_port}", app, promotion, products)
        finally:
            srv.shutdown()
            thread.join(10)
            with app.app_context():
                db.engine.dispose()


@contextmanager
def _database(root: Path) -> Iterator[str]:
    """An SQLite file in ``root``; on the PostgreSQL pass (``DOVETAIL_TEST_DATABASE_URL``) a
    throwaway schema on that server instead, dropped afterwards, so the journey runs on both."""
    server = os.environ.get("DOVETAIL_TEST_DATABASE_URL")
    if not server:
        yield f"sqlite:///{root / 'dovetail.db'}"
        return
    import sqlalchemy as sa

    schema = "browser_" + uuid.uuid4().hex[:12]
    engine = sa.create_engine(server)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in server else "?"
    try:
        yield f"{server}{sep}options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()
