"""Marshmallow schemas: request validation and the OpenAPI document of the orders API."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from core.api import Id, Int, ListArgs


class OrderLineIn(Schema):
    product_id = Id(required=True, strict=True)
    quantity = Int(required=True, strict=True, validate=validate.Range(min=1, max=100_000))


class OrderIn(Schema):
    customer_id = Id(required=True, strict=True)
    lines = fields.List(fields.Nested(OrderLineIn), required=True, validate=validate.Length(min=1, max=500))
    coupon_code = fields.String(allow_none=True, validate=validate.Length(max=64))
    custom = fields.Dict(keys=fields.String())
    owner_id = Id(allow_none=True, strict=True,
                              metadata={"description": "Owner rep; default the current user."})
    notes = fields.String(allow_none=True, validate=validate.Length(max=4000))
    currency = fields.String(validate=validate.Length(equal=3))


class OrderPatch(Schema):
    lines = fields.List(fields.Nested(OrderLineIn), validate=validate.Length(min=1, max=500))
    coupon_code = fields.String(allow_none=True, validate=validate.Length(max=64))
    custom = fields.Dict(keys=fields.String())
    notes = fields.String(allow_none=True, validate=validate.Length(max=4000))


class OrderQuoteIn(Schema):
    customer_id = Id(allow_none=True, strict=True)
    lines = fields.List(fields.Nested(OrderLineIn), required=True, validate=validate.Length(min=1, max=500))
    coupon_code = fields.String(allow_none=True, validate=validate.Length(max=64))
    currency = fields.String(validate=validate.Length(equal=3))


class OrderLineOut(Schema):
    id = fields.Integer()
    product_id = fields.Integer()
    sku = fields.String()
    name = fields.String()
    category_id = fields.Integer(allow_none=True)
    quantity = fields.Integer()
    unit_price = fields.Decimal(as_string=True)
    line_discount = fields.Decimal(as_string=True)
    line_total = fields.Decimal(as_string=True)
    is_gift = fields.Boolean()
    promotion_id = fields.Integer(allow_none=True)
    returned_quantity = fields.Integer()


class OrderAdjustmentOut(Schema):
    promotion_id = fields.Integer(allow_none=True)
    campaign_id = fields.Integer(allow_none=True)
    code = fields.String()
    label = fields.String()
    amount = fields.Decimal(as_string=True)
    line_index = fields.Integer(allow_none=True)
    coupon_code = fields.String(allow_none=True)


class OrderOut(Schema):
    id = fields.Integer()
    number = fields.String()
    customer_id = fields.Integer()
    customer_name = fields.String(allow_none=True)
    owner_id = fields.Integer(allow_none=True)
    status = fields.String()
    currency = fields.String()
    subtotal = fields.Decimal(as_string=True)
    discount_total = fields.Decimal(as_string=True)
    total = fields.Decimal(as_string=True)
    coupon_code = fields.String(allow_none=True)
    placed_at = fields.DateTime()
    confirmed_at = fields.DateTime(allow_none=True)
    paid_at = fields.DateTime(allow_none=True)
    shipped_at = fields.DateTime(allow_none=True)
    completed_at = fields.DateTime(allow_none=True)
    cancelled_at = fields.DateTime(allow_none=True)
    external_number = fields.String(allow_none=True)
    custom = fields.Dict()
    lines = fields.List(fields.Nested(OrderLineOut))
    adjustments = fields.List(fields.Nested(OrderAdjustmentOut))


class OrderArgs(ListArgs):
    class Meta(ListArgs.Meta):
        sortable = ("id", "number", "placed_at", "total", "status")

    q = fields.String(metadata={"description": "Order or external number (prefix)."})
    status = fields.String()
    customer_id = Id()
    owner_id = Id()
    date_from = fields.Date(metadata={"description": "Placed on or after this day."})
    date_to = fields.Date(metadata={"description": "Placed on or before this day."})
    format = fields.String(validate=validate.OneOf(["csv", "xlsx"]),
                           metadata={"description": "Export only: csv (default) or xlsx."})


class OrderStatsArgs(Schema):
    class Meta:
        unknown = "exclude"

    date_from = fields.Date()
    date_to = fields.Date()
    owner_id = Id()


class OrderTransitionIn(Schema):
    transition = fields.String(required=True, validate=validate.Length(min=1, max=80))
    comment = fields.String(allow_none=True, validate=validate.Length(max=2000))
    inputs = fields.Dict(keys=fields.String(), load_default=dict)


class ReturnLineIn(Schema):
    order_line_id = Id(required=True, strict=True)
    quantity = Int(required=True, strict=True, validate=validate.Range(min=1))


class ReturnIn(Schema):
    order_id = Id(required=True, strict=True)
    lines = fields.List(fields.Nested(ReturnLineIn), required=True, validate=validate.Length(min=1))
    reason = fields.String(load_default="", validate=validate.Length(max=2000))


class ReturnArgs(ListArgs):
    class Meta(ListArgs.Meta):
        sortable = ("id", "number", "requested_at", "status")

    status = fields.String()
    order_id = Id()
