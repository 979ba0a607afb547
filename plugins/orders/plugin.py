"""The orders plugin: manifest and hook implementations (thin; logic lives in services)."""

from __future__ import annotations

from pathlib import Path

import yaml
from marshmallow import Schema, fields, validate

from core import hookimpl
from core.registry import (
    CliCommand,
    CustomFieldEntity,
    EventType,
    MenuItem,
    Permission,
    PluginManifest,
    WorkflowAction,
    WorkflowEntity,
)
from plugins.orders import hookspecs

HERE = Path(__file__).parent


class OrdersSettings(Schema):
    """``settings.orders`` in dovetail.yaml."""

    return_window_days = fields.Integer(load_default=30, validate=validate.Range(min=0, max=3650),
                                        metadata={"description": "Days after shipment a return is allowed."})
    currency = fields.String(load_default="CNY", validate=validate.Regexp(r"^[A-Z]{3}$"))


def _workflow(name: str) -> dict:
    return yaml.safe_load((HERE / "workflows" / f"{name}.yaml").read_text(encoding="utf-8"))


@hookimpl
def plugin_manifest():
    return PluginManifest(
        name="orders", version="1.0.0",
        description="Sales orders, payments, shipments, returns and sales reports",
        depends=("crm", "catalog"), optional=("inventory", "marketing"), hookspecs=hookspecs,
        settings_schema=OrdersSettings, migrations=str(HERE / "migrations" / "versions"))


@hookimpl
def register_models():
    from plugins.orders.models import MODELS

    return list(MODELS)


PERMISSIONS = [
    ("orders.order.read", "See orders, returns and their history"),
    ("orders.order.create", "Create orders and price carts"),
    ("orders.order.update", "Change draft orders"),
    ("orders.order.delete", "Delete draft orders"),
    ("orders.order.import", "Import historical orders"),
    ("orders.order.export", "Export orders"),
    ("orders.order.confirm", "Confirm orders (reserves stock)"),
    ("orders.order.pay", "Record payments"),
    ("orders.order.ship", "Ship orders (issues stock)"),
    ("orders.order.complete", "Complete shipped orders"),
    ("orders.order.cancel", "Cancel draft or confirmed orders"),
    ("orders.order.return", "Handle after-sales returns"),
    ("orders.order.refund", "Record refunds"),
    ("orders.report.read", "Run the sales reports"),
]


@hookimpl
def register_permissions():
    return [Permission(n, d) for n, d in PERMISSIONS]


@hookimpl
def register_blueprints():
    from plugins.orders.api import orders_blp, returns_blp

    return [orders_blp, returns_blp]


@hookimpl
def register_web_blueprints():
    from plugins.orders.web import bp

    return [bp]


@hookimpl
def register_menu_items():
    return [MenuItem("orders.orders", "Orders", "orders_web.orders", "orders.order.read", order=400),
            MenuItem("orders.returns", "Returns", "orders_web.returns", "orders.order.read", order=410)]


@hookimpl
def register_commands():
    from plugins.orders.cli import export_orders_cmd, import_orders_cmd

    return [CliCommand(import_orders_cmd, group="import"), CliCommand(export_orders_cmd, group="export")]


@hookimpl
def register_workflow_actions():
    from plugins.orders import services as s

    both = ("order", "return")
    return [
        WorkflowAction("orders.reserve_stock", s.action_reserve, "Reserve stock (order_reserve hook)", both),
        WorkflowAction("orders.release_stock", s.action_release, "Release reserved stock (order_release hook)",
                       both),
        WorkflowAction("orders.issue_stock", s.action_issue, "Issue stock on shipment (order_issue hook)", both),
        WorkflowAction("orders.receive_return", s.action_receive_return,
                       "Take returned goods back (order_return_received hook)", both),
        WorkflowAction("orders.record_payment", s.action_record_payment,
                       "Record the payment (inputs: method, amount, reference)", ("order",)),
        WorkflowAction("orders.record_shipment", s.action_record_shipment,
                       "Record the shipment (inputs: carrier, tracking_no)", ("order",)),
        WorkflowAction("orders.record_refund", s.action_record_refund, "Record the refund (input: method)",
                       both),
    ]


@hookimpl
def register_workflow_entities():
    from plugins.orders import services as s
    from plugins.orders.models import Order, ReturnRequest

    return [
        WorkflowEntity("order", Order, "status", s.order_context, {"order": s.ORDER_CONTEXT}, "orders.order",
                       default_workflow=_workflow("order"), label=lambda o: f"order {o.number}",
                       marks=s.MARK_HELP),
        WorkflowEntity("return", ReturnRequest, "status", s.return_context,
                       {"return": s.RETURN_CONTEXT, "order": s.ORDER_CONTEXT}, "orders.order",
                       default_workflow=_workflow("return"), label=lambda r: f"return {r.number}"),
    ]


@hookimpl
def register_custom_field_entities():
    from plugins.orders.models import Order

    return [CustomFieldEntity("order", Order, "custom", "orders.order")]


@hookimpl
def register_reports():
    from plugins.orders.reports import REPORTS

    return list(REPORTS)


@hookimpl
def register_event_types():
    from plugins.orders import services as s

    return [EventType(s.EVENT_CREATED, "An order was created (or imported)"),
            EventType(s.EVENT_STATUS_CHANGED, "The order workflow moved an order (with marks)"),
            EventType(s.EVENT_RETURNED, "Goods of an order came back (one event per return)"),
            EventType(s.EVENT_DELETED, "A draft order was deleted")]


@hookimpl
def workflow_transitioned(entity, record, transition, from_state, to_state, marks):
    if entity == "order":
        from plugins.orders.services import after_transition

        after_transition(record, transition, from_state, to_state, marks)


@hookimpl(optionalhook=True)
def customer_merged(survivor_id, merged_id):
    from plugins.orders.services import move_orders

    move_orders(survivor_id, merged_id)


@hookimpl
def populate_demo(scale, seed):
    from plugins.orders.demo import populate

    populate(scale, seed)
