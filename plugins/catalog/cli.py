"""``dovetail import products FILE`` and ``dovetail export products``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from sqlalchemy import select

from core import custom
from core.cli import with_app
from core.db import db
from core.errors import DovetailError, NotFound, PermissionDenied
from core.export import write_csv, xlsx_bytes
from core.tabular import RowError, count_rows, read_rows, require_columns
from plugins.catalog import services
from plugins.catalog.models import Category, Product

COLUMNS = ["sku", "name", "category", "unit", "price", "cost", "active", "barcode", "description"]
TRUE = {"1", "true", "yes", "y", "是", "on"}
FALSE = {"0", "false", "no", "n", "否", "off"}


def _flatten(messages: Any, prefix: str = "") -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            out.extend(_flatten(value, name))
    elif isinstance(messages, list):
        for m in messages:
            out.extend(_flatten(m, prefix))
    else:
        out.append((prefix, str(messages)))
    return out


def _row_values(row: dict[str, str], line: int) -> tuple[dict[str, Any], str | None, list[RowError]]:
    errors: list[RowError] = []
    data: dict[str, Any] = {}
    for key in ("sku", "name", "unit", "price", "cost", "barcode", "description"):
        if key in row and row[key] != "":
            data[key] = row[key]
    if "active" in row and row["active"] != "":
        flag = row["active"].strip().lower()
        if flag in TRUE:
            data["active"] = True
        elif flag in FALSE:
            data["active"] = False
        else:
            errors.append(RowError(line, "active", "Use yes/no, true/false or 1/0."))
    cust = {k[len("custom."):]: v for k, v in row.items() if k.startswith("custom.") and v != ""}
    if cust:
        data["custom"] = cust
    category = (row.get("category") or "").strip() or None
    return data, category, errors


def import_products(path: str | Path, *, user: Any = None, dry_run: bool = False,
                    progress: Any = None) -> tuple[dict[str, int], list[RowError]]:
    """Import products from CSV/XLSX; returns ``({created, updated, unchanged, rejected}, errors)``.

    Idempotent on ``sku``: an existing SKU is updated with the non-empty cells of its
    row. Each good row is saved even when others fail; missing categories are created.
    """
    counts = {"created": 0, "updated": 0, "unchanged": 0, "rejected": 0}
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    categories: dict[str, int] = {}
    checked_header = False
    for n, (line, row) in enumerate(read_rows(path), start=1):
        if progress is not None:
            progress.update(1)
        if n % 500 == 0 and not dry_run:
            db.session.commit()
        if not checked_header:
            require_columns(path, set(row), {"sku", "name", "price"})
            checked_header = True
        data, category, row_errors = _row_values(row, line)
        sku = data.get("sku", "")
        if sku and sku in seen:
            row_errors.append(RowError(line, "sku", f"Duplicate of line {seen[sku]} in this file."))
        if row_errors:
            errors.extend(row_errors)
            counts["rejected"] += 1
            continue
        try:
            with db.session.begin_nested():
                if category:
                    cid = categories.get(category)
                    if cid is None:  # cached only once its row is saved (a failed row rolls it back)
                        cid = services.category_by_name(category, create=True, user=user).id
                    data["category_id"] = cid
                existing = services.product_by_sku(sku) if sku else None
                if existing is None:
                    services.create_product(data, user)
                    counts["created"] += 1
                else:
                    before = {k: getattr(existing, k) for k in ("name", "category_id", "unit", "price",
                                                                  "cost", "active", "barcode",
                                                                  "description", "custom")}
                    services.update_product(existing, data, user)
                    after = {k: getattr(existing, k) for k in before}
                    counts["updated" if after != before else "unchanged"] += 1
        except DovetailError as exc:
            counts["rejected"] += 1
            flat = _flatten(exc.fields) if exc.fields else [("", exc.message)]
            errors.extend(RowError(line, col, msg) for col, msg in flat)
            continue
        if sku:
            seen[sku] = line
        if category:
            categories[category] = data["category_id"]
    if dry_run:
        db.session.rollback()
    else:
        db.session.commit()
    return counts, errors


def export_rows(user: Any = None):
    """Header and row iterator of the product export (custom fields as custom.<key>); the
    ``cost`` column only for a user who may see costs (``None``: everything)."""
    cols = custom.columns("product", user)
    with_cost = services.can_read_cost(user)
    header = [c for c in COLUMNS if with_cost or c != "cost"] + [f"custom.{k}" for k, _label in cols]
    names = dict(db.session.execute(select(Category.id, Category.name)).all())

    def rows():
        stmt = select(Product).order_by(Product.sku).execution_options(yield_per=500)
        for p in db.session.scalars(stmt):
            values = custom.dump("product", p.custom, user)
            yield [p.sku, p.name, names.get(p.category_id, ""), p.unit, p.price] + \
                  ([p.cost] if with_cost else []) + \
                  ["yes" if p.active else "no", p.barcode, p.description] + \
                  [values.get(k) for k, _label in cols]

    return header, rows()


def write_report(errors: list[RowError], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        write_csv(fh, ["line", "column", "reason"], [(e.line, e.column, e.reason) for e in errors])


@click.command("products")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check every row and report, but save nothing.")
@click.option("--errors", "errors_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the rejected rows (line, column, reason) to this CSV file.")
@with_app
def import_products_cmd(file: Path, dry_run: bool, errors_file: Path | None) -> None:
    """Import products from FILE (.csv or .xlsx); re-running the same file is safe (keyed on sku).

    Columns: sku, name, price (required); category, unit, cost, active, barcode,
    description, custom.<key>. Exit status 2 when some rows were rejected.
    """
    total = count_rows(file)
    with click.progressbar(length=total or 0, label="Importing products", file=sys.stderr,
                           show_pos=True) as bar:
        counts, errors = import_products(file, dry_run=dry_run, progress=bar if total else None)
    for e in errors:
        click.echo(str(e), err=True)
    if errors_file is not None:
        write_report(errors, errors_file)
    verb = "Checked" if dry_run else "Imported"
    click.echo(f"{verb} {file.name}: {counts['created']} created, {counts['updated']} updated, "
               f"{counts['unchanged']} unchanged, {counts['rejected']} rejected.")
    if errors:
        sys.exit(2)


@click.command("products")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="File to write (.csv or .xlsx); standard output (CSV) when omitted.")
@click.option("--as", "as_user", default=None,
              help="Export what this user may see (no cost column without "
                   "catalog.product.read_cost; default: everything).")
@with_app
def export_products_cmd(output: Path | None, as_user: str | None) -> None:
    """Export every product as CSV or XLSX (formula-like cells are neutralised)."""
    user = None
    if as_user:
        from core.auth import has_permission, user_by_name

        user = user_by_name(as_user)
        if user is None or not user.active:
            raise NotFound(f"no active user '{as_user}'")
        if not has_permission(user, "catalog.product.read"):
            raise PermissionDenied(f"user '{user.username}' lacks the permission 'catalog.product.read'")
    header, rows = export_rows(user)
    if output is not None and output.suffix.lower() == ".xlsx":
        output.write_bytes(xlsx_bytes(header, rows, "products"))
        click.echo(f"Wrote {output}.", err=True)
    elif output is not None:
        with output.open("w", newline="", encoding="utf-8") as fh:
            n = write_csv(fh, header, rows)
        click.echo(f"Wrote {n} products to {output}.", err=True)
    else:
        write_csv(click.get_text_stream("stdout"), header, rows)


