"""Web pages: stock levels (low stock highlighted), ledger, movement form, warehouses."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from flask_wtf import FlaskForm
from marshmallow import ValidationError as MarshmallowError
from sqlalchemy import or_, select
from wtforms import BooleanField, IntegerField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional

from core.api import apply_sort, page_of
from core.auth import has_permission, require
from core.db import db
from core.errors import DovetailError
from core.scope import get_for, select_for
from plugins.catalog.public import Product, run_upload
from plugins.inventory import services
from plugins.inventory.api import post_movement
from plugins.inventory.cli import import_counts
from plugins.inventory.models import Movement, StockLevel, Warehouse
from plugins.inventory.schemas import MovementIn, WarehouseIn

bp = Blueprint("inventory_web", __name__, url_prefix="/inventory", template_folder="templates")
WH_READ, WH_WRITE = "inventory.warehouse.read", "inventory.warehouse.write"
STOCK_READ, STOCK_MOVE, STOCK_IMPORT = "inventory.stock.read", "inventory.stock.move", "inventory.stock.import"
PER_PAGE = 50


def _page() -> int:
    raw = request.args.get("page", "1")
    return max(int(raw), 1) if raw.isdigit() else 1


def _int_arg(name: str) -> int | None:
    raw = request.args.get(name, "")
    return int(raw) if raw.isdigit() else None


def _warehouse_choices(blank: str | None = None) -> list[tuple[str, str]]:
    rows = db.session.execute(select(Warehouse.id, Warehouse.code, Warehouse.name).order_by(Warehouse.code)).all()
    out = [(str(r.id), f"{r.code} {r.name}") for r in rows]
    return ([("", blank)] if blank is not None else []) + out


def _attach(form: FlaskForm, exc: DovetailError | MarshmallowError) -> None:
    """Roll back and show the errors: per field under its input, the rest as a flash message."""
    db.session.rollback()
    if isinstance(exc, MarshmallowError):
        exc = DovetailError(_("Please correct the marked fields."), fields=exc.messages)
    shown = False
    for key, msgs in (exc.fields or {}).items():
        field = getattr(form, key, None)
        if field is not None and hasattr(field, "errors"):
            field.errors = list(field.errors) + [str(m) for m in (msgs if isinstance(msgs, list) else [msgs])]
            shown = True
    if not shown:
        flash(exc.message, "error")


@bp.get("/stock")
@login_required
def stock():
    user = require(STOCK_READ)
    page = _page()
    stmt = select_for(StockLevel, STOCK_READ, user).join(Product, Product.id == StockLevel.product_id)
    q = request.args.get("q", "").strip()
    if q:
        stmt = stmt.where(or_(Product.sku.icontains(q, autoescape=True), Product.name.icontains(q, autoescape=True)))
    wid = _int_arg("warehouse_id")
    if wid is not None:
        stmt = stmt.where(StockLevel.warehouse_id == wid)
    low = request.args.get("low") == "1"
    if low:
        stmt = services.alerts_query(stmt)
    stmt = stmt.order_by(Product.sku, StockLevel.warehouse_id)
    rows, total = page_of(stmt, {"page": page, "per_page": PER_PAGE})
    defaults = services.points_for(r.product_id for r in rows)
    items = [services.stock_dict(r, defaults) for r in rows]
    # the search macro shows labels as given: literal ones are translated here, names are not
    filters = [{"name": "warehouse_id", "label": _("Warehouse"), "choices": _warehouse_choices()},
               {"name": "low", "label": _("All stock"), "choices": [("1", _("Low stock only"))]}]
    return render_template("inventory/stock.html", items=items, total=total, page=page, per_page=PER_PAGE,
                           filters=filters, can_move=has_permission(user, STOCK_MOVE),
                           can_import=has_permission(user, STOCK_IMPORT),
                           can_set_points=has_permission(user, WH_WRITE), warehouses=_warehouse_choices(""))


@bp.get("/movements")
@login_required
def movements():
    user = require(STOCK_READ)
    page = _page()
    stmt = select_for(Movement, STOCK_READ, user)
    for key in ("product_id", "warehouse_id"):
        value = _int_arg(key)
        if value is not None:
            stmt = stmt.where(getattr(Movement, key) == value)
    kind = request.args.get("kind", "")
    if kind in ("receipt", "issue", "adjustment", "transfer", "return"):
        stmt = stmt.where(Movement.kind == kind)
    q = request.args.get("q", "").strip()
    if q:
        stmt = stmt.join(Product, Product.id == Movement.product_id).where(
            or_(Product.sku.icontains(q, autoescape=True), Product.name.icontains(q, autoescape=True),
                Movement.reference.icontains(q, autoescape=True)))
    rows, total = page_of(apply_sort(stmt, Movement, None, default="-id"), {"page": page, "per_page": PER_PAGE})
    filters = [{"name": "warehouse_id", "label": _("Warehouse"), "choices": _warehouse_choices()},
               {"name": "kind", "label": _("Kind"), "choices": [
                   ("receipt", _("Receipt")), ("issue", _("Issue")), ("adjustment", _("Adjustment")),
                   ("transfer", _("Transfer")), ("return", _("Return"))]}]
    return render_template("inventory/movements.html", rows=rows, total=total, page=page, per_page=PER_PAGE,
                           filters=filters, can_move=has_permission(user, STOCK_MOVE))


class MovementForm(FlaskForm):
    kind = SelectField(_l("Kind"), choices=[("receipt", _l("Receipt")), ("issue", _l("Issue")),
                                            ("adjustment", _l("Adjustment")), ("transfer", _l("Transfer"))])
    sku = StringField(_l("SKU"), validators=[DataRequired(), Length(max=64)])
    warehouse_id = SelectField(_l("Warehouse"), choices=[], validate_choice=False, validators=[DataRequired()])
    to_warehouse_id = SelectField(_l("To warehouse (transfers)"), choices=[], validate_choice=False)
    quantity = IntegerField(_l("Quantity (adjustments: + or −)"), validators=[Optional()])
    counted = IntegerField(_l("Counted quantity (adjustments instead of quantity)"), validators=[Optional()])
    reason = StringField(_l("Reason"), validators=[Optional(), Length(max=200)])
    reference = StringField(_l("Reference"), validators=[Optional(), Length(max=100)])
    unit_cost = StringField(_l("Unit cost (receipts)"), validators=[Optional(), Length(max=20)])


@bp.route("/movements/new", methods=["GET", "POST"])
@login_required
def movement_form():
    user = require(STOCK_MOVE)
    form = MovementForm()
    form.warehouse_id.choices = _warehouse_choices()
    form.to_warehouse_id.choices = _warehouse_choices("")
    if request.method == "GET":
        if request.args.get("kind") in ("receipt", "issue", "adjustment", "transfer"):
            form.kind.data = request.args["kind"]
        if request.args.get("sku"):
            form.sku.data = request.args["sku"]
    if form.validate_on_submit():
        product = db.session.scalar(select(Product).where(Product.sku == form.sku.data.strip()))
        if product is None:
            form.sku.errors = [_("No product with this SKU.")]
        else:
            raw = {"kind": form.kind.data, "product_id": product.id, "warehouse_id": int(form.warehouse_id.data),
                   "to_warehouse_id": int(form.to_warehouse_id.data) if form.to_warehouse_id.data else None,
                   "quantity": form.quantity.data, "counted": form.counted.data,
                   "reason": form.reason.data or None, "reference": form.reference.data or None,
                   "unit_cost": form.unit_cost.data or None}
            try:
                data = MovementIn().load(raw)
                moves = post_movement(data)
                db.session.commit()
            except (MarshmallowError, DovetailError) as exc:
                _attach(form, exc)
            else:
                flash(_("%(n)s movement(s) posted for %(sku)s.", n=len(moves), sku=product.sku))
                return redirect(url_for("inventory_web.movements", product_id=product.id))
    status = 422 if request.method == "POST" else 200
    return render_template("inventory/movement_form.html", form=form, user=user), status


class WarehouseForm(FlaskForm):
    code = StringField(_l("Code"), validators=[DataRequired(), Length(max=32)])
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)])
    address = StringField(_l("Address"), validators=[Optional(), Length(max=300)])
    active = BooleanField(_l("Active"), default=True)


@bp.get("/warehouses")
@login_required
def warehouses():
    user = require(WH_READ)
    rows = db.session.scalars(select_for(Warehouse, WH_READ, user).order_by(Warehouse.code)).all()
    default_id = None
    try:
        default_id = services.default_warehouse().id
    except DovetailError:
        pass
    return render_template("inventory/warehouses.html", rows=rows, default_id=default_id,
                           can_write=has_permission(user, WH_WRITE))


@bp.route("/warehouses/new", methods=["GET", "POST"])
@bp.route("/warehouses/<int:warehouse_id>/edit", methods=["GET", "POST"])
@login_required
def warehouse_form(warehouse_id: int | None = None):
    user = require(WH_WRITE)
    wh = get_for(Warehouse, warehouse_id, WH_WRITE, user) if warehouse_id else None
    form = WarehouseForm(obj=wh)
    if form.validate_on_submit():
        data: dict[str, Any] = {"code": form.code.data, "name": form.name.data,
                                "address": form.address.data or None, "active": bool(form.active.data)}
        try:
            data = WarehouseIn().load(data)
            if wh is None:
                wh = services.create_warehouse(data, user)
            else:
                services.update_warehouse(wh, data)
            db.session.commit()
        except (MarshmallowError, DovetailError) as exc:
            _attach(form, exc)
        else:
            flash(_("Warehouse %(code)s saved.", code=wh.code))
            return redirect(url_for("inventory_web.warehouses"))
    status = 422 if request.method == "POST" else 200
    return render_template("inventory/warehouse_form.html", form=form, wh=wh), status


@bp.route("/stock/import", methods=["GET", "POST"])
@login_required
def stock_import():
    require(STOCK_IMPORT)
    counts = errors = message = None
    if request.method == "POST":
        counts, errors, message = run_upload(import_counts, dry_run=request.form.get("dry_run") == "1",
                                             reference=request.form.get("reference") or None)
    status = 422 if message else 200
    return render_template("inventory/import.html", counts=counts, errors=errors or [], message=message,
                           columns="sku, counted, warehouse, reorder_point"), status


@bp.post("/stock/reorder-point")
@login_required
def reorder_point():
    """Set or clear a reorder point from the stock page (SKU, optional warehouse, point)."""
    require(WH_WRITE)
    sku = request.form.get("sku", "").strip()
    product = db.session.scalar(select(Product).where(Product.sku == sku)) if sku else None
    raw = request.form.get("reorder_point", "").strip()
    wid = request.form.get("warehouse_id", "")
    if product is None:
        flash(_("No product with SKU %(sku)s.", sku=sku), "error")
    elif raw and not raw.isdigit():
        flash(_("The reorder point must be a whole number, zero or more."), "error")
    else:
        try:
            services.set_reorder_point(product.id, int(raw) if raw else None, int(wid) if wid.isdigit() else None)
            db.session.commit()
            flash(_("Reorder point of %(sku)s saved.", sku=product.sku))
        except DovetailError as exc:
            db.session.rollback()
            flash(exc.message, "error")
    return redirect(url_for("inventory_web.stock", q=sku))
