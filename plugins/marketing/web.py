"""Web pages: campaigns (list, detail with effectiveness and chart, form), promotions
(list, detail with coupons, form), coupon generation, target-list export."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from flask_wtf import FlaskForm
from marshmallow import ValidationError as MarshmallowError
from sqlalchemy import func, select
from wtforms import BooleanField, DateField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from core.api import apply_sort, page_of
from core.auth import has_permission, require
from core.dashboard import chart_data
from core.db import db
from core.errors import DovetailError, ValidationError
from core.i18n import N_
from core.scope import get_for, select_for
from plugins.catalog.public import Category, Product
from plugins.crm.public import Segment
from plugins.marketing import services
from plugins.marketing.api import audience_csv, campaign_filters, promotion_filters
from plugins.marketing.engine import KINDS
from plugins.marketing.models import CAMPAIGN_STATUSES, CHANNELS, Campaign, Coupon, Promotion
from plugins.marketing.schemas import tiers_from_text

bp = Blueprint("marketing_web", __name__, url_prefix="/marketing", template_folder="templates")
C_READ, C_WRITE = "marketing.campaign.read", "marketing.campaign.write"
P_READ, P_WRITE = "marketing.promotion.read", "marketing.promotion.write"
PER_PAGE = 50

KIND_LABELS = {"percent": _l("Percent off"), "amount": _l("Amount off"), "tiered": _l("Spend X save Y (满减)"),
               "gift": _l("Buy X get a gift (赠品)")}


def _page() -> int:
    raw = request.args.get("page", "1")
    return max(int(raw), 1) if raw.isdigit() else 1


def _attach_errors(form: FlaskForm, exc: DovetailError) -> None:
    """Show service-level field errors next to the form fields; the rest as a flash."""
    loose = []
    for key, msgs in (exc.fields or {}).items():
        field = getattr(form, key, None)
        msgs = msgs if isinstance(msgs, list) else [msgs]
        if field is not None and hasattr(field, "errors"):
            field.errors = list(field.errors) + [str(m) for m in msgs]
        else:
            loose.append(f"{key}: {'; '.join(str(m) for m in msgs)}")
    flash(exc.message + (" " + " ".join(loose) if loose else ""), "error")


# ---------------------------------------------------------------------------
# Campaigns
# ---------------------------------------------------------------------------



#: message ids of the campaign statuses (models.CAMPAIGN_STATUSES), shown translated
STATUS_LABELS = (N_("draft"), N_("active"), N_("paused"), N_("ended"))

#: message ids of the campaign channels (models.CHANNELS), shown translated in the form, the
#: filter and the lists (the stored value stays the key)
CHANNEL_LABELS = (N_("sms"), N_("wechat"), N_("phone"), N_("email"), N_("store"), N_("online"), N_("event"),
                  N_("other"))

class CampaignForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)])
    channel = SelectField(_l("Channel"), choices=[(c, _l(c)) for c in CHANNELS], default="online")
    starts_on = DateField(_l("Starts on"), validators=[DataRequired()])
    ends_on = DateField(_l("Ends on"), validators=[DataRequired()])
    budget = StringField(_l("Budget"), default="0.00", validators=[Optional()])
    segment_id = SelectField(_l("Target segment"), choices=[], validate_choice=False)
    status = SelectField(_l("Status"), choices=[(s, _l(s)) for s in CAMPAIGN_STATUSES],
                         default="draft")
    description = TextAreaField(_l("Description"), validators=[Optional()])


def _segment_choices() -> list[tuple[str, str]]:
    rows = db.session.execute(select(Segment.id, Segment.name).order_by(Segment.name)).all()
    return [("", _("(none)"))] + [(str(r.id), r.name) for r in rows]


@bp.get("/campaigns")
@login_required
def campaigns():
    user = require(C_READ)
    args: dict[str, Any] = {"q": request.args.get("q", ""), "page": _page(), "per_page": PER_PAGE}
    if request.args.get("status") in CAMPAIGN_STATUSES:
        args["status"] = request.args["status"]
    if request.args.get("channel") in CHANNELS:
        args["channel"] = request.args["channel"]
    stmt = campaign_filters(select_for(Campaign, C_READ, user), args)
    rows, total = page_of(apply_sort(stmt, Campaign, None, default="-starts_on"), args)
    # the search macro shows labels as given, so they are translated here
    filters = [{"name": "status", "label": _("Status"), "choices": [(s, _(s)) for s in CAMPAIGN_STATUSES]},
               {"name": "channel", "label": _("Channel"), "choices": [(c, _(c)) for c in CHANNELS]}]
    return render_template("marketing/campaigns.html", rows=rows, total=total, page=args["page"],
                           per_page=PER_PAGE, filters=filters, can_write=has_permission(user, C_WRITE))


@bp.get("/campaigns/<int:campaign_id>")
@login_required
def campaign(campaign_id: int):
    user = require(C_READ)
    c = get_for(Campaign, campaign_id, C_READ, user)
    eff = services.effectiveness(c, user) if has_permission(user, "marketing.report.read") else None
    audience_total, audience_error = None, None
    if c.segment_id is not None:
        try:
            stmt = services.audience_query(c, user)
            audience_total = db.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
        except DovetailError as exc:
            audience_error = exc.message
    widget = None
    if eff:
        # amounts as Decimal (chart_data plots numeric columns only) and the chart's JSON for
        # static/charts.js, as report and dashboard cards carry it
        widget = {"title": _("Revenue by day"), "kind": "bar", "columns": [_("Day"), _("Revenue")],
                  "rows": [[d["day"], Decimal(d["revenue"])] for d in eff["revenue_by_day"]]}
        widget["chart"] = chart_data(widget["columns"], widget["rows"])
    aov_widget = None
    if eff:
        aov_widget = {"title": _("Average order value"), "kind": "bar",
                      "columns": [_("Orders"), _("Average order value")],
                      "rows": [[_("Promoted"), Decimal(eff["average_order_value"])],
                               [_("Other"), Decimal(eff["other_average_order_value"])]]}
        aov_widget["chart"] = chart_data(aov_widget["columns"], aov_widget["rows"])
    return render_template("marketing/campaign.html", c=c, eff=eff, widget=widget, aov_widget=aov_widget,
                           segment=services.segment_name(c.segment_id) if c.segment_id else None,
                           audience_total=audience_total, audience_error=audience_error,
                           can_write=has_permission(user, C_WRITE),
                           can_export=has_permission(user, "marketing.list.export"),
                           kind_labels=KIND_LABELS)


@bp.get("/campaigns/<int:campaign_id>/audience.csv")
@login_required
def campaign_audience(campaign_id: int):
    user = require("marketing.list.export")
    c = get_for(Campaign, campaign_id, C_READ, user)
    return audience_csv(c, services.audience_query(c, user), user)


@bp.route("/campaigns/new", methods=["GET", "POST"])
@bp.route("/campaigns/<int:campaign_id>/edit", methods=["GET", "POST"])
@login_required
def campaign_form(campaign_id: int | None = None):
    user = require(C_WRITE)
    c = get_for(Campaign, campaign_id, C_WRITE, user) if campaign_id else None
    form = CampaignForm(obj=c)
    form.segment_id.choices = _segment_choices()
    if c is not None and request.method == "GET":
        form.segment_id.data = str(c.segment_id or "")
        form.budget.data = str(c.budget)
    if form.validate_on_submit():
        data = {"name": form.name.data, "channel": form.channel.data,
                "starts_on": form.starts_on.data.isoformat(), "ends_on": form.ends_on.data.isoformat(),
                "budget": (form.budget.data or "0").strip(),
                "segment_id": int(form.segment_id.data) if form.segment_id.data else None,
                "status": form.status.data, "description": form.description.data or None}
        try:
            c = services.save_campaign(c, data)
            db.session.commit()
        except DovetailError as exc:
            db.session.rollback()
            _attach_errors(form, exc)
        else:
            flash(_("Campaign %(name)s saved.", name=c.name))
            return redirect(url_for("marketing_web.campaign", campaign_id=c.id))
    status = 422 if request.method == "POST" else 200
    return render_template("marketing/campaign_form.html", form=form, c=c), status


# ---------------------------------------------------------------------------
# Promotions
# ---------------------------------------------------------------------------


class PromotionForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)])
    campaign_id = SelectField(_l("Campaign"), choices=[], validate_choice=False)
    kind = SelectField(_l("Kind"), choices=[(k, KIND_LABELS[k]) for k in KINDS])
    scope = SelectField(_l("Applies to"), choices=[("order", _l("Eligible subtotal")),
                                                       ("lines", _l("Each eligible line"))])
    percent = StringField(_l("Percent off (10 means 10 percent off)"), validators=[Optional()])
    amount = StringField(_l("Amount off"), validators=[Optional()])
    tiers = StringField(_l("满减 tiers (300:30, 500:60)"), validators=[Optional()])
    buy_quantity = IntegerField(_l("Buy quantity"), default=0, validators=[Optional(), NumberRange(min=0)])
    gift_sku = StringField(_l("Gift product SKU"), validators=[Optional(), Length(max=64)])
    gift_quantity = IntegerField(_l("Gift quantity"), default=1, validators=[Optional(), NumberRange(min=1)])
    gift_repeat = BooleanField(_l("Gift for each full multiple"))
    product_skus = StringField(_l("Eligible product SKUs (comma separated; empty: all)"), validators=[Optional()])
    category_ids = SelectField(_l("Eligible category"), choices=[], validate_choice=False)
    customer_tiers = StringField(_l("Customer tiers (comma separated)"), validators=[Optional()])
    customer_tags = StringField(_l("Customer tags (comma separated)"), validators=[Optional()])
    segment_id = SelectField(_l("Customer segment"), choices=[], validate_choice=False)
    starts_on = DateField(_l("Starts on"), validators=[Optional()])
    ends_on = DateField(_l("Ends on"), validators=[Optional()])
    min_spend = StringField(_l("Minimum spend"), default="0.00", validators=[Optional()])
    stackable = BooleanField(_l("Stackable with other promotions"), default=True)
    priority = IntegerField(_l("Priority (higher first)"), default=0, validators=[Optional()])
    requires_coupon = BooleanField(_l("Needs a coupon code"))
    active = BooleanField(_l("Active"), default=True)
    description = TextAreaField(_l("Description"), validators=[Optional()])


def _promotion_form(p: Promotion | None) -> PromotionForm:
    form = PromotionForm(obj=p)
    camps = db.session.execute(select(Campaign.id, Campaign.name).order_by(Campaign.starts_on.desc())).all()
    form.campaign_id.choices = [("", _("(standalone)"))] + [(str(r.id), r.name) for r in camps]
    cats = db.session.execute(select(Category.id, Category.name).order_by(Category.name)).all()
    form.category_ids.choices = [("", _("(any)"))] + [(str(r.id), r.name) for r in cats]
    form.segment_id.choices = _segment_choices()
    if p is not None and request.method == "GET":
        form.campaign_id.data = str(p.campaign_id or "")
        form.category_ids.data = str(p.category_ids[0]) if p.category_ids else ""
        form.segment_id.data = str(p.segment_id or "")
        form.percent.data = str(p.percent)
        form.amount.data = str(p.amount)
        form.min_spend.data = str(p.min_spend)
        form.tiers.data = ", ".join(f"{t['threshold']}:{t['discount']}" for t in p.tiers or [])
        form.customer_tiers.data = ", ".join(p.customer_tiers or [])
        form.customer_tags.data = ", ".join(p.customer_tags or [])
        skus = dict(db.session.execute(select(Product.id, Product.sku).where(
            Product.id.in_(list(p.product_ids or []) + ([p.gift_product_id] if p.gift_product_id else [])))).all())
        form.product_skus.data = ", ".join(skus.get(i, str(i)) for i in p.product_ids or [])
        form.gift_sku.data = skus.get(p.gift_product_id, "") if p.gift_product_id else ""
    return form


def _names(text: str | None) -> list[str]:
    return [v for v in (text or "").replace("，", ",").split(",") if v.strip()]


def _promotion_input(form: PromotionForm) -> dict[str, Any]:
    """The form as :class:`~plugins.marketing.schemas.PromotionIn` input (the API's schema,
    which the service loads it through): SKUs become product ids, texts become lists."""
    gift_ids = _skus_to_ids(form.gift_sku.data, "gift_sku")
    try:
        tiers = tiers_from_text(form.tiers.data or "")
    except MarshmallowError as err:
        raise ValidationError(_("Invalid promotion."), fields=err.messages_dict) from None
    return {
        "name": form.name.data, "kind": form.kind.data, "scope": form.scope.data,
        "campaign_id": int(form.campaign_id.data) if form.campaign_id.data else None,
        "percent": (form.percent.data or "0").strip(), "amount": (form.amount.data or "0").strip(),
        "tiers": tiers, "buy_quantity": form.buy_quantity.data or 0,
        "gift_product_id": gift_ids[0] if gift_ids else None,
        "gift_quantity": form.gift_quantity.data or 1, "gift_repeat": bool(form.gift_repeat.data),
        "product_ids": _skus_to_ids(form.product_skus.data, "product_skus"),
        "category_ids": [int(form.category_ids.data)] if form.category_ids.data else [],
        "customer_tiers": _names(form.customer_tiers.data), "customer_tags": _names(form.customer_tags.data),
        "segment_id": int(form.segment_id.data) if form.segment_id.data else None,
        "starts_on": form.starts_on.data, "ends_on": form.ends_on.data,
        "min_spend": (form.min_spend.data or "0").strip(), "stackable": bool(form.stackable.data),
        "priority": form.priority.data or 0, "requires_coupon": bool(form.requires_coupon.data),
        "active": bool(form.active.data), "description": form.description.data or None}


def _skus_to_ids(text: str, field: str) -> list[int]:
    skus = [s.strip() for s in (text or "").replace("，", ",").split(",") if s.strip()]
    if not skus:
        return []
    found = dict(db.session.execute(select(Product.sku, Product.id).where(Product.sku.in_(skus))).all())
    missing = [s for s in skus if s not in found]
    if missing:
        raise ValidationError(_("Unknown SKU."), fields={field: [_("No product with SKU %(s)s.",
                                                                   s=", ".join(missing))]})
    return [found[s] for s in skus]


@bp.get("/promotions")
@login_required
def promotions():
    user = require(P_READ)
    args: dict[str, Any] = {"q": request.args.get("q", ""), "page": _page(), "per_page": PER_PAGE}
    if request.args.get("kind") in KINDS:
        args["kind"] = request.args["kind"]
    if request.args.get("active") in ("true", "false"):
        args["active"] = request.args["active"] == "true"
    stmt = promotion_filters(select_for(Promotion, P_READ, user), args)
    rows, total = page_of(apply_sort(stmt, Promotion, None, default="-priority"), args)
    filters = [{"name": "kind", "label": _("Kind"), "choices": [(k, KIND_LABELS[k]) for k in KINDS]},
               {"name": "active", "label": _("Status"),
                "choices": [("true", _("Active")), ("false", _("Inactive"))]}]
    return render_template("marketing/promotions.html", rows=rows, total=total, page=args["page"],
                           per_page=PER_PAGE, filters=filters, can_write=has_permission(user, P_WRITE),
                           kind_labels=KIND_LABELS)


@bp.get("/promotions/<int:promotion_id>")
@login_required
def promotion(promotion_id: int):
    user = require(P_READ)
    p = get_for(Promotion, promotion_id, P_READ, user)
    page = _page()
    stmt = select_for(Coupon, P_READ, user).where(Coupon.promotion_id == p.id).order_by(Coupon.id.desc())
    coupons, total = page_of(stmt, {"page": page, "per_page": PER_PAGE})
    return render_template("marketing/promotion.html", p=p, coupons=coupons, total=total, page=page,
                           per_page=PER_PAGE, kind_labels=KIND_LABELS, form=CouponForm(), tiers_text=_tiers_text(p),
                           can_write=has_permission(user, P_WRITE),
                           can_coupon=has_permission(user, "marketing.coupon.write"))


@bp.route("/promotions/new", methods=["GET", "POST"])
@bp.route("/promotions/<int:promotion_id>/edit", methods=["GET", "POST"])
@login_required
def promotion_form(promotion_id: int | None = None):
    user = require(P_WRITE)
    p = get_for(Promotion, promotion_id, P_WRITE, user) if promotion_id else None
    form = _promotion_form(p)
    if request.method == "GET" and p is None and request.args.get("campaign_id", "").isdigit():
        form.campaign_id.data = request.args["campaign_id"]
    if form.validate_on_submit():
        try:
            p = services.save_promotion(p, _promotion_input(form))
            db.session.commit()
        except DovetailError as exc:
            db.session.rollback()
            if exc.fields and "gift_product_id" in exc.fields:
                exc.fields["gift_sku"] = exc.fields.pop("gift_product_id")
            if exc.fields and "product_ids" in exc.fields:
                exc.fields["product_skus"] = exc.fields.pop("product_ids")
            _attach_errors(form, exc)
        else:
            flash(_("Promotion %(name)s saved.", name=p.name))
            return redirect(url_for("marketing_web.promotion", promotion_id=p.id))
    status = 422 if request.method == "POST" else 200
    return render_template("marketing/promotion_form.html", form=form, p=p), status


def _tiers_text(p: Promotion) -> str:
    return ", ".join(_("spend %(t)s save %(d)s", t=t["threshold"], d=t["discount"]) for t in p.tiers or [])


class CouponForm(FlaskForm):
    count = IntegerField(_l("How many codes"), default=10, validators=[Optional(), NumberRange(min=1, max=10000)])
    code = StringField(_l("Or one code"), validators=[Optional(), Length(min=3, max=64)])
    prefix = StringField(_l("Prefix"), validators=[Optional(), Length(max=16)])
    usage_limit = IntegerField(_l("Uses per code (empty: unlimited)"), default=1,
                               validators=[Optional(), NumberRange(min=1)])
    per_customer_limit = IntegerField(_l("Uses per customer (empty: unlimited)"), default=1,
                                      validators=[Optional(), NumberRange(min=1)])


@bp.post("/promotions/<int:promotion_id>/coupons")
@login_required
def coupons_generate(promotion_id: int):
    user = require("marketing.coupon.write")
    p = get_for(Promotion, promotion_id, P_READ, user)
    form = CouponForm()
    if form.validate_on_submit():
        try:
            made = services.generate_coupons(p, count=form.count.data or 1, code=form.code.data or None,
                                             prefix=form.prefix.data or "", usage_limit=form.usage_limit.data,
                                             per_customer_limit=form.per_customer_limit.data)
            db.session.commit()
        except DovetailError as exc:
            db.session.rollback()
            _attach_errors(form, exc)
        else:
            flash(_("%(n)s coupon code(s) created.", n=len(made)))
            return redirect(url_for("marketing_web.promotion", promotion_id=p.id))
    coupons, total = page_of(select_for(Coupon, P_READ, user).where(Coupon.promotion_id == p.id)
                             .order_by(Coupon.id.desc()), {"page": 1, "per_page": PER_PAGE})
    return render_template("marketing/promotion.html", p=p, coupons=coupons, total=total, page=1,
                           per_page=PER_PAGE, kind_labels=KIND_LABELS, form=form, tiers_text=_tiers_text(p),
                           can_write=has_permission(user, P_WRITE), can_coupon=True), 422


@bp.post("/coupons/<int:coupon_id>/toggle")
@login_required
def coupon_toggle(coupon_id: int):
    user = require("marketing.coupon.write")
    coupon = get_for(Coupon, coupon_id, "marketing.coupon.write", user)
    services.update_coupon(coupon, {"active": not coupon.active})
    db.session.commit()
    flash(_("Coupon %(code)s is now %(state)s.", code=coupon.code,
            state=_("active") if coupon.active else _("disabled")))
    return redirect(url_for("marketing_web.promotion", promotion_id=coupon.promotion_id))
