"""``dovetail import products FILE`` and ``dovetail export products``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from sqlalchemy import select

from core import custom
from core.cli import with_app
from core.db import db
from core.errors import NotFound, PermissionDenied
from core.export import write_export
from core.importer import ImportReport, Problems, RowImport, import_command, run_import
from plugins.catalog import services
from plugins.catalog.models import Category, Product

COLUMNS = ["sku", "name", "category", "unit", "price", "cost", "active", "barcode", "description"]
TRUE = {"1", "true", "yes", "y", "是", "on"}
FALSE = {"0", "false", "no", "n", "否", "off"}


class ProductImport(RowImport):
    """Products keyed on ``sku``: a new SKU is created, an existing one updated with the
    non-empty cells of its row; missing categories are created."""

    noun = "products"
    required = frozenset({"sku", "name", "price"})
    columns = frozenset(COLUMNS)

    def __init__(self, user: Any = None) -> None:
        self.user = user
        self.seen: dict[str, int] = {}
        self.categories: dict[str, int] = {}

    def parse(self, line: int, row: dict[str, str]) -> tuple[dict[str, Any], Problems]:
        problems: Problems = []
        data: dict[str, Any] = {k: row[k] for k in ("sku", "name", "unit", "price", "cost", "barcode",
                                                     "description", "category") if row.get(k, "") != ""}
        if row.get("active", "") != "":
            flag = row["active"].strip().lower()
            if flag in TRUE | FALSE:
                data["active"] = flag in TRUE
            else:
                problems.append(("active", "Use yes/no, true/false or 1/0."))
        cust = {k[len("custom."):]: v for k, v in row.items() if k.startswith("custom.") and v != ""}
        if cust:
            data["custom"] = cust
        return data, problems

    def check(self, line: int, data: dict[str, Any], failed: set[str]) -> Problems:
        sku = data.get("sku", "")
        if sku and sku in self.seen:
            return [("sku", f"Duplicate of line {self.seen[sku]} in this file.")]
        if sku and not failed:
            self.seen[sku] = line
        return []

    def save(self, line: int, data: dict[str, Any]) -> str:
        data = dict(data)
        category = data.pop("category", None)
        if category:
            cid = self.categories.get(category)
            if cid is None:  # cached only once its row is saved (a failed row rolls it back)
                cid = services.category_by_name(category, create=True, user=self.user).id
            data["category_id"] = cid
        sku = data.get("sku", "")
        existing = services.product_by_sku(sku) if sku else None
        if existing is None:
            services.create_product(data, self.user)
            outcome = "created"
        else:
            keys = ("name", "category_id", "unit", "price", "cost", "active", "barcode", "description", "custom")
            before = {k: getattr(existing, k) for k in keys}
            services.update_product(existing, data, self.user)
            outcome = "updated" if {k: getattr(existing, k) for k in keys} != before else "unchanged"
        if category:
            self.categories[category] = data["category_id"]
        return outcome


def import_products(path: str | Path, *, user: Any = None, dry_run: bool = False, batch: int = 500,
                    progress: Any = None) -> ImportReport:
    """Import products from CSV/XLSX (see :class:`ProductImport`); each good row is saved
    even when others fail. Unpacks as ``(counts, errors)``."""
    return run_import(ProductImport(user), path, dry_run=dry_run, batch=batch, progress=progress)


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


import_products_cmd = import_command("products", import_products, help="""\
    Import products from FILE (.csv or .xlsx); re-running the same file is safe (keyed on sku).

    Columns: sku, name, price (required); category, unit, cost, active, barcode,
    description, custom.<key>. Exit status 2 when some rows were rejected.
    """)


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
    write_export(output, header, rows, "products", "products")


