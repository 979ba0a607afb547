"""REST: ``/api/v1/orders`` (with quote, stats, transitions, history) and ``/api/v1/returns``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Response, request
from flask.views import MethodView
from sqlalchemy import or_, select

from core import custom, statemachine, userjobs
from core.api import Blueprint, apply_sort, page_body, page_of, page_schema
from core.api import serialized as _json
from core.auth import permission_required, require
from core.db import db, lock_for_update
from core.errors import NotFound
from core.export import csv_bytes, write_csv, xlsx_bytes
from core.models import User
from core.scope import get_for, reveal_field, select_for
from core.userjobs_api import JobSchema, job_body
from plugins.crm.public import Customer
from plugins.orders import services
from plugins.orders.cli import export_rows
from plugins.orders.models import Order, ReturnRequest
from plugins.orders.reports import order_stats
from plugins.orders.schemas import (
    HistoryListOut,
    OrderArgs,
    OrderIn,
    OrderOut,
    OrderPatch,
    OrderQuoteIn,
    OrderStatsArgs,
    OrderStatsOut,
    OrderSummaryOut,
    OrderTransitionIn,
    OrderTransitionOut,
    QuoteOut,
    ReturnArgs,
    ReturnIn,
    ReturnOut,
    ReturnTransitionOut,
    TransitionsOut,
)

orders_blp = Blueprint("orders_api", __name__, url_prefix="/orders", description="Sales orders")
returns_blp = Blueprint("orders_returns_api", __name__, url_prefix="/returns",
                        description="After-sales returns of shipped orders")

READ, CREATE, UPDATE, DELETE = ("orders.order.read", "orders.order.create", "orders.order.update",
                                "orders.order.delete")



def _s(value: Any) -> Any:
    return None if value is None else (value.isoformat() if isinstance(value, datetime) else str(value))


def customer_names(customer_ids: set[int], user: User) -> dict[int, str]:
    """Customer names for display, masked by core.scope for users without crm's personal-data right."""
    if not customer_ids:
        return {}
    names = dict(db.session.execute(select(Customer.id, Customer.name).where(
        Customer.id.in_(customer_ids))).all())
    return reveal_field("crm.customer", "name", names, user)


def order_dict(order: Order, user: User, *, detail: bool = True,
               names: dict[int, str] | None = None) -> dict[str, Any]:
    if names is None:
        names = customer_names({order.customer_id}, user)
    out = {
        "id": order.id, "number": order.number, "customer_id": order.customer_id,
        "customer_name": names.get(order.customer_id), "owner_id": order.owner_id,
        "status": order.status, "currency": order.currency, "subtotal": str(order.subtotal),
        "discount_total": str(order.discount_total), "total": str(order.total),
        "coupon_code": order.coupon_code, "placed_at": _s(order.placed_at),
        "confirmed_at": _s(order.confirmed_at), "paid_at": _s(order.paid_at),
        "shipped_at": _s(order.shipped_at), "completed_at": _s(order.completed_at),
        "cancelled_at": _s(order.cancelled_at), "returned_at": _s(order.returned_at),
        "external_number": order.external_number, "notes": order.notes,
        "custom": custom.dump("order", order.custom, user),
    }
    if detail:
        paid, refunded = services.money_in_out(order)
        out.update({
            "lines": [{"id": ln.id, "product_id": ln.product_id, "sku": ln.sku, "name": ln.name,
                       "category_id": ln.category_id, "quantity": ln.quantity,
                       "unit_price": str(ln.unit_price), "line_discount": str(ln.line_discount),
                       "line_total": str(ln.line_total), "is_gift": ln.is_gift,
                       "promotion_id": ln.promotion_id, "returned_quantity": ln.returned_quantity}
                      for ln in order.lines],
            "adjustments": [{"promotion_id": a.promotion_id, "campaign_id": a.campaign_id,
                             "code": a.code, "label": a.label, "amount": str(a.amount),
                             "line_index": a.line_index, "coupon_code": a.coupon_code}
                            for a in order.adjustments],
            "payments": [{"id": p.id, "kind": p.kind, "amount": str(p.amount), "method": p.method,
                          "reference": p.reference, "paid_at": _s(p.paid_at)} for p in order.payments],
            "shipments": [{"id": s.id, "carrier": s.carrier, "tracking_no": s.tracking_no,
                           "shipped_at": _s(s.shipped_at)} for s in order.shipments],
            "paid_amount": str(paid), "refunded_amount": str(refunded),
        })
    return out


def filter_orders(stmt: Any, args: dict[str, Any], params: Any) -> Any:
    """Whitelisted list filters shared by the API, the web list and the export."""
    if args.get("status"):
        stmt = stmt.where(Order.status == args["status"])
    if args.get("customer_id") is not None:
        stmt = stmt.where(Order.customer_id == args["customer_id"])
    if args.get("owner_id") is not None:
        stmt = stmt.where(Order.owner_id == args["owner_id"])
    if args.get("date_from"):
        stmt = stmt.where(Order.placed_at >= services.day_start(args["date_from"]))
    if args.get("date_to"):
        stmt = stmt.where(Order.placed_at < services.day_start(args["date_to"] + timedelta(days=1)))
    q = (args.get("q") or "").strip()
    if q:
        stmt = stmt.where(or_(Order.number.startswith(q, autoescape=True),
                              Order.external_number.startswith(q, autoescape=True)))
    return custom.filter_query("order", Order, stmt, params)


def _locked_order(order_id: int, user: User) -> Order:
    """The order (404 outside the user's scope), row-locked for a state change."""
    stmt = lock_for_update(select_for(Order, READ, user).where(Order.id == order_id))
    order = db.session.scalar(stmt)
    if order is None:
        raise NotFound(f"No order with id {order_id}.")
    return order


def history_dicts(entity: str, record_id: int) -> list[dict[str, Any]]:
    rows = statemachine.history(entity, record_id)
    actors = dict(db.session.execute(select(User.id, User.username).where(
        User.id.in_({r.actor_id for r in rows if r.actor_id}))).all()) if rows else {}
    return [{"id": r.id, "transition": r.transition, "from": r.from_state, "to": r.to_state,
             "actor_id": r.actor_id, "actor": actors.get(r.actor_id, "system"), "at": _s(r.at),
             "comment": r.comment, "inputs": r.inputs} for r in rows]


@orders_blp.route("")
class OrdersView(MethodView):
    @permission_required(READ)
    @orders_blp.arguments(OrderArgs, location="query")
    @orders_blp.response(200, page_schema(OrderSummaryOut, "OrderPage"))
    def get(self, args):
        """List orders (status, customer_id, owner_id, date_from/date_to, q, custom.<key>)"""
        user = require(READ)
        stmt = filter_orders(select_for(Order, READ, user), args, request.args)
        rows, total = page_of(apply_sort(stmt, Order, args.get("sort"), default="-id"), args)
        names = customer_names({o.customer_id for o in rows}, user)
        return _json(page_body([order_dict(o, user, detail=False, names=names) for o in rows], total, args))

    @permission_required(CREATE)
    @orders_blp.arguments(OrderIn)
    @orders_blp.response(201, OrderOut, description="The order was created.")
    @orders_blp.alt_response(200, schema=OrderOut, success=True, description=(
        "A retry: an order was already created with this Idempotency-Key and the same body; "
        "it is returned unchanged."))
    @orders_blp.alt_response(409, response="CONFLICT", description=(
        "The Idempotency-Key was already used with another body."))
    @orders_blp.doc(parameters=[{"in": "header", "name": "Idempotency-Key", "required": False,
                                 "schema": {"type": "string", "maxLength": 128},
                                 "description": "Retry-safe creation: the same key and body return "
                                                "the first order (200); another body is 409."}])
    def post(self, data):
        """Create a draft order; lines are priced from the products now"""
        user = require(CREATE)
        built: dict[str, Any] = {}  # the new order's body, built before the commit from what is loaded
        order, created = services.create_order(data, user,
                                               idempotency_key=request.headers.get("Idempotency-Key"),
                                               before_commit=lambda o: built.update(order_dict(o, user)))
        return _json(built if created else order_dict(order, user), 201 if created else 200)


@orders_blp.route("/quote")
class QuoteView(MethodView):
    @permission_required(CREATE)
    @orders_blp.arguments(OrderQuoteIn)
    @orders_blp.response(200, QuoteOut)
    def post(self, data):
        """Price a cart without saving anything: lines, totals and every promotion considered"""
        user = require(CREATE)
        result = services.quote(data, user)
        db.session.rollback()  # a quote never writes, whatever a pricing plugin did
        return _json(result)


@orders_blp.route("/stats")
class StatsView(MethodView):
    @permission_required(READ)
    @orders_blp.arguments(OrderStatsArgs, location="query")
    @orders_blp.response(200, OrderStatsOut)
    def get(self, args):
        """Order statistics in the user's scope: counts by status, revenue, average order value"""
        user = require(READ)
        return _json(order_stats(user, args))


@orders_blp.route("/export")
class ExportView(MethodView):
    @permission_required("orders.order.export")
    @orders_blp.arguments(OrderArgs, location="query")
    @orders_blp.response(200, description="The orders as a CSV or XLSX file.", content_type="text/csv")
    def get(self, args):
        """Download the orders you may see, one row per line (?format=csv|xlsx, list filters)"""
        user = require("orders.order.export")
        stmt = filter_orders(select_for(Order, READ, user), args, request.args)
        header, rows = export_rows(stmt=stmt, user=user)
        if request.args.get("format") == "xlsx":
            return Response(xlsx_bytes(header, rows, "orders"), headers={
                "Content-Disposition": 'attachment; filename="orders.xlsx"'},
                mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
        return Response(csv_bytes(header, rows), mimetype="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="orders.csv"'})


@orders_blp.route("/export/jobs")
class ExportJobView(MethodView):
    @permission_required("orders.order.export")
    @orders_blp.arguments(OrderArgs, location="query")
    @orders_blp.response(202, JobSchema)
    def post(self, args):
        """Export the orders you may see to a file in the background; follow GET /api/v1/jobs/{id}"""
        user = require("orders.order.export")
        stmt = filter_orders(select_for(Order, READ, user), args, request.args)
        ids = list(db.session.scalars(stmt.with_only_columns(Order.id).order_by(Order.id)))
        fmt = "xlsx" if request.args.get("format") == "xlsx" else "csv"
        job = userjobs.start_export("orders.orders_export", user, export_job_file, ids, suffix=f".{fmt}", fmt=fmt)
        return _json(job_body(job), 202)


def export_job_file(ids: list[int], path: Path, *, user: Any, progress: Any, fmt: str = "csv") -> str:
    """Write the orders ``ids`` (chosen at request time) to ``path``, one row per line, masked for
    ``user`` as the direct export is; the body of an orders export job."""
    header = export_rows(user=user)[0]  # the rows iterator it also returns is lazy: nothing is read

    def rows() -> Iterator[list[Any]]:
        for start in range(0, len(ids), 1000):  # bounded IN lists, whatever the export's size
            chunk = ids[start:start + 1000]
            yield from export_rows(stmt=select(Order).where(Order.id.in_(chunk)), user=user)[1]
            progress(len(chunk))

    if fmt == "xlsx":
        path.write_bytes(xlsx_bytes(header, rows(), "orders"))
    else:
        with path.open("w", newline="", encoding="utf-8") as fh:  # write_csv adds the BOM
            write_csv(fh, header, rows())
    return f"{len(ids)} orders exported."


@orders_blp.route("/<int:order_id>")
class OrderView(MethodView):
    @orders_blp.response(200, OrderOut)
    def get(self, order_id):
        """One order with lines, promotions applied, payments and shipments"""
        user = require(READ)
        return _json(order_dict(get_for(Order, order_id, READ, user), user))

    @permission_required(UPDATE)
    @orders_blp.arguments(OrderPatch)
    @orders_blp.response(200, OrderOut)
    def patch(self, data, order_id):
        """Change a draft: lines (re-priced), coupon_code, custom, notes"""
        user = require(UPDATE)
        order = _locked_order(order_id, user)
        services.update_order(order, data, user)
        db.session.commit()
        return _json(order_dict(order, user))

    @orders_blp.response(204)
    def delete(self, order_id):
        """Delete a draft order"""
        user = require(DELETE)
        services.delete_order(_locked_order(order_id, user))
        db.session.commit()
        return "", 204


@orders_blp.route("/<int:order_id>/transitions")
class OrderTransitions(MethodView):
    @orders_blp.response(200, TransitionsOut)
    def get(self, order_id):
        """What the current user may do with this order now (and why not)"""
        user = require(READ)
        order = get_for(Order, order_id, READ, user)
        return _json({"status": order.status, "items": statemachine.available("order", order, user)})

    @permission_required(READ)
    @orders_blp.arguments(OrderTransitionIn)
    @orders_blp.response(200, OrderTransitionOut)
    def post(self, data, order_id):
        """Perform a transition: {"transition", "comment", "inputs"}"""
        user = require(READ)
        order = _locked_order(order_id, user)
        result = statemachine.perform("order", order, data["transition"], user,
                                      comment=data.get("comment"), inputs=data.get("inputs") or {})
        body = {**result, "order": order_dict(order, user)}  # before the commit: no reload afterwards
        db.session.commit()
        return _json(body)


@orders_blp.route("/<int:order_id>/history")
class OrderHistory(MethodView):
    @orders_blp.response(200, HistoryListOut)
    def get(self, order_id):
        """Transition history of the order: from, to, actor, time, comment"""
        user = require(READ)
        order = get_for(Order, order_id, READ, user)
        return _json({"items": history_dicts("order", order.id)})


# ---------------------------------------------------------------------------
# Returns
# ---------------------------------------------------------------------------


def return_dict(req: ReturnRequest) -> dict[str, Any]:
    return {"id": req.id, "number": req.number, "order_id": req.order_id, "order_number": req.order.number,
            "status": req.status, "reason": req.reason, "refund_amount": str(req.refund_amount),
            "requested_at": _s(req.requested_at), "received_at": _s(req.received_at),
            "refunded_at": _s(req.refunded_at),
            "lines": [{"id": rl.id, "order_line_id": rl.order_line_id, "sku": rl.order_line.sku,
                       "name": rl.order_line.name, "quantity": rl.quantity, "amount": str(rl.amount)}
                      for rl in req.lines]}


@returns_blp.route("")
class ReturnsView(MethodView):
    @permission_required(READ)
    @returns_blp.arguments(ReturnArgs, location="query")
    @returns_blp.response(200, page_schema(ReturnOut))
    def get(self, args):
        """List return requests (status, order_id)"""
        user = require(READ)
        stmt = select_for(ReturnRequest, READ, user)
        if args.get("status"):
            stmt = stmt.where(ReturnRequest.status == args["status"])
        if args.get("order_id") is not None:
            stmt = stmt.where(ReturnRequest.order_id == args["order_id"])
        rows, total = page_of(apply_sort(stmt, ReturnRequest, args.get("sort"), default="-id"), args)
        return _json(page_body([return_dict(r) for r in rows], total, args))

    @permission_required("orders.order.return")
    @returns_blp.arguments(ReturnIn)
    @returns_blp.response(201, ReturnOut)
    def post(self, data):
        """Request the return of some lines of a shipped order (within the return window)"""
        user = require("orders.order.return")
        req = services.create_return(data, user)
        db.session.commit()
        return _json(return_dict(req), 201)


def _locked_return(return_id: int, user: User) -> ReturnRequest:
    req = db.session.scalar(lock_for_update(select_for(ReturnRequest, READ, user)
                                            .where(ReturnRequest.id == return_id)))
    if req is None:
        raise NotFound(f"No return with id {return_id}.")
    return req


@returns_blp.route("/<int:return_id>")
class ReturnView(MethodView):
    @returns_blp.response(200, ReturnOut)
    def get(self, return_id):
        """One return request with its lines"""
        user = require(READ)
        return _json(return_dict(get_for(ReturnRequest, return_id, READ, user)))


@returns_blp.route("/<int:return_id>/transitions")
class ReturnTransitions(MethodView):
    @returns_blp.response(200, TransitionsOut)
    def get(self, return_id):
        """What the current user may do with this return now (and why not)"""
        user = require(READ)
        req = get_for(ReturnRequest, return_id, READ, user)
        return _json({"status": req.status, "items": statemachine.available("return", req, user)})

    @permission_required(READ)
    @returns_blp.arguments(OrderTransitionIn)
    @returns_blp.response(200, ReturnTransitionOut)
    def post(self, data, return_id):
        """Perform a transition on a return: approve, reject, receive, refund"""
        user = require(READ)
        req = _locked_return(return_id, user)
        result = statemachine.perform("return", req, data["transition"], user,
                                      comment=data.get("comment"), inputs=data.get("inputs") or {})
        db.session.commit()
        return _json({**result, "return": return_dict(req)})


@returns_blp.route("/<int:return_id>/history")
class ReturnHistory(MethodView):
    @returns_blp.response(200, HistoryListOut)
    def get(self, return_id):
        """Transition history of the return"""
        user = require(READ)
        req = get_for(ReturnRequest, return_id, READ, user)
        return _json({"items": history_dicts("return", req.id)})
