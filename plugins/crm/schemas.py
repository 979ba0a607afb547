"""Marshmallow schemas: API input/output (OpenAPI comes from them) and list arguments."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, post_load, validate, validates_schema
from marshmallow import ValidationError as MarshmallowError

from core.api import MAX_MONEY, Id, Int, ListArgs, WorkflowResultOut
from core.fields import Phone
from plugins.crm.models import ACTIVITY_TYPES


class LowerEmail(fields.Email):
    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> str | None:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        return super()._deserialize(value.strip() if isinstance(value, str) else value,
                                    attr, data, **kw).lower()


def _text(n: int, **kw: Any) -> fields.String:
    return fields.String(validate=validate.Length(max=n), **kw)


class Tag(fields.String):
    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> str:
        text = super()._deserialize(value, attr, data, **kw).strip()
        if not text or len(text) > 40:
            raise MarshmallowError("A tag has 1 to 40 characters.")
        return text


# ---------------------------------------------------------------------------
# Customers
# ---------------------------------------------------------------------------


class CustomerIn(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=120))
    phone = Phone(allow_none=True, metadata={"description": "Mobile, landline with area code, or +country "
                                                           "number; stored in E.164 (+8613812345678)."})
    phones = fields.List(Phone(), metadata={"description": "Further numbers (the primary is added)."})
    email = LowerEmail(allow_none=True)
    address = _text(300, allow_none=True)
    region = _text(80, allow_none=True)
    tier = _text(40)
    tags = fields.List(Tag())
    source = _text(60, allow_none=True)
    owner_id = Id(allow_none=True, metadata={
        "description": "Owning rep; null puts the customer in the public pool."})
    consent_marketing = fields.Boolean()
    notes = fields.String(allow_none=True, validate=validate.Length(max=5000))
    external_code = _text(64, allow_none=True)
    custom = fields.Dict(keys=fields.String(), metadata={"description": "Custom field values."})

    @post_load
    def _strip(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        for key in ("name", "address", "region", "tier", "source", "external_code"):
            if isinstance(data.get(key), str):
                data[key] = data[key].strip() or None
        if "name" in data and data["name"] is None:
            raise MarshmallowError({"name": ["Name cannot be blank."]})
        if data.get("phones"):
            data["phones"] = [p for p in data["phones"] if p]
        return data


_PURCHASE_NOTE = ("From orders; present only for users with the permission orders.order.read "
                  "(absent, not null, for others).")


class CustomerOut(Schema):
    id = fields.Integer()
    name = fields.String()
    phone = fields.String(allow_none=True)
    phones = fields.List(fields.String())
    email = fields.String(allow_none=True)
    address = fields.String(allow_none=True)
    region = fields.String(allow_none=True)
    tier = fields.String()
    tags = fields.List(fields.String())
    source = fields.String(allow_none=True)
    owner_id = fields.Integer(allow_none=True)
    owner_name = fields.String(allow_none=True)
    owned_since = fields.DateTime(allow_none=True)
    consent_marketing = fields.Boolean()
    consent_at = fields.DateTime(allow_none=True)
    notes = fields.String(allow_none=True)
    external_code = fields.String(allow_none=True)
    custom = fields.Dict()
    last_contact_at = fields.DateTime(allow_none=True)
    pool_entered_at = fields.DateTime(allow_none=True)
    # purchase figures: present only for users with orders.order.read (absent for others)
    order_count = fields.Integer(metadata={"description": _PURCHASE_NOTE})
    total_spent = fields.Decimal(as_string=True, places=2, metadata={"description": _PURCHASE_NOTE})
    last_purchase_at = fields.DateTime(allow_none=True, metadata={"description": _PURCHASE_NOTE})
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class CustomerArgs(ListArgs):
    class Meta(ListArgs.Meta):
        sortable = ("id", "name", "created_at", "updated_at", "tier", "region", "last_contact_at",
                    "last_purchase_at", "total_spent", "order_count")

    q = fields.String(metadata={"description": "Search name, phone, email, external code."})
    tier = fields.String()
    tag = fields.String()
    region = fields.String()
    owner_id = Id()
    consent_marketing = fields.Boolean()


class ExportArgs(Schema):
    class Meta:
        unknown = "exclude"

    format = fields.String(load_default="csv", validate=validate.OneOf(["csv", "xlsx"]))
    q = fields.String()
    tier = fields.String()
    tag = fields.String()
    region = fields.String()
    owner_id = Id()
    segment_id = Id()


# ---------------------------------------------------------------------------
# Contacts, activities, purchases
# ---------------------------------------------------------------------------


class ContactIn(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=120))
    title = _text(80, allow_none=True)
    phone = Phone(allow_none=True)
    email = LowerEmail(allow_none=True)
    is_primary = fields.Boolean()
    notes = fields.String(allow_none=True, validate=validate.Length(max=2000))


class ContactOut(Schema):
    id = fields.Integer()
    customer_id = fields.Integer()
    name = fields.String()
    title = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    is_primary = fields.Boolean()
    notes = fields.String(allow_none=True)
    created_at = fields.DateTime()


class ActivityIn(Schema):
    type = fields.String(load_default="call", validate=validate.OneOf(ACTIVITY_TYPES))
    subject = fields.String(required=True, validate=validate.Length(min=1, max=200))
    due_date = fields.Date(allow_none=True, metadata={"description": "Set for a task to do later."})
    done = fields.Boolean(metadata={"description": "True records an interaction that happened."})
    outcome = fields.String(allow_none=True, validate=validate.Length(max=2000))
    next_step = fields.String(allow_none=True, validate=validate.Length(max=2000))
    next_due_date = fields.Date(allow_none=True, load_only=True, metadata={
        "description": "With next_step: create the follow-up task due on this date."})
    assignee_id = Id(allow_none=True)

    @validates_schema
    def _check(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("next_due_date") and not data.get("next_step"):
            raise MarshmallowError("Give the next step the follow-up task is for.", "next_step")


class ActivityPatch(ActivityIn):
    subject = fields.String(validate=validate.Length(min=1, max=200))
    type = fields.String(validate=validate.OneOf(ACTIVITY_TYPES))


class ActivityOut(Schema):
    id = fields.Integer()
    customer_id = fields.Integer()
    customer_name = fields.Method("_customer_name")
    assignee_id = fields.Integer(allow_none=True)
    type = fields.String()
    subject = fields.String()
    due_date = fields.Date(allow_none=True)
    overdue = fields.Method("_overdue")
    done = fields.Boolean()
    done_at = fields.DateTime(allow_none=True)
    outcome = fields.String(allow_none=True)
    next_step = fields.String(allow_none=True)
    follow_up_id = fields.Integer(allow_none=True)
    created_at = fields.DateTime()
    created_by_id = fields.Integer(allow_none=True)

    def _customer_name(self, obj: Any) -> str | None:
        return obj.customer.name if obj.customer is not None else None

    def _overdue(self, obj: Any) -> bool:
        from plugins.crm.services import today_local  # noqa: PLC0415 - crm.services imports this module

        return bool(not obj.done and obj.due_date and obj.due_date < today_local())


class ActivityArgs(ListArgs):
    class Meta(ListArgs.Meta):
        sortable = ("id", "due_date", "created_at", "done_at")

    done = fields.Boolean()
    type = fields.String(validate=validate.OneOf(ACTIVITY_TYPES))


class DueArgs(ListArgs):
    class Meta(ListArgs.Meta):
        sortable = ("id", "due_date")

    include_overdue = fields.Boolean(load_default=True)
    date = fields.Date(metadata={"description": "Another day than today (company time zone)."})


class PurchaseOut(Schema):
    id = fields.Integer()
    order_id = fields.Integer()
    number = fields.String()
    status = fields.String()
    currency = fields.String()
    total = fields.Decimal(as_string=True, places=2)
    discount_total = fields.Decimal(as_string=True, places=2)
    returned_total = fields.Decimal(as_string=True, places=2)
    placed_at = fields.DateTime(allow_none=True)
    lines = fields.List(fields.Dict())


# ---------------------------------------------------------------------------
# Duplicates, merge, pool
# ---------------------------------------------------------------------------


class MergeIn(Schema):
    survivor_id = Id(required=True)
    merged_ids = fields.List(Id(), required=True, validate=validate.Length(min=1, max=50))


class ClaimIn(Schema):
    customer_ids = fields.List(Id(), required=True, validate=validate.Length(min=1, max=200))


class ReleaseIn(Schema):
    reason = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=300))


class AssignIn(Schema):
    owner_id = Id(required=True, allow_none=True)


class PoolArgs(ListArgs):
    class Meta(ListArgs.Meta):
        sortable = ("id", "name", "pool_entered_at", "created_at", "region", "tier")

    q = fields.String()
    tier = fields.String()
    region = fields.String()
    tag = fields.String()


# ---------------------------------------------------------------------------
# Segments
# ---------------------------------------------------------------------------


class SegmentFilters(Schema):
    class Meta:
        unknown = "raise"

    tier = fields.List(fields.String(validate=validate.Length(min=1, max=40)))
    tags = fields.List(Tag(), metadata={"description": "Customers having any of these tags."})
    region = fields.List(fields.String(validate=validate.Length(min=1, max=80)))
    min_spend = fields.Decimal(as_string=True, places=2, allow_none=True,
                               validate=validate.Range(min=0, max=MAX_MONEY))
    max_spend = fields.Decimal(as_string=True, places=2, allow_none=True,
                               validate=validate.Range(min=0, max=MAX_MONEY))
    last_purchase_before = fields.Date(allow_none=True)
    last_purchase_after = fields.Date(allow_none=True)
    min_orders = Int(allow_none=True, validate=validate.Range(min=0))
    consent_marketing = fields.Boolean(allow_none=True)
    source = fields.List(fields.String(validate=validate.Length(min=1, max=60)))

    @validates_schema
    def _ranges(self, data: dict[str, Any], **_: Any) -> None:
        lo, hi = data.get("min_spend"), data.get("max_spend")
        if lo is not None and hi is not None and lo > hi:
            raise MarshmallowError("Must not be below min_spend.", "max_spend")
        a, b = data.get("last_purchase_after"), data.get("last_purchase_before")
        if a is not None and b is not None and a > b:
            raise MarshmallowError("Must not be before last_purchase_after.", "last_purchase_before")


class SegmentIn(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=120))
    description = fields.String(allow_none=True, validate=validate.Length(max=2000))
    filters = fields.Nested(SegmentFilters, load_default=dict)


class SegmentOut(Schema):
    id = fields.Integer()
    name = fields.String()
    description = fields.String(allow_none=True)
    filters = fields.Dict()
    customer_count = fields.Integer(dump_default=None)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class SegmentArgs(ListArgs):
    class Meta(ListArgs.Meta):
        sortable = ("id", "name", "created_at")

    q = fields.String()


# ---------------------------------------------------------------------------
# Leads
# ---------------------------------------------------------------------------


class LeadIn(Schema):
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    customer_id = Id(allow_none=True)
    contact_name = _text(120, allow_none=True)
    phone = Phone(allow_none=True)
    email = LowerEmail(allow_none=True)
    source = _text(60, allow_none=True)
    owner_id = Id(allow_none=True)
    expected_amount = fields.Decimal(as_string=True, places=2,
                                     validate=validate.Range(min=0, max=MAX_MONEY))
    expected_close = fields.Date(allow_none=True)
    notes = fields.String(allow_none=True, validate=validate.Length(max=5000))


class LeadOut(Schema):
    id = fields.Integer()
    title = fields.String()
    status = fields.String()
    customer_id = fields.Integer(allow_none=True)
    contact_name = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    source = fields.String(allow_none=True)
    owner_id = fields.Integer(allow_none=True)
    expected_amount = fields.Decimal(as_string=True, places=2)
    expected_close = fields.Date(allow_none=True)
    notes = fields.String(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class LeadTransitionOut(LeadOut):
    """The lead after a transition, with what the transition did."""

    result = fields.Nested(WorkflowResultOut)


class LeadArgs(ListArgs):
    class Meta(ListArgs.Meta):
        sortable = ("id", "title", "created_at", "expected_close", "expected_amount", "status")

    q = fields.String()
    status = fields.String()
    owner_id = Id()
    customer_id = Id()


class TransitionIn(Schema):
    transition = fields.String(required=True)
    comment = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=2000))
    inputs = fields.Dict(load_default=dict)


class TransitionOut(Schema):
    key = fields.String()
    label = fields.String()
    to = fields.String()
    allowed = fields.Boolean()
    reason = fields.String(allow_none=True)
    comment_required = fields.Boolean()
    inputs = fields.List(fields.Dict())
    approvals = fields.Dict()


class HistoryOut(Schema):
    id = fields.Integer()
    transition = fields.String()
    from_state = fields.String()
    to_state = fields.String()
    actor_id = fields.Integer(allow_none=True)
    at = fields.DateTime()
    comment = fields.String(allow_none=True)
    inputs = fields.Dict(allow_none=True)


# Distinct classes for PATCH bodies (OpenAPI component names must be unique).
class CustomerPatch(CustomerIn):
    pass


class ContactPatch(ContactIn):
    pass


class SegmentPatch(SegmentIn):
    pass


class LeadPatch(LeadIn):
    pass
