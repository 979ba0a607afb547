"""The crm plugin: manifest and hook implementations (thin; logic lives in the modules)."""

from __future__ import annotations

from pathlib import Path

from marshmallow import Schema, fields, validate

from core import hookimpl
from core.registry import (
    CliCommand,
    CustomFieldEntity,
    EventType,
    Job,
    MenuItem,
    OutboxKind,
    Permission,
    PluginManifest,
)
from plugins.crm import hookspecs


class CrmSettings(Schema):
    """``settings.crm`` in dovetail.yaml."""

    pool_claim_limit = fields.Integer(load_default=50, validate=validate.Range(min=0, max=10000),
                                      metadata={"description": "Customers one rep may claim from the "
                                                               "pool per day."})
    pool_return_days = fields.Integer(load_default=30, validate=validate.Range(min=1, max=3650),
                                      metadata={"description": "Days without follow-up before an owned "
                                                               "customer returns to the pool."})
    pool_auto_recycle = fields.Boolean(load_default=True, metadata={
        "description": "Run the return-to-pool check whenever the pool is listed or claimed from."})
    tiers = fields.List(fields.String(validate=validate.Length(min=1, max=40)),
                        load_default=lambda: ["standard", "silver", "gold", "vip"],
                        validate=validate.Length(min=1))
    tier_labels = fields.Dict(
        keys=fields.String(validate=validate.Length(min=1, max=40)),
        values=fields.Dict(keys=fields.String(validate=validate.Length(min=2, max=10)),
                           values=fields.String(validate=validate.Length(min=1, max=60))),
        load_default=dict, metadata={"description": "A label per tier and language, e.g. "
                                                    "{gold: {en: Gold, zh_CN: 金卡}}; the default tiers "
                                                    "have built-in labels."})


PERMISSIONS = [
    ("crm.customer.read", "See customers in your scope"),
    ("crm.customer.create", "Create customers"),
    ("crm.customer.update", "Change customers in your scope"),
    ("crm.customer.delete", "Delete customers in your scope"),
    ("crm.customer.read_personal", "See names, phones, e-mails and addresses unmasked"),
    ("crm.customer.import", "Import customers from CSV/XLSX"),
    ("crm.customer.export", "Export customers to CSV/XLSX"),
    ("crm.customer.merge", "Merge duplicate customers"),
    ("crm.activity.read", "See follow-up activities and tasks"),
    ("crm.activity.write", "Log activities and manage call tasks"),
    ("crm.segment.read", "See segments and their customers"),
    ("crm.segment.write", "Create and change segments"),
    ("crm.pool.claim", "Claim customers from the public pool"),
    ("crm.pool.manage", "Assign customers, return them to the pool, run the recycle"),
    ("crm.lead.read", "See sales leads"),
    ("crm.lead.write", "Create, change and progress sales leads"),
]


@hookimpl
def plugin_manifest():
    return PluginManifest(
        name="crm", version="1.0.0",
        description="Customers, contacts, follow-up tasks, purchase history, duplicates, segments, "
                    "public pool and leads",
        hookspecs=hookspecs, settings_schema=CrmSettings,
        migrations=str(Path(__file__).parent / "migrations" / "versions"))


@hookimpl
def register_models():
    from plugins.crm.models import MODELS

    return list(MODELS)


@hookimpl
def register_permissions():
    return [Permission(name, desc) for name, desc in PERMISSIONS]


@hookimpl
def register_blueprints():
    from plugins.crm.api import activities_blp, customers_blp, leads_blp, segments_blp

    return [customers_blp, activities_blp, segments_blp, leads_blp]


@hookimpl
def register_web_blueprints():
    from plugins.crm.web import bp

    return [bp]


@hookimpl
def register_menu_items():
    return [
        MenuItem("crm.customers", "Customers", "crm_web.customers", "crm.customer.read", order=100),
        MenuItem("crm.tasks", "My tasks", "crm_web.tasks", "crm.activity.read", order=110),
        MenuItem("crm.pool", "Customer pool", "crm_web.pool", "crm.pool.claim", order=120),
        MenuItem("crm.segments", "Segments", "crm_web.segments", "crm.segment.read", order=130),
        MenuItem("crm.leads", "Leads", "crm_web.leads", "crm.lead.read", order=140),
    ]


@hookimpl
def register_commands():
    from plugins.crm.cli import crm_group, export_customers_cmd, import_customers_cmd

    return [CliCommand(import_customers_cmd, group="import"),
            CliCommand(export_customers_cmd, group="export"),
            CliCommand(crm_group)]


@hookimpl
def register_workflow_entities():
    from plugins.crm.leads import workflow_entity

    return [workflow_entity()]


@hookimpl
def register_workflow_actions():
    from plugins.crm.leads import workflow_actions

    return workflow_actions()


@hookimpl
def register_reports():
    from core.i18n import N_
    from core.registry import Report
    from plugins.crm.dashboard import follow_up, pipeline, tasks_due

    return [Report("crm.tasks_due", "My follow-ups due", "crm.activity.read", tasks_due,
                   {"dashboard": "table", "dashboard_for": "own", "dashboard_link": "crm_web.tasks"},
                   description=N_("Your open follow-up tasks due today or overdue.")),
            Report("crm.follow_up", "Customers to follow up", "crm.customer.read", follow_up,
                   {"dashboard": "table", "dashboard_for": "own", "dashboard_link": "crm_web.customers"},
                   description=N_("Customers in your scope without a follow-up for half the pool's return period: "
                                  "last contact and the days left before they return to the pool.")),
            Report("crm.pipeline", "Lead pipeline", "crm.lead.read", pipeline,
                   {"dashboard": "bar", "dashboard_for": "team", "dashboard_link": "crm_web.leads"},
                   description=N_("Leads in your scope by workflow state, with their expected amount."))]


@hookimpl
def register_custom_field_entities():
    from plugins.crm.models import Customer

    return [CustomFieldEntity("customer", Customer, "custom", "crm.customer")]


@hookimpl
def register_outbox_kinds():
    from plugins.crm.history import STATS_KIND, apply_stats

    return [OutboxKind(STATS_KIND, apply_stats, "Move a customer's order count, spend and last purchase "
                                                "by one order's change")]


@hookimpl
def register_event_types():
    from plugins.crm.reminders import EVENT_FOLLOW_UP_DUE

    return [EventType(EVENT_FOLLOW_UP_DUE, "A user has follow-up tasks due today or overdue (daily reminder): "
                                           "assignee_id, day, due_today, overdue, activity_ids")]


@hookimpl
def register_jobs():
    from plugins.crm.reminders import JOB_NAME, follow_up_reminders

    return [Job(JOB_NAME, follow_up_reminders, every=86400,
                description="Remind each assignee of follow-up tasks due today or overdue")]


@hookimpl(optionalhook=True)
def order_created(order):
    from plugins.crm.history import order_summary, record_order

    record_order(order_summary(order))


@hookimpl(optionalhook=True)
def orders_imported(orders):
    from plugins.crm.imported import record_imported

    record_imported(orders)


@hookimpl(optionalhook=True)
def order_status_changed(order):
    from plugins.crm.history import order_summary, record_order

    record_order(order_summary(order))


@hookimpl(optionalhook=True)
def order_returned(order, returned_amount):
    from plugins.crm.history import order_summary, record_order

    record_order(order_summary(order), returned_amount=returned_amount)


@hookimpl
def populate_demo(scale, seed):
    from plugins.crm.demo import populate

    populate(scale, seed)
