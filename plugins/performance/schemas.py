"""Marshmallow schemas: request validation and the OpenAPI document of the performance API.

Money is a string with two decimals (``"1234.50"``); periods are company months ``YYYY-MM``.
"""

from __future__ import annotations

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates

from core.api import Id, Int, ListArgs, WorkflowResultOut
from plugins.performance.models import SELLER_STATUSES
from plugins.performance.periods import PERIOD_RE


def _month(value: str) -> None:
    if not PERIOD_RE.match(value or ""):
        raise ValidationError("A month like 2026-01.")


class _Strict(Schema):
    class Meta:
        unknown = RAISE


def Month(**kw) -> fields.String:  # noqa: N802 - reads like a field type
    """A company month ``YYYY-MM``."""
    meta = {"example": "2026-01", **kw.pop("metadata", {})}
    return fields.String(validate=_month, metadata=meta, **kw)


class PeriodArgs(Schema):
    class Meta:
        unknown = "exclude"

    period = Month(metadata={"description": "A company month YYYY-MM (default: this month)."})
    date_from = fields.Date(metadata={"description": "Or a range: first local day (inclusive)."})
    date_to = fields.Date(metadata={"description": "Last local day (inclusive)."})


class LeaderboardArgs(PeriodArgs):
    by = fields.String(load_default="revenue", validate=validate.OneOf(
        ["revenue", "orders", "units", "customers", "new_customers", "attainment"]))
    level = fields.String(load_default="rep", validate=validate.OneOf(["rep", "team"]))
    team_id = Id()


# -- sellers ---------------------------------------------------------------


class SellerIn(_Strict):
    user_id = Id(required=True, strict=True)
    certificate_no = fields.String(allow_none=True, validate=validate.Length(max=64),
                                   metadata={"description": "Direct seller certificate number (直销员证号)."})
    status = fields.String(load_default="active", validate=validate.OneOf(SELLER_STATUSES))
    joined_on = fields.Date(allow_none=True)
    notes = fields.String(allow_none=True, validate=validate.Length(max=2000))


class SellerPatch(_Strict):
    certificate_no = fields.String(allow_none=True, validate=validate.Length(max=64))
    status = fields.String(validate=validate.OneOf(SELLER_STATUSES))
    joined_on = fields.Date(allow_none=True)
    notes = fields.String(allow_none=True, validate=validate.Length(max=2000))


class SellerOut(Schema):
    id = fields.Integer()
    user_id = fields.Integer()
    username = fields.String()
    display_name = fields.String()
    team_id = fields.Integer(allow_none=True)
    certificate_no = fields.String(allow_none=True)
    status = fields.String()
    joined_on = fields.Date(allow_none=True)
    status_changed_at = fields.DateTime(allow_none=True)
    notes = fields.String(allow_none=True)


class SellerArgs(ListArgs):
    class Meta(ListArgs.Meta):
        sortable = ("id", "status", "certificate_no")

    status = fields.String(validate=validate.OneOf(SELLER_STATUSES))
    team_id = Id()
    q = fields.String(validate=validate.Length(max=80),
                      metadata={"description": "Username, name or certificate number (prefix)."})


# -- teams -----------------------------------------------------------------


class TeamOut(Schema):
    id = fields.Integer()
    name = fields.String()
    region = fields.String(allow_none=True)
    manager_id = fields.Integer(allow_none=True)
    manager = fields.String(allow_none=True)
    members = fields.Integer()


class TeamListOut(Schema):
    items = fields.List(fields.Nested(TeamOut))


class TeamManagerIn(_Strict):
    manager_id = Id(required=True, strict=True, allow_none=True)


# -- targets ---------------------------------------------------------------


class TargetIn(_Strict):
    period = Month(required=True)
    rep_id = Id(strict=True, allow_none=True)
    team_id = Id(strict=True, allow_none=True)
    revenue = fields.Decimal(allow_none=True, as_string=True, places=None,
                             validate=validate.Range(min=0, max=999_999_999_999))
    orders = Int(allow_none=True, strict=True, validate=validate.Range(min=0, max=10_000_000))
    new_customers = Int(allow_none=True, strict=True, validate=validate.Range(min=0, max=10_000_000))
    notes = fields.String(allow_none=True, validate=validate.Length(max=2000))

    @validates("revenue")
    def _fen(self, value, **_kw):
        if value is not None:
            exp = value.as_tuple().exponent
            if isinstance(exp, int) and exp < -2:
                raise ValidationError("At most 2 decimal places (fen).")
            if not value.is_finite():
                raise ValidationError("Not a number.")


class TargetOut(Schema):
    id = fields.Integer()
    period = fields.String()
    rep_id = fields.Integer(allow_none=True)
    rep = fields.String(allow_none=True)
    team_id = fields.Integer(allow_none=True)
    team = fields.String(allow_none=True)
    revenue = fields.String(allow_none=True, metadata={"example": "50000.00"})
    orders = fields.Integer(allow_none=True)
    new_customers = fields.Integer(allow_none=True)
    currency = fields.String()
    notes = fields.String(allow_none=True)
    updated_at = fields.DateTime(allow_none=True)


class TargetArgs(ListArgs):
    class Meta(ListArgs.Meta):
        sortable = ("id", "period")

    period = Month()
    rep_id = Id()
    team_id = Id()


class TargetImportResult(Schema):
    counts = fields.Dict(keys=fields.String(), values=fields.Integer())
    errors = fields.List(fields.Dict(), metadata={"description": "[{line, column, reason}]"})


# -- performance -------------------------------------------------------------


class FiguresOut(Schema):
    revenue = fields.String(metadata={"description": "Net revenue (see the plugin README: paid, shipped "
                                                     "or completed orders by placed_at, minus returns)."})
    orders = fields.Integer()
    units = fields.Integer()
    customers = fields.Integer(metadata={"description": "Customers served (distinct)."})
    new_customers = fields.Integer(metadata={"description": "Customers whose first paid order ever is in the "
                                                           "period."})


class PerformanceOut(Schema):
    period = fields.Dict()
    figures = fields.Nested(FiguresOut)
    target = fields.Dict(allow_none=True)
    target_source = fields.String(allow_none=True, metadata={
        "description": "Where the team target comes from (its own, or the sum of its reps')."})
    attainment = fields.Dict()
    previous = fields.Dict()
    last_year = fields.Dict()
    currency = fields.String()
    rep = fields.Dict()
    team = fields.Dict()
    rank = fields.Dict()
    members = fields.List(fields.Dict())


class LeaderboardOut(Schema):
    period = fields.Dict()
    by = fields.String()
    level = fields.String()
    competitors = fields.Integer()
    currency = fields.String()
    items = fields.List(fields.Dict())


# -- commission ----------------------------------------------------------------


class RulesOut(Schema):
    file = fields.String()
    digest = fields.String()
    cap = fields.String()
    rules = fields.List(fields.Dict())
    default = fields.Dict(allow_none=True)
    ok = fields.Boolean()
    issues = fields.List(fields.Dict())


class RulesCheckIn(_Strict):
    text = fields.String(required=True, validate=validate.Length(max=200_000))


class GenerateIn(_Strict):
    period = Month(required=True)
    rep_id = Id(strict=True, allow_none=True,
                            metadata={"description": "Only this rep (default: every rep with sales or "
                                                     "pending adjustments)."})


class StatementLineOut(Schema):
    id = fields.Integer()
    kind = fields.String(metadata={"description": "sale, or adjustment (a later return)"})
    order_id = fields.Integer()
    order_number = fields.String()
    order_line_id = fields.Integer()
    completed_at = fields.DateTime(allow_none=True)
    sku = fields.String()
    product_name = fields.String()
    category_id = fields.Integer(allow_none=True)
    category_name = fields.String(allow_none=True)
    quantity = fields.Integer()
    base_amount = fields.String()
    rule = fields.String()
    rate_percent = fields.String(allow_none=True)
    per_unit = fields.String(allow_none=True)
    cap_factor = fields.String(allow_none=True)
    amount = fields.String()
    refers_statement_id = fields.Integer(allow_none=True)


class StatementOut(Schema):
    id = fields.Integer()
    rep_id = fields.Integer()
    rep = fields.String()
    period = fields.String()
    status = fields.String()
    currency = fields.String()
    sales_base = fields.String()
    adjustment_base = fields.String()
    net_base = fields.String()
    gross_amount = fields.String()
    cap_rate = fields.String()
    cap_amount = fields.String()
    total = fields.String()
    capped = fields.Boolean()
    rules_digest = fields.String()
    warnings = fields.List(fields.String())
    generated_at = fields.DateTime(allow_none=True)
    approved_at = fields.DateTime(allow_none=True)
    approved_by_id = fields.Integer(allow_none=True)
    paid_at = fields.DateTime(allow_none=True)
    payment_reference = fields.String(allow_none=True)
    line_count = fields.Integer()
    lines = fields.List(fields.Nested(StatementLineOut))


class StatementArgs(ListArgs):
    class Meta(ListArgs.Meta):
        sortable = ("id", "period", "total", "status")

    period = Month()
    rep_id = Id()
    status = fields.String(validate=validate.Length(max=40))


class StatementExportArgs(Schema):
    class Meta:
        unknown = "exclude"

    format = fields.String(load_default="csv", validate=validate.OneOf(["csv", "xlsx"]))
    period = Month()
    rep_id = Id()


class StatementTransitionIn(_Strict):
    transition = fields.String(required=True, validate=validate.Length(min=1, max=80))
    comment = fields.String(allow_none=True, validate=validate.Length(max=2000))
    inputs = fields.Dict(keys=fields.String(), load_default=dict)


class GenerateOut(Schema):
    period = fields.String()
    generated = fields.List(fields.Nested(StatementOut))
    skipped = fields.List(fields.Dict())
    warnings = fields.List(fields.String())


class StatementTransitionsOut(Schema):
    status = fields.String()
    items = fields.List(fields.Dict(), metadata={"description": "[{key, label, to, allowed, reason, inputs}]"})


class StatementTransitionOut(WorkflowResultOut):
    statement = fields.Nested(StatementOut)


class StatementHistoryOut(Schema):
    items = fields.List(fields.Dict(), metadata={"description": "[{transition, from, to, actor, at, comment}]"})


class RulesCheckOut(Schema):
    ok = fields.Boolean()
    issues = fields.List(fields.Dict(), metadata={"description": "[{file, line, column, severity, message}]"})
