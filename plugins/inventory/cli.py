"""``dovetail import stock FILE`` (stock counts) and ``dovetail export stock``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from sqlalchemy import select

from core.cli import with_app
from core.db import db
from core.errors import DovetailError
from core.export import write_csv, xlsx_bytes
from core.tabular import RowError, count_rows, read_rows, require_columns
from plugins.catalog.public import Product
from plugins.inventory import services
from plugins.inventory.models import StockLevel, Warehouse

EXPORT_COLUMNS = ["sku", "name", "warehouse", "on_hand", "reserved", "available", "reorder_point"]


def _whole(text: str, line: int, column: str, errors: list[RowError]) -> int | None:
    try:
        value = int(text.replace(",", ""))
    except ValueError:
        try:
            f = float(text)
        except ValueError:
            f = None
        if f is None or not f.is_integer():
            errors.append(RowError(line, column, f"'{text}' is not a whole number."))
            return None
        value = int(f)
    if value < 0:
        errors.append(RowError(line, column, "Must be zero or more."))
        return None
    return value


def import_counts(path: str | Path, *, dry_run: bool = False, reference: str | None = None,
                  progress: Any = None) -> tuple[dict[str, int], list[RowError]]:
    """Apply counted quantities: each differing row becomes an adjustment "stock count".

    Columns: ``sku``, ``counted`` (or ``quantity``), optional ``warehouse`` (code; default
    warehouse when empty) and ``reorder_point``. Re-running the same file changes nothing.
    """
    counts = {"adjusted": 0, "unchanged": 0, "rejected": 0}
    errors: list[RowError] = []
    seen: dict[tuple[str, str], int] = {}
    warehouses = {w.code: w for w in db.session.scalars(select(Warehouse))}
    default = None
    first = True
    for n, (line, row) in enumerate(read_rows(path), start=1):
        if progress is not None:
            progress.update(1)
        if first:
            require_columns(path, set(row), {"sku"})
            if "counted" not in row and "quantity" not in row:
                require_columns(path, set(row), {"counted"})
            first = False
        if n % 500 == 0 and not dry_run:
            db.session.commit()
        row_errors: list[RowError] = []
        column = "counted" if "counted" in row else "quantity"
        sku = row.get("sku", "")
        product = db.session.scalar(select(Product).where(Product.sku == sku)) if sku else None
        if not sku:
            row_errors.append(RowError(line, "sku", "Missing SKU."))
        elif product is None:
            row_errors.append(RowError(line, "sku", f"No product with SKU '{sku}'."))
        code = (row.get("warehouse") or "").strip().upper()
        wh = None
        if code:
            wh = warehouses.get(code)
            if wh is None:
                row_errors.append(RowError(line, "warehouse", f"No warehouse with code '{code}'."))
        else:
            if default is None:
                try:
                    default = services.default_warehouse()
                except DovetailError as exc:
                    row_errors.append(RowError(line, "warehouse", exc.message))
            wh = default
        raw = row.get(column, "")
        counted = None
        if raw == "":
            row_errors.append(RowError(line, column, "Missing counted quantity."))
        else:
            counted = _whole(raw, line, column, row_errors)
        point = None
        if row.get("reorder_point"):
            point = _whole(row["reorder_point"], line, "reorder_point", row_errors)
        if sku and wh is not None:
            key = (sku, wh.code)
            if key in seen:
                row_errors.append(RowError(line, "sku", f"{sku} in {wh.code} was already counted on line "
                                                        f"{seen[key]}."))
            else:
                seen[key] = line
        if row_errors:
            errors.extend(row_errors)
            counts["rejected"] += 1
            continue
        try:
            with db.session.begin_nested():
                mv = services.count(product.id, wh.id, counted, reference=reference)
                if point is not None:
                    services.set_reorder_point(product.id, point, wh.id)
        except DovetailError as exc:
            counts["rejected"] += 1
            errors.append(RowError(line, column, exc.message))
            continue
        counts["adjusted" if mv is not None else "unchanged"] += 1
    if dry_run:
        db.session.rollback()
    else:
        db.session.commit()
    return counts, errors


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


@click.command("stock")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check every row and report, but save nothing.")
@click.option("--reference", help="Reference written on every adjustment (e.g. the count sheet number).")
@click.option("--errors", "errors_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the rejected rows (line, column, reason) to this CSV file.")
@with_app
def import_stock_cmd(file: Path, dry_run: bool, reference: str | None, errors_file: Path | None) -> None:
    """Import stock counts from FILE (.csv or .xlsx): sets on-hand through adjustments.

    Columns: sku, counted (or quantity); optional warehouse (code), reorder_point.
    Exit status 2 when some rows were rejected.
    """
    total = count_rows(file)
    with click.progressbar(length=total or 0, label="Importing stock counts", file=sys.stderr,
                           show_pos=True) as bar:
        counts, errors = import_counts(file, dry_run=dry_run, reference=reference,
                                       progress=bar if total else None)
    for e in errors:
        click.echo(str(e), err=True)
    if errors_file is not None:
        with errors_file.open("w", newline="", encoding="utf-8") as fh:
            write_csv(fh, ["line", "column", "reason"], [(e.line, e.column, e.reason) for e in errors])
    verb = "Checked" if dry_run else "Imported"
    click.echo(f"{verb} {file.name}: {counts['adjusted']} adjusted, {counts['unchanged']} unchanged, "
               f"{counts['rejected']} rejected.")
    if errors:
        sys.exit(2)


@click.command("stock")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="File to write (.csv or .xlsx); standard output (CSV) when omitted.")
@click.option("--warehouse", help="Only this warehouse (code).")
@with_app
def export_stock_cmd(output: Path | None, warehouse: str | None) -> None:
    """Export stock levels (on hand, reserved, available, reorder point) as CSV or XLSX."""
    header, rows = export_rows(warehouse)
    if output is not None and output.suffix.lower() == ".xlsx":
        output.write_bytes(xlsx_bytes(header, rows, "stock"))
        click.echo(f"Wrote {output}.", err=True)
    elif output is not None:
        with output.open("w", newline="", encoding="utf-8") as fh:
            n = write_csv(fh, header, rows)
        click.echo(f"Wrote {n} stock rows to {output}.", err=True)
    else:
        write_csv(click.get_text_stream("stdout"), header, rows)
