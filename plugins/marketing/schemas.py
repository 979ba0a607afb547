"""Marshmallow schemas of the marketing API (OpenAPI comes from them).

Input schemas carry every rule (``@blp.arguments`` and the web forms load through them);
:mod:`plugins.marketing.services` then checks only what needs the database (ids that exist).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from core.api import Id, Int, ListArgs
from core.fields import MAX_MONEY, Money
from plugins.marketing.engine import KINDS, SCOPES
from plugins.marketing.models import CAMPAIGN_STATUSES, CHANNELS

ZERO = Decimal("0")
#: The largest quantity a promotion names (units to buy, gifts given).
MAX_QUANTITY = 10_000_000


class CampaignIn(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=120))
    channel = fields.String(validate=validate.OneOf(CHANNELS))
    starts_on = fields.Date(required=True)
    ends_on = fields.Date(required=True)
    budget = fields.Raw(metadata={"type": "string", "example": "50000.00"})
    segment_id = Id(allow_none=True)
    status = fields.String(validate=validate.OneOf(CAMPAIGN_STATUSES))
    description = fields.String(allow_none=True)


class CampaignPatch(CampaignIn):
    """Change a campaign: any subset of the fields (used with ``partial=True``)."""


class CampaignOut(Schema):
    id = fields.Integer()
    name = fields.String()
    channel = fields.String()
    starts_on = fields.Date()
    ends_on = fields.Date()
    budget = Money()
    segment_id = fields.Integer(allow_none=True)
    status = fields.String()
    description = fields.String(allow_none=True)
    promotion_count = fields.Method("_count")
    created_at = fields.DateTime()
    updated_at = fields.DateTime()

    def _count(self, obj):
        return len(obj.promotions)


class CampaignArgs(ListArgs):
    class Meta(ListArgs.Meta):
        sortable = ("id", "name", "starts_on", "ends_on", "status", "budget")

    q = fields.String(metadata={"description": "Search in the name"})
    status = fields.String(validate=validate.OneOf(CAMPAIGN_STATUSES))
    channel = fields.String(validate=validate.OneOf(CHANNELS))
    active_on = fields.Date(metadata={"description": "Campaigns running on this date"})


AMOUNT_ERRORS = {"invalid": "Enter an amount such as 30 or 29.90.", "special": "Enter an amount such as 30 or 29.90."}


class TierSchema(Schema):
    """One 满减 tier: spend ``threshold`` on eligible items, save ``discount`` (both above 0)."""

    threshold = Money(required=True, minimum=Decimal("0.01"), maximum=MAX_MONEY, error_messages=AMOUNT_ERRORS,
                      metadata={"example": "300.00"})
    discount = Money(required=True, minimum=Decimal("0.01"), maximum=MAX_MONEY, error_messages=AMOUNT_ERRORS,
                     metadata={"example": "30.00"})


def tier_problems(tiers: list[Mapping[str, Any]]) -> list[str]:
    """What is wrong across loaded tiers: a discount above its threshold, a threshold twice."""
    out = [f"Tier {i}: the discount {t['discount']} is more than the threshold {t['threshold']}."
           for i, t in enumerate(tiers, 1) if Decimal(t["discount"]) > Decimal(t["threshold"])]
    thresholds = [Decimal(t["threshold"]) for t in tiers]
    if len(set(thresholds)) != len(thresholds):
        out.append("Two tiers have the same threshold.")
    return out


def promotion_problems(values: Mapping[str, Any]) -> dict[str, list[str]]:
    """The rules across fields of a whole promotion (what each kind needs), field by field."""
    kind, problems = values.get("kind"), {}
    if kind == "percent" and not ZERO < (values.get("percent") or ZERO) <= 100:
        problems["percent"] = ["A percentage above 0 and at most 100 (10 = 10% off)."]
    if kind == "amount" and (values.get("amount") or ZERO) <= 0:
        problems["amount"] = ["An amount above 0."]
    tiers = values.get("tiers") or []
    if kind == "tiered" and not tiers:
        problems["tiers"] = ["满减 needs at least one tier, e.g. 300:30, 500:60."]
    elif tier_problems(tiers):
        problems["tiers"] = tier_problems(tiers)
    if kind == "gift" and not values.get("gift_product_id"):
        problems["gift_product_id"] = ["A gift promotion needs the product given away."]
    if kind == "gift" and (values.get("buy_quantity") or 0) < 1:
        problems["buy_quantity"] = ["How many eligible units must be bought (at least 1)."]
    if kind in ("tiered", "gift") and values.get("scope") == "lines":
        problems["scope"] = ["满减 and gift promotions work on the eligible subtotal (scope order)."]
    start, end = values.get("starts_on"), values.get("ends_on")
    if start and end and end < start:
        problems["ends_on"] = ["The end date is before the start date."]
    return problems


def tiers_from_text(text: str) -> list[dict[str, str]]:
    """The form's "300:30, 500:60" as tiers for :class:`PromotionIn` (a full-width comma too)."""
    tiers = []
    for part in [p.strip() for p in (text or "").replace("，", ",").split(",") if p.strip()]:
        if ":" not in part:
            raise ValidationError({"tiers": [f"Write each tier as threshold:discount, e.g. 300:30 (got '{part}')."]})
        threshold, discount = part.split(":", 1)
        tiers.append({"threshold": threshold.strip(), "discount": discount.strip()})
    return tiers


class PromotionIn(Schema):
    """A promotion: every rule of the API and the web form (types, ranges, lengths, what each
    kind needs). Plain values and values it loaded before load the same way; the service
    then only checks that the ids it names exist."""

    campaign_id = Id(allow_none=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=120, error="1 to 120 characters."))
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    scope = fields.String(load_default="order", validate=validate.OneOf(
        SCOPES, error="order (the eligible subtotal) or lines (each eligible line)."))
    percent = Money(minimum=0, maximum=100, error_messages=AMOUNT_ERRORS,
                    metadata={"example": "10", "description": "10 = 10% off (kind percent)"})
    amount = Money(non_negative=True, error_messages=AMOUNT_ERRORS, metadata={"example": "20.00"})
    tiers = fields.List(fields.Nested(TierSchema), metadata={"description": "kind tiered: at least one"})
    buy_quantity = Int(minimum=0, maximum=MAX_QUANTITY)
    gift_product_id = Id(allow_none=True)
    gift_quantity = Int(minimum=1, maximum=MAX_QUANTITY)
    gift_repeat = fields.Boolean()
    product_ids = fields.List(Id())
    category_ids = fields.List(Id())
    customer_tiers = fields.List(fields.String(validate=validate.Length(max=40, error="Each at most 40 characters.")))
    customer_tags = fields.List(fields.String(validate=validate.Length(max=40, error="Each at most 40 characters.")))
    segment_id = Id(allow_none=True)
    starts_on = fields.Date(allow_none=True)
    ends_on = fields.Date(allow_none=True)
    min_spend = Money(non_negative=True, error_messages=AMOUNT_ERRORS, metadata={"example": "0.00"})
    stackable = fields.Boolean()
    priority = Int(minimum=-1000, maximum=1000)
    requires_coupon = fields.Boolean()
    active = fields.Boolean()
    description = fields.String(allow_none=True, validate=validate.Length(max=4000))

    @validates_schema
    def _rules(self, data: dict[str, Any], partial: Any = None, **_: Any) -> None:
        if data.get("name") is not None and not data["name"].strip():
            raise ValidationError("1 to 120 characters.", field_name="name")
        problems = tier_problems(data.get("tiers") or []) if partial else promotion_problems(data)
        if problems:
            raise ValidationError(problems if isinstance(problems, dict) else {"tiers": problems})

    @post_load
    def _normalise(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        """Names stripped; tiers as text sorted by threshold; id and name lists sorted, once each."""
        if data.get("name") is not None:
            data["name"] = data["name"].strip()
        if "tiers" in data:
            data["tiers"] = [{"threshold": str(t["threshold"]), "discount": str(t["discount"])}
                             for t in sorted(data["tiers"], key=lambda t: Decimal(t["threshold"]))]
        for key in ("product_ids", "category_ids"):
            if key in data:
                data[key] = sorted(set(data[key]))
        for key in ("customer_tiers", "customer_tags"):
            if key in data:
                data[key] = sorted({v.strip() for v in data[key] if v.strip()})
        return data


class PromotionPatch(PromotionIn):
    """Change a promotion: any subset of the fields (used with ``partial=True``); the rules
    across fields are checked on the promotion as it will be."""


class PromotionOut(Schema):
    id = fields.Integer()
    campaign_id = fields.Integer(allow_none=True)
    name = fields.String()
    kind = fields.String()
    scope = fields.String()
    percent = fields.Decimal(as_string=True)
    amount = Money()
    tiers = fields.List(fields.Nested(TierSchema))
    buy_quantity = fields.Integer()
    gift_product_id = fields.Integer(allow_none=True)
    gift_quantity = fields.Integer()
    gift_repeat = fields.Boolean()
    product_ids = fields.List(fields.Integer())
    category_ids = fields.List(fields.Integer())
    customer_tiers = fields.List(fields.String())
    customer_tags = fields.List(fields.String())
    segment_id = fields.Integer(allow_none=True)
    starts_on = fields.Date(allow_none=True)
    ends_on = fields.Date(allow_none=True)
    min_spend = Money()
    stackable = fields.Boolean()
    priority = fields.Integer()
    requires_coupon = fields.Boolean()
    active = fields.Boolean()
    description = fields.String(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class PromotionArgs(ListArgs):
    class Meta(ListArgs.Meta):
        sortable = ("id", "name", "priority", "kind", "starts_on")

    q = fields.String()
    campaign_id = Id()
    kind = fields.String(validate=validate.OneOf(KINDS))
    active = fields.Boolean()


class CouponIn(Schema):
    """Generate coupons: one ``code``, or ``count`` random codes with ``prefix``."""

    promotion_id = Id(required=True)
    code = fields.String(validate=validate.Length(min=3, max=64))
    count = Int(validate=validate.Range(min=1, max=10000))
    prefix = fields.String(validate=validate.Length(max=16))
    length = Int(validate=validate.Range(min=6, max=32))
    usage_limit = Int(allow_none=True, validate=validate.Range(min=1))
    per_customer_limit = Int(allow_none=True, validate=validate.Range(min=1))


class CouponPatch(Schema):
    active = fields.Boolean()
    usage_limit = Int(allow_none=True, validate=validate.Range(min=1))
    per_customer_limit = Int(allow_none=True, validate=validate.Range(min=1))


class CouponOut(Schema):
    id = fields.Integer()
    promotion_id = fields.Integer()
    code = fields.String()
    usage_limit = fields.Integer(allow_none=True)
    per_customer_limit = fields.Integer(allow_none=True)
    used = fields.Integer()
    remaining = fields.Method("_remaining")
    active = fields.Boolean()
    batch = fields.String(allow_none=True)
    created_at = fields.DateTime()

    def _remaining(self, obj):
        return None if obj.usage_limit is None else max(obj.usage_limit - obj.used, 0)


class CouponArgs(ListArgs):
    class Meta(ListArgs.Meta):
        sortable = ("id", "code", "used", "created_at")

    promotion_id = Id()
    code = fields.String()
    batch = fields.String()
    active = fields.Boolean()


class CouponBatchOut(Schema):
    count = fields.Integer()
    batch = fields.String()
    items = fields.List(fields.Nested(CouponOut))


class DayRevenue(Schema):
    day = fields.String()
    revenue = fields.String()


class EffectivenessOut(Schema):
    campaign_id = fields.Integer()
    name = fields.String()
    starts_on = fields.String()
    ends_on = fields.String()
    currency = fields.String()
    orders = fields.Integer()
    revenue = fields.String()
    discount_given = fields.String()
    gift_value = fields.String()
    customers_reached = fields.Integer()
    average_order_value = fields.String()
    other_orders = fields.Integer()
    other_revenue = fields.String()
    other_customers = fields.Integer()
    other_average_order_value = fields.String()
    aov_uplift_percent = fields.String(allow_none=True)
    budget = fields.String()
    budget_used = fields.String()
    budget_used_percent = fields.String(allow_none=True)
    revenue_by_day = fields.List(fields.Nested(DayRevenue))


class AudienceArgs(ListArgs):
    class Meta(ListArgs.Meta):
        sortable = ("id",)

    q = fields.String(metadata={"description": "Region contains, or exact tier"})
    format = fields.String(validate=validate.OneOf(("json", "csv")), load_default="json")


class AudienceOut(Schema):
    """A target customer; personal fields masked without ``crm.customer.read_personal``."""

    id = fields.Integer()
    name = fields.String()
    phone = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    region = fields.String(allow_none=True)
    tier = fields.String(allow_none=True)
    tags = fields.List(fields.String())
    consent_at = fields.DateTime(allow_none=True)


AUDIENCE_COLUMNS = [("id", "ID"), ("name", "Name"), ("phone", "Phone"), ("email", "Email"),
                    ("region", "Region"), ("tier", "Tier"), ("tags", "Tags"), ("consent_at", "Consent at")]
