"""Marshmallow schemas of the inventory API."""

from __future__ import annotations

from decimal import ROUND_HALF_UP

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from core.api import MAX_MONEY, Id, Int, ListArgs

KINDS = ("receipt", "issue", "adjustment", "transfer")


class WarehouseIn(Schema):
    class Meta:
        ordered = True

    code = fields.String(required=True, validate=[
        validate.Length(min=1, max=32),
        validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9_\-]*$", error="Use letters, digits, - and _ only.")])
    name = fields.String(required=True, validate=validate.Length(min=1, max=120))
    address = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=300))
    active = fields.Boolean(load_default=True)


class WarehousePatch(WarehouseIn):
    """Any subset of a warehouse's fields."""


class WarehouseOut(Schema):
    class Meta:
        ordered = True

    id = fields.Integer()
    code = fields.String()
    name = fields.String()
    address = fields.String(allow_none=True)
    active = fields.Boolean()
    created_at = fields.DateTime()


class WarehouseArgs(ListArgs):
    class Meta(ListArgs.Meta):
        sortable = ("id", "code", "name")

    q = fields.String()
    active = fields.Boolean()


class StockOut(Schema):
    class Meta:
        ordered = True

    id = fields.Integer()
    product_id = fields.Integer()
    sku = fields.String()
    name = fields.String()
    unit = fields.String()
    warehouse_id = fields.Integer()
    warehouse_code = fields.String()
    on_hand = fields.Integer()
    reserved = fields.Integer()
    available = fields.Integer()
    reorder_point = fields.Integer(allow_none=True)
    reorder_point_source = fields.String(allow_none=True, metadata={"description": "warehouse, product or null"})
    low = fields.Boolean()
    shortfall = fields.Integer()
    updated_at = fields.DateTime()


class StockArgs(ListArgs):
    class Meta(ListArgs.Meta):
        sortable = ("id", "on_hand", "reserved", "available", "updated_at")

    product_id = Id()
    warehouse_id = Id()
    low = fields.Boolean(metadata={"description": "Only rows whose available is below the reorder point."})
    q = fields.String(metadata={"description": "Search in SKU and product name."})


class AlertArgs(ListArgs):
    class Meta(ListArgs.Meta):
        sortable = ("id", "available")

    warehouse_id = Id()


class MovementIn(Schema):
    """A manual movement: receipt, issue, adjustment (``quantity`` signed, or ``counted``) or
    transfer (``warehouse_id`` → ``to_warehouse_id``)."""

    class Meta:
        ordered = True

    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    product_id = Id(required=True)
    warehouse_id = Id(required=True)
    to_warehouse_id = Id(allow_none=True, load_default=None)
    quantity = Int(allow_none=True, load_default=None, strict=True)
    counted = Int(allow_none=True, load_default=None, strict=True)
    reason = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=200))
    reference = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=100))
    unit_cost = fields.Decimal(allow_none=True, load_default=None, places=2, rounding=ROUND_HALF_UP,
                               validate=validate.Range(min=0, max=MAX_MONEY))

    @validates_schema
    def _cross(self, data, **_kw):
        kind, qty, counted = data.get("kind"), data.get("quantity"), data.get("counted")
        errors: dict[str, list[str]] = {}
        if kind == "adjustment":
            if (qty is None) == (counted is None):
                errors["quantity"] = ["Give either quantity (signed change) or counted (new on-hand)."]
            elif qty == 0:
                errors["quantity"] = ["Must be a whole number other than zero."]
            elif counted is not None and counted < 0:
                errors["counted"] = ["Must be zero or more."]
            if not (data.get("reason") or "").strip():
                errors["reason"] = ["Required for adjustments."]
        elif kind in KINDS:
            if qty is None:
                errors["quantity"] = ["Missing data for required field."]
            elif qty <= 0:
                errors["quantity"] = ["Must be a whole number above zero."]
            if counted is not None:
                errors["counted"] = ["Only for adjustments."]
        if kind == "transfer" and data.get("to_warehouse_id") is None:
            errors["to_warehouse_id"] = ["Required for transfers."]
        if kind != "transfer" and data.get("to_warehouse_id") is not None:
            errors["to_warehouse_id"] = ["Only for transfers."]
        if kind != "receipt" and data.get("unit_cost") is not None:
            errors["unit_cost"] = ["Only for receipts."]
        if errors:
            raise ValidationError(errors)


class MovementOut(Schema):
    class Meta:
        ordered = True

    id = fields.Integer()
    created_at = fields.DateTime()
    kind = fields.String()
    product_id = fields.Integer()
    sku = fields.Function(lambda m: m.product.sku)
    warehouse_id = fields.Integer()
    warehouse_code = fields.Function(lambda m: m.warehouse.code)
    quantity = fields.Integer()
    balance_after = fields.Integer()
    reason = fields.String(allow_none=True)
    reference = fields.String(allow_none=True)
    unit_cost = fields.Decimal(as_string=True, allow_none=True, metadata={
        "description": "Cost per unit of a receipt; present only for users with the permission "
                       "catalog.product.read_cost."})
    source_type = fields.String(allow_none=True)
    source_id = fields.Integer(allow_none=True)
    transfer_id = fields.String(allow_none=True)
    actor_id = fields.Integer(allow_none=True)


class MovementArgs(ListArgs):
    class Meta(ListArgs.Meta):
        sortable = ("id", "created_at")

    product_id = Id()
    warehouse_id = Id()
    kind = fields.String(validate=validate.OneOf(("receipt", "issue", "adjustment", "transfer", "return")))
    source_type = fields.String()
    source_id = Id()
    since = fields.DateTime()
    until = fields.DateTime()


class MovementResult(Schema):
    movements = fields.List(fields.Nested(MovementOut))


class ReorderPointIn(Schema):
    product_id = Id(required=True)
    warehouse_id = Id(allow_none=True, load_default=None,
                                  metadata={"description": "Omit for the product's default."})
    reorder_point = Int(required=True, allow_none=True, strict=True,
                                   validate=validate.Range(min=0, error="Must be zero or more."))
