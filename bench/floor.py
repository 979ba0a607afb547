"""The floor: a bare Flask + Flask-SQLAlchemy app writing the same rows as Dovetail.

It is what a careful developer would write by hand for the same two endpoints, minimal
but correct, against the same tables (created from Dovetail's models, same seed):

* ``POST /orders`` — bearer token → user with a selling role (1 statement), the customer
  must be the user's (1), products priced from the catalogue (1), the next
  ``SO-<year>-<n>`` number from ``orders_sequence`` (1–2), the order row (1) and its lines
  (1 executemany); Idempotency-Key: the same key replays the first order, another body is 409.
* ``POST /orders/<id>/confirm`` — token (1), the user's draft order, row-locked on
  PostgreSQL (1), its lines (1), the default warehouse (1), per product a conditional
  ``UPDATE inventory_stock SET reserved = reserved + q WHERE … on_hand - reserved >= q``
  (409 and rollback when short: never oversells), the reservations (1 executemany) and the
  status update (1).

What it leaves out is what Dovetail adds: the plugin manager and hooks, roles from config
and the permission/scope layer, marshmallow and custom fields, the workflow engine with
guards and transition history, the audit chain, domain events (crm purchase statistics,
marketing), personal-data access logging, and the fuller response body.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from flask import Flask, abort, current_app, jsonify, request
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Numeric, bindparam, event, text
from sqlalchemy.exc import IntegrityError

SELLING_ROLES = ("rep", "manager", "admin")
CENT = Decimal("0.01")
MONEY = Numeric(14, 2, asdecimal=True)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Same storage settings as Dovetail's SQLite engine (WAL, synchronous=NORMAL): a fair floor.
    dbapi_connection.isolation_level = None
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")  # writers queue instead of failing mid-way


def _db() -> SQLAlchemy:
    return current_app.extensions["floor_db"]


def q(sql: str, **params: Any) -> Any:
    return _db().session.execute(text(sql), params)


def user_id() -> int:
    db = _db()
    auth = request.headers.get("Authorization", "")
    if not auth.startswith("Bearer "):
        abort(401)
    digest = hashlib.sha256(auth[7:].encode()).hexdigest()
    uid = db.session.execute(text(
        "SELECT u.id FROM core_api_token t JOIN core_user u ON u.id = t.user_id "
        "WHERE t.token_hash = :h AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > :now) "
        "AND u.active AND EXISTS (SELECT 1 FROM core_user_role r WHERE r.user_id = u.id AND r.role IN :roles)"
    ).bindparams(bindparam("roles", expanding=True)),
        {"h": digest, "now": _now(), "roles": list(SELLING_ROLES)}).scalar()
    if uid is None:
        abort(401)
    return uid


def error(status: int, message: str):
    _db().session.rollback()
    return jsonify({"error": message}), status


def create():
    """POST /orders: a draft order priced from the catalogue (idempotent with Idempotency-Key)."""
    db = _db()
    uid = user_id()
    body = request.get_json(silent=True) or {}
    key = (request.headers.get("Idempotency-Key") or "").strip() or None
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    raw = body.get("lines")
    if not isinstance(raw, list) or not raw or len(raw) > 500:
        return error(422, "lines: 1 to 500 lines")
    lines: list[tuple[int, int]] = []
    for ln in raw:
        if not isinstance(ln, dict):
            return error(422, "each line is an object")
        pid, qty = ln.get("product_id"), ln.get("quantity")
        if not isinstance(pid, int) or not isinstance(qty, int) or not 1 <= qty <= 100_000:
            return error(422, "each line needs product_id and a quantity 1..100000")
        lines.append((pid, qty))
    cid = body.get("customer_id")
    if not isinstance(cid, int) or q("SELECT 1 FROM crm_customer WHERE id = :c AND owner_id = :u",
                                     c=cid, u=uid).scalar() is None:
        return error(422, "customer_id: no such customer of yours")
    prods = {r.id: r for r in db.session.execute(text(
        "SELECT id, sku, name, category_id, price, cost FROM catalog_product WHERE active AND id IN :ids")
        .bindparams(bindparam("ids", expanding=True)).columns(price=MONEY, cost=MONEY),
        {"ids": sorted({p for p, _ in lines})})}
    if any(p not in prods for p, _ in lines):
        return error(422, "lines: unknown or inactive product")
    now = _now()
    year = now.year
    last = q("UPDATE orders_sequence SET last = last + 1 WHERE prefix = 'SO' AND year = :y RETURNING last",
             y=year).scalar()
    if last is None:
        q("INSERT INTO orders_sequence (prefix, year, last) VALUES ('SO', :y, 1)", y=year)
        last = 1
    rows, subtotal = [], Decimal(0)
    for i, (pid, qty) in enumerate(lines):
        p = prods[pid]
        total = (p.price * qty).quantize(CENT, ROUND_HALF_UP)
        subtotal += total
        # Money is bound as text: exact on PostgreSQL, NUMERIC affinity on SQLite (as Dovetail stores it).
        rows.append({"pos": i, "pid": pid, "sku": p.sku, "name": p.name, "cat": p.category_id, "qty": qty,
                     "price": str(p.price), "cost": str(p.cost), "total": str(total), "now": now})
    try:
        oid = q("INSERT INTO orders_order (number, customer_id, owner_id, status, currency, subtotal, "
                "discount_total, total, placed_at, idempotency_key, idempotency_hash, custom, created_at, "
                "updated_at, created_by_id) VALUES (:num, :c, :u, 'draft', 'CNY', :t, 0, :t, :now, :key, :hash, "
                "'{}', :now, :now, :u) RETURNING id",
                num=f"SO-{year}-{last:06d}", c=cid, u=uid, t=str(subtotal), now=now, key=key,
                hash=digest if key else None).scalar()
    except IntegrityError:
        db.session.rollback()
        row = q("SELECT id, idempotency_hash FROM orders_order WHERE created_by_id = :u AND idempotency_key = :k",
                u=uid, k=key).first() if key else None
        if row is None:
            return error(409, "concurrent change; retry")
        if row.idempotency_hash != digest:
            return error(409, "Idempotency-Key already used with another body")
        return jsonify({"id": row.id}), 200
    for r in rows:
        r["oid"] = oid
    db.session.execute(text(
        "INSERT INTO orders_line (order_id, position, product_id, sku, name, category_id, quantity, unit_price, "
        "unit_cost, line_discount, line_total, is_gift, returned_quantity, created_at, updated_at) VALUES "
        "(:oid, :pos, :pid, :sku, :name, :cat, :qty, :price, :cost, 0, :total, FALSE, 0, :now, :now)"), rows)
    db.session.commit()
    return jsonify({"id": oid, "number": f"SO-{year}-{last:06d}", "customer_id": cid, "owner_id": uid,
                    "status": "draft", "currency": "CNY", "total": str(subtotal),
                    "lines": [{"product_id": r["pid"], "sku": r["sku"], "name": r["name"], "quantity": r["qty"],
                               "unit_price": r["price"], "line_total": r["total"]} for r in rows]}), 201


def confirm(oid: int):
    """POST /orders/<id>/confirm: reserve stock for every line (409, nothing kept, when short)."""
    db = _db()
    pg = db.engine.dialect.name == "postgresql"
    uid = user_id()
    lock = " FOR UPDATE" if pg else ""
    order = q("SELECT id, status FROM orders_order WHERE id = :o AND owner_id = :u" + lock, o=oid, u=uid).first()
    if order is None:
        return error(404, "no such order")
    if order.status != "draft":
        return error(409, f"order is {order.status}")
    need: dict[int, int] = {}
    for pid, qty in q("SELECT product_id, quantity FROM orders_line WHERE order_id = :o", o=oid):
        need[pid] = need.get(pid, 0) + qty
    if not need:
        return error(409, "the order has no lines")
    wid = q("SELECT id FROM inventory_warehouse WHERE active ORDER BY id LIMIT 1").scalar()
    now = _now()
    for pid, qty in sorted(need.items()):  # a fixed order: no deadlock between two confirms
        res = q("UPDATE inventory_stock SET reserved = reserved + :q, updated_at = :now WHERE product_id = :p "
                "AND warehouse_id = :w AND on_hand - reserved >= :q", q=qty, now=now, p=pid, w=wid)
        if res.rowcount != 1:
            return error(409, f"not enough stock of product {pid}")
    db.session.execute(text(
        "INSERT INTO inventory_reservation (source_type, source_id, product_id, warehouse_id, quantity, status, "
        "created_at) VALUES ('order', :o, :p, :w, :q, 'active', :now)"),
        [{"o": oid, "p": pid, "w": wid, "q": qty, "now": now} for pid, qty in sorted(need.items())])
    q("UPDATE orders_order SET status = 'confirmed', confirmed_at = :now, stock_state = 'reserved', "
      "updated_at = :now WHERE id = :o", now=now, o=oid)
    db.session.commit()
    return jsonify({"id": oid, "status": "confirmed"}), 200


def floor_app(database_url: str) -> Flask:
    app = Flask("floor")
    app.config["SQLALCHEMY_DATABASE_URI"] = database_url
    if database_url.startswith("sqlite"):
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"connect_args": {"check_same_thread": False, "timeout": 30}}
    db = SQLAlchemy()
    db.init_app(app)
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            event.listen(db.engine, "connect", _sqlite_pragmas)
            event.listen(db.engine, "begin", _sqlite_begin)
    app.extensions["floor_db"] = db
    app.post("/orders")(create)
    app.post("/orders/<int:oid>/confirm")(confirm)
    return app
