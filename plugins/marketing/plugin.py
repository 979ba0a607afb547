"""The marketing plugin: manifest and hook implementations (thin; logic lives in services)."""

from __future__ import annotations

from pathlib import Path

from marshmallow import Schema, fields, validate

from core import hookimpl
from core.i18n import N_
from core.registry import CliCommand, MenuItem, Permission, PluginManifest, Report

HERE = Path(__file__).parent


class MarketingSettings(Schema):
    """``settings.marketing`` in dovetail.yaml."""

    coupon_code_length = fields.Integer(
        load_default=8, validate=validate.Range(min=6, max=32),
        metadata={"description": "Length of generated coupon codes (after the prefix)."})


@hookimpl
def plugin_manifest():
    return PluginManifest(
        name="marketing", version="1.0.0",
        description="Campaigns, promotions (percent, amount, 满减 tiers, gifts), coupons and their effect",
        depends=("crm", "catalog", "orders"), settings_schema=MarketingSettings,
        migrations=str(HERE / "migrations" / "versions"))


@hookimpl
def register_models():
    from plugins.marketing.models import MODELS

    return list(MODELS)


PERMISSIONS = [
    ("marketing.campaign.read", "See campaigns and their target lists"),
    ("marketing.campaign.write", "Create, change and delete campaigns"),
    ("marketing.promotion.read", "See promotions and coupons"),
    ("marketing.promotion.write", "Create, change and delete promotions"),
    ("marketing.coupon.write", "Generate, disable and limit coupon codes"),
    ("marketing.report.read", "See campaign effectiveness"),
    ("marketing.list.export", "Export a campaign's target customer list"),
]


@hookimpl
def register_permissions():
    return [Permission(n, d) for n, d in PERMISSIONS]


@hookimpl
def register_blueprints():
    from plugins.marketing.api import campaigns_blp, coupons_blp, promotions_blp

    return [campaigns_blp, promotions_blp, coupons_blp]


@hookimpl
def register_web_blueprints():
    from plugins.marketing.web import bp

    return [bp]


@hookimpl
def register_menu_items():
    return [MenuItem("marketing.campaigns", "Campaigns", "marketing_web.campaigns", "marketing.campaign.read",
                     order=500),
            MenuItem("marketing.promotions", "Promotions", "marketing_web.promotions",
                     "marketing.promotion.read", order=510)]


@hookimpl
def register_commands():
    from plugins.marketing.cli import export_audience_cmd

    return [CliCommand(export_audience_cmd, group="export")]


@hookimpl
def register_reports():
    from plugins.marketing.services import campaign_report
    from plugins.orders.public import REVENUE_DEFINITION

    return [Report("marketing.campaign_effectiveness", "Campaign effectiveness", "marketing.report.read",
                   campaign_report, {"status": "draft, active, paused or ended", "dashboard": "bar"},
                   description=REVENUE_DEFINITION + " " + N_(
                       "Promoted: orders with a discount or gift of the campaign; others: the other sales placed "
                       "in the campaign's dates."))]


@hookimpl(optionalhook=True)
def order_price(cart):
    from plugins.marketing.services import price_cart

    price_cart(cart)


@hookimpl(optionalhook=True)
def order_priced(order, cart):
    from plugins.marketing.services import settle_order_coupons

    settle_order_coupons(order, cart)


@hookimpl(optionalhook=True)
def customer_merged(survivor_id, merged_id):
    from plugins.marketing.services import customer_merged as move

    move(survivor_id, merged_id)


@hookimpl(optionalhook=True)
def order_status_changed(order, marks):
    from plugins.marketing.services import order_status_changed as react

    react(order, marks)


@hookimpl(optionalhook=True)
def order_deleted(order):
    from plugins.marketing.services import release_order_coupons

    release_order_coupons(order.id, "order deleted")


@hookimpl
def populate_demo(scale, seed):
    from plugins.marketing.demo import populate

    populate(scale, seed)
