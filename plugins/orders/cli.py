"""``dovetail import orders FILE`` (historical orders) and ``dovetail export orders``."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import click
from sqlalchemy import select

from core import custom
from core.audit import acting_as
from core.cli import with_app
from core.db import db, quantize
from core.errors import DovetailError
from core.export import write_csv, xlsx_bytes
from core.tabular import RowError, count_rows, read_rows, require_columns
from plugins.catalog.public import Product
from plugins.crm.public import Customer, normalise_phone
from plugins.orders import services
from plugins.orders.models import ZERO, Order, OrderLine, Payment

REQUIRED = {"external_number", "order_date", "status", "customer", "sku", "quantity", "unit_price"}
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
EXPORT_COLUMNS = ["external_number", "number", "order_date", "status", "customer", "owner", "sku", "name",
                  "quantity", "unit_price", "line_discount", "line_total", "order_subtotal",
                  "order_discount", "order_total", "currency"]


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


class _Lookup:
    """Caches customers (by external code or phone) and products (by sku) during an import."""

    def __init__(self) -> None:
        self.Customer, self.Product = Customer, Product
        self.customers: dict[str, Any] = {}
        self.products: dict[str, Any] = {}

    def customer(self, text: str) -> Any:
        if text in self.customers:
            return self.customers[text]
        C = self.Customer
        found = db.session.scalar(select(C).where(C.external_code == text))
        if found is None:
            try:
                phone = normalise_phone(text)
            except DovetailError:
                phone = None
            if phone:
                found = db.session.scalars(select(C).where(C.phone == phone).order_by(C.id)).first()
        self.customers[text] = found
        return found

    def product(self, sku: str) -> Any:
        if sku not in self.products:
            self.products[sku] = db.session.scalar(select(self.Product).where(self.Product.sku == sku))
        return self.products[sku]


def _check_row(row: dict[str, str], line: int, states: set[str],
               look: _Lookup) -> tuple[dict[str, Any], list[RowError]]:
    errs: list[RowError] = []
    out: dict[str, Any] = {"line": line}
    ext = row.get("external_number", "")
    if not ext:
        errs.append(RowError(line, "external_number", "Required."))
    elif len(ext) > 64:
        errs.append(RowError(line, "external_number", "At most 64 characters."))
    out["external_number"] = ext
    try:
        out["when"] = parse_when(row.get("order_date", ""))
    except ValueError as exc:
        errs.append(RowError(line, "order_date", str(exc)))
    status = row.get("status", "").strip().lower()
    if status not in states:
        errs.append(RowError(line, "status", f"Unknown status '{row.get('status', '')}'; use one of: "
                                             f"{', '.join(sorted(states))}."))
    out["status"] = status
    cust_text = row.get("customer", "")
    customer = look.customer(cust_text) if cust_text else None
    if customer is None:
        errs.append(RowError(line, "customer", "Required." if not cust_text else
                             f"No customer with external code or phone '{cust_text}'."))
    out["customer"] = customer
    sku = row.get("sku", "")
    product = look.product(sku) if sku else None
    if product is None:
        errs.append(RowError(line, "sku", "Required." if not sku else f"No product with SKU '{sku}'."))
    out["product"] = product
    qty = row.get("quantity", "")
    if not qty.isdigit() or not 1 <= int(qty) <= services.MAX_QUANTITY:
        errs.append(RowError(line, "quantity", f"A whole number between 1 and {services.MAX_QUANTITY}."))
    else:
        out["quantity"] = int(qty)
    price = row.get("unit_price", "")
    try:
        value = quantize(Decimal(price)) if price != "" else (quantize(product.price) if product else None)
        if value is None or value < 0 or value >= Decimal("1e10") or not value.is_finite():
            raise InvalidOperation
        out["unit_price"] = value
    except (InvalidOperation, ValueError):
        errs.append(RowError(line, "unit_price", "Not a valid amount (e.g. 128.00, not negative)."))
    values = {k[len("custom."):]: v for k, v in row.items() if k.startswith("custom.") and v != ""}
    out["custom"] = {}
    if values:
        try:
            out["custom"] = custom.validate("order", values, None)
        except DovetailError as exc:
            messages = (exc.fields or {}).get("custom") or {"": [exc.message]}
            for key, msgs in (messages.items() if isinstance(messages, dict) else [("", messages)]):
                text = "; ".join(map(str, msgs)) if isinstance(msgs, list) else str(msgs)
                errs.append(RowError(line, f"custom.{key}" if key else "custom", text))
    return out, errs


def _save(group: list[dict[str, Any]], ext: str) -> Order:
    head = group[0]
    when: datetime = head["when"]
    status, customer = head["status"], head["customer"]
    placed = services.to_utc(when)  # the file speaks the company's local time
    order = Order(number=services.allocate_number("SO", when.year), customer_id=customer.id,
                  owner_id=customer.owner_id, status=status, currency=services.settings().get("currency", "CNY"),
                  placed_at=placed, external_number=ext, custom=dict(head.get("custom") or {}))
    for col in STAMPS.get(status, ()):
        setattr(order, col, placed)
    subtotal = ZERO
    for i, r in enumerate(group):
        p = r["product"]
        total = quantize(r["unit_price"] * r["quantity"])
        subtotal += total
        order.lines.append(OrderLine(position=i, product_id=p.id, sku=p.sku, name=p.name,
                                     category_id=p.category_id, quantity=r["quantity"],
                                     unit_price=r["unit_price"], unit_cost=quantize(p.cost or ZERO),
                                     line_discount=ZERO, line_total=total,
                                     returned_quantity=r["quantity"] if status == "returned" else 0))
    order.subtotal = order.total = quantize(subtotal)
    order.discount_total = ZERO
    if status in PAID and order.total > 0:
        order.payments.append(Payment(kind="payment", amount=order.total, method="import", paid_at=placed))
        if status == "returned":
            order.payments.append(Payment(kind="refund", amount=order.total, method="import", paid_at=placed))
    db.session.add(order)
    db.session.flush()
    services.announce_created(order, imported=True)
    return order


def import_orders(path: str | Path, *, progress: Any = None) -> tuple[dict[str, int], list[RowError]]:
    """Import historical orders; returns ``({imported, skipped, rejected, lines}, errors)``.

    Rows are grouped by ``external_number``; an order is saved only when all its rows are
    good (its bad rows are reported), and skipped when that external number exists.
    No stock is moved and no promotion applied: the prices in the file are kept.
    """
    from core.statemachine import machine_for

    states = set(machine_for("order").states)
    look = _Lookup()
    errors: list[RowError] = []
    groups: dict[str, list[dict[str, Any]]] = {}
    bad: set[str] = set()
    checked = False
    for line, row in read_rows(path):
        if progress is not None:
            progress.update(1)
        if not checked:
            require_columns(path, set(row), REQUIRED)
            checked = True
        data, errs = _check_row(row, line, states, look)
        ext = data["external_number"]
        group = groups.setdefault(ext, []) if ext else None
        if group and not errs:
            first = group[0]
            for key, col in (("when", "order_date"), ("status", "status"), ("customer", "customer"),
                             ("custom", "custom")):
                if data.get(key) != first.get(key):
                    errs.append(RowError(line, col, f"Differs from line {first['line']} of order {ext}."))
        if errs:
            errors.extend(errs)
            if ext:
                bad.add(ext)
            continue
        group.append(data)
    counts = {"imported": 0, "skipped": 0, "rejected": len(bad), "lines": 0}
    existing = set()
    keys = [k for k in groups if k not in bad]
    for i in range(0, len(keys), 500):
        existing.update(db.session.scalars(select(Order.external_number).where(
            Order.external_number.in_(keys[i:i + 500]))))
    with acting_as(None, "import"):
        for n, ext in enumerate(keys, start=1):
            if ext in existing:
                counts["skipped"] += 1
                continue
            try:
                with db.session.begin_nested():
                    _save(groups[ext], ext)
            except DovetailError as exc:
                counts["rejected"] += 1
                errors.append(RowError(groups[ext][0]["line"], "", f"Order {ext}: {exc.message}"))
                continue
            counts["imported"] += 1
            counts["lines"] += len(groups[ext])
            if n % 200 == 0:
                db.session.commit()
        db.session.commit()
    errors.sort(key=lambda e: e.line)
    return counts, errors


def export_rows(*, status: str | None = None, date_from: date | None = None, date_to: date | None = None,
                stmt: Any = None, user: Any = None) -> tuple[list[str], Iterator[list[Any]]]:
    """One row per order line, in the import's column layout (re-importable).

    ``stmt`` (a scoped ``select(Order)``) and ``user`` come from the API export: the
    customer's phone is masked there for users without ``crm.customer.read_personal``.
    """
    from core.models import User
    from core.scope import mask_value

    cols = custom.columns("order", user)
    masked = user is not None and not services.can_read_customer_names(user)

    def rows() -> Iterator[list[Any]]:
        query = (stmt if stmt is not None else select(Order)).order_by(Order.id)
        if status:
            query = query.where(Order.status == status)
        if date_from:
            query = query.where(Order.placed_at >= services.day_start(date_from))
        if date_to:
            query = query.where(Order.placed_at < services.day_start(date_to + timedelta(days=1)))
        users = dict(db.session.execute(select(User.id, User.username)).all())
        for order in db.session.scalars(query.execution_options(yield_per=500)):
            cust = db.session.get(Customer, order.customer_id)
            if cust is None:
                code = ""
            elif cust.external_code:
                code = cust.external_code
            elif cust.phone:
                code = mask_value(cust.phone, "phone") if masked else cust.phone
            else:
                code = str(cust.id)
            values = custom.dump("order", order.custom, user) if user is not None else (order.custom or {})
            for ln in order.lines:
                yield [order.external_number or order.number, order.number,
                       services.to_local(order.placed_at).strftime("%Y-%m-%d %H:%M:%S"), order.status, code,
                       users.get(order.owner_id, ""), ln.sku, ln.name, ln.quantity, ln.unit_price,
                       ln.line_discount, ln.line_total, order.subtotal, order.discount_total, order.total,
                       order.currency] + [values.get(k) for k, _label in cols]

    return list(EXPORT_COLUMNS) + [f"custom.{k}" for k, _label in cols], rows()


@click.command("orders")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--errors", "errors_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the rejected rows (line, column, reason) to this CSV file.")
@with_app
def import_orders_cmd(file: Path, errors_file: Path | None) -> None:
    """Import historical orders from FILE (.csv or .xlsx), one row per order line.

    Columns: external_number, order_date, status, customer (external code or phone), sku,
    quantity, unit_price. Orders whose external number exists are skipped, so re-running
    is safe. No stock is moved, no promotion applied. Exit status 2 when rows were rejected.
    """
    total = count_rows(file)
    with click.progressbar(length=total or 0, label="Importing orders", file=sys.stderr, show_pos=True) as bar:
        counts, errors = import_orders(file, progress=bar if total else None)
    for e in errors:
        click.echo(str(e), err=True)
    if errors_file is not None:
        with errors_file.open("w", newline="", encoding="utf-8") as fh:
            write_csv(fh, ["line", "column", "reason"], [(e.line, e.column, e.reason) for e in errors])
    click.echo(f"Imported {file.name}: {counts['imported']} orders ({counts['lines']} lines), "
               f"{counts['skipped']} already imported, {counts['rejected']} rejected "
               f"({len(errors)} bad rows).")
    if errors:
        sys.exit(2)


@click.command("orders")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="File to write (.csv or .xlsx); standard output (CSV) when omitted.")
@click.option("--status", help="Only orders in this status.")
@click.option("--date-from", type=click.DateTime(["%Y-%m-%d"]), help="Placed on or after this day.")
@click.option("--date-to", type=click.DateTime(["%Y-%m-%d"]), help="Placed on or before this day.")
@with_app
def export_orders_cmd(output: Path | None, status: str | None, date_from: datetime | None,
                      date_to: datetime | None) -> None:
    """Export orders, one row per line (formula-like cells are neutralised)."""
    header, rows = export_rows(status=status, date_from=date_from.date() if date_from else None,
                               date_to=date_to.date() if date_to else None)
    if output is not None and output.suffix.lower() == ".xlsx":
        output.write_bytes(xlsx_bytes(header, rows, "orders"))
        click.echo(f"Wrote {output}.", err=True)
    elif output is not None:
        with output.open("w", newline="", encoding="utf-8") as fh:
            n = write_csv(fh, header, rows)
        click.echo(f"Wrote {n} order lines to {output}.", err=True)
    else:
        write_csv(click.get_text_stream("stdout"), header, rows)
