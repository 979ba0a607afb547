"""Web pages: order list/detail/new form with workflow buttons, returns list/detail."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required
from sqlalchemy import or_, select

from core import custom, statemachine
from core.api import apply_sort, page_of
from core.auth import has_permission, require
from core.db import db, lock_for_update
from core.errors import DovetailError
from core.i18n import N_, shown, state_label, transition_label
from core.models import User
from core.scope import can_read_entity, get_for, select_for
from plugins.catalog.public import Product
from plugins.crm.public import Customer
from plugins.orders import services
from plugins.orders.api import customer_names, filter_orders, history_dicts, order_dict, return_dict
from plugins.orders.models import Order, ReturnRequest

bp = Blueprint("orders_web", __name__, url_prefix="/orders", template_folder="templates")
READ, CREATE = "orders.order.read", "orders.order.create"
PER_PAGE = 50
NEW_LINES = 6


@bp.app_template_filter("orders_local")
def _local(value: Any, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored UTC time (datetime or ISO text) shown in the company's time zone."""
    if value in (None, ""):
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return services.to_local(value).strftime(fmt)


def _page() -> int:
    raw = request.args.get("page", "1")
    return max(int(raw), 1) if raw.isdigit() else 1


def _date_arg(key: str) -> date | None:
    try:
        return date.fromisoformat(request.args.get(key, ""))
    except ValueError:
        return None


def _status_choices(entity: str = "order") -> list[tuple[str, str]]:
    machine = statemachine.machine_for(entity)
    return [(s.key, statemachine.label_of(s.label)) for s in machine.states.values()]


@bp.get("")
@login_required
def orders():
    user = require(READ)
    args: dict[str, Any] = {"q": request.args.get("q", ""), "page": _page(), "per_page": PER_PAGE,
                            "status": request.args.get("status") or None,
                            "date_from": _date_arg("date_from"), "date_to": _date_arg("date_to")}
    if request.args.get("customer_id", "").isdigit():
        args["customer_id"] = int(request.args["customer_id"])
    params = {k: v for k, v in request.args.items() if k.startswith("custom.") and v != ""}
    try:
        stmt = filter_orders(select_for(Order, READ, user), args, params)
    except DovetailError as exc:
        flash(exc.message, "error")
        stmt = filter_orders(select_for(Order, READ, user), args, {})
    rows, total = page_of(apply_sort(stmt, Order, None, default="-id"), args)
    names = customer_names({o.customer_id for o in rows}, user)
    owners = dict(db.session.execute(select(User.id, User.username).where(
        User.id.in_({o.owner_id for o in rows if o.owner_id}))).all()) if rows else {}
    # the search macro shows labels as given: literal ones translated here, state labels as set in YAML
    filters = [{"name": "status", "label": _("Status"), "choices": _status_choices()},
               {"name": "date_from", "label": _("From (YYYY-MM-DD)")},
               {"name": "date_to", "label": _("To (YYYY-MM-DD)")}]
    db.session.commit()  # keeps the personal-data access log of the names shown
    return render_template("orders/orders.html", rows=rows, total=total, page=args["page"],
                           per_page=PER_PAGE, filters=filters, names=names, owners=owners,
                           can_create=has_permission(user, CREATE),
                           can_report=has_permission(user, "orders.report.read"),
                           custom_cols=custom.columns("order", user))


@bp.get("/<int:order_id>")
@login_required
def order(order_id: int):
    user = require(READ)
    o = get_for(Order, order_id, READ, user)
    data = order_dict(o, user)
    items = statemachine.available("order", o, user)
    returns = db.session.scalars(select(ReturnRequest).where(ReturnRequest.order_id == o.id)
                                 .order_by(ReturnRequest.id)).all()
    considered = _considered(o, user) if o.status == services.draft_state() else []
    db.session.commit()
    return render_template("orders/order.html", o=o, data=data, transitions=items, considered=considered,
                           can_edit=has_permission(user, "orders.order.update") and o.status == services.draft_state(),
                           history=history_dicts("order", o.id), returns=returns,
                           custom_cols=custom.columns("order", user),
                           can_return=has_permission(user, "orders.order.return"))


def _considered(o: Order, user: Any) -> list[dict[str, Any]]:
    """Every promotion the pricing plugins looked at for this draft as it stands (applied or not,
    and why: "spend 0.18 more to reach 300.00 and save 30.00"), priced now without saving anything; none when the
    draft cannot be priced (a product withdrawn since), the page then shows what was saved."""
    lines = [{"product_id": ln.product_id, "quantity": ln.quantity} for ln in o.lines if not ln.is_gift]
    if not lines:
        return []
    try:
        quoted = services.quote({"customer_id": o.customer_id, "lines": lines, "coupon_code": o.coupon_code,
                                 "currency": o.currency}, user)
    except DovetailError:
        return []
    return quoted["considered"]


def _inputs_from_form() -> dict[str, str]:
    return {k[len("input."):]: v for k, v in request.form.items() if k.startswith("input.") and v != ""}


#: payment kinds and the payment methods the order workflow offers (the ``choices`` of the pay
#: and refund inputs), shown translated in the drop-downs and on the order page (a method not
#: in this list is shown as stored)
PAYMENT_WORDS = (N_("payment"), N_("refund"), N_("wechat_pay"), N_("alipay"), N_("bank_transfer"), N_("cash"),
                 N_("card"), N_("other"))


@bp.app_template_global("transition_label")
def _transition_label_global(entity: str, key: str | None) -> str:
    """``transition_label('order', h.transition)`` in templates (core.i18n.transition_label)."""
    return transition_label(entity, key)


@bp.app_template_global("state_label")
def _state_label(entity: str, key: str | None) -> str:
    """``state_label('order', o.status)`` in templates: the state's label (core.i18n.state_label)."""
    return state_label(entity, key)


def _transition_label(entity: str, key: str) -> str:
    """The transition's label from the workflow in force (its key when it has none)."""
    t = statemachine.machine_for(entity).transitions.get(key)
    return statemachine.label_of(t.label) if t is not None else key


@bp.post("/<int:order_id>/transition")
@login_required
def order_transition(order_id: int):
    user = require(READ)
    o = db.session.scalar(lock_for_update(select_for(Order, READ, user).where(Order.id == order_id)))
    if o is None:
        return render_template("core/error.html", status=404, message=_("No such order.")), 404
    key = request.form.get("transition", "")
    try:
        statemachine.perform("order", o, key, user, comment=request.form.get("comment") or None,
                             inputs=_inputs_from_form())
        db.session.commit()
        flash(_("Order %(n)s: %(t)s done.", n=o.number, t=_transition_label("order", key)))
    except DovetailError as exc:
        db.session.rollback()
        details = "; ".join(f"{k}: {', '.join(map(str, v)) if isinstance(v, list) else v}"
                            for k, v in (exc.fields or {}).items())
        flash(shown(exc.message) + (f" ({details})" if details else ""), "error")
    return redirect(url_for("orders_web.order", order_id=order_id))


def _customer_choices(user: User, q: str = "", keep: str = "") -> list[tuple[int, str]]:
    """The customers in ``user``'s scope for the order form, narrowed by ``q`` (name, or phone
    digits for users who may see phones); the preselected customer ``keep`` always stays."""
    stmt = select_for(Customer, "crm.customer.read", user)
    q = q.strip()[:100]
    if q:
        cond = Customer.name.icontains(q, autoescape=True)
        digits = "".join(ch for ch in q if ch.isdigit())
        if len(digits) >= 4 and can_read_entity("crm.customer", user):
            cond = or_(cond, Customer.phone.contains(digits, autoescape=True))
        if keep.isdigit():
            cond = or_(cond, Customer.id == int(keep))
        stmt = stmt.where(cond)
    rows = db.session.scalars(stmt.order_by(Customer.name).limit(500)).all()
    names = customer_names({c.id for c in rows}, user)
    return [(c.id, f"{names.get(c.id, c.name)} (#{c.id})") for c in rows]


def _product_choices(q: str = "") -> list[tuple[int, str]]:
    """Active products for the order form, narrowed by ``q`` (SKU or name)."""
    stmt = select(Product.id, Product.sku, Product.name, Product.price).where(Product.active.is_(True))
    q = q.strip()[:100]
    if q:
        stmt = stmt.where(or_(Product.sku.icontains(q, autoescape=True), Product.name.icontains(q, autoescape=True)))
    rows = db.session.execute(stmt.order_by(Product.sku).limit(1000)).all()
    return [(r.id, f"{r.sku} · {r.name} · {r.price}") for r in rows]


def _body_from_form(form: Any) -> dict[str, Any]:
    lines = []
    for i in range(NEW_LINES):
        pid, qty = form.get(f"product_{i}", ""), form.get(f"quantity_{i}", "").strip()
        if pid:
            lines.append({"product_id": int(pid) if pid.isdigit() else pid,
                          "quantity": int(qty) if qty.isdigit() else qty or None})
    body: dict[str, Any] = {"lines": lines, "coupon_code": form.get("coupon_code", "").strip() or None,
                            "notes": form.get("notes", "").strip() or None}
    cust = {k[len("custom."):]: v for k, v in form.items() if k.startswith("custom.") and v != ""}
    if cust:
        body["custom"] = cust
    return body


@bp.route("/new", methods=["GET", "POST"])
@login_required
def new_order():
    user = require(CREATE)
    errors: dict[str, Any] = {}
    # a GET may preselect the customer (?customer_id=, the customer page's "new order" link)
    form = request.form if request.method == "POST" else request.args
    if request.method == "POST":
        body = _body_from_form(form)
        body["customer_id"] = int(form["customer_id"]) if form.get("customer_id", "").isdigit() else None
        body = {k: v for k, v in body.items() if v is not None or k == "customer_id"}
        try:
            o, _created = services.create_order(body, user)
        except DovetailError as exc:
            db.session.rollback()
            errors = dict(exc.fields or {})
            flash(exc.message, "error")
        else:
            flash(_("Order %(n)s created.", n=o.number))
            return redirect(url_for("orders_web.order", order_id=o.id))
    status = 422 if errors or request.method == "POST" else 200
    searching = request.method == "GET"  # a search narrows the choices; a failed save lists them all
    return render_template("orders/new.html",
                           customers=_customer_choices(user, form.get("customer_q", "") if searching else "",
                                                       form.get("customer_id", "")),
                           products=_product_choices(form.get("product_q", "") if searching else ""),
                           n_lines=NEW_LINES, errors=errors, form=form, order=None,
                           custom_cols=custom.columns("order", user)), status


@bp.route("/<int:order_id>/edit", methods=["GET", "POST"])
@login_required
def edit_order(order_id: int):
    """Change a draft's lines, coupon, notes and custom values (re-priced on save)."""
    user = require("orders.order.update")
    o = db.session.scalar(lock_for_update(select_for(Order, READ, user).where(Order.id == order_id)))
    if o is None:
        return render_template("core/error.html", status=404, message=_("No such order.")), 404
    errors: dict[str, Any] = {}
    if request.method == "POST":
        body = _body_from_form(request.form)
        body["custom"] = body.get("custom") or {}
        try:
            services.update_order(o, body, user)
            db.session.commit()
        except DovetailError as exc:
            db.session.rollback()
            errors = dict(exc.fields or {})
            flash(exc.message, "error")
        else:
            flash(_("Order %(n)s saved.", n=o.number))
            return redirect(url_for("orders_web.order", order_id=o.id))
        form: Any = request.form
    else:
        form = {"coupon_code": o.coupon_code or "", "notes": o.notes or "",
                **{f"custom.{k}": v for k, v in (o.custom or {}).items()}}
        for i, ln in enumerate([ln for ln in o.lines if not ln.is_gift][:NEW_LINES]):
            form[f"product_{i}"], form[f"quantity_{i}"] = str(ln.product_id), str(ln.quantity)
    status = 422 if request.method == "POST" else 200
    return render_template("orders/new.html", customers=[], products=_product_choices(), n_lines=NEW_LINES,
                           errors=errors, form=form, order=o, custom_cols=custom.columns("order", user)), status


@bp.get("/returns")
@login_required
def returns():
    user = require(READ)
    args: dict[str, Any] = {"page": _page(), "per_page": PER_PAGE}
    stmt = select_for(ReturnRequest, READ, user)
    if request.args.get("status"):
        stmt = stmt.where(ReturnRequest.status == request.args["status"])
    rows, total = page_of(apply_sort(stmt, ReturnRequest, None, default="-id"), args)
    filters = [{"name": "status", "label": _("Status"), "choices": _status_choices("return")}]
    return render_template("orders/returns.html", rows=[return_dict(r) for r in rows], total=total,
                           page=args["page"], per_page=PER_PAGE, filters=filters)


@bp.get("/returns/<int:return_id>")
@login_required
def return_detail(return_id: int):
    user = require(READ)
    req = get_for(ReturnRequest, return_id, READ, user)
    return render_template("orders/return.html", r=return_dict(req),
                           transitions=statemachine.available("return", req, user),
                           history=history_dicts("return", req.id))


@bp.post("/returns/<int:return_id>/transition")
@login_required
def return_transition(return_id: int):
    user = require(READ)
    req = db.session.scalar(lock_for_update(select_for(ReturnRequest, READ, user)
                                            .where(ReturnRequest.id == return_id)))
    if req is None:
        return render_template("core/error.html", status=404, message=_("No such return.")), 404
    key = request.form.get("transition", "")
    try:
        statemachine.perform("return", req, key, user, comment=request.form.get("comment") or None,
                             inputs=_inputs_from_form())
        db.session.commit()
        flash(_("Return %(n)s: %(t)s done.", n=req.number, t=_transition_label("return", key)))
    except DovetailError as exc:
        db.session.rollback()
        flash(shown(exc.message), "error")
    return redirect(url_for("orders_web.return_detail", return_id=return_id))


@bp.post("/<int:order_id>/returns")
@login_required
def request_return(order_id: int):
    user = require("orders.order.return")
    o = get_for(Order, order_id, READ, user)
    lines = [{"order_line_id": ln.id, "quantity": int(form_qty)}
             for ln in o.lines if (form_qty := request.form.get(f"return_{ln.id}", "").strip()).isdigit()
             and int(form_qty) > 0]
    try:
        req = services.create_return({"order_id": o.id, "lines": lines,
                                      "reason": request.form.get("reason", "")}, user)
        db.session.commit()
    except DovetailError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("orders_web.order", order_id=order_id))
    flash(_("Return %(n)s requested.", n=req.number))
    return redirect(url_for("orders_web.return_detail", return_id=req.id))
