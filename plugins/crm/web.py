"""Web pages: customers (list, detail, form), my tasks, pool, duplicates, segments, leads.

Views check permissions and scope exactly like the API (core.auth.require, core.scope)
and display records through the same masking dump.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from wtforms import BooleanField, DateField, DecimalField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from core import custom, statemachine
from core.api import apply_sort, page_of
from core.auth import has_permission, require
from core.db import db
from core.errors import DovetailError, ValidationError
from core.i18n import N_, shown, state_label
from core.models import User
from core.scope import get_for, select_for
from plugins.crm import dedupe, leads, pool, services
from plugins.crm.api import _pool_dump, export_response
from plugins.crm.models import ACTIVITY_TYPES, Activity, Contact, Customer, Lead, Purchase, Segment
from plugins.crm.schemas import CustomerIn

bp = Blueprint("crm_web", __name__, url_prefix="/crm", template_folder="templates")
READ, CREATE, UPDATE = services.READ, services.CREATE, services.UPDATE
PER_PAGE = 50


#: message ids of the default tiers (settings.crm.tiers); other tiers are labelled by
#: settings.crm.tier_labels or shown as configured
DEFAULT_TIERS = (N_("standard"), N_("silver"), N_("gold"), N_("vip"))

#: message ids of the activity types (``models.ACTIVITY_TYPES``), shown translated in the
#: type drop-down, the customer's activities and the task list
ACTIVITY_WORDS = (N_("call"), N_("visit"), N_("message"), N_("note"))


def tier_label(key: str | None) -> str:
    """A customer tier as the reader sees it: its label in ``settings.crm.tier_labels``
    (``{gold: {en: Gold, zh_CN: 金卡}}``) in the request's language, else the catalogue's
    text for a default tier, else the tier as configured."""
    if not key:
        return ""
    labels = (services.settings().get("tier_labels") or {}).get(key)
    if labels:
        return statemachine.label_of(labels)
    return _(key) if key in DEFAULT_TIERS else key


@bp.app_context_processor
def _tier_helpers() -> dict[str, Any]:
    return {"tier_label": tier_label, "tier_labels": lambda keys: ", ".join(tier_label(k) for k in keys or ())}


@bp.app_template_global("state_label")
def _state_label(entity: str, key: str | None) -> str:
    """``state_label('order', o.status)`` in templates: the state's label (core.i18n.state_label)."""
    return state_label(entity, key)


def _page() -> int:
    raw = request.args.get("page", "1")
    return max(int(raw), 1) if raw.isdigit() else 1


def _split(text: str | None) -> list[str]:
    return [t.strip() for t in re.split(r"[;,；，]", text or "") if t.strip()]


def _attach_errors(form: FlaskForm, exc: DovetailError) -> None:
    shown = False
    for key, msgs in (exc.fields or {}).items():
        field = getattr(form, key, None)
        if field is not None and hasattr(field, "errors"):
            items = msgs if isinstance(msgs, list) else [msgs]
            field.errors = list(field.errors) + [str(m) for m in items]
            shown = True
    if not shown or "custom" in (exc.fields or {}):
        detail = exc.fields.get("custom") if exc.fields else None
        flash(f"{exc.message} {detail or ''}".strip(), "error")


def _fail(exc: DovetailError, fallback: str):
    db.session.rollback()
    flash(exc.message, "error")
    return redirect(request.referrer or fallback)


# ---------------------------------------------------------------------------
# Customers
# ---------------------------------------------------------------------------


class CustomerForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)])
    phone = StringField(_l("Mobile"), validators=[Optional(), Length(max=40)])
    phones = StringField(_l("Other numbers (comma separated)"), validators=[Optional(), Length(max=300)])
    email = StringField(_l("E-mail"), validators=[Optional(), Length(max=200)])
    address = StringField(_l("Address"), validators=[Optional(), Length(max=300)])
    region = StringField(_l("Region"), validators=[Optional(), Length(max=80)])
    tier = SelectField(_l("Tier"), choices=[], validate_choice=False)
    tags = StringField(_l("Tags (comma separated)"), validators=[Optional(), Length(max=400)])
    source = StringField(_l("Source"), validators=[Optional(), Length(max=60)])
    consent_marketing = BooleanField(_l("Agrees to marketing contact"))
    external_code = StringField(_l("External code"), validators=[Optional(), Length(max=64)])
    notes = TextAreaField(_l("Notes"), validators=[Optional()])


def _filters() -> list[dict[str, Any]]:
    """Filters for the search macro, which shows labels as given: literal labels are translated
    here; tiers by their labels, like on the customer itself."""
    return [{"name": "tier", "label": _("Tier"), "choices": [(t, tier_label(t)) for t in services.tiers()]},
            {"name": "region", "label": _("Region")}, {"name": "tag", "label": _("Tag")}]


def _list_args() -> dict[str, Any]:
    args: dict[str, Any] = {"q": request.args.get("q", ""), "page": _page(), "per_page": PER_PAGE}
    for key in ("tier", "region", "tag"):
        if request.args.get(key):
            args[key] = request.args[key]
    return args


@bp.get("/customers")
@login_required
def customers():
    user = require(READ)
    args = _list_args()
    params = {k: v for k, v in request.args.items() if k.startswith("custom.") and v}
    try:
        stmt = services.customer_filters(select_for(Customer, READ, user), args, params)
    except ValidationError as exc:
        flash(exc.message, "error")
        stmt = services.customer_filters(select_for(Customer, READ, user), args)
    rows, total = page_of(apply_sort(stmt, Customer, None), args)
    return render_template("crm/customers.html", rows=services.customers_dump(rows, user), total=total,
                           page=args["page"], per_page=PER_PAGE, filters=_filters(),
                           custom_cols=custom.columns("customer", user),
                           can_create=has_permission(user, CREATE),
                           can_export=has_permission(user, "crm.customer.export"),
                           can_merge=has_permission(user, "crm.customer.merge"),
                           can_see_purchases=services.can_see_purchases(user))


@bp.get("/customers/export")
@login_required
def customers_export():
    user = require("crm.customer.export")
    args = _list_args()
    params = {k: v for k, v in request.args.items() if k.startswith("custom.") and v}
    stmt = services.customer_filters(select_for(Customer, "crm.customer.export", user), args, params)
    fmt = "xlsx" if request.args.get("format") == "xlsx" else "csv"
    return export_response(stmt, user, fmt, "web export")


@bp.get("/customers/<int:customer_id>")
@login_required
def customer(customer_id: int):
    user = require(READ)
    c = services.visible_customer(customer_id, READ, user)
    contacts = db.session.scalars(select(Contact).where(Contact.customer_id == c.id)
                                  .order_by(Contact.is_primary.desc(), Contact.id)).all()
    acts = db.session.scalars(select(Activity).where(Activity.customer_id == c.id)
                              .order_by(Activity.done, Activity.due_date, Activity.id.desc()).limit(100)).all() \
        if has_permission(user, services.ACT_READ) else []
    purchases = db.session.scalars(select(Purchase).where(Purchase.customer_id == c.id)
                                   .order_by(Purchase.placed_at.desc()).limit(50)).all() \
        if services.can_see_purchases(user) else []
    lead_rows = db.session.scalars(select_for(Lead, "crm.lead.read", user).where(Lead.customer_id == c.id)).all() \
        if has_permission(user, "crm.lead.read") else []
    return render_template("crm/customer.html", c=services.customer_dict(c, user), obj=c,
                           contacts=services.contact_dict(list(contacts), user, many=True),
                           activities=services.activity_dict(list(acts), user, many=True),
                           purchases=purchases, leads=lead_rows, types=ACTIVITY_TYPES,
                           custom_cols=custom.columns("customer", user),
                           can_update=has_permission(user, UPDATE),
                           # a new order for this customer, when orders is enabled (optional)
                           can_order=("orders_web.new_order" in current_app.view_functions
                                      and has_permission(user, "orders.order.create")),
                           can_write_activity=has_permission(user, services.ACT_WRITE),
                           can_release=c.owner_id is not None and (
                               c.owner_id == user.id or has_permission(user, pool.MANAGE)),
                           can_see_purchases=services.can_see_purchases(user),
                           today=services.today_local())


@bp.route("/customers/new", methods=["GET", "POST"])
@bp.route("/customers/<int:customer_id>/edit", methods=["GET", "POST"])
@login_required
def customer_form(customer_id: int | None = None):
    user = require(UPDATE if customer_id else CREATE)
    c = services.visible_customer(customer_id, UPDATE, user) if customer_id else None
    form = CustomerForm(obj=c)
    form.tier.choices = [(t, tier_label(t)) for t in services.tiers()]
    if c is not None and request.method == "GET":
        form.phones.data = ", ".join(p for p in (c.phones or []) if p != c.phone)
        form.tags.data = ", ".join(c.tags or [])
    if form.validate_on_submit():
        raw = {"name": form.name.data, "phone": form.phone.data or None, "phones": _split(form.phones.data),
               "email": form.email.data or None, "address": form.address.data or None,
               "region": form.region.data or None, "tier": form.tier.data, "tags": _split(form.tags.data),
               "source": form.source.data or None, "consent_marketing": bool(form.consent_marketing.data),
               "external_code": form.external_code.data or None, "notes": form.notes.data or None}
        cust = {k[len("custom."):]: v for k, v in request.form.items() if k.startswith("custom.") and v != ""}
        if cust:
            raw["custom"] = cust
        try:
            data = services.load(CustomerIn(), raw, partial=c is not None)
            if c is None:
                c = services.create_customer(data, user)
            else:
                services.update_customer(c, data, user)
            db.session.commit()
        except DovetailError as exc:
            db.session.rollback()
            _attach_errors(form, exc)
        else:
            flash(_("Customer saved."))
            return redirect(url_for("crm_web.customer", customer_id=c.id))
    status = 422 if request.method == "POST" else 200
    values = request.form if request.method == "POST" else {
        f"custom.{k}": v for k, v in ((c.custom or {}) if c else {}).items()}
    return render_template("crm/customer_form.html", form=form, c=c,
                           custom_cols=custom.columns("customer", user), custom_values=values), status


@bp.post("/customers/<int:customer_id>/contacts")
@login_required
def contact_add(customer_id: int):
    user = require(UPDATE)
    c = services.visible_customer(customer_id, UPDATE, user)
    try:
        services.save_contact(c, {"name": request.form.get("name", ""), "title": request.form.get("title") or None,
                                  "phone": request.form.get("phone") or None,
                                  "email": request.form.get("email") or None}, user)
        db.session.commit()
        flash(_("Contact added."))
    except DovetailError as exc:
        db.session.rollback()
        flash(f"{exc.message} {exc.fields}", "error")
    return redirect(url_for("crm_web.customer", customer_id=customer_id))


@bp.post("/customers/<int:customer_id>/activities")
@login_required
def activity_add(customer_id: int):
    user = require(services.ACT_WRITE)
    c = services.visible_customer(customer_id, READ, user)
    raw: dict[str, Any] = {"type": request.form.get("type", "call"), "subject": request.form.get("subject", ""),
                           "outcome": request.form.get("outcome") or None,
                           "next_step": request.form.get("next_step") or None}
    if request.form.get("due_date"):
        raw["due_date"] = request.form["due_date"]
        raw["done"] = False
    if request.form.get("next_due_date"):
        raw["next_due_date"] = request.form["next_due_date"]
    try:
        services.create_activity(c, raw, user)
        db.session.commit()
        flash(_("Activity saved."))
    except DovetailError as exc:
        db.session.rollback()
        flash(f"{exc.message} {exc.fields}", "error")
    return redirect(url_for("crm_web.customer", customer_id=customer_id))


@bp.post("/activities/<int:activity_id>/done")
@login_required
def activity_done(activity_id: int):
    user = require(services.ACT_WRITE)
    act = get_for(Activity, activity_id, services.ACT_WRITE, user, label="activity")
    raw: dict[str, Any] = {"done": True, "outcome": request.form.get("outcome") or None}
    if request.form.get("next_step"):
        raw["next_step"] = request.form["next_step"]
    if request.form.get("next_due_date"):
        raw["next_due_date"] = request.form["next_due_date"]
    try:
        services.update_activity(act, raw, user)
        db.session.commit()
        flash(_("Task completed."))
    except DovetailError as exc:
        return _fail(exc, url_for("crm_web.tasks"))
    return redirect(request.referrer or url_for("crm_web.tasks"))


@bp.post("/customers/<int:customer_id>/release")
@login_required
def customer_release(customer_id: int):
    user = require(READ)
    c = services.visible_customer(customer_id, READ, user)
    try:
        pool.release(c, user, request.form.get("reason") or None)
        db.session.commit()
    except DovetailError as exc:
        return _fail(exc, url_for("crm_web.customers"))
    flash(_("Customer returned to the pool."))
    return redirect(url_for("crm_web.customers"))


# ---------------------------------------------------------------------------
# Tasks, pool, duplicates
# ---------------------------------------------------------------------------


@bp.get("/tasks")
@login_required
def tasks():
    user = require(services.ACT_READ)
    stmt = services.due_tasks_stmt(user).order_by(Activity.due_date, Activity.id)
    rows = db.session.scalars(stmt.limit(500)).all()
    return render_template("crm/tasks.html", rows=services.activity_dict(list(rows), user, many=True),
                           today=services.today_local(),
                           can_write=has_permission(user, services.ACT_WRITE))


@bp.get("/pool", endpoint="pool")
@login_required
def pool_page():
    user = require(READ)
    pool.require_pool_access(user)
    pool.auto_recycle()
    args = _list_args()
    stmt = services.customer_filters(pool.pool_stmt(), args)
    rows, total = page_of(apply_sort(stmt, Customer, None, default="-pool_entered_at"), args)

    limit = int(services.settings().get("pool_claim_limit", 50))
    return render_template("crm/pool.html", rows=_pool_dump(rows, user), total=total, page=args["page"],
                           per_page=PER_PAGE, filters=_filters(), used=pool.claims_today(user), limit=limit,
                           can_claim=has_permission(user, pool.CLAIM),
                           can_see_purchases=services.can_see_purchases(user))



@bp.post("/pool/claim")
@login_required
def pool_claim():
    user = require(pool.CLAIM)
    ids = [int(i) for i in request.form.getlist("customer_id") if i.isdigit()]
    try:
        pool.auto_recycle()
        result = pool.claim(user, ids)
        db.session.commit()
    except DovetailError as exc:
        return _fail(exc, url_for("crm_web.pool"))
    flash(_("Claimed %(n)s customer(s).", n=len(result["claimed"])))
    if result["unavailable"]:
        flash(_("%(n)s customer(s) were claimed by someone else first.", n=len(result["unavailable"])), "error")
    return redirect(url_for("crm_web.pool"))


@bp.get("/duplicates")
@login_required
def duplicates():
    user = require(READ)
    groups = dedupe.duplicate_groups(user)[:200]
    ids = sorted({i for g in groups for i in g["customer_ids"]})
    rows = db.session.scalars(select(Customer).where(Customer.id.in_(ids))).all() if ids else []
    by_id = {d["id"]: d for d in services.customers_dump(list(rows), user)}
    for g in groups:
        g["customers"] = [by_id[i] for i in g["customer_ids"] if i in by_id]
    return render_template("crm/duplicates.html", groups=groups,
                           can_merge=has_permission(user, "crm.customer.merge"),
                           can_see_purchases=services.can_see_purchases(user))


@bp.post("/merge")
@login_required
def merge():
    user = require("crm.customer.merge")
    survivor = request.form.get("survivor_id", "")
    merged = [int(i) for i in request.form.getlist("merged_id") if i.isdigit() and i != survivor]
    if not survivor.isdigit() or not merged:
        flash(_("Choose a survivor and at least one customer to merge into it."), "error")
        return redirect(url_for("crm_web.duplicates"))
    try:
        s, ms = dedupe.load_for_merge(int(survivor), merged, user)
        dedupe.merge(s, ms, user)
        db.session.commit()
    except DovetailError as exc:
        return _fail(exc, url_for("crm_web.duplicates"))
    flash(_("Customers merged."))
    return redirect(url_for("crm_web.customer", customer_id=int(survivor)))


# ---------------------------------------------------------------------------
# Segments
# ---------------------------------------------------------------------------


class SegmentForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)])
    description = StringField(_l("Description"), validators=[Optional(), Length(max=2000)])
    tier = StringField(_l("Tiers (comma separated)"), validators=[Optional()])
    tags = StringField(_l("Any of the tags (comma separated)"), validators=[Optional()])
    region = StringField(_l("Regions (comma separated)"), validators=[Optional()])
    min_spend = DecimalField(_l("Minimum spend"), places=2, validators=[Optional()])
    max_spend = DecimalField(_l("Maximum spend"), places=2, validators=[Optional()])
    last_purchase_after = DateField(_l("Last purchase on or after"), validators=[Optional()])
    last_purchase_before = DateField(_l("Last purchase before"), validators=[Optional()])


@bp.route("/segments", methods=["GET", "POST"])
@login_required
def segments():
    user = require("crm.segment.read")
    form = SegmentForm()
    status = 200
    if request.method == "POST":
        require("crm.segment.write")
        if form.validate_on_submit():
            filters: dict[str, Any] = {}
            for key in ("tier", "tags", "region"):
                if _split(getattr(form, key).data):
                    filters[key] = _split(getattr(form, key).data)
            for key in ("min_spend", "max_spend"):
                if getattr(form, key).data is not None:
                    filters[key] = str(getattr(form, key).data)
            for key in ("last_purchase_after", "last_purchase_before"):
                if getattr(form, key).data is not None:
                    filters[key] = getattr(form, key).data.isoformat()
            try:
                seg = services.save_segment({"name": form.name.data, "description": form.description.data or None,
                                             "filters": filters}, user)
                db.session.commit()
                flash(_("Segment saved."))
                return redirect(url_for("crm_web.segment", segment_id=seg.id))
            except DovetailError as exc:
                db.session.rollback()
                fields = dict(exc.fields)
                fields.update(fields.pop("filters", {}) if isinstance(fields.get("filters"), dict) else {})
                _attach_errors(form, ValidationError(exc.message, fields=fields))
        status = 422
    rows = db.session.scalars(select_for(Segment, "crm.segment.read", user).order_by(Segment.name)).all()
    base = select_for(Customer, READ, user).with_only_columns(Customer.id)
    counts = {s.id: db.session.scalar(select(func.count()).select_from(
        services.segment_customers_stmt(s, base).subquery())) for s in rows}
    return render_template("crm/segments.html", rows=rows, counts=counts, form=form,
                           can_write=has_permission(user, "crm.segment.write")), status


@bp.get("/segments/<int:segment_id>")
@login_required
def segment(segment_id: int):
    user = require("crm.segment.read")
    require(READ)
    seg = get_for(Segment, segment_id, "crm.segment.read", user, label="segment")
    args = {"page": _page(), "per_page": PER_PAGE}
    stmt = services.segment_customers_stmt(seg, select_for(Customer, READ, user))
    rows, total = page_of(apply_sort(stmt, Customer, None), args)
    return render_template("crm/segment.html", seg=seg, rows=services.customers_dump(rows, user), total=total,
                           page=args["page"], per_page=PER_PAGE,
                           can_see_purchases=services.can_see_purchases(user))


# ---------------------------------------------------------------------------
# Leads
# ---------------------------------------------------------------------------


class LeadForm(FlaskForm):
    title = StringField(_l("Title"), validators=[DataRequired(), Length(max=200)])
    contact_name = StringField(_l("Contact name"), validators=[Optional(), Length(max=120)])
    phone = StringField(_l("Mobile"), validators=[Optional(), Length(max=40)])
    email = StringField(_l("E-mail"), validators=[Optional(), Length(max=200)])
    source = StringField(_l("Source"), validators=[Optional(), Length(max=60)])
    expected_amount = DecimalField(_l("Expected amount"), places=2, validators=[Optional()])
    expected_close = DateField(_l("Expected close"), validators=[Optional()])
    notes = TextAreaField(_l("Notes"), validators=[Optional()])


@bp.route("/leads", methods=["GET", "POST"], endpoint="leads")
@login_required
def leads_page():
    user = require("crm.lead.read")
    form = LeadForm()
    status = 200
    if request.method == "POST":
        require("crm.lead.write")
        if form.validate_on_submit():
            raw = {k: getattr(form, k).data or None for k in ("title", "contact_name", "phone", "email", "source",
                                                               "notes")}
            if form.expected_amount.data is not None:
                raw["expected_amount"] = str(form.expected_amount.data)
            if form.expected_close.data is not None:
                raw["expected_close"] = form.expected_close.data.isoformat()
            if request.args.get("customer_id", "").isdigit():
                raw["customer_id"] = int(request.args["customer_id"])
            try:
                lead = leads.save_lead({k: v for k, v in raw.items() if v is not None}, user)
                db.session.commit()
                flash(_("Lead saved."))
                return redirect(url_for("crm_web.lead", lead_id=lead.id))
            except DovetailError as exc:
                db.session.rollback()
                _attach_errors(form, exc)
        status = 422
    stmt = select_for(Lead, "crm.lead.read", user)
    if request.args.get("status"):
        stmt = stmt.where(Lead.status == request.args["status"])
    if request.args.get("q"):
        stmt = stmt.where(Lead.title.icontains(request.args["q"].strip(), autoescape=True))
    args = {"page": _page(), "per_page": PER_PAGE}
    rows, total = page_of(apply_sort(stmt, Lead, None), args)
    machine = statemachine.machine_for("lead")
    states = [(k, statemachine.label_of(s.label)) for k, s in machine.states.items()]
    return render_template("crm/leads.html", rows=leads.lead_dict(rows, user, many=True), total=total,
                           page=args["page"], per_page=PER_PAGE, form=form, states=dict(states),
                           filters=[{"name": "status", "label": _("Status"), "choices": states}],
                           can_write=has_permission(user, "crm.lead.write")), status



@bp.get("/leads/<int:lead_id>")
@login_required
def lead(lead_id: int):
    user = require("crm.lead.read")
    obj = get_for(Lead, lead_id, "crm.lead.read", user, label="lead")
    machine = statemachine.machine_for("lead")
    owner = db.session.get(User, obj.owner_id) if obj.owner_id else None
    return render_template("crm/lead.html", lead=leads.lead_dict(obj, user), obj=obj, owner=owner,
                           current_state=statemachine.label_of(machine.states[obj.status].label)
                           if obj.status in machine.states else obj.status,
                           moves=statemachine.available("lead", obj, user),
                           history=statemachine.history("lead", obj.id))


@bp.post("/leads/<int:lead_id>/transition")
@login_required
def lead_transition(lead_id: int):
    user = require("crm.lead.read")
    obj = get_for(Lead, lead_id, "crm.lead.read", user, label="lead")
    inputs = {k[len("input."):]: v for k, v in request.form.items() if k.startswith("input.")}
    try:
        statemachine.perform("lead", obj, request.form.get("transition", ""), user,
                             comment=request.form.get("comment") or None, inputs=inputs)
        db.session.commit()
        flash(_("Lead updated."))
    except DovetailError as exc:
        db.session.rollback()
        flash(shown(exc.message), "error")
    return redirect(url_for("crm_web.lead", lead_id=lead_id))
