"""The inventory plugin: manifest and hook implementations (thin; logic lives in services).

Implements the orders plugin's hooks (``plugins/orders/hookspecs.py``) with
``optionalhook=True`` and never imports orders: hooks receive order objects and use only
``.id``, ``.number`` and ``.lines`` (each with ``product_id``, ``sku``, ``quantity``,
``is_gift``).
"""

from __future__ import annotations

from pathlib import Path

from marshmallow import Schema, fields

from core import hookimpl
from core.registry import (
    CliCommand,
    EventType,
    Job,
    MenuItem,
    Permission,
    PluginManifest,
    Report,
    WorkflowAction,
)


class InventorySettings(Schema):
    """``settings.inventory`` in dovetail.yaml."""

    allow_negative_stock = fields.Boolean(load_default=False, metadata={
        "description": "Allow issues, transfers, reservations and adjustments to take stock below zero."})
    default_warehouse = fields.String(load_default=None, allow_none=True, metadata={
        "description": "Code of the warehouse orders reserve from (default: first active warehouse)."})


@hookimpl
def plugin_manifest():
    return PluginManifest(
        name="inventory", version="1.0.0",
        description="Warehouses, stock levels, movement ledger, reservations and low-stock alerts",
        depends=("catalog",), settings_schema=InventorySettings,
        migrations=str(Path(__file__).parent / "migrations" / "versions"))


@hookimpl
def register_models():
    from plugins.inventory.models import MODELS

    return list(MODELS)


@hookimpl
def register_permissions():
    return [
        Permission("inventory.warehouse.read", "See warehouses"),
        Permission("inventory.warehouse.write", "Create and change warehouses and reorder points"),
        Permission("inventory.stock.read", "See stock levels, alerts and the movement ledger"),
        Permission("inventory.stock.move", "Post receipts, issues, adjustments and transfers"),
        Permission("inventory.stock.import", "Import stock counts"),
    ]


@hookimpl
def register_blueprints():
    from plugins.inventory.api import stock_blp, warehouses_blp

    return [warehouses_blp, stock_blp]


@hookimpl
def register_web_blueprints():
    from plugins.inventory.web import bp

    return [bp]


@hookimpl
def register_menu_items():
    return [MenuItem("inventory.stock", "Stock", "inventory_web.stock", "inventory.stock.read", order=310),
            MenuItem("inventory.movements", "Stock ledger", "inventory_web.movements", "inventory.stock.read",
                     order=311),
            MenuItem("inventory.warehouses", "Warehouses", "inventory_web.warehouses", "inventory.warehouse.read",
                     order=312)]


@hookimpl
def register_commands():
    from plugins.inventory.cli import export_stock_cmd, import_stock_cmd

    return [CliCommand(import_stock_cmd, group="import"), CliCommand(export_stock_cmd, group="export")]


# ---------------------------------------------------------------------------
# Workflow actions: usable by any order-like entity whose records have .id and .lines
# ---------------------------------------------------------------------------


def _reserve(record, ctx):
    from plugins.inventory import services

    services.reserve_for(ctx.entity, record.id, record.lines)


def _release(record, ctx):
    from plugins.inventory import services

    services.release_for(ctx.entity, record.id)


def _issue(record, ctx):
    from plugins.inventory import services

    services.issue_for(ctx.entity, record.id, record.lines, reference=getattr(record, "number", None))


def _receive_return(record, ctx):
    """Put a record's lines back in stock: each line's ``product_id`` (or its
    ``order_line.product_id``) and ``quantity``; a record with ``order_id`` (an after-sales
    return) goes back to the warehouse that order was issued from."""
    from plugins.inventory import services

    items = []
    for line in record.lines:
        pid = getattr(line, "product_id", None)
        if pid is None and getattr(line, "order_line", None) is not None:
            pid = line.order_line.product_id
        if pid is not None and line.quantity:
            items.append((pid, int(line.quantity)))
    order_id = getattr(record, "order_id", None)
    services.receive_return(ctx.entity, record.id, items, reference=getattr(record, "number", None),
                            issued_by=("order", order_id) if order_id else None)


@hookimpl
def register_workflow_actions():
    return [
        WorkflowAction("inventory.reserve", _reserve, "Reserve stock for every line (409 when short)"),
        WorkflowAction("inventory.release", _release, "Release the record's stock reservations"),
        WorkflowAction("inventory.issue", _issue, "Issue reserved stock (shipment)"),
        WorkflowAction("inventory.receive_return", _receive_return, "Put returned lines back in stock"),
    ]


@hookimpl
def register_reports():
    from plugins.inventory.reports import stock_alerts, stock_value

    return [Report("inventory.stock_value", "Stock value by category (at cost)", "inventory.stock.read",
                   stock_value, params={"dashboard": "bar"},
                   extra_permissions=("catalog.product.read_cost",)),
            Report("inventory.stock_alerts", "Stock alerts (below the reorder point)", "inventory.stock.read",
                   stock_alerts, params={"dashboard": "table", "dashboard_for": "all",
                                         "dashboard_link": "inventory_web.stock?low=1"})]


# ---------------------------------------------------------------------------
# The orders plugin's hooks
# ---------------------------------------------------------------------------


@hookimpl(optionalhook=True)
def order_reserve(order):
    from plugins.inventory import services

    services.reserve_for("order", order.id, order.lines)


@hookimpl(optionalhook=True)
def order_release(order):
    from plugins.inventory import services

    services.release_for("order", order.id)


@hookimpl(optionalhook=True)
def order_issue(order):
    from plugins.inventory import services

    services.issue_for("order", order.id, order.lines, reference=getattr(order, "number", None))


@hookimpl(optionalhook=True)
def order_return_received(order, lines):
    from plugins.inventory import services

    services.receive_return("order", order.id, [(line.product_id, qty) for line, qty in lines],
                            reference=getattr(order, "number", None), reason="customer return")


@hookimpl(optionalhook=True)
def order_availability(product_ids):
    from plugins.inventory import services

    return services.availability(product_ids)


@hookimpl
def populate_demo(scale, seed):
    from plugins.inventory.demo import populate

    populate(scale, seed)


@hookimpl
def register_event_types():
    from plugins.inventory.reminders import EVENT_LOW_REMINDER
    from plugins.inventory.services import EVENT_STOCK_LOW

    return [EventType(EVENT_STOCK_LOW, "Available stock of a product in a warehouse fell below its "
                                       "reorder point"),
            EventType(EVENT_LOW_REMINDER, "Daily reminder of every stock row still below its reorder "
                                          "point: count, items (sku, warehouse, available, reorder_point)")]


@hookimpl
def register_jobs():
    from plugins.inventory.reminders import JOB_NAME, low_stock_reminder

    return [Job(JOB_NAME, low_stock_reminder, every=86400,
                description="Remind of stock still below its reorder point")]
