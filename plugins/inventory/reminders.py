"""Scheduled low-stock reminder (a job ``dovetail worker`` runs daily).

``inventory.stock.low`` fires the moment a movement takes a product below its reorder point;
stock that stays low is otherwise never mentioned again. This job sends one
``inventory.stock.low_reminder`` event listing every stock row still below its reorder point,
biggest shortfall first, so warehouse staff are reminded until they reorder.
"""

from __future__ import annotations

from sqlalchemy import select

from core.db import db
from core.events import emit
from plugins.catalog.public import Product
from plugins.inventory.models import StockLevel, Warehouse
from plugins.inventory.services import alerts_query, effective_point

JOB_NAME = "inventory.low_stock_reminder"
EVENT_LOW_REMINDER = "inventory.stock.low_reminder"
#: At most this many rows travel in one reminder (``count`` is always complete).
MAX_ROWS = 500


def low_stock_reminder() -> int:
    """Emit one reminder listing the stock rows below their reorder point; returns how many rows."""
    point = effective_point()
    available = StockLevel.on_hand - StockLevel.reserved
    rows = db.session.execute(alerts_query(
        select(StockLevel.product_id, Product.sku, Product.name, Warehouse.code, available, point)
        .join(Product, Product.id == StockLevel.product_id)
        .join(Warehouse, Warehouse.id == StockLevel.warehouse_id))
        .order_by((point - available).desc(), StockLevel.id)).all()
    if rows:
        items = [{"product_id": pid, "sku": sku, "product_name": name, "warehouse": code,
                  "available": int(avail), "reorder_point": int(pt)}
                 for pid, sku, name, code, avail, pt in rows[:MAX_ROWS]]
        emit(EVENT_LOW_REMINDER, count=len(rows), items=items)
    db.session.commit()
    return len(rows)
