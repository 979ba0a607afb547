"""Marshmallow schemas: request validation and the OpenAPI document of the orders API."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from core.api import Id, Int, ListArgs
from core.fields import Money


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
    unit_price = Money()
    line_discount = Money()
    line_total = Money()
    is_gift = fields.Boolean()
    promotion_id = fields.Integer(allow_none=True)
    returned_quantity = fields.Integer()


class OrderAdjustmentOut(Schema):
    promotion_id = fields.Integer(allow_none=True)
    campaign_id = fields.Integer(allow_none=True)
    code = fields.String()
    label = fields.String()
    amount = Money()
    line_index = fields.Integer(allow_none=True)
    coupon_code = fields.String(allow_none=True)


class PaymentOut(Schema):
    id = fields.Integer()
    kind = fields.String(metadata={"description": "payment or refund"})
    amount = Money()
    method = fields.String(allow_none=True)
    reference = fields.String(allow_none=True)
    paid_at = fields.DateTime(allow_none=True)


class ShipmentOut(Schema):
    id = fields.Integer()
    carrier = fields.String(allow_none=True)
    tracking_no = fields.String(allow_none=True)
    shipped_at = fields.DateTime(allow_none=True)


class OrderSummaryOut(Schema):
    """An order as lists show it: without lines, adjustments, payments, shipments and the
    amounts paid and refunded (those are in :class:`OrderOut`, the one-order answer)."""

    id = fields.Integer()
    number = fields.String()
    customer_id = fields.Integer()
    customer_name = fields.String(allow_none=True)
    owner_id = fields.Integer(allow_none=True)
    status = fields.String()
    currency = fields.String()
    subtotal = Money()
    discount_total = Money()
    total = Money()
    coupon_code = fields.String(allow_none=True)
    placed_at = fields.DateTime()
    confirmed_at = fields.DateTime(allow_none=True)
    paid_at = fields.DateTime(allow_none=True)
    shipped_at = fields.DateTime(allow_none=True)
    completed_at = fields.DateTime(allow_none=True)
    cancelled_at = fields.DateTime(allow_none=True)
    returned_at = fields.DateTime(allow_none=True)
    external_number = fields.String(allow_none=True)
    notes = fields.String(allow_none=True)
    custom = fields.Dict()


class OrderOut(OrderSummaryOut):
    """One order with its lines, promotions applied, payments, shipments and money in and out."""

    lines = fields.List(fields.Nested(OrderLineOut))
    adjustments = fields.List(fields.Nested(OrderAdjustmentOut))
    payments = fields.List(fields.Nested(PaymentOut))
    shipments = fields.List(fields.Nested(ShipmentOut))
    paid_amount = Money()
    refunded_amount = Money()


class QuoteLineOut(Schema):
    product_id = fields.Integer()
    sku = fields.String()
    name = fields.String()
    category_id = fields.Integer(allow_none=True)
    quantity = fields.Integer()
    unit_price = Money()
    line_discount = Money()
    line_total = Money()
    is_gift = fields.Boolean()
    promotion_id = fields.Integer(allow_none=True)
    available = fields.Integer(allow_none=True, metadata={
        "description": "Units available to sell (present when inventory is enabled)."})


class ConsideredOut(Schema):
    promotion_id = fields.Integer(allow_none=True)
    label = fields.String(allow_none=True)
    applied = fields.Boolean()
    reason = fields.String(allow_none=True)
    amount = Money()


class QuoteOut(Schema):
    """A priced cart: nothing is saved."""

    currency = fields.String()
    coupon_code = fields.String(allow_none=True)
    lines = fields.List(fields.Nested(QuoteLineOut))
    adjustments = fields.List(fields.Nested(OrderAdjustmentOut))
    considered = fields.List(fields.Nested(ConsideredOut), metadata={
        "description": "Every promotion looked at, applied or not, and why."})
    subtotal = Money()
    discount_total = Money()
    total = Money()


class TransitionOptionOut(Schema):
    key = fields.String()
    label = fields.String()
    to = fields.String()
    allowed = fields.Boolean()
    reason = fields.String(allow_none=True, metadata={"description": "Why not, when not allowed."})
    comment_required = fields.Boolean()
    inputs = fields.List(fields.Dict(), metadata={
        "description": "Values the transition asks for: key, label, type, required, choices."})
    approvals = fields.Dict(metadata={"description": "role, required and given approvals, when the "
                                                     "transition needs approvals."})


class TransitionsOut(Schema):
    status = fields.String()
    items = fields.List(fields.Nested(TransitionOptionOut))


class TransitionResultOut(Schema):
    status = fields.String(metadata={"description": "done, or pending_approval"})
    from_ = fields.String(data_key="from")
    to = fields.String()
    approvals = fields.Dict(metadata={"description": "given and required, while pending approval."})


class OrderTransitionOut(TransitionResultOut):
    order = fields.Nested(OrderOut)


class HistoryItemOut(Schema):
    id = fields.Integer()
    transition = fields.String()
    from_ = fields.String(data_key="from", allow_none=True)
    to = fields.String()
    actor_id = fields.Integer(allow_none=True)
    actor = fields.String()
    at = fields.DateTime()
    comment = fields.String(allow_none=True)
    inputs = fields.Dict(allow_none=True)


class HistoryListOut(Schema):
    items = fields.List(fields.Nested(HistoryItemOut))


class StatusCountOut(Schema):
    orders = fields.Integer()
    total = Money()


class OrderStatsOut(Schema):
    by_status = fields.Dict(keys=fields.String(), values=fields.Nested(StatusCountOut))
    orders = fields.Integer()
    revenue = Money()
    average_order_value = Money()
    customers = fields.Integer()
    currency = fields.String()


class ReturnLineOut(Schema):
    id = fields.Integer()
    order_line_id = fields.Integer()
    sku = fields.String()
    name = fields.String()
    quantity = fields.Integer()
    amount = Money()


class ReturnOut(Schema):
    id = fields.Integer()
    number = fields.String()
    order_id = fields.Integer()
    order_number = fields.String()
    status = fields.String()
    reason = fields.String(allow_none=True)
    refund_amount = Money()
    requested_at = fields.DateTime(allow_none=True)
    received_at = fields.DateTime(allow_none=True)
    refunded_at = fields.DateTime(allow_none=True)
    lines = fields.List(fields.Nested(ReturnLineOut))


class ReturnTransitionOut(TransitionResultOut):
    return_ = fields.Nested(ReturnOut, data_key="return")


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
