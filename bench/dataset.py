"""Databases, apps and data for the benchmark: one seed, used by Dovetail and the floor alike.

Every database the benchmark uses is fresh: a file in a temporary folder on SQLite, or a
schema of its own (``bench_<pid>_<name>``) on the server named by ``--database-url``.
Tables are created from Dovetail's own models, so Dovetail and the floor write into the
same table definitions with the same indexes and constraints.

Seed (fixed, ``random.Random(SEED)``): a rep (role ``rep``, scope own) with an API token, an
owner (role ``owner``, for reports), 200 customers owned by the rep, 50 products in 5
categories, one warehouse with stock received through the inventory service (so the ledger
holds a receipt per product and its sum equals on hand).
"""

from __future__ import annotations

import csv
import os
import random
import shutil
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa

REPO = Path(__file__).resolve().parent.parent
SEED = 20260101
CUSTOMERS = 200
PRODUCTS = 50
STOCK = 1_000_000  # per product: plenty, the in-process rounds never run short
SHIPPED_PLUGINS = ["crm", "catalog", "inventory", "orders", "marketing", "customfields", "workflows", "performance"]
PASSWORD = "bench-password-1"


# ---------------------------------------------------------------------------
# Databases
# ---------------------------------------------------------------------------


@dataclass
class Databases:
    """Hands out fresh database URLs of one kind and drops them at the end."""

    server_url: str | None  # None: SQLite files under ``tmp``
    tmp: Path
    keep: bool = False
    made: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return "sqlite" if self.server_url is None else sa.make_url(self.server_url).get_backend_name()

    def new(self, name: str) -> str:
        if self.server_url is None:
            return f"sqlite:///{self.tmp / (name + '.db')}"
        schema = f"bench_{os.getpid()}_{name}"
        engine = sa.create_engine(self.server_url)
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        engine.dispose()
        self.made.append(schema)
        sep = "&" if "?" in self.server_url else "?"
        return f"{self.server_url}{sep}options=-csearch_path%3D{schema}"

    def drop_all(self) -> None:
        if self.server_url is None or self.keep or not self.made:
            return
        engine = sa.create_engine(self.server_url)
        with engine.begin() as conn:
            for schema in self.made:
                conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()
        self.made.clear()


def config_copy(tmp: Path) -> Path:
    """The shipped ``config/`` folder (roles, workflows, custom fields) copied to ``tmp``."""
    dst = tmp / "config"
    if not dst.exists():
        shutil.copytree(REPO / "config", dst)
    return dst


def make_app(config_dir: Path, database_url: str) -> Any:
    """Dovetail with the shipped plugins on ``database_url`` (tables created)."""
    from core.app import create_app, create_tables

    app = create_app(config_dir, plugins=SHIPPED_PLUGINS, config={
        "database_url": database_url, "secret_key": "bench-secret",
        # Only user creation hashes passwords (seeding); tokens are SHA-256 look-ups.
        "security": {"argon2_time_cost": 1, "argon2_memory_kib": 64}})
    create_tables(app)
    return app


# ---------------------------------------------------------------------------
# Seed
# ---------------------------------------------------------------------------


@dataclass
class Seeded:
    rep_id: int
    rep_token: str
    owner_token: str
    customer_ids: list[int]
    product_ids: list[int]
    warehouse_id: int


def seed(app: Any, *, stock: int = STOCK, scarce: int = 0) -> Seeded:
    """The fixed seed; ``scarce`` products (the last ones) get only 10 units each, so a load
    test drives them to zero and exercises the never-oversell path."""
    from core.audit import acting_as
    from core.auth import create_user, issue_token
    from core.db import db
    from plugins.catalog.models import Category, Product
    from plugins.crm.models import Customer
    from plugins.inventory import services as inv

    rnd = random.Random(SEED)
    with app.app_context(), acting_as(None, "bench-seed"):
        rep = create_user("rep1", PASSWORD, ["rep"])
        owner = create_user("owner1", PASSWORD, ["owner"])
        db.session.flush()
        cats = [Category(name=n) for n in ("保健品", "护肤品", "日用品", "食品", "器械")]
        db.session.add_all(cats)
        db.session.flush()
        products = [Product(sku=f"SKU-{i:04d}", name=f"产品 {i}", category_id=cats[i % 5].id, unit="盒",
                            price=Decimal(rnd.randrange(2000, 90000)) / 100,
                            cost=Decimal(rnd.randrange(1000, 1900)) / 100, active=True, custom={})
                    for i in range(1, PRODUCTS + 1)]
        db.session.add_all(products)
        regions = ["华东", "华南", "华北", "西南", "东北"]
        customers = [Customer(name=f"客户{i}", phone=f"138{i:08d}", phones=[f"138{i:08d}"],
                              region=regions[i % 5], tier="standard", tags=[], owner_id=rep.id,
                              external_code=f"C-{i:05d}", custom={}) for i in range(1, CUSTOMERS + 1)]
        db.session.add_all(customers)
        db.session.flush()
        wh = inv.create_warehouse({"code": "WH-SH", "name": "上海仓"})
        for i, p in enumerate(products):
            qty = 10 if i >= PRODUCTS - scarce else stock
            inv.receive(p.id, wh.id, qty, unit_cost=p.cost, reference="bench seed")
        rep_token = issue_token(rep, "bench")
        owner_token = issue_token(owner, "bench")
        db.session.commit()
        return Seeded(rep.id, rep_token, owner_token, [c.id for c in customers], [p.id for p in products],
                      wh.id)


def order_body(rnd: random.Random, s: Seeded, lines: int = 3) -> dict[str, Any]:
    """One order of ``lines`` distinct products, quantities 1–3, for a customer of the rep."""
    pids = rnd.sample(s.product_ids, lines)
    return {"customer_id": rnd.choice(s.customer_ids),
            "lines": [{"product_id": p, "quantity": rnd.randint(1, 3)} for p in pids]}


# ---------------------------------------------------------------------------
# Statement counting
# ---------------------------------------------------------------------------


class StatementCounter:
    """Counts ``before_cursor_execute`` events on an engine (an executemany counts once)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine, self.count, self.on = engine, 0, False
        self.statements: list[str] = []  # the SQL text of the last counted block
        sa.event.listen(engine, "before_cursor_execute", self._hit)

    def _hit(self, _conn: Any, _cursor: Any, statement: str, _params: Any, _context: Any,
             executemany: bool) -> None:
        if self.on:
            self.count += 1
            self.statements.append(("[many] " if executemany else "") + " ".join(statement.split()))

    @contextmanager
    def counting(self):
        self.count, self.on, self.statements = 0, True, []
        try:
            yield self
        finally:
            self.on = False

    def close(self) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self._hit)


# ---------------------------------------------------------------------------
# Import file and bulk order lines
# ---------------------------------------------------------------------------


def import_csv(path: Path, orders: int, lines: int = 3) -> int:
    """A historical-orders CSV for ``dovetail import orders``: ``orders`` × ``lines`` rows."""
    rnd = random.Random(SEED + 1)
    statuses = ["completed", "completed", "shipped", "paid", "confirmed", "cancelled"]
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["external_number", "order_date", "status", "customer", "sku", "quantity", "unit_price"])
        for _ in range(orders):
            ext, status = f"HIST-{uuid.uuid4().hex[:10]}", rnd.choice(statuses)
            day = f"2025-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d} 10:{rnd.randint(0, 59):02d}"
            cust = f"C-{rnd.randint(1, CUSTOMERS):05d}"
            for p in rnd.sample(range(1, PRODUCTS + 1), lines):
                w.writerow([ext, day, status, cust, f"SKU-{p:04d}", rnd.randint(1, 3),
                            f"{rnd.randrange(2000, 90000) / 100:.2f}"])
    return orders * lines


def bulk_order_lines(app: Any, total_lines: int, *, per_order: int = 3, batch_orders: int = 50_000) -> float:
    """Add orders of ``per_order`` lines with ``INSERT … SELECT`` until ``orders_line`` holds
    ``total_lines`` rows (history over two years, mostly sales statuses, the seed's customers
    and products, costs and prices copied from the products). Returns seconds taken.

    Bypasses the API and the audit on purpose: this only builds a table of the right size
    for timing reports. Order ids are explicit (above the current maximum); the PostgreSQL
    sequence is moved past them afterwards.
    """
    from core.db import db

    t0 = time.perf_counter()
    with app.app_context():
        conn = db.session.connection()
        pg = conn.dialect.name == "postgresql"
        have = conn.execute(sa.text("SELECT count(*) FROM orders_line")).scalar()
        need_orders = max(0, (total_lines - have + per_order - 1) // per_order)
        rep = conn.execute(sa.text("SELECT id FROM core_user WHERE username = 'rep1'")).scalar()
        cmin, ccount = conn.execute(sa.text("SELECT min(id), count(*) FROM crm_customer")).one()
        pmin, pcount = conn.execute(sa.text("SELECT min(id), count(*) FROM catalog_product")).one()
        start = (conn.execute(sa.text("SELECT coalesce(max(id), 0) FROM orders_order")).scalar() or 0) + 1
        # Statuses: 8 of 10 count as sales in reports (confirmed…completed), draft and cancelled do not.
        status = ("CASE g.n % 10 WHEN 0 THEN 'draft' WHEN 1 THEN 'cancelled' WHEN 2 THEN 'confirmed' "
                  "WHEN 3 THEN 'paid' WHEN 4 THEN 'shipped' ELSE 'completed' END")
        if pg:
            when = ("(TIMESTAMP '2024-01-01 02:00:00' + (g.n % 730) * INTERVAL '1 day' "
                    "+ (g.n % 600) * INTERVAL '1 minute')")
            empty_json = "CAST('{}' AS JSONB)"
        else:
            when = "datetime('2024-01-01 02:00:00', '+' || (g.n % 730) || ' days', '+' || (g.n % 600) || ' minutes')"
            empty_json = "'{}'"
        done = 0
        while done < need_orders:
            n = min(batch_orders, need_orders - done)
            first = start + done
            numbers = (f"WITH RECURSIVE g(n) AS (SELECT {first} UNION ALL SELECT n + 1 FROM g "
                       f"WHERE n < {first + n - 1}) ")
            conn.execute(sa.text(
                numbers + "INSERT INTO orders_order (id, number, customer_id, owner_id, status, currency, subtotal, "
                "discount_total, total, placed_at, created_at, updated_at, created_by_id, custom) "
                f"SELECT g.n, 'BULK-' || g.n, {cmin} + g.n % {ccount}, {rep}, {status}, 'CNY', 0, 0, 0, "
                f"{when}, {when}, {when}, {rep}, {empty_json} FROM g"))
            positions = " UNION ALL ".join(f"SELECT {i} AS pos" for i in range(per_order))
            conn.execute(sa.text(
                "INSERT INTO orders_line (order_id, position, product_id, sku, name, category_id, quantity, "
                "unit_price, unit_cost, line_discount, line_total, is_gift, returned_quantity, created_at, "
                "updated_at) "
                "SELECT o.id, p.pos, pr.id, pr.sku, pr.name, pr.category_id, 1 + (o.id + p.pos) % 3, pr.price, "
                "pr.cost, 0, pr.price * (1 + (o.id + p.pos) % 3), FALSE, 0, o.placed_at, o.placed_at "
                f"FROM orders_order o CROSS JOIN ({positions}) p "
                f"JOIN catalog_product pr ON pr.id = {pmin} + (o.id * {per_order} + p.pos) % {pcount} "
                "WHERE o.id BETWEEN :a AND :b"), {"a": first, "b": first + n - 1})
            conn.execute(sa.text(
                "UPDATE orders_order SET subtotal = (SELECT sum(line_total) FROM orders_line l "
                "WHERE l.order_id = orders_order.id), total = (SELECT sum(line_total) FROM orders_line l "
                "WHERE l.order_id = orders_order.id) WHERE id BETWEEN :a AND :b"), {"a": first, "b": first + n - 1})
            db.session.commit()
            conn = db.session.connection()
            done += n
        if pg:
            conn.execute(sa.text("SELECT setval(pg_get_serial_sequence('orders_order', 'id'), "
                                 "(SELECT max(id) FROM orders_order))"))
            conn.execute(sa.text("ANALYZE"))
        else:
            conn.execute(sa.text("ANALYZE"))
        db.session.commit()
    return time.perf_counter() - t0
