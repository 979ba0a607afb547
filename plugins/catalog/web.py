"""Web pages: product list/detail/form, categories."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import BooleanField, DecimalField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from core import custom, userjobs
from core.api import apply_sort, page_of
from core.auth import current_user, has_permission, require
from core.db import db
from core.errors import DovetailError, ValidationError
from core.models import User
from core.scope import get_for, select_for
from core.tabular import RowError
from plugins.catalog import services
from plugins.catalog.cli import import_products
from plugins.catalog.models import Category, Product

bp = Blueprint("catalog_web", __name__, url_prefix="/catalog", template_folder="templates")
READ, WRITE, IMPORT = "catalog.product.read", "catalog.product.write", "catalog.product.import"

def _page() -> int:
    raw = request.args.get("page", "1")
    return max(int(raw), 1) if raw.isdigit() else 1

def _category_choices(blank: str) -> list[tuple[str, str]]:
    cats = db.session.execute(select(Category.id, Category.name).order_by(Category.name)).all()
    return [("", blank)] + [(str(c.id), c.name) for c in cats]

class ProductForm(FlaskForm):
    sku = StringField(_l("SKU"), validators=[DataRequired(), Length(max=64)])
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    category_id = SelectField(_l("Category"), choices=[], validate_choice=False)
    unit = StringField(_l("Unit"), default="件", validators=[DataRequired(), Length(max=20)])
    price = DecimalField(_l("Price"), places=2, validators=[DataRequired()])
    cost = DecimalField(_l("Cost"), places=2, validators=[Optional()])
    active = BooleanField(_l("Active"), default=True)
    barcode = StringField(_l("Barcode"), validators=[Optional(), Length(max=64)])
    description = TextAreaField(_l("Description"), validators=[Optional()])

class CategoryForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=80)])
    parent_id = SelectField(_l("Parent category"), choices=[], validate_choice=False)
    description = TextAreaField(_l("Description"), validators=[Optional()])

def _attach_errors(form: FlaskForm, exc: DovetailError) -> None:
    """Show service-level field errors next to the form fields (others as a flash message)."""
    unplaced = not exc.fields
    for key, msgs in (exc.fields or {}).items():
        field = getattr(form, key, None)
        if field is not None and hasattr(field, "errors"):
            field.errors = list(field.errors) + [str(m) for m in (msgs if isinstance(msgs, list) else [msgs])]
        elif key == "custom" and isinstance(msgs, dict):
            for ckey, cmsgs in msgs.items():
                flash(f"{ckey}: {' '.join(str(m) for m in cmsgs) if isinstance(cmsgs, list) else cmsgs}", "error")
        else:
            unplaced = True
    if unplaced:
        flash(exc.message, "error")

def _custom_inputs() -> dict[str, Any]:
    return {k[len("custom."):]: v for k, v in request.form.items() if k.startswith("custom.") and v != ""}

@bp.get("/products")
@login_required
def products():
    user = require(READ)
    args: dict[str, Any] = {"q": request.args.get("q", ""), "page": _page(), "per_page": 50}
    if request.args.get("category_id", "").isdigit():
        args["category_id"] = int(request.args["category_id"])
    if request.args.get("active") in ("true", "false"):
        args["active"] = request.args["active"] == "true"
    stmt = services.product_filters(select_for(Product, READ, user), args, request.args)
    rows, total = page_of(apply_sort(stmt, Product, None, default="sku"), args)
    # the search macro shows labels as given: literal ones are translated here, names are not
    filters = [{"name": "category_id", "label": _("Category"), "choices": _category_choices("")[1:]},
               {"name": "active", "label": _("Status"),
                "choices": [("true", _("Active")), ("false", _("Inactive"))]}]
    return render_template("catalog/products.html", rows=rows, total=total, page=args["page"],
                           per_page=50, filters=filters, can_write=has_permission(user, WRITE),
                           can_import=has_permission(user, IMPORT),
                           can_read_cost=services.can_read_cost(user),
                           custom_cols=custom.columns("product", user))

@bp.get("/products/<int:product_id>")
@login_required
def product(product_id: int):
    user = require(READ)
    p = get_for(Product, product_id, READ, user)
    return render_template("catalog/product.html", p=p, custom_values=custom.dump("product", p.custom, user),
                           custom_cols=custom.columns("product", user),
                           can_write=has_permission(user, WRITE),
                           can_read_cost=services.can_read_cost(user))

@bp.route("/products/new", methods=["GET", "POST"])
@bp.route("/products/<int:product_id>/edit", methods=["GET", "POST"])
@login_required
def product_form(product_id: int | None = None):
    user = require(WRITE)
    p = get_for(Product, product_id, WRITE, user) if product_id else None
    form = ProductForm(obj=p)
    if not services.can_read_cost(user):  # no cost field: a new product costs 0.00, an edit keeps it
        del form.cost
    form.category_id.choices = _category_choices(_("(none)"))
    if p is not None and request.method == "GET":
        form.category_id.data = str(p.category_id or "")
    if form.validate_on_submit():
        data = {"sku": form.sku.data.strip(), "name": form.name.data.strip(),
                "category_id": int(form.category_id.data) if form.category_id.data else None,
                "unit": form.unit.data.strip(), "price": str(form.price.data),
                "active": bool(form.active.data), "barcode": form.barcode.data or None,
                "description": form.description.data or None}
        if "cost" in form:
            data["cost"] = str(form.cost.data if form.cost.data is not None else "0")
        cust = _custom_inputs()
        if cust:
            data["custom"] = cust
        try:
            if p is None:
                p = services.create_product(data, user)
            else:
                services.update_product(p, data, user)
            db.session.commit()
        except DovetailError as exc:  # 422 field errors and 409 (SKU taken) show on the form
            db.session.rollback()
            _attach_errors(form, exc)
        else:
            flash(_("Product %(sku)s saved.", sku=p.sku))
            return redirect(url_for("catalog_web.product", product_id=p.id))
    status = 422 if request.method == "POST" else 200
    return render_template("catalog/product_form.html", form=form, p=p,
                           custom_cols=custom.columns("product", user),
                           custom_values=request.form if request.method == "POST" else
                           {f"custom.{k}": v for k, v in ((p.custom or {}) if p else {}).items()}), status

@bp.get("/categories")
@login_required
def categories():
    user = require(READ)
    rows = db.session.scalars(select_for(Category, READ, user).order_by(Category.name)).all()
    counts = dict(db.session.execute(
        select(Product.category_id, db.func.count()).group_by(Product.category_id)).all())
    return render_template("catalog/categories.html", rows=rows, counts=counts,
                           form=_category_form(), can_write=has_permission(user, WRITE))

def _category_form() -> CategoryForm:
    form = CategoryForm()
    form.parent_id.choices = _category_choices(_("(top level)"))
    return form

@bp.post("/categories")
@login_required
def category_create():
    user = require(WRITE)
    form = _category_form()
    if form.validate_on_submit():
        try:
            services.create_category({"name": form.name.data,
                                      "parent_id": int(form.parent_id.data) if form.parent_id.data else None,
                                      "description": form.description.data or None}, user)
            db.session.commit()
            flash(_("Category saved."))
            return redirect(url_for("catalog_web.categories"))
        except DovetailError as exc:
            db.session.rollback()
            _attach_errors(form, exc)
    rows = db.session.scalars(select_for(Category, READ, user).order_by(Category.name)).all()
    return render_template("catalog/categories.html", rows=rows, counts={}, form=form,
                           can_write=True), 422

def run_upload(importer, **kw):
    """Store the uploaded CSV/XLSX and run ``importer(path, **kw)`` as the user's import job.

    Returns ``(counts, errors, message)``; ``message`` is set when the file was refused. With a
    job queue (Redis) the browser is sent to the job's status page instead (it refreshes itself).
    Keyword arguments holding a user receive the requesting user when the job runs.
    """
    user_args = tuple(k for k, v in kw.items() if isinstance(v, User))
    params = {k: v for k, v in kw.items() if k not in user_args}
    kind = f"{importer.__module__.split('.')[1]}.{importer.__name__}"
    try:
        if request.files.get("file") is None or not request.files["file"].filename:
            raise ValidationError(_("Choose a .csv or .xlsx file."))
        if Path(request.files["file"].filename).suffix.lower() not in userjobs.IMPORT_SUFFIXES:
            raise ValidationError(_("Use a .csv or .xlsx file."))
        job = userjobs.start_import(kind, current_user(), request.files["file"], importer,
                                    user_args=user_args, **params)
    except DovetailError as exc:
        db.session.rollback()
        return None, [], exc.message
    if job.status in (userjobs.QUEUED, userjobs.RUNNING):
        abort(redirect(url_for("core_web.job_page", job_id=job.id)))
    if job.status == userjobs.FAILED:
        return None, [], job.summary
    counts = {k: v for k, v in (job.result or {}).items() if k not in ("rows", "dry_run")}
    return counts, [RowError(e["line"], e["column"], e["reason"]) for e in job.errors or []], None

@bp.route("/products/import", methods=["GET", "POST"])
@login_required
def products_import():

    user = require(IMPORT)
    counts = errors = message = None
    if request.method == "POST":
        counts, errors, message = run_upload(import_products, user=user,
                                             dry_run=request.form.get("dry_run") == "1")
    status = 422 if message else 200
    cost = "cost, " if services.can_read_cost(user) else ""
    return render_template("catalog/import.html", counts=counts, errors=errors or [], message=message,
                           columns=f"sku, name, price, category, unit, {cost}active, barcode, description, "
                                   "custom.<key>"), status
