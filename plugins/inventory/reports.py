"""Reports: stock value by category at cost."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from core.db import db, quantize
from core.i18n import N_
from core.scope import select_for
from plugins.catalog.public import Category, Product
from plugins.inventory.models import StockLevel, Warehouse
from plugins.inventory.services import alerts_query, effective_point


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


#: rows the stock alerts card lists, largest shortfall first
ALERT_ROWS = 50


def stock_alerts(params: dict[str, Any], user: Any) -> tuple[list[str], list[list[Any]]]:
    """Stock rows whose available quantity (on hand − reserved) is below their reorder point
    (the warehouse's, else the product's): what to reorder, largest shortfall first."""
    point = effective_point()
    available = StockLevel.on_hand - StockLevel.reserved
    stmt = alerts_query(select_for(StockLevel, "inventory.stock.read", user)
                        .join(Product, Product.id == StockLevel.product_id)
                        .join(Warehouse, Warehouse.id == StockLevel.warehouse_id))
    stmt = stmt.with_only_columns(Product.sku, Product.name, Warehouse.code, available, point) \
        .order_by((point - available).desc(), Product.sku, Warehouse.code).limit(ALERT_ROWS)
    rows = [[sku, name, code, int(avail), int(pt), int(pt) - int(avail)]
            for sku, name, code, avail, pt in db.session.execute(stmt)]
    return [N_("SKU"), N_("Product"), N_("Warehouse"), N_("Available"), N_("Reorder point"), N_("Shortfall")], rows
