"""The performance plugin: manifest and hook implementations (thin; logic lives in the modules)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import yaml
from marshmallow import Schema, ValidationError, fields, validate, validates

from core import hookimpl
from core.registry import CliCommand, MenuItem, Permission, PluginManifest, WorkflowAction, WorkflowEntity

HERE = Path(__file__).parent


class PerformanceSettings(Schema):
    """``settings.performance`` in dovetail.yaml."""

    commission_cap = fields.Decimal(
        load_default=Decimal("0.30"), validate=validate.Range(min=0, max=Decimal("0.30"), error=(
            "Must be between 0 and 0.30: the Regulations on Direct Selling Administration cap a seller's "
            "remuneration at 30% of their own sales.")),
        metadata={"description": "Share of a rep's own net sales a month's commission may not exceed."})
    commission_file = fields.String(load_default="commission.yaml", validate=validate.Regexp(
        r"^[A-Za-z0-9_.-]+\.ya?ml$", error="A file name in the config folder, like commission.yaml."))

    @validates("commission_cap")
    def _places(self, value, **_kw):
        exp = value.as_tuple().exponent
        if isinstance(exp, int) and exp < -4:
            raise ValidationError("At most 4 decimal places.")


@hookimpl
def plugin_manifest():
    return PluginManifest(
        name="performance", version="1.0.0",
        description="Sellers, team managers, monthly targets, performance and leaderboards, "
                    "single-level commission statements with the regulatory cap",
        depends=("crm", "catalog", "orders"), settings_schema=PerformanceSettings,
        migrations=str(HERE / "migrations" / "versions"))


@hookimpl
def register_models():
    from plugins.performance.models import MODELS

    return list(MODELS)


PERMISSIONS = [
    ("performance.seller.read", "See seller profiles and teams in your scope"),
    ("performance.seller.manage", "Create and change seller profiles; name team managers"),
    ("performance.target.read", "See monthly targets in your scope"),
    ("performance.target.manage", "Set and delete monthly targets in your scope"),
    ("performance.target.import", "Import monthly targets from CSV/XLSX"),
    ("performance.report.read", "See performance figures and leaderboards in your scope"),
    ("performance.rule.read", "See and check the commission rules"),
    ("performance.statement.read", "See commission statements in your scope"),
    ("performance.statement.generate", "Generate and regenerate draft commission statements"),
    ("performance.statement.approve", "Approve commission statements (never your own)"),
    ("performance.statement.pay", "Mark approved commission statements paid"),
    ("performance.statement.export", "Export commission statements to CSV/XLSX"),
]


@hookimpl
def register_permissions():
    return [Permission(n, d) for n, d in PERMISSIONS]


@hookimpl
def register_blueprints():
    from plugins.performance.api import blp

    return [blp]


@hookimpl
def register_web_blueprints():
    from plugins.performance.web import bp

    return [bp]


@hookimpl
def register_menu_items():
    return [
        MenuItem("performance.me", "My performance", "performance_web.me", "performance.report.read", order=600),
        MenuItem("performance.leaderboard", "Leaderboard", "performance_web.leaderboard",
                 "performance.report.read", order=610),
        MenuItem("performance.targets", "Targets", "performance_web.targets", "performance.target.read", order=620),
        MenuItem("performance.statements", "Commission", "performance_web.statements",
                 "performance.statement.read", order=630),
        MenuItem("performance.sellers", "Sellers", "performance_web.sellers", "performance.seller.manage",
                 order=640),
    ]


@hookimpl
def register_commands():
    from plugins.performance.cli import export_statements_cmd, import_targets_cmd, performance_cmd

    return [CliCommand(performance_cmd), CliCommand(import_targets_cmd, group="import"),
            CliCommand(export_statements_cmd, group="export")]


@hookimpl
def register_workflow_actions():
    from plugins.performance import commission as c

    only = ("commission_statement",)
    return [
        WorkflowAction("performance.check_current", c.action_check_current,
                       "Refuse to approve a statement whose orders, rules or cap changed since it was generated",
                       only),
        WorkflowAction("performance.record_payment", c.action_record_payment,
                       "Keep the payment reference (input: reference)", only),
    ]


@hookimpl
def register_workflow_entities():
    from core.db import db
    from plugins.performance import commission as c
    from plugins.performance.models import Statement

    default = yaml.safe_load((HERE / "workflows" / "commission_statement.yaml").read_text(encoding="utf-8"))
    return [WorkflowEntity(c.ENTITY, Statement, "status", c.statement_context, {"statement": c.CONTEXT_NAMES},
                           "performance.statement", default_workflow=default,
                           get_record=lambda i: db.session.get(Statement, i), marks=c.MARK_HELP,
                           label=lambda s: f"commission statement {s.period} of {s.rep.username}")]


@hookimpl
def register_reports():
    from plugins.performance.reports import REPORTS

    return list(REPORTS)


@hookimpl
def workflow_transitioned(entity, record, marks):
    from plugins.performance import commission

    if entity == commission.ENTITY:
        commission.after_transition(record, marks)


@hookimpl
def populate_demo(scale, seed):
    from plugins.performance.demo import populate

    populate(scale, seed)
