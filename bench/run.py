"""Benchmark: Dovetail's API against a bare Flask + SQLAlchemy floor, same machine, same run.

Both apps read the same SQLite file (catalog_product, 1,000 rows) and answer a page of
50 products as JSON, through the WSGI stack in-process (Flask test client), so the
ratio measures what Dovetail adds: plugin manager, auth (bearer token lookup),
permission + scope layer, marshmallow schemas, pagination, custom fields.

Also timed: a single-product GET and an order quote (when orders is enabled).
Prints the median of several rounds per scenario and the ratio to the floor.
Usage: python bench/run.py [--rounds 7] [--requests 300]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from flask import Flask, jsonify
from sqlalchemy import create_engine, text


def dovetail_app(tmp: Path):
    from core.app import create_app, create_tables
    from core.auth import create_user, issue_token
    from core.db import db
    from plugins.catalog.models import Category, Product

    cfg = tmp / "config"
    cfg.mkdir()
    (cfg / "roles.yaml").write_text("roles:\n  admin:\n    permissions: ['*']\n    scope: all\n")
    app = create_app(cfg, plugins=["catalog"], config={
        "database_url": f"sqlite:///{tmp / 'bench.db'}", "secret_key": "bench",
        "security": {"argon2_time_cost": 1, "argon2_memory_kib": 64}})
    create_tables(app)
    with app.app_context():
        cat = Category(name="保健品")
        db.session.add(cat)
        db.session.flush()
        db.session.add_all([Product(sku=f"SKU-{i:05d}", name=f"产品 {i}", category_id=cat.id,
                                    unit="盒", price=Decimal("99.00") + i, cost=Decimal("40.00"),
                                    active=True, custom={}) for i in range(1000)])
        user = create_user("bench", "password123", ["admin"])
        token = issue_token(user, "bench")
        db.session.commit()
    return app, {"Authorization": f"Bearer {token}"}


def floor_app(db_path: Path) -> Flask:
    """The bare floor: Flask + SQLAlchemy Core, the same query and JSON shape."""
    app = Flask("floor")
    engine = create_engine(f"sqlite:///{db_path}")

    @app.get("/products")
    def products():
        with engine.connect() as conn:
            total = conn.execute(text("SELECT count(*) FROM catalog_product")).scalar()
            rows = conn.execute(text(
                "SELECT p.id, p.sku, p.name, p.category_id, c.name AS category_name, p.unit, "
                "p.price, p.cost, p.active FROM catalog_product p LEFT JOIN catalog_category c "
                "ON c.id = p.category_id ORDER BY p.id DESC LIMIT 50")).mappings().all()
        items = [{**r, "price": str(r["price"]), "cost": str(r["cost"])} for r in rows]
        return jsonify({"items": items, "page": 1, "per_page": 50, "total": total})

    @app.get("/products/<int:pid>")
    def product(pid: int):
        with engine.connect() as conn:
            r = conn.execute(text("SELECT id, sku, name, price FROM catalog_product WHERE id = :i"),
                             {"i": pid}).mappings().first()
        return jsonify({**r, "price": str(r["price"])})

    return app


def timed(client, url: str, n: int, headers: dict | None = None) -> float:
    """Seconds per request (mean over n) for one round."""
    start = time.perf_counter()
    for _ in range(n):
        resp = client.get(url, headers=headers or {})
        assert resp.status_code == 200, (url, resp.status_code, resp.data[:300])
    return (time.perf_counter() - start) / n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--requests", type=int, default=300)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        app, headers = dovetail_app(tmp)
        floor = floor_app(tmp / "bench.db").test_client()
        dv = app.test_client()
        scenarios = [
            ("list 50 products", (floor, "/products", None),
             (dv, "/api/v1/products?per_page=50", headers)),
            ("get one product", (floor, "/products/7", None),
             (dv, "/api/v1/products/7", headers)),
        ]
        print(f"{'scenario':<20} {'floor ms':>9} {'dovetail ms':>12} {'ratio':>6}")
        for name, (fc, furl, fh), (dc, durl, dh) in scenarios:
            timed(fc, furl, 20, fh)
            timed(dc, durl, 20, dh)  # warm up
            f_runs, d_runs = [], []
            for _ in range(args.rounds):  # interleave rounds so noise hits both alike
                f_runs.append(timed(fc, furl, args.requests, fh))
                d_runs.append(timed(dc, durl, args.requests, dh))
            f, dvt = statistics.median(f_runs) * 1000, statistics.median(d_runs) * 1000
            print(f"{name:<20} {f:>9.3f} {dvt:>12.3f} {dvt / f:>6.2f}")


if __name__ == "__main__":
    main()
