"""Marshmallow schemas of the marketing API (OpenAPI comes from them).

Input schemas check types first (``@blp.arguments``); :mod:`plugins.marketing.services`
then checks the meaning (what each promotion kind needs, ids that exist).
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from core.api import Id, Int, ListArgs
from core.fields import Money
from plugins.marketing.engine import KINDS, SCOPES
from plugins.marketing.models import CAMPAIGN_STATUSES, CHANNELS


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


class TierSchema(Schema):
    threshold = fields.Raw(required=True, metadata={"type": "string", "example": "300.00"})
    discount = fields.Raw(required=True, metadata={"type": "string", "example": "30.00"})


class PromotionIn(Schema):
    campaign_id = Id(allow_none=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=120))
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    scope = fields.String(validate=validate.OneOf(SCOPES))
    percent = fields.Raw(metadata={"type": "string", "example": "10", "description": "10 = 10% off"})
    amount = fields.Raw(metadata={"type": "string", "example": "20.00"})
    tiers = fields.List(fields.Nested(TierSchema))
    buy_quantity = Int()
    gift_product_id = Id(allow_none=True)
    gift_quantity = Int()
    gift_repeat = fields.Boolean()
    product_ids = fields.List(Id())
    category_ids = fields.List(Id())
    customer_tiers = fields.List(fields.String())
    customer_tags = fields.List(fields.String())
    segment_id = Id(allow_none=True)
    starts_on = fields.Date(allow_none=True)
    ends_on = fields.Date(allow_none=True)
    min_spend = fields.Raw(metadata={"type": "string", "example": "0.00"})
    stackable = fields.Boolean()
    priority = Int()
    requires_coupon = fields.Boolean()
    active = fields.Boolean()
    description = fields.String(allow_none=True)


class PromotionPatch(PromotionIn):
    """Change a promotion: any subset of the fields (used with ``partial=True``)."""


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
