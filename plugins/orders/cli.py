"""``dovetail import orders FILE`` (historical orders) and ``dovetail export orders``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import click
from sqlalchemy import select

from core import custom
from core.auth import user_by_name
from core.cli import with_app
from core.db import db
from core.errors import NotFound
from core.export import write_export
from core.importer import ImportReport, import_command
from plugins.crm.public import Customer
from plugins.orders import services
from plugins.orders.importer import import_orders
from plugins.orders.models import Order

EXPORT_COLUMNS = ["external_number", "number", "order_date", "status", "customer", "owner", "sku", "name",
                  "quantity", "unit_price", "line_discount", "line_total", "order_subtotal",
                  "order_discount", "order_total", "currency"]


def export_rows(*, status: str | None = None, date_from: date | None = None, date_to: date | None = None,
                stmt: Any = None, user: Any = None) -> tuple[list[str], Iterator[list[Any]]]:
    """One row per order line, in the import's column layout (re-importable).

    ``stmt`` (a scoped ``select(Order)``) and ``user`` come from the API export: the
    customer's phone is masked there (by core.scope) for users without crm's personal-data right.
    """
    from core.models import User
    from core.scope import mask_field

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
                code = mask_field("crm.customer", "phone", cust.phone) if masked else cust.phone
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


def _import(file: Path, *, owner_name: str | None, **kw: Any) -> ImportReport:
    owner = None
    if owner_name:
        owner = user_by_name(owner_name)
        if owner is None or not owner.active:
            raise NotFound(f"no active user '{owner_name}'")
    return import_orders(file, default_owner=owner, **kw)


import_orders_cmd = import_command("orders", _import, options=[click.option(
    "--owner", "owner_name", default=None,
    help="Username owning orders whose row has no owner cell (default: the customer's owner rep).")],
    help="""\
    Import historical orders from FILE (.csv or .xlsx), one row per order line.

    Columns: external_number, order_date, status, customer (external code or phone), sku,
    quantity, unit_price; optional owner (the rep's username, as the export writes it) and
    custom.<key>. Orders whose external number exists are skipped, so re-running is safe.
    No stock is moved, no promotion applied. --batch is the number of orders written per bulk
    batch (and of rows looked up together). Exit status 2 when rows were rejected.
    """)


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
    write_export(output, header, rows, "orders", "order lines")
