"""Inventory domain logic — the public API of the inventory plugin.

Every change of ``on_hand`` or ``reserved`` is one conditional ``UPDATE … RETURNING``
on the stock row (``reserved = reserved + :q WHERE on_hand - reserved >= :q``), so racing
requests can never oversell: on PostgreSQL the second writer waits for the row lock and
re-checks the condition; on SQLite writers are serialised by ``BEGIN IMMEDIATE``. Every
change of ``on_hand`` appends one ledger row in the same transaction, so the ledger's sum
per product and warehouse always equals ``on_hand``. Callers commit.

Public functions (used by the hooks, the workflow actions, the API, CLI and web):

* :func:`reserve_for`, :func:`release_for`, :func:`issue_for`, :func:`receive_return`
  — stock for a source document (``source_type``/``source_id``, e.g. ``order``/42);
* :func:`receive`, :func:`issue`, :func:`adjust`, :func:`count`, :func:`transfer` —
  manual movements;
* :func:`availability`, :func:`stock_of`, :func:`default_warehouse`,
  :func:`set_reorder_point`, :func:`alerts_query`, :func:`ledger_sum`.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Integer, and_, case, column, func, insert, select, update, values
from sqlalchemy.exc import IntegrityError

from core.audit import current_actor
from core.audit import record as audit_record
from core.db import db, is_postgres, lock_for_update, quantize, utcnow
from core.errors import Conflict, NotFound, ValidationError
from core.events import emit
from core.state import dovetail
from plugins.catalog.public import Product
from plugins.inventory.models import Movement, ReorderPoint, Reservation, StockLevel, Warehouse

STOCK_COUNT_REASON = "stock count"

#: the string event emitted (for integrations) when available stock falls below the reorder point.
EVENT_STOCK_LOW = "inventory.stock.low"


# ---------------------------------------------------------------------------
# Settings and lookups
# ---------------------------------------------------------------------------


def settings() -> Mapping[str, Any]:
    return dovetail().settings("inventory")


def allow_negative() -> bool:
    return bool(settings().get("allow_negative_stock", False))


def default_warehouse() -> Warehouse:
    """The warehouse orders reserve from: setting ``default_warehouse`` (a code), else the
    first active warehouse by id. 409 when there is none."""
    code = settings().get("default_warehouse")
    if code:
        wh = db.session.scalar(select(Warehouse).where(Warehouse.code == code))
        if wh is None:
            raise Conflict(f"The default warehouse '{code}' (setting inventory.default_warehouse) "
                           "does not exist; create it or change the setting.")
        return wh
    wh = db.session.scalar(select(Warehouse).where(Warehouse.active.is_(True)).order_by(Warehouse.id).limit(1))
    if wh is None:
        raise Conflict("No warehouse to take stock from: create a warehouse first.")
    return wh


def get_warehouse(warehouse_id: int, field: str = "warehouse_id") -> Warehouse:
    wh = db.session.get(Warehouse, warehouse_id)
    if wh is None:
        raise ValidationError(f"No warehouse with id {warehouse_id}.",
                              fields={field: [f"No warehouse with id {warehouse_id}."]})
    return wh


def get_product(product_id: int, field: str = "product_id") -> Product:
    product = db.session.get(Product, product_id)
    if product is None:
        raise ValidationError(f"No product with id {product_id}.",
                              fields={field: [f"No product with id {product_id}."]})
    return product


def stock_of(product_id: int, warehouse_id: int) -> StockLevel | None:
    return db.session.scalar(select(StockLevel).where(StockLevel.product_id == product_id,
                                                      StockLevel.warehouse_id == warehouse_id))


def _stock_id(product_id: int, warehouse_id: int) -> int:
    """The stock row's id, creating an empty row when missing (safe under races)."""
    sid = db.session.scalar(select(StockLevel.id).where(StockLevel.product_id == product_id,
                                                        StockLevel.warehouse_id == warehouse_id))
    if sid is not None:
        return sid
    try:
        with db.session.begin_nested():
            row = StockLevel(product_id=product_id, warehouse_id=warehouse_id, on_hand=0, reserved=0)
            db.session.add(row)
            db.session.flush()
            return row.id
    except IntegrityError:  # another transaction created it first
        return db.session.scalar(select(StockLevel.id).where(StockLevel.product_id == product_id,
                                                             StockLevel.warehouse_id == warehouse_id))


def _expire(sid: int) -> None:
    obj = db.session.identity_map.get(db.session.identity_key(StockLevel, sid))
    if obj is not None:
        db.session.expire(obj)


def default_point(product_id: int) -> int | None:
    return db.session.scalar(select(ReorderPoint.reorder_point).where(ReorderPoint.product_id == product_id))


# ---------------------------------------------------------------------------
# The one primitive: change a stock row atomically
# ---------------------------------------------------------------------------


@dataclass
class Change:
    on_hand: int
    reserved: int

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


def _apply(product_id: int, warehouse_id: int, d_on: int = 0, d_res: int = 0, *,
           need_available: int | None = None, need_on_hand: int | None = None,
           need_reserved: int | None = None) -> Change | None:
    """``on_hand += d_on, reserved += d_res`` if the conditions hold; None when they do not.

    Conditions are part of the UPDATE's WHERE clause, never read-then-write in Python.
    Emits ``stock.low`` when available crosses below the reorder point.
    """
    sid = _stock_id(product_id, warehouse_id)
    stmt = update(StockLevel.__table__).where(StockLevel.__table__.c.id == sid)
    c = StockLevel.__table__.c
    if need_available is not None:
        stmt = stmt.where(c.on_hand - c.reserved >= need_available)
    if need_on_hand is not None:
        stmt = stmt.where(c.on_hand >= need_on_hand)
    if need_reserved is not None:
        stmt = stmt.where(c.reserved >= need_reserved)
    stmt = stmt.values(on_hand=c.on_hand + d_on, reserved=c.reserved + d_res, updated_at=utcnow())
    row = db.session.execute(stmt.returning(c.on_hand, c.reserved, c.reorder_point)).first()
    _expire(sid)
    if row is None:
        return None
    change = Change(row.on_hand, row.reserved)
    point = row.reorder_point if row.reorder_point is not None else default_point(product_id)
    before = change.available - (d_on - d_res)
    if point is not None and before >= point > change.available:
        _emit_low(product_id, warehouse_id, change, point)
    return change


def _emit_low(product_id: int, warehouse_id: int, change: Change, point: int) -> None:
    product = db.session.get(Product, product_id)
    wh = db.session.get(Warehouse, warehouse_id)
    emit(EVENT_STOCK_LOW, product_id=product_id, sku=product.sku, product_name=product.name,
         warehouse_id=warehouse_id, warehouse_code=wh.code, on_hand=change.on_hand,
         reserved=change.reserved, available=change.available, reorder_point=point)


def _ledger(kind: str, product_id: int, warehouse_id: int, quantity: int, balance_after: int, *,
            reason: str | None = None, reference: str | None = None, unit_cost: Decimal | None = None,
            source: tuple[str, int] | None = None, transfer_id: str | None = None) -> Movement:
    actor_id, _name = current_actor()
    mv = Movement(kind=kind, product_id=product_id, warehouse_id=warehouse_id, quantity=quantity,
                  balance_after=balance_after, reason=reason, reference=reference,
                  unit_cost=quantize(unit_cost) if unit_cost is not None else None,
                  source_type=source[0] if source else None, source_id=source[1] if source else None,
                  transfer_id=transfer_id, actor_id=actor_id)
    db.session.add(mv)
    return mv


def _available_now(product_id: int, warehouse_id: int) -> int:
    row = db.session.execute(select(StockLevel.on_hand, StockLevel.reserved).where(
        StockLevel.product_id == product_id, StockLevel.warehouse_id == warehouse_id)).first()
    return 0 if row is None else row.on_hand - row.reserved


def _short(product: Product, wh: Warehouse, requested: int) -> Conflict:
    avail = max(_available_now(product.id, wh.id), 0)
    return Conflict(f"Only {avail} of {product.sku} available in {wh.code}; {requested} requested",
                    fields={"quantity": [f"Only {avail} available in {wh.code}."]})


def _positive(quantity: Any, field: str = "quantity") -> int:
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
        raise ValidationError("The quantity must be a whole number above zero.",
                              fields={field: ["Must be a whole number above zero."]})
    return quantity


def _inbound_ok(wh: Warehouse, field: str = "warehouse_id") -> None:
    if not wh.active:
        raise Conflict(f"Warehouse {wh.code} is inactive; it cannot receive stock.",
                       fields={field: ["Inactive warehouse."]})


# ---------------------------------------------------------------------------
# Manual movements
# ---------------------------------------------------------------------------


def receive(product_id: int, warehouse_id: int, quantity: int, *, unit_cost: Decimal | None = None,
            reference: str | None = None, reason: str | None = None,
            source: tuple[str, int] | None = None) -> Movement:
    """Goods in (purchase receipt)."""
    product, wh, q = get_product(product_id), get_warehouse(warehouse_id), _positive(quantity)
    _inbound_ok(wh)
    change = _apply(product.id, wh.id, d_on=q)
    return _ledger("receipt", product.id, wh.id, q, change.on_hand, reason=reason, reference=reference,
                   unit_cost=unit_cost, source=source)


def issue(product_id: int, warehouse_id: int, quantity: int, *, reason: str | None = None,
          reference: str | None = None, source: tuple[str, int] | None = None) -> Movement:
    """Goods out not tied to a reservation; never takes stock promised to orders (unless
    negative stock is allowed)."""
    product, wh, q = get_product(product_id), get_warehouse(warehouse_id), _positive(quantity)
    change = _apply(product.id, wh.id, d_on=-q, need_available=None if allow_negative() else q)
    if change is None:
        raise _short(product, wh, q)
    return _ledger("issue", product.id, wh.id, -q, change.on_hand, reason=reason, reference=reference,
                   source=source)


def adjust(product_id: int, warehouse_id: int, delta: int, reason: str, *,
           reference: str | None = None) -> Movement:
    """Correct ``on_hand`` by ``delta`` (signed, non-zero) with a reason (damage, count…).

    On-hand may end below reserved (the count is a fact) but never below zero unless
    negative stock is allowed."""
    if isinstance(delta, bool) or not isinstance(delta, int) or delta == 0:
        raise ValidationError("An adjustment needs a non-zero whole quantity.",
                              fields={"quantity": ["Must be a whole number other than zero."]})
    if not (reason or "").strip():
        raise ValidationError("An adjustment needs a reason.", fields={"reason": ["Required for adjustments."]})
    product, wh = get_product(product_id), get_warehouse(warehouse_id)
    floor = -delta if delta < 0 and not allow_negative() else None
    change = _apply(product.id, wh.id, d_on=delta, need_on_hand=floor)
    if change is None:
        on_hand = db.session.scalar(select(StockLevel.on_hand).where(
            StockLevel.product_id == product.id, StockLevel.warehouse_id == wh.id)) or 0
        raise Conflict(f"Cannot remove {-delta} of {product.sku} from {wh.code}: only {on_hand} on hand "
                       "(negative stock is not allowed).", fields={"quantity": [f"Only {on_hand} on hand."]})
    return _ledger("adjustment", product.id, wh.id, delta, change.on_hand, reason=reason.strip(),
                   reference=reference)


def count(product_id: int, warehouse_id: int, counted: int, *, reason: str = STOCK_COUNT_REASON,
          reference: str | None = None) -> Movement | None:
    """Set on-hand to a counted quantity through an adjustment; None when it already matches."""
    if isinstance(counted, bool) or not isinstance(counted, int) or (counted < 0 and not allow_negative()):
        raise ValidationError("The counted quantity must be a whole number, zero or more.",
                              fields={"counted": ["Must be a whole number, zero or more."]})
    product, wh = get_product(product_id), get_warehouse(warehouse_id)
    sid = _stock_id(product.id, wh.id)
    row = db.session.execute(lock_for_update(select(StockLevel.on_hand).where(StockLevel.id == sid))).first()
    delta = counted - row.on_hand
    if delta == 0:
        return None
    return adjust(product.id, wh.id, delta, reason, reference=reference)


def transfer(product_id: int, from_warehouse_id: int, to_warehouse_id: int, quantity: int, *,
             reason: str | None = None, reference: str | None = None) -> tuple[Movement, Movement]:
    """Move stock between warehouses: two ledger rows sharing a ``transfer_id``."""
    product, q = get_product(product_id), _positive(quantity)
    src = get_warehouse(from_warehouse_id)
    dst = get_warehouse(to_warehouse_id, "to_warehouse_id")
    if src.id == dst.id:
        raise ValidationError("A transfer needs two different warehouses.",
                              fields={"to_warehouse_id": ["Must differ from the source warehouse."]})
    _inbound_ok(dst, "to_warehouse_id")
    # Lock both stock rows in id order first, so two opposite transfers cannot deadlock.
    ids = sorted([_stock_id(product.id, src.id), _stock_id(product.id, dst.id)])
    db.session.execute(lock_for_update(select(StockLevel.id).where(StockLevel.id.in_(ids)).order_by(StockLevel.id)))
    out = _apply(product.id, src.id, d_on=-q, need_available=None if allow_negative() else q)
    if out is None:
        raise _short(product, src, q)
    tid = uuid.uuid4().hex
    first = _ledger("transfer", product.id, src.id, -q, out.on_hand, reason=reason, reference=reference,
                    transfer_id=tid)
    into = _apply(product.id, dst.id, d_on=q)
    second = _ledger("transfer", product.id, dst.id, q, into.on_hand, reason=reason, reference=reference,
                     transfer_id=tid)
    return first, second


# ---------------------------------------------------------------------------
# Stock for source documents (orders, or any order-like workflow entity)
# ---------------------------------------------------------------------------


def _get(line: Any, key: str, default: Any = None) -> Any:
    if isinstance(line, Mapping):
        return line.get(key, default)
    return getattr(line, key, default)


def _needs(lines: Iterable[Any]) -> OrderedDict[int, int]:
    """Quantity per product over all lines (gift lines included), in product-id order."""
    need: dict[int, int] = {}
    for line in lines or ():
        pid, qty = _get(line, "product_id"), _get(line, "quantity")
        if pid is None or not qty:
            continue
        qty = int(qty)
        if qty <= 0:
            continue
        need[int(pid)] = need.get(int(pid), 0) + qty
    return OrderedDict(sorted(need.items()))  # a fixed order: no deadlock between two documents


def active_reservations(source_type: str, source_id: int) -> list[Reservation]:
    return list(db.session.scalars(select(Reservation).where(
        Reservation.source_type == source_type, Reservation.source_id == source_id,
        Reservation.status == "active").order_by(Reservation.product_id, Reservation.id)))


def reserve_for(source_type: str, source_id: int, lines: Iterable[Any], *,
                warehouse_id: int | None = None) -> list[Reservation]:
    """Reserve each product's total line quantity in one warehouse (default: the default
    warehouse). Idempotent: only the difference to what the document already holds is
    reserved (or released). Raises 409 "Only 3 of SKU-001 available in WH-SH; 5 requested"
    (one sentence per short product) when short — the caller's transaction then rolls back.

    A constant number of statements whatever the number of lines: the warehouse, the
    document's active reservations, one SELECT of the products' stock rows (row-locked in
    product order on PostgreSQL; SQLite writers already hold the write lock), one guarded
    UPDATE over all of them and one multi-row INSERT of the reservations. Only a product
    without a stock row yet (or a reservation that shrinks) costs statements of its own.
    """
    # The reads below do not depend on the caller's unsaved changes (the document's new
    # status, say), so they do not flush them: those go out with the caller's next flush,
    # in one UPDATE with whatever else it changes on that row.
    with db.session.no_autoflush:
        wh = get_warehouse(warehouse_id) if warehouse_id else default_warehouse()
        if not wh.active:
            raise Conflict(f"Warehouse {wh.code} is inactive; it cannot reserve stock.")
        need = _needs(lines)
        held: dict[int, list[Reservation]] = {}
        for r in active_reservations(source_type, source_id):
            held.setdefault(r.product_id, []).append(r)
    deltas: dict[int, int] = {}
    released = False
    for pid in sorted(set(need) | set(held)):
        delta = need.get(pid, 0) - sum(r.quantity for r in held.get(pid, []))
        if delta > 0:
            deltas[pid] = delta
        elif delta < 0:
            _release_quantity(held[pid], -delta)
            released = True
    if released:
        db.session.flush()
    if not deltas:
        return []
    with db.session.no_autoflush:
        rows = _stock_rows(deltas, wh)
        guard = not allow_negative()
        short = [(rows[pid], need[pid]) for pid, q in deltas.items() if guard and rows[pid].available < q]
        if short:
            raise _short_many(short, wh)
        after = _reserve_rows({rows[pid].stock_id: q for pid, q in deltas.items()}, guard)
        if len(after) != len(deltas):  # a guard refused a row after all: never oversell
            refused = {row.stock_id for row in rows.values()} - set(after)
            raise _short_many([(row, need[row.product_id]) for row in rows.values()
                               if row.stock_id in refused], wh, fresh=True)
        made = list(db.session.scalars(insert(Reservation).returning(Reservation), [
            {"source_type": source_type, "source_id": source_id, "product_id": pid, "warehouse_id": wh.id,
             "quantity": q, "status": "active", "created_at": utcnow()} for pid, q in deltas.items()]))
    for pid in deltas:
        row = rows[pid]
        on_hand, reserved = after[row.stock_id]
        if row.point is not None and row.available >= row.point > on_hand - reserved:
            _emit_low_row(row, wh, Change(on_hand, reserved))
    return made


@dataclass
class _StockRow:
    """A product's stock row in one warehouse as loaded (and locked) for a reservation."""

    product_id: int
    sku: str
    name: str
    stock_id: int
    on_hand: int
    reserved: int
    point: int | None  # the row's reorder point, else the product default

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


def _stock_rows(quantities: Mapping[int, int], wh: Warehouse) -> dict[int, _StockRow]:
    """The stock rows of these products in ``wh`` with SKU, name and reorder point, in one
    SELECT (``FOR UPDATE OF inventory_stock`` in product order on PostgreSQL, so two
    documents lock shared rows in the same order). Unknown products are a 422; a product
    with no stock row in ``wh`` gets an empty one (a statement or two, first time only)."""
    ids = sorted(quantities)
    s, p = StockLevel.__table__.c, Product.__table__.c
    stmt = (select(s.product_id, p.sku, p.name, s.id, s.on_hand, s.reserved,
                   func.coalesce(s.reorder_point, ReorderPoint.__table__.c.reorder_point))
            .join(Product.__table__, p.id == s.product_id)
            .outerjoin(ReorderPoint.__table__, ReorderPoint.__table__.c.product_id == s.product_id)
            .where(s.warehouse_id == wh.id, s.product_id.in_(ids)).order_by(s.product_id))
    if is_postgres():
        stmt = stmt.with_for_update(of=StockLevel.__table__)
    rows = {r[0]: _StockRow(*r) for r in db.session.execute(stmt)}
    missing = [pid for pid in ids if pid not in rows]
    if missing:
        for pid in missing:
            get_product(pid)  # 422 for an unknown product
            _stock_id(pid, wh.id)
        return _stock_rows(quantities, wh)
    return rows


def _reserve_rows(deltas: Mapping[int, int], guard: bool) -> dict[int, tuple[int, int]]:
    """``reserved += q`` on every stock row of ``deltas`` (stock id → q) in one UPDATE, each
    row only if it keeps ``on_hand - reserved >= 0`` when ``guard``; returns the rows it
    changed as stock id → (on_hand, reserved). PostgreSQL joins a ``VALUES`` list, SQLite
    (no column names on a VALUES table) picks each row's quantity with a CASE."""
    t = StockLevel.__table__
    c = t.c
    if is_postgres():
        v = values(column("sid", Integer), column("q", Integer), name="wanted").data(list(deltas.items()))
        stmt = update(t).where(c.id == v.c.sid).values(reserved=c.reserved + v.c.q, updated_at=utcnow())
        if guard:
            stmt = stmt.where(c.on_hand - c.reserved >= v.c.q)
    else:
        q = case(dict(deltas), value=c.id)
        stmt = update(t).where(c.id.in_(list(deltas))).values(reserved=c.reserved + q, updated_at=utcnow())
        if guard:
            stmt = stmt.where(c.on_hand - c.reserved >= q)
    out = {r.id: (r.on_hand, r.reserved) for r in db.session.execute(stmt.returning(c.id, c.on_hand, c.reserved))}
    for sid in deltas:
        _expire(sid)
    return out


def _short_many(short: list[tuple[_StockRow, int]], wh: Warehouse, *, fresh: bool = False) -> Conflict:
    """409 naming every short product ("Only 3 of SKU-002 available in WH-SH; 5 requested")."""
    parts, fields = [], []
    for row, requested in short:
        avail = max(_available_now(row.product_id, wh.id) if fresh else row.available, 0)
        parts.append(f"Only {avail} of {row.sku} available in {wh.code}; {requested} requested")
        fields.append(f"{row.sku}: only {avail} available in {wh.code}." if len(short) > 1
                      else f"Only {avail} available in {wh.code}.")
    return Conflict(". ".join(parts), fields={"quantity": fields})


def _emit_low_row(row: _StockRow, wh: Warehouse, change: Change) -> None:
    emit(EVENT_STOCK_LOW, product_id=row.product_id, sku=row.sku, product_name=row.name,
         warehouse_id=wh.id, warehouse_code=wh.code, on_hand=change.on_hand,
         reserved=change.reserved, available=change.available, reorder_point=row.point)


def _release_quantity(reservations: list[Reservation], quantity: int) -> None:
    for r in sorted(reservations, key=lambda r: -r.id):
        if quantity <= 0:
            break
        part = min(quantity, r.quantity)
        change = _apply(r.product_id, r.warehouse_id, d_res=-part, need_reserved=part)
        if change is None:
            raise Conflict(f"Stock row of product {r.product_id} holds less than reservation {r.id}.")
        if part == r.quantity:
            r.status, r.closed_at = "released", utcnow()
        else:
            r.quantity -= part
        quantity -= part


def release_for(source_type: str, source_id: int) -> int:
    """Release every active reservation of the document; returns the quantity released."""
    total = 0
    for r in active_reservations(source_type, source_id):
        change = _apply(r.product_id, r.warehouse_id, d_res=-r.quantity, need_reserved=r.quantity)
        if change is None:
            raise Conflict(f"Stock row of product {r.product_id} holds less than reservation {r.id}.")
        r.status, r.closed_at = "released", utcnow()
        total += r.quantity
    db.session.flush()
    return total


def issue_for(source_type: str, source_id: int, lines: Iterable[Any] | None = None, *,
              reference: str | None = None) -> list[Movement]:
    """Ship a document: each active reservation becomes an ``issue`` (on-hand and reserved
    both drop). Quantities of ``lines`` not covered by reservations are issued from the
    default warehouse, subject to availability."""
    out: list[Movement] = []
    issued: dict[int, int] = {}
    source = (source_type, source_id)
    for r in active_reservations(source_type, source_id):
        floor = None if allow_negative() else r.quantity
        change = _apply(r.product_id, r.warehouse_id, d_on=-r.quantity, d_res=-r.quantity,
                        need_reserved=r.quantity, need_on_hand=floor)
        if change is None:
            product, wh = db.session.get(Product, r.product_id), db.session.get(Warehouse, r.warehouse_id)
            raise Conflict(f"Cannot issue {r.quantity} of {product.sku} from {wh.code}: less is on hand "
                           "than was reserved (check the last stock count).")
        out.append(_ledger("issue", r.product_id, r.warehouse_id, -r.quantity, change.on_hand,
                           reference=reference, source=source))
        r.status, r.closed_at = "issued", utcnow()
        issued[r.product_id] = issued.get(r.product_id, 0) + r.quantity
    rest = {pid: q - issued.get(pid, 0) for pid, q in _needs(lines or ()).items() if q > issued.get(pid, 0)}
    if rest:
        wh = default_warehouse()
        for pid, q in rest.items():
            out.append(issue(pid, wh.id, q, reference=reference, source=source))
    db.session.flush()
    return out


def receive_return(source_type: str, source_id: int, items: Iterable[tuple[int, int]], *,
                   reference: str | None = None, reason: str | None = None,
                   issued_by: tuple[str, int] | None = None) -> list[Movement]:
    """Returned goods back in stock (``return`` rows), into the warehouse they were issued
    from (looked up on ``issued_by``, default the source itself), else the default one."""
    out = []
    origin = issued_by or (source_type, source_id)
    for pid, qty in items:
        qty = _positive(int(qty))
        wid = db.session.scalar(select(Movement.warehouse_id).where(
            Movement.source_type == origin[0], Movement.source_id == origin[1],
            Movement.product_id == pid, Movement.kind == "issue").order_by(Movement.id.desc()).limit(1))
        wh = db.session.get(Warehouse, wid) if wid else default_warehouse()
        get_product(pid)
        change = _apply(pid, wh.id, d_on=qty)
        out.append(_ledger("return", pid, wh.id, qty, change.on_hand, reason=reason, reference=reference,
                           source=(source_type, source_id)))
    db.session.flush()
    return out


def availability(product_ids: Iterable[int], warehouse_id: int | None = None) -> dict[int, int]:
    """Available quantity per product in one warehouse (default: the default warehouse)."""
    ids = [int(p) for p in product_ids]
    if not ids:
        return {}
    try:
        wid = warehouse_id or default_warehouse().id
    except Conflict:
        return {pid: 0 for pid in ids}
    rows = dict(db.session.execute(select(StockLevel.product_id, StockLevel.on_hand - StockLevel.reserved).where(
        StockLevel.warehouse_id == wid, StockLevel.product_id.in_(ids))).all())
    return {pid: int(rows.get(pid, 0)) for pid in ids}


# ---------------------------------------------------------------------------
# Reorder points and alerts
# ---------------------------------------------------------------------------


def set_reorder_point(product_id: int, point: int | None, warehouse_id: int | None = None) -> None:
    """Set (or clear with None) a warehouse's or the product's default reorder point."""
    if point is not None and (isinstance(point, bool) or not isinstance(point, int) or point < 0):
        raise ValidationError("The reorder point must be a whole number, zero or more.",
                              fields={"reorder_point": ["Must be a whole number, zero or more."]})
    product = get_product(product_id)
    # The audit entry comes first: it takes the audit chain's lock before any stock row is
    # locked, the same order as workflow transitions (no deadlock with a confirming order).
    if warehouse_id is not None:
        wh = get_warehouse(warehouse_id)
        sid = _stock_id(product.id, wh.id)
        row = db.session.get(StockLevel, sid)
        _audit_point(product.id, row.reorder_point, point, wh.code)
        row.reorder_point = point
    else:
        rp = db.session.scalar(select(ReorderPoint).where(ReorderPoint.product_id == product.id))
        _audit_point(product.id, rp.reorder_point if rp else None, point, "default")
        if point is None:
            if rp is not None:
                db.session.delete(rp)
        elif rp is None:
            db.session.add(ReorderPoint(product_id=product.id, reorder_point=point))
        else:
            rp.reorder_point = point
        try:
            _stock_id(product.id, default_warehouse().id)  # so the product shows in stock lists/alerts
        except Conflict:
            pass
    db.session.flush()


def _audit_point(product_id: int, before: int | None, after: int | None, where: str) -> None:
    audit_record(db.session, "update", "inventory_reorder_point", product_id,
                 before={"reorder_point": before, "warehouse": where},
                 after={"reorder_point": after, "warehouse": where})


def effective_point():
    """SQL expression: the stock row's reorder point, else the product default."""
    return func.coalesce(StockLevel.reorder_point, ReorderPoint.reorder_point)


def with_points(stmt):
    return stmt.outerjoin(ReorderPoint, ReorderPoint.product_id == StockLevel.product_id)


def alerts_query(stmt):
    """Restrict a ``select(StockLevel)`` to rows whose available is below their reorder point."""
    point = effective_point()
    return with_points(stmt).where(and_(point.is_not(None),
                                        StockLevel.on_hand - StockLevel.reserved < point))


def points_for(product_ids: Iterable[int]) -> dict[int, int]:
    ids = list(set(product_ids))
    if not ids:
        return {}
    return dict(db.session.execute(select(ReorderPoint.product_id, ReorderPoint.reorder_point).where(
        ReorderPoint.product_id.in_(ids))).all())


def stock_dict(row: StockLevel, defaults: Mapping[int, int]) -> dict[str, Any]:
    point = row.reorder_point if row.reorder_point is not None else defaults.get(row.product_id)
    source = "warehouse" if row.reorder_point is not None else ("product" if point is not None else None)
    return {"id": row.id, "product_id": row.product_id, "sku": row.product.sku, "name": row.product.name,
            "unit": row.product.unit, "warehouse_id": row.warehouse_id, "warehouse_code": row.warehouse.code,
            "on_hand": row.on_hand, "reserved": row.reserved, "available": row.available,
            "reorder_point": point, "reorder_point_source": source,
            "low": point is not None and row.available < point,
            "shortfall": max(point - row.available, 0) if point is not None else 0,
            "updated_at": row.updated_at}


def ledger_sum(product_id: int, warehouse_id: int) -> int:
    return int(db.session.scalar(select(func.coalesce(func.sum(Movement.quantity), 0)).where(
        Movement.product_id == product_id, Movement.warehouse_id == warehouse_id)) or 0)


def check_ledger() -> list[tuple[int, int, int, int]]:
    """Stock rows whose on-hand differs from the ledger sum: ``(product, warehouse, on_hand, sum)``."""
    sums = select(Movement.product_id, Movement.warehouse_id, func.sum(Movement.quantity).label("total")) \
        .group_by(Movement.product_id, Movement.warehouse_id).subquery()
    rows = db.session.execute(select(StockLevel.product_id, StockLevel.warehouse_id, StockLevel.on_hand,
                                     func.coalesce(sums.c.total, 0)).outerjoin(
        sums, and_(sums.c.product_id == StockLevel.product_id, sums.c.warehouse_id == StockLevel.warehouse_id)))
    return [tuple(r) for r in rows if int(r[2]) != int(r[3])]


# ---------------------------------------------------------------------------
# Warehouses
# ---------------------------------------------------------------------------


def create_warehouse(data: Mapping[str, Any], user: Any = None) -> Warehouse:
    code = data["code"].strip().upper()
    if db.session.scalar(select(Warehouse.id).where(Warehouse.code == code)) is not None:
        raise Conflict(f"Warehouse code '{code}' is already used.", fields={"code": ["Already used."]})
    wh = Warehouse(code=code, name=data["name"].strip(), address=data.get("address"),
                   active=data.get("active", True), created_by_id=getattr(user, "id", None))
    db.session.add(wh)
    db.session.flush()
    return wh


def update_warehouse(wh: Warehouse, data: Mapping[str, Any]) -> Warehouse:
    if "code" in data:
        code = data["code"].strip().upper()
        other = db.session.scalar(select(Warehouse.id).where(Warehouse.code == code))
        if other is not None and other != wh.id:
            raise Conflict(f"Warehouse code '{code}' is already used.", fields={"code": ["Already used."]})
        wh.code = code
    for key in ("name", "address", "active"):
        if key in data:
            setattr(wh, key, data[key].strip() if isinstance(data[key], str) else data[key])
    db.session.flush()
    return wh


def delete_warehouse(wh: Warehouse) -> None:
    used = db.session.scalar(select(Movement.id).where(Movement.warehouse_id == wh.id).limit(1)) or \
        db.session.scalar(select(Reservation.id).where(Reservation.warehouse_id == wh.id).limit(1))
    if used is not None:
        raise Conflict(f"Warehouse {wh.code} has stock history; deactivate it instead of deleting it.")
    db.session.execute(StockLevel.__table__.delete().where(StockLevel.__table__.c.warehouse_id == wh.id))
    db.session.delete(wh)
    db.session.flush()


def find_warehouse(code: str) -> Warehouse:
    wh = db.session.scalar(select(Warehouse).where(Warehouse.code == code.strip().upper()))
    if wh is None:
        raise NotFound(f"No warehouse with code '{code}'.")
    return wh
