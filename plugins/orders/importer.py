"""Historical order import (``dovetail import orders FILE``) on the shared row-import driver.

One row per order line; rows are grouped into orders by ``external_number``. Each row is
loaded through :class:`OrderRowIn`, then the customer (external code or phone), product
(SKU) and owner (username) are looked up in bulk: one SELECT per kind per batch of rows,
cached for the rest of the file. An order is saved only when all its rows are good, and
skipped when its external number exists already.

Orders are written in batches of up to 500 with bulk statements: the numbers of a batch
are allocated with one UPDATE per year, orders, lines and payments go in as multi-row
INSERTs, and one audit entry records the batch. Historical orders reserve no stock and run
no workflow or promotion; the prices in the file are kept. Other plugins learn of a batch
through ``orders_imported`` (crm records its purchase history in bulk from it), or per order
through ``order_created(imported=True)`` when they implement only that, so reports, purchase
statistics and performance see the same rows as for a live order.

The ``owner`` column is the rep's username (the export writes it); when the file has no
owner cell the order goes to ``default_owner`` (the importing user, ``--owner`` on the
command line) or, without one, to the customer's owner rep.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

from marshmallow import Schema, fields, validate
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from core import custom
from core.audit import acting_as, record
from core.auth import normalize_username
from core.db import db, quantize, utcnow
from core.errors import Conflict, DovetailError
from core.events import emit
from core.importer import ImportReport, Problems, RowImport, bulk_insert, run_import
from core.models import User
from core.state import dovetail
from core.statemachine import machine_for
from plugins.catalog.public import Product
from plugins.crm.public import Customer, normalise_phone
from plugins.orders import services
from plugins.orders.models import ZERO, Order, OrderLine, OrderSequence, Payment
from plugins.orders.pricing import CartLine

#: which state timestamps a historical order in each status gets (all = the order date).
STAMPS = {
    "confirmed": ("confirmed_at",),
    "paid": ("confirmed_at", "paid_at"),
    "shipped": ("confirmed_at", "paid_at", "shipped_at"),
    "completed": ("confirmed_at", "paid_at", "shipped_at", "completed_at"),
    "cancelled": ("cancelled_at",),
    "returned": ("confirmed_at", "paid_at", "shipped_at", "returned_at"),
}
PAID = {"paid", "shipped", "completed", "returned"}
STAMP_COLUMNS = ("confirmed_at", "paid_at", "shipped_at", "completed_at", "cancelled_at", "returned_at")
#: orders written per bulk batch (``--batch``).
ORDER_BATCH = 500
MAX_AMOUNT = Decimal("1e10")


@lru_cache(maxsize=4096)  # the lines of one order repeat its date
def parse_when(text: str) -> datetime:
    """``2026-01-31``, ``2026/01/31``, ``2026-01-31 14:05[:09]`` or ISO → a naive datetime."""
    raw = text.strip().replace("/", "-").replace("T", " ")
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"):
        try:
            return datetime.strptime(raw, fmt)
        except ValueError:
            continue
    try:
        return datetime.fromisoformat(text.strip()).replace(tzinfo=None)
    except ValueError:
        raise ValueError("Not a date; use YYYY-MM-DD (optionally with HH:MM).") from None


class _When(fields.Field):
    """A local date/time cell (see :func:`parse_when`)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        try:
            return parse_when(str(value))
        except ValueError as exc:
            raise self.make_error("invalid", message=str(exc)) from None

    default_error_messages = {"invalid": "Not a date; use YYYY-MM-DD (optionally with HH:MM)."}


class _Amount(fields.Field):
    """A non-negative amount in yuan, 2 places."""

    default_error_messages = {"invalid": "Not a valid amount (e.g. 128.00, not negative)."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Decimal:
        try:
            amount = quantize(Decimal(str(value).replace(",", "")))
        except (InvalidOperation, ValueError):
            raise self.make_error("invalid") from None
        if not amount.is_finite() or amount < 0 or amount >= MAX_AMOUNT:
            raise self.make_error("invalid")
        return amount


_REQUIRED = {"required": "Required."}
_QTY = f"A whole number between 1 and {services.MAX_QUANTITY}."


class OrderRowIn(Schema):
    """One row of the order import file (one order line)."""

    external_number = fields.String(required=True, error_messages=_REQUIRED,
                                    validate=validate.Length(max=64, error="At most 64 characters."))
    order_date = _When(required=True, error_messages=_REQUIRED)
    status = fields.String(required=True, error_messages=_REQUIRED)
    customer = fields.String(required=True, error_messages=_REQUIRED)
    sku = fields.String(required=True, error_messages=_REQUIRED)
    quantity = fields.Integer(required=True, strict=False, error_messages={**_REQUIRED, "invalid": _QTY},
                              validate=validate.Range(1, services.MAX_QUANTITY, error=_QTY))
    unit_price = _Amount(load_default=None)
    owner = fields.String(load_default=None)
    custom = fields.Dict(keys=fields.String(), load_default=dict)


class OrderImport(RowImport):
    """Historical orders, one row per line (see the module docstring)."""

    noun = "orders"
    required = frozenset({"external_number", "order_date", "status", "customer", "sku", "quantity",
                          "unit_price"})
    columns = frozenset({*required, "owner", "number", "name", "line_discount", "line_total", "order_subtotal",
                         "order_discount", "order_total", "currency"})
    outcomes = ("imported", "skipped", "lines")
    summary_format = "{imported} orders ({lines} lines), {skipped} already imported, {rejected} rejected"
    schema = OrderRowIn()

    def __init__(self, default_owner: User | None = None, source: str = "", batch: int = ORDER_BATCH) -> None:
        self.default_owner = default_owner
        self.batch = batch
        self.source = source
        self.states = set(machine_for("order").states)
        self.customers: dict[str, tuple[int, int | None] | None] = {}
        self.products: dict[str, Any] = {}
        self.owners: dict[str, int | None] = {}
        self.groups: dict[str, list[dict[str, Any]]] = {}
        self.bad: set[str] = set()

    # --- per row ------------------------------------------------------------

    def parse(self, line: int, row: dict[str, str]) -> tuple[dict[str, Any], Problems]:
        data: dict[str, Any] = {k: v for k, v in row.items() if v != "" and k in OrderRowIn._declared_fields}
        values = {k[len("custom."):]: v for k, v in row.items() if k.startswith("custom.") and v != ""}
        if values:
            data["custom"] = values
        return data, []

    def check(self, line: int, data: dict[str, Any], failed: set[str]) -> Problems:
        problems: Problems = []
        status = (data.get("status") or "").strip().lower()
        if "status" not in failed:
            if status not in self.states:
                problems.append(("status", f"Unknown status '{data.get('status', '')}'; use one of: "
                                           f"{', '.join(sorted(self.states))}."))
            data["status"] = status
        if data.get("custom"):
            try:
                data["custom"] = custom.validate("order", data["custom"], None)
            except DovetailError as exc:
                messages = (exc.fields or {}).get("custom") or {"": [exc.message]}
                for key, msgs in (messages.items() if isinstance(messages, dict) else [("", messages)]):
                    text = "; ".join(map(str, msgs)) if isinstance(msgs, list) else str(msgs)
                    problems.append((f"custom.{key}" if key else "custom", text))
        return problems

    def validate(self, line: int, row: dict[str, str]) -> tuple[dict[str, Any], Problems]:
        """Every row goes on to :meth:`save_batch`, its problems with it: the database lookups
        are done there in bulk, and a row's report names every bad cell."""
        data, problems = super().validate(line, row)
        data["_problems"] = problems
        return data, []

    def save_batch(self, items: list[tuple[int, dict[str, Any]]], report: ImportReport) -> None:
        """Look up the batch's customers, products and owners in bulk, then group good rows."""
        self._lookup([d["customer"] for _l, d in items if d.get("customer")],
                     [d["sku"] for _l, d in items if d.get("sku")],
                     [d["owner"] for _l, d in items if d.get("owner")])
        for line, data in items:
            problems = data.pop("_problems") + self._resolve(data)
            ext = data.get("external_number")
            if not ext:
                report.reject(line, problems)
                continue
            group = self.groups.setdefault(ext, [])
            if group and not problems:
                first = group[0]
                for key, col in (("order_date", "order_date"), ("status", "status"),
                                 ("customer_id", "customer"), ("owner_id", "owner"), ("custom", "custom")):
                    if data.get(key) != first.get(key):
                        problems.append((col, f"Differs from line {first['line']} of order {ext}."))
            if problems:
                report.reject(line, problems)
                self.bad.add(ext)
                continue
            data["line"] = line
            group.append(data)

    def _lookup(self, customers: Iterable[str], skus: Iterable[str], owners: Iterable[str]) -> None:
        new = {c for c in customers if c not in self.customers}
        if new:
            found = {code: (cid, owner) for cid, code, owner in db.session.execute(
                select(Customer.id, Customer.external_code, Customer.owner_id)
                .where(Customer.external_code.in_(new)))}
            phones: dict[str, str] = {}
            for text in new - set(found):
                try:
                    phone = normalise_phone(text)
                except DovetailError:
                    phone = None
                if phone:
                    phones[text] = phone
            by_phone: dict[str, tuple[int, int | None]] = {}
            if phones:
                # rows stored before E.164 hold a mainland mobile's 11 digits: match those too
                wanted = set(phones.values()) | {p[3:] for p in phones.values() if p.startswith("+86")}
                for cid, phone, owner in db.session.execute(
                        select(Customer.id, Customer.phone, Customer.owner_id)
                        .where(Customer.phone.in_(wanted)).order_by(Customer.id.desc())):
                    key = phone if phone.startswith("+") else "+86" + phone
                    by_phone[key] = (cid, owner)  # the lowest id wins (ordered descending)
            for text in new:
                self.customers[text] = found.get(text) or by_phone.get(phones.get(text, ""))
        new = {s for s in skus if s not in self.products}
        if new:
            rows = {p.sku: p for p in db.session.execute(
                select(Product.id, Product.sku, Product.name, Product.category_id, Product.price, Product.cost)
                .where(Product.sku.in_(new)))}
            self.products.update({s: rows.get(s) for s in new})
        new = {o for o in owners if o not in self.owners}
        if new:
            names = {o: normalize_username(o, strict=False) for o in new}
            ids = dict(db.session.execute(select(User.username, User.id).where(
                User.username.in_(set(names.values())), User.active.is_(True))).all())
            self.owners.update({o: ids.get(n) for o, n in names.items()})

    def _resolve(self, data: dict[str, Any]) -> Problems:
        problems: Problems = []
        cust = self.customers.get(data["customer"]) if data.get("customer") else None
        if cust is not None:
            data["customer_id"], customer_owner = cust
            data["owner_id"] = (self.default_owner.id if self.default_owner is not None else customer_owner)
        elif data.get("customer"):
            problems.append(("customer", f"No customer with external code or phone '{data['customer']}'."))
        product = self.products.get(data["sku"]) if data.get("sku") else None
        if product is not None:
            data["product"] = product
            if data.get("unit_price") is None and "unit_price" in data:
                data["unit_price"] = quantize(product.price)
        elif data.get("sku"):
            problems.append(("sku", f"No product with SKU '{data['sku']}'."))
        if data.get("owner"):
            owner_id = self.owners.get(data["owner"])
            if owner_id is None:
                problems.append(("owner", f"No active user '{data['owner']}'."))
            data["owner_id"] = owner_id
        return problems

    # --- saving -------------------------------------------------------------

    def finish(self, report: ImportReport, commit: Callable[[], None]) -> None:
        """Write the good orders in bulk batches, committing after each."""
        keys = [k for k, g in self.groups.items() if k not in self.bad and g]
        report.counts["rejected"] = len(self.bad)
        with acting_as(self.default_owner, "import"):
            for i in range(0, len(keys), self.batch):
                chunk = keys[i:i + self.batch]
                existing = set(db.session.scalars(select(Order.external_number)
                                                  .where(Order.external_number.in_(chunk))))
                todo = [k for k in chunk if k not in existing]
                report.counts["skipped"] += len(chunk) - len(todo)
                if todo:
                    self._write([self.groups[k] for k in todo])
                    report.counts["imported"] += len(todo)
                    report.counts["lines"] += sum(len(self.groups[k]) for k in todo)
                commit()

    def _write(self, groups: list[list[dict[str, Any]]]) -> None:
        now = utcnow()
        actor = self.default_owner.id if self.default_owner is not None else None
        currency = services.settings().get("currency", "CNY")
        by_year: dict[int, int] = defaultdict(int)
        for g in groups:
            by_year[g[0]["order_date"].year] += 1
        numbers = {year: iter(allocate_numbers("SO", year, n)) for year, n in sorted(by_year.items())}
        orders, totals = [], []
        for g in groups:
            head = g[0]
            placed = services.to_utc(head["order_date"])  # the file speaks the company's local time
            total = quantize(sum((quantize(r["unit_price"] * r["quantity"]) for r in g), ZERO))
            stamps = STAMPS.get(head["status"], ())
            orders.append({"number": next(numbers[head["order_date"].year]), "customer_id": head["customer_id"],
                           "owner_id": head["owner_id"], "status": head["status"], "currency": currency,
                           "subtotal": total, "discount_total": ZERO, "total": total, "coupon_code": None,
                           "placed_at": placed, "external_number": head["external_number"],
                           "custom": dict(head.get("custom") or {}), "notes": None,
                           **{c: placed if c in stamps else None for c in STAMP_COLUMNS},
                           "created_at": now, "updated_at": now, "created_by_id": actor})
            totals.append((total, placed, head["status"]))
        # One bulk INSERT and one SELECT for the ids (INSERT … RETURNING of 500 rows would be
        # one statement of 10,000 parameters for the driver to parse).
        bulk_insert(Order.__table__, orders)
        by_number = dict(db.session.execute(select(Order.number, Order.id).where(
            Order.number.in_([o["number"] for o in orders]))).all())
        ids = [by_number[o["number"]] for o in orders]
        lines, payments = [], []
        for oid, g, (total, placed, status) in zip(ids, groups, totals, strict=True):
            for pos, r in enumerate(g):
                p = r["product"]
                lines.append({"order_id": oid, "position": pos, "product_id": p.id, "sku": p.sku, "name": p.name,
                              "category_id": p.category_id, "quantity": r["quantity"], "unit_price": r["unit_price"],
                              "unit_cost": quantize(p.cost or ZERO), "line_discount": ZERO,
                              "line_total": quantize(r["unit_price"] * r["quantity"]), "is_gift": False,
                              "promotion_id": None,
                              "returned_quantity": r["quantity"] if status == "returned" else 0,
                              "created_at": now, "updated_at": now, "created_by_id": actor})
            if status in PAID and total > 0:
                kinds = ("payment", "refund") if status == "returned" else ("payment",)
                payments.extend({"order_id": oid, "kind": kind, "amount": total, "method": "import",
                                 "reference": None, "return_id": None, "paid_at": placed, "created_at": now,
                                 "updated_at": now, "created_by_id": actor} for kind in kinds)
        bulk_insert(OrderLine.__table__, lines)
        bulk_insert(Payment.__table__, payments)
        record(db.session, "import", "order", f"{ids[0]}-{ids[-1]}", after={
            "orders": len(ids), "lines": len(lines), "ids": ids, "file": self.source},
            note=f"historical import of {len(ids)} orders ({len(lines)} lines)")
        records = [ImportedOrder(id=oid, **{k: row[k] for k in ImportedOrder.COLUMNS})
                   for oid, row in zip(ids, orders, strict=True)]
        by_order: dict[int, list[ImportedLine]] = {oid: [] for oid in ids}
        for ln in lines:
            by_order[ln["order_id"]].append(ImportedLine(**{k: ln[k] for k in ImportedLine.COLUMNS}))
        for rec in records:
            rec.lines = by_order[rec.id]
        announce_imported(records)
        db.session.flush()


@dataclass
class ImportedLine(CartLine):
    """A line of an imported order, as passed to ``orders_imported`` (read only): a priced cart
    line (``line_total`` is its gross less its discount) with its cost and returned quantity."""

    COLUMNS: ClassVar[tuple[str, ...]] = ("product_id", "sku", "name", "category_id", "quantity", "unit_price",
                                          "unit_cost", "line_discount", "returned_quantity")
    unit_cost: Decimal = ZERO
    returned_quantity: int = 0


@dataclass
class ImportedOrder:
    """An imported order as passed to ``orders_imported``: the saved values of the order and its
    lines (read only; built from what was inserted instead of loading every order back)."""

    COLUMNS: ClassVar[tuple[str, ...]] = ("number", "customer_id", "owner_id", "status", "currency", "subtotal",
                                          "discount_total", "total", "placed_at", "external_number", "custom",
                                          *STAMP_COLUMNS)
    id: int
    number: str
    customer_id: int
    owner_id: int | None
    status: str
    currency: str
    subtotal: Decimal
    discount_total: Decimal
    total: Decimal
    placed_at: datetime
    external_number: str
    custom: dict[str, Any]
    confirmed_at: datetime | None = None
    paid_at: datetime | None = None
    shipped_at: datetime | None = None
    completed_at: datetime | None = None
    cancelled_at: datetime | None = None
    returned_at: datetime | None = None
    coupon_code: str | None = None
    lines: list[ImportedLine] = field(default_factory=list)
    adjustments: list[Any] = field(default_factory=list)


def announce_imported(orders: list[ImportedOrder]) -> None:
    """Tell other plugins about a batch of imported orders: ``orders_imported`` once to the
    plugins implementing it; ``order_created(imported=True)`` per order (with the saved
    :class:`Order`) to those implementing only that; and the ``orders.order.created``
    integration event per order (with ``imported``)."""
    pm = dovetail().pm
    batch_aware = [impl.plugin for impl in pm.hook.orders_imported.get_hookimpls()]
    if batch_aware:
        pm.hook.orders_imported(orders=orders)
    per_order = pm.subset_hook_caller("order_created", remove_plugins=batch_aware)
    if per_order.get_hookimpls():
        saved = db.session.scalars(select(Order).where(Order.id.in_([o.id for o in orders])).order_by(Order.id)
                                   .options(selectinload(Order.lines), selectinload(Order.adjustments)))
        for order in saved:
            per_order(order=order, imported=True)
    for order in orders:
        emit(services.EVENT_CREATED, **services.event_payload(order), imported=True)


def allocate_numbers(prefix: str, year: int, count: int) -> list[str]:
    """``count`` consecutive order numbers of ``year`` in one statement (the sequence row stays
    locked until commit, as for :func:`plugins.orders.services.allocate_number`)."""
    seq = OrderSequence.__table__.c
    for _attempt in range(3):
        res = db.session.execute(update(OrderSequence.__table__).where(seq.prefix == prefix, seq.year == year)
                                 .values(last=seq.last + count).returning(seq.last))
        last = res.scalar()
        if last is not None:
            return [f"{prefix}-{year}-{n:06d}" for n in range(last - count + 1, last + 1)]
        try:
            with db.session.begin_nested():
                db.session.add(OrderSequence(prefix=prefix, year=year, last=count))
            return [f"{prefix}-{year}-{n:06d}" for n in range(1, count + 1)]
        except IntegrityError:  # another writer created the row first: use it
            continue
    raise Conflict("Could not allocate order numbers; please retry.")


def import_orders(path: str | Path, *, default_owner: User | None = None, dry_run: bool = False,
                  batch: int = 500, progress: Callable[[int], Any] | None = None) -> ImportReport:
    """Import historical orders; counts ``imported``, ``skipped``, ``rejected`` (orders) and
    ``lines``. Unpacks as ``(counts, errors)``."""
    return run_import(OrderImport(default_owner, Path(path).name, batch), path, dry_run=dry_run, batch=batch,
                      progress=progress)
