"""``dovetail import stock FILE`` (stock counts) and ``dovetail export stock``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from sqlalchemy import select

from core.cli import with_app
from core.db import db
from core.errors import DovetailError
from core.export import write_export
from core.importer import ImportReport, Problems, RowImport, import_command, run_import
from core.tabular import require_columns
from plugins.catalog.public import Product
from plugins.inventory import services
from plugins.inventory.models import StockLevel, Warehouse

EXPORT_COLUMNS = ["sku", "name", "warehouse", "on_hand", "reserved", "available", "reorder_point"]


def _whole(text: str, column: str, problems: Problems) -> int | None:
    try:
        value = int(text.replace(",", ""))
    except ValueError:
        try:
            f = float(text)
        except ValueError:
            f = None
        if f is None or not f.is_integer():
            problems.append((column, f"'{text}' is not a whole number."))
            return None
        value = int(f)
    if value < 0:
        problems.append((column, "Must be zero or more."))
        return None
    return value


class StockCountImport(RowImport):
    """Counted quantities: each differing row becomes a "stock count" adjustment.

    Columns: ``sku``, ``counted`` (or ``quantity``), optional ``warehouse`` (code; default
    warehouse when empty) and ``reorder_point``. Re-running the same file changes nothing.
    """

    noun = "stock counts"
    required = frozenset({"sku"})
    columns = frozenset({"sku", "counted", "quantity", "warehouse", "reorder_point", "name", "on_hand",
                         "reserved", "available"})
    outcomes = ("adjusted", "unchanged")

    def __init__(self, reference: str | None = None) -> None:
        self.reference = reference
        self.column = "counted"
        self.seen: dict[tuple[str, str], int] = {}
        self.warehouses = {w.code: w for w in db.session.scalars(select(Warehouse))}
        self.products: dict[str, Any] = {}
        self.default: Any = None

    def check_header(self, path: Path, header: list[str]) -> None:
        super().check_header(path, header)
        if "counted" not in header and "quantity" not in header:
            require_columns(path, header, {"counted"})
        self.column = "counted" if "counted" in header else "quantity"

    def parse(self, line: int, row: dict[str, str]) -> tuple[dict[str, Any], Problems]:
        problems: Problems = []
        data: dict[str, Any] = {"sku": row.get("sku", "")}
        if not data["sku"]:
            problems.append(("sku", "Missing SKU."))
        raw = row.get(self.column, "")
        if raw == "":
            problems.append((self.column, "Missing counted quantity."))
        else:
            data["counted"] = _whole(raw, self.column, problems)
        data["reorder_point"] = _whole(row["reorder_point"], "reorder_point", problems) \
            if row.get("reorder_point") else None
        data["warehouse"] = (row.get("warehouse") or "").strip().upper()
        return data, problems

    def check(self, line: int, data: dict[str, Any], failed: set[str]) -> Problems:
        problems: Problems = []
        sku = data["sku"]
        if sku and sku not in self.products:
            self.products[sku] = db.session.scalar(select(Product).where(Product.sku == sku))
        if sku and self.products[sku] is None:
            problems.append(("sku", f"No product with SKU '{sku}'."))
        code = data["warehouse"]
        wh = None
        if code:
            wh = self.warehouses.get(code)
            if wh is None:
                problems.append(("warehouse", f"No warehouse with code '{code}'."))
        else:
            if self.default is None:
                try:
                    self.default = services.default_warehouse()
                except DovetailError as exc:
                    problems.append(("warehouse", exc.message))
            wh = self.default
        if sku and wh is not None:
            key = (sku, wh.code)
            if key in self.seen:
                problems.append(("sku", f"{sku} in {wh.code} was already counted on line {self.seen[key]}."))
            else:
                self.seen[key] = line
        data["product"], data["wh"] = self.products.get(sku), wh
        return problems

    def save(self, line: int, data: dict[str, Any]) -> str:
        mv = services.count(data["product"].id, data["wh"].id, data["counted"], reference=self.reference)
        if data["reorder_point"] is not None:
            services.set_reorder_point(data["product"].id, data["reorder_point"], data["wh"].id)
        return "adjusted" if mv is not None else "unchanged"

    def problems_of(self, exc: DovetailError) -> Problems:
        return [(self.column, exc.message)]


def import_counts(path: str | Path, *, dry_run: bool = False, reference: str | None = None, batch: int = 500,
                  progress: Any = None) -> ImportReport:
    """Apply counted quantities (see :class:`StockCountImport`). Unpacks as ``(counts, errors)``."""
    return run_import(StockCountImport(reference), path, dry_run=dry_run, batch=batch, progress=progress)


def export_rows(warehouse: str | None = None):
    stmt = (select(StockLevel).join(Product, Product.id == StockLevel.product_id)
            .join(Warehouse, Warehouse.id == StockLevel.warehouse_id).order_by(Product.sku, Warehouse.code))
    if warehouse:
        stmt = stmt.where(Warehouse.code == warehouse.strip().upper())
    rows = db.session.scalars(stmt).all()
    defaults = services.points_for(r.product_id for r in rows)

    def gen():
        for r in rows:
            d = services.stock_dict(r, defaults)
            yield [d["sku"], d["name"], d["warehouse_code"], d["on_hand"], d["reserved"], d["available"],
                   d["reorder_point"]]

    return EXPORT_COLUMNS, gen()


import_stock_cmd = import_command("stock", import_counts, options=[click.option(
    "--reference", help="Reference written on every adjustment (e.g. the count sheet number).")], help="""\
    Import stock counts from FILE (.csv or .xlsx): sets on-hand through adjustments.

    Columns: sku, counted (or quantity); optional warehouse (code), reorder_point.
    Exit status 2 when some rows were rejected.
    """)


@click.command("stock")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="File to write (.csv or .xlsx); standard output (CSV) when omitted.")
@click.option("--warehouse", help="Only this warehouse (code).")
@with_app
def export_stock_cmd(output: Path | None, warehouse: str | None) -> None:
    """Export stock levels (on hand, reserved, available, reorder point) as CSV or XLSX."""
    header, rows = export_rows(warehouse)
    write_export(output, header, rows, "stock", "stock rows")
