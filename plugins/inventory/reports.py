"""Reports: stock value by category at cost."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from core.db import db, quantize
from core.i18n import N_
from plugins.catalog.public import Category, Product
from plugins.inventory.models import StockLevel


def stock_value(params: dict[str, Any], user: Any) -> tuple[list[str], list[list[Any]]]:
    """On-hand × cost per category (``warehouse_id`` narrows to one warehouse)."""
    stmt = (select(Category.name, func.sum(StockLevel.on_hand), func.sum(StockLevel.on_hand * Product.cost))
            .select_from(StockLevel).join(Product, Product.id == StockLevel.product_id)
            .outerjoin(Category, Category.id == Product.category_id)
            .where(StockLevel.on_hand > 0).group_by(Category.name))
    wid = str(params.get("warehouse_id") or "")
    if wid.isdigit():
        stmt = stmt.where(StockLevel.warehouse_id == int(wid))
    rows = [[name or "—", int(units or 0), quantize(Decimal(value or 0))]
            for name, units, value in db.session.execute(stmt)]
    rows.sort(key=lambda r: r[2], reverse=True)
    return [N_("Category"), N_("Stock value"), N_("Units")], [[r[0], r[2], r[1]] for r in rows]
