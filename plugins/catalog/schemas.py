"""Marshmallow schemas of the catalog API (OpenAPI comes from them)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from core.api import Id, ListArgs
from core.fields import Money

SKU_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._\-/]*$"


class ProductIn(Schema):
    """A product to create (PATCH accepts any subset)."""

    class Meta:
        ordered = True

    sku = fields.String(required=True, validate=[
        validate.Length(min=1, max=64),
        validate.Regexp(SKU_PATTERN, error="Use letters, digits and . _ - / only, starting with a "
                                           "letter or digit.")])
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    category_id = Id(allow_none=True, load_default=None)
    unit = fields.String(load_default="件", validate=validate.Length(min=1, max=20))
    price = Money(non_negative=True, required=True)
    cost = Money(non_negative=True, metadata={"description": "Unit cost (0.00 when omitted). Needs the permission "
                                          "catalog.product.read_cost (403 without it)."})
    active = fields.Boolean(load_default=True)
    barcode = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=64))
    description = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=5000))
    custom = fields.Dict(keys=fields.String(), load_default=dict,
                         metadata={"description": "Admin-defined custom fields (entity 'product')."})


class ProductOut(Schema):
    class Meta:
        ordered = True

    id = fields.Integer()
    sku = fields.String()
    name = fields.String()
    category_id = fields.Integer(allow_none=True)
    category_name = fields.String(allow_none=True)
    unit = fields.String()
    price = fields.Decimal(as_string=True)
    cost = fields.Decimal(as_string=True, metadata={
        "description": "Unit cost; present only for users with the permission "
                       "catalog.product.read_cost (absent, not null, for others)."})
    active = fields.Boolean()
    barcode = fields.String(allow_none=True)
    description = fields.String(allow_none=True)
    custom = fields.Dict()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class ProductArgs(ListArgs):
    """Product list filters; ``custom.<key>=value`` filters on custom fields too."""

    class Meta(ListArgs.Meta):
        sortable = ("id", "sku", "name", "price", "cost", "created_at", "updated_at")

    q = fields.String(metadata={"description": "Search in SKU, name and barcode."})
    category_id = Id(metadata={"description": "Category, including its subcategories."})
    active = fields.Boolean()


class CategoryIn(Schema):
    class Meta:
        ordered = True

    name = fields.String(required=True, validate=validate.Length(min=1, max=80))
    parent_id = Id(allow_none=True, load_default=None)
    description = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=2000))


class CategoryOut(Schema):
    class Meta:
        ordered = True

    id = fields.Integer()
    name = fields.String()
    parent_id = fields.Integer(allow_none=True)
    description = fields.String(allow_none=True)
    created_at = fields.DateTime()


class CategoryArgs(ListArgs):
    class Meta(ListArgs.Meta):
        sortable = ("id", "name")

    q = fields.String()
    parent_id = Id()


class ProductPatch(ProductIn):
    """Any subset of a product's fields (PATCH)."""


class CategoryPatch(CategoryIn):
    """Any subset of a category's fields (PATCH)."""
