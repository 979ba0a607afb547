"""REST: ``/api/v1/customers`` (+ contacts, activities, purchases, duplicates, merge, pool,
export), ``/api/v1/activities`` (due tasks), ``/api/v1/segments``, ``/api/v1/leads``.

Every record goes through :mod:`core.scope`: a rep gets 404 for another rep's customer
and for anything hanging off it (contacts, activities, purchases, leads)."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from pathlib import Path

from flask import Response, request, stream_with_context
from flask.views import MethodView
from marshmallow import Schema, fields
from sqlalchemy import func, select

from core import statemachine, userjobs
from core.api import Blueprint, ListArgs, apply_sort, page_body, page_of, page_schema
from core.api import serialized as _json
from core.auth import has_permission, permission_required, require
from core.db import db
from core.errors import NotFound, PermissionDenied, ValidationError
from core.export import safe_cell, write_csv, xlsx_bytes
from core.scope import can_read_personal, get_for, mask, select_for
from core.userjobs_api import JobSchema, job_body, job_response
from plugins.crm import dedupe, leads, pool, services, transfer
from plugins.crm.models import Activity, Contact, Customer, Lead, Purchase, Segment
from plugins.crm.schemas import (
    ActivityArgs,
    ActivityIn,
    ActivityOut,
    ActivityPatch,
    ClaimIn,
    ContactIn,
    ContactOut,
    ContactPatch,
    CustomerArgs,
    CustomerIn,
    CustomerOut,
    CustomerPatch,
    DueArgs,
    ExportArgs,
    HistoryOut,
    LeadArgs,
    LeadIn,
    LeadOut,
    LeadPatch,
    LeadTransitionOut,
    MergeIn,
    PoolArgs,
    PurchaseOut,
    ReleaseIn,
    SegmentArgs,
    SegmentIn,
    SegmentOut,
    SegmentPatch,
    TransitionIn,
    TransitionOut,
)

customers_blp = Blueprint("crm_customers", __name__, url_prefix="/customers",
                          description="Customers, contacts, activities, duplicates, pool")
activities_blp = Blueprint("crm_activities", __name__, url_prefix="/activities",
                           description="Follow-up activities and call tasks")
segments_blp = Blueprint("crm_segments", __name__, url_prefix="/segments",
                         description="Saved customer filters")
leads_blp = Blueprint("crm_leads", __name__, url_prefix="/leads", description="Sales leads")

CUSTOMER_PAGE = page_schema(CustomerOut)
ACTIVITY_PAGE = page_schema(ActivityOut)

READ, CREATE, UPDATE, DELETE = services.READ, services.CREATE, services.UPDATE, services.DELETE
ACT_READ, ACT_WRITE = services.ACT_READ, services.ACT_WRITE
SEG_READ, SEG_WRITE = "crm.segment.read", "crm.segment.write"
LEAD_READ, LEAD_WRITE = "crm.lead.read", "crm.lead.write"



# ---------------------------------------------------------------------------
# Customers
# ---------------------------------------------------------------------------


@customers_blp.route("")
class CustomersView(MethodView):
    @permission_required(READ)
    @customers_blp.arguments(CustomerArgs, location="query")
    @customers_blp.response(200, CUSTOMER_PAGE)
    def get(self, args):
        """List customers (search q; filters tier, tag, region, owner_id, custom.<key>)"""
        user = require(READ)
        services.check_purchase_sort(args.get("sort"), user)
        stmt = services.customer_filters(select_for(Customer, READ, user), args, request.args)
        rows, total = page_of(apply_sort(stmt, Customer, args.get("sort")), args)
        return _json(page_body(services.customers_dump(rows, user), total, args))

    @permission_required(CREATE)
    @customers_blp.arguments(CustomerIn)
    @customers_blp.response(201, CustomerOut)
    def post(self, data):
        """Create a customer (owned by you unless owner_id says otherwise)"""
        user = require(CREATE)
        c = services.create_customer(data, user)
        db.session.commit()
        return _json(services.customer_dict(c, user), 201)


@customers_blp.route("/<int:customer_id>")
class CustomerView(MethodView):
    @customers_blp.response(200, CustomerOut)
    def get(self, customer_id):
        """One customer"""
        user = require(READ)
        return _json(services.customer_dict(services.visible_customer(customer_id, READ, user), user))

    @permission_required(UPDATE)
    @customers_blp.arguments(CustomerPatch(partial=True))
    @customers_blp.response(200, CustomerOut)
    def patch(self, data, customer_id):
        """Change some fields of a customer"""
        user = require(UPDATE)
        c = services.visible_customer(customer_id, UPDATE, user)
        services.update_customer(c, data, user)
        db.session.commit()
        return _json(services.customer_dict(c, user))

    @customers_blp.response(204)
    def delete(self, customer_id):
        """Delete a customer with its contacts, activities and history (409 while it has orders)"""
        user = require(DELETE)
        services.delete_customer(services.visible_customer(customer_id, DELETE, user))
        db.session.commit()
        return "", 204


# --- contacts ---------------------------------------------------------------


@customers_blp.route("/<int:customer_id>/contacts")
class ContactsView(MethodView):
    @customers_blp.response(200, page_schema(ContactOut))
    def get(self, customer_id):
        """Contacts of a customer"""
        user = require(READ)
        c = services.visible_customer(customer_id, READ, user)
        rows = db.session.scalars(select(Contact).where(Contact.customer_id == c.id)
                                  .order_by(Contact.is_primary.desc(), Contact.id)).all()
        return _json({"items": services.contact_dict(rows, user, many=True), "page": 1,
                      "per_page": max(len(rows), 1), "total": len(rows)})

    @permission_required(UPDATE)
    @customers_blp.arguments(ContactIn)
    @customers_blp.response(201, ContactOut)
    def post(self, data, customer_id):
        """Add a contact person to a customer"""
        user = require(UPDATE)
        c = services.visible_customer(customer_id, UPDATE, user)
        contact = services.save_contact(c, data, user)
        db.session.commit()
        return _json(services.contact_dict(contact, user), 201)


@customers_blp.route("/<int:customer_id>/contacts/<int:contact_id>")
class ContactView(MethodView):
    @permission_required(UPDATE)
    @customers_blp.arguments(ContactPatch(partial=True))
    @customers_blp.response(200, ContactOut)
    def patch(self, data, customer_id, contact_id):
        """Change a contact"""
        user = require(UPDATE)
        c = services.visible_customer(customer_id, UPDATE, user)
        contact = _contact(c, contact_id)
        services.save_contact(c, data, user, contact)
        db.session.commit()
        return _json(services.contact_dict(contact, user))

    @customers_blp.response(204)
    def delete(self, customer_id, contact_id):
        """Remove a contact"""
        user = require(UPDATE)
        c = services.visible_customer(customer_id, UPDATE, user)
        db.session.delete(_contact(c, contact_id))
        db.session.commit()
        return "", 204


def _contact(c: Customer, contact_id: int) -> Contact:
    contact = db.session.get(Contact, contact_id)
    if contact is None or contact.customer_id != c.id:
        raise NotFound(f"Customer {c.id} has no contact {contact_id}.")
    return contact


# --- activities, purchases -----------------------------------------------------


@customers_blp.route("/<int:customer_id>/activities")
class CustomerActivitiesView(MethodView):
    @permission_required(ACT_READ)
    @customers_blp.arguments(ActivityArgs, location="query")
    @customers_blp.response(200, ACTIVITY_PAGE)
    def get(self, args, customer_id):
        """Activities and tasks of a customer, newest first"""
        user = require(ACT_READ)
        c = services.visible_customer(customer_id, READ, user)
        stmt = select_for(Activity, ACT_READ, user).where(Activity.customer_id == c.id)
        if args.get("done") is not None:
            stmt = stmt.where(Activity.done.is_(args["done"]))
        if args.get("type"):
            stmt = stmt.where(Activity.type == args["type"])
        rows, total = page_of(apply_sort(stmt, Activity, args.get("sort")), args)
        return _json(page_body(services.activity_dict(rows, user, many=True), total, args))

    @permission_required(ACT_WRITE)
    @customers_blp.arguments(ActivityIn)
    @customers_blp.response(201, ActivityOut)
    def post(self, data, customer_id):
        """Log an interaction (done) or schedule a call task (due_date)"""
        user = require(ACT_WRITE)
        c = services.visible_customer(customer_id, READ, user)
        act = services.create_activity(c, data, user)
        db.session.commit()
        return _json(services.activity_dict(act, user), 201)


@customers_blp.route("/<int:customer_id>/purchases")
class PurchasesView(MethodView):
    @permission_required(READ)
    @customers_blp.arguments(ListArgs, location="query")
    @customers_blp.response(200, page_schema(PurchaseOut))
    def get(self, args, customer_id):
        """Purchase history of a customer (from orders' events), newest first; needs orders.order.read"""
        user = require(READ)
        if not services.can_see_purchases(user):
            raise PermissionDenied(f"You need the permission '{services.PURCHASES}' to see purchase "
                                   "history.")
        c = services.visible_customer(customer_id, READ, user)
        stmt = select(Purchase).where(Purchase.customer_id == c.id).order_by(
            Purchase.placed_at.desc(), Purchase.id.desc())
        rows, total = page_of(stmt, args)
        return _json(page_body(PurchaseOut().dump(rows, many=True), total, args))


@customers_blp.route("/<int:customer_id>/release")
class ReleaseView(MethodView):
    @permission_required(READ)
    @customers_blp.arguments(ReleaseIn)
    @customers_blp.response(200, CustomerOut)
    def post(self, data, customer_id):
        """Return a customer to the public pool (owner or pool manager)"""
        user = require(READ)
        c = services.visible_customer(customer_id, READ, user)
        pool.release(c, user, data.get("reason"))
        db.session.commit()
        return _json(services.customer_dict(c, user))


# --- duplicates and merge -------------------------------------------------------


class DuplicateGroup(Schema):
    kind = fields.String()
    value = fields.String()
    customer_ids = fields.List(fields.Integer())
    customers = fields.List(fields.Nested(CustomerOut))


@customers_blp.route("/duplicates")
class DuplicatesView(MethodView):
    @permission_required(READ)
    @customers_blp.arguments(ListArgs, location="query")
    @customers_blp.response(200, page_schema(DuplicateGroup))
    def get(self, args):
        """Groups of your customers sharing a normalised phone number or e-mail"""
        user = require(READ)
        groups = dedupe.duplicate_groups(user)
        page, per = args["page"], args["per_page"]
        window = groups[(page - 1) * per: page * per]
        ids = sorted({i for g in window for i in g["customer_ids"]})
        rows = db.session.scalars(select(Customer).where(Customer.id.in_(ids))).all() if ids else []
        by_id = {d["id"]: d for d in services.customers_dump(list(rows), user)}
        for g in window:
            g["customers"] = [by_id[i] for i in g["customer_ids"] if i in by_id]
        return _json(page_body(window, len(groups), args))


@customers_blp.route("/merge")
class MergeView(MethodView):
    @permission_required("crm.customer.merge")
    @customers_blp.arguments(MergeIn)
    @customers_blp.response(200, CustomerOut)
    def post(self, data):
        """Merge customers into a survivor (contacts, activities, orders move; audited)"""
        user = require("crm.customer.merge")
        survivor, merged = dedupe.load_for_merge(data["survivor_id"], data["merged_ids"], user)
        dedupe.merge(survivor, merged, user)
        db.session.commit()
        return _json(services.customer_dict(survivor, user))


# --- pool -------------------------------------------------------------------------


class ClaimOut(Schema):
    claimed = fields.List(fields.Integer())
    unavailable = fields.List(fields.Integer())
    claimed_today = fields.Integer()
    daily_limit = fields.Integer()


def _pool_dump(rows, user):
    data = services.customers_dump(rows, user) if can_read_personal(Customer, user) and has_permission(
        user, pool.MANAGE) else [mask(Customer, d, None) for d in CustomerOut().dump(rows, many=True)]
    return services.hide_purchases(data, user)


@customers_blp.route("/pool")
class PoolView(MethodView):
    @permission_required(READ)
    @customers_blp.arguments(PoolArgs, location="query")
    @customers_blp.response(200, CUSTOMER_PAGE)
    def get(self, args):
        """Customers in the public pool (personal data masked until claimed)"""
        user = require(READ)
        pool.require_pool_access(user)
        pool.auto_recycle()
        stmt = services.customer_filters(pool.pool_stmt(), args)
        rows, total = page_of(apply_sort(stmt, Customer, args.get("sort"), default="-pool_entered_at"),
                              args)
        return _json(page_body(_pool_dump(rows, user), total, args))


@customers_blp.route("/pool/claim")
class ClaimView(MethodView):
    @permission_required("crm.pool.claim")
    @customers_blp.arguments(ClaimIn)
    @customers_blp.response(200, ClaimOut)
    def post(self, data):
        """Claim pool customers (atomic; at most pool_claim_limit per rep per day)"""
        user = require("crm.pool.claim")
        pool.auto_recycle()
        result = pool.claim(user, data["customer_ids"])
        db.session.commit()
        return _json({**result, "claimed_today": pool.claims_today(user),
                      "daily_limit": int(services.settings().get("pool_claim_limit", 50))})


class RecycleOut(Schema):
    returned = fields.List(fields.Integer())


@customers_blp.route("/pool/recycle")
class RecycleView(MethodView):
    @permission_required("crm.pool.manage")
    @customers_blp.response(200, RecycleOut)
    def post(self):
        """Return customers without follow-up for pool_return_days to the pool now"""
        require("crm.pool.manage")
        returned = pool.recycle()
        db.session.commit()
        return _json({"returned": returned})


# --- import -----------------------------------------------------------------------


class ImportRowError(Schema):
    line = fields.Integer()
    column = fields.String()
    reason = fields.String()


class ImportOut(Schema):
    rows = fields.Integer()
    created = fields.Integer()
    updated = fields.Integer()
    unchanged = fields.Integer()
    rejected = fields.Integer()
    errors = fields.List(fields.Nested(ImportRowError))


@customers_blp.route("/import")
class ImportView(MethodView):
    @permission_required("crm.customer.import")
    @customers_blp.response(200, ImportOut)
    @customers_blp.alt_response(202, schema=JobSchema, description="Queued: follow GET /api/v1/jobs/{id}")
    def post(self):
        """Import a CSV/XLSX upload (multipart field 'file'); rows match only your customers"""
        user = require("crm.customer.import")
        job = userjobs.start_import("crm.customers_import", user, request.files.get("file"),
                                    transfer.import_customers, user_args=("user", "default_owner"))
        return import_answer(job)


def import_answer(job: userjobs.UserJob):
    """A finished import's report (as before jobs), or 202 with the queued job to follow."""
    if job.status == userjobs.QUEUED or job.status == userjobs.RUNNING:
        return job_response(job, 202)  # a Response: not cut to ImportOut, the 200 schema
    if job.status == userjobs.FAILED and job.summary:
        raise ValidationError(job.summary, fields={e["column"] or "file": [e["reason"]] for e in job.errors or []})
    return _json({**(job.result or {}), "errors": job.errors or []})


# --- export -----------------------------------------------------------------------


@customers_blp.route("/export")
class ExportView(MethodView):
    @permission_required("crm.customer.export")
    @customers_blp.arguments(ExportArgs, location="query")
    @customers_blp.response(200, description="CSV or XLSX file")
    def get(self, args):
        """Export your customers as CSV or XLSX (masked without the personal-data right)"""
        user = require("crm.customer.export")
        stmt = services.customer_filters(select_for(Customer, "crm.customer.export", user), args,
                                         request.args)
        if args.get("segment_id"):
            require(SEG_READ)
            seg = get_for(Segment, args["segment_id"], SEG_READ, user, label="segment")
            stmt = services.segment_customers_stmt(seg, stmt)
        return export_response(stmt, user, args["format"], "api export")


@customers_blp.route("/export/jobs")
class ExportJobView(MethodView):
    @permission_required("crm.customer.export")
    @customers_blp.arguments(ExportArgs, location="query")
    @customers_blp.response(202, JobSchema)
    def post(self, args):
        """Export your customers to a file in the background; follow GET /api/v1/jobs/{id}"""
        user = require("crm.customer.export")
        stmt = services.customer_filters(select_for(Customer, "crm.customer.export", user), args, request.args)
        if args.get("segment_id"):
            require(SEG_READ)
            seg = get_for(Segment, args["segment_id"], SEG_READ, user, label="segment")
            stmt = services.segment_customers_stmt(seg, stmt)
        ids = list(db.session.scalars(stmt.with_only_columns(Customer.id).order_by(Customer.id)))
        job = userjobs.start_export("crm.customers_export", user, export_job_file, ids,
                                    suffix=f".{args['format']}", fmt=args["format"])
        return _json(job_body(job), 202)


def export_job_file(ids: list[int], path: Path, *, user, progress, fmt: str = "csv") -> str:
    """Write the customers ``ids`` (chosen at request time) to ``path`` for ``user``, masked as
    the live export is; the body of a customers export job."""
    header, keys = transfer.export_header(user)

    def rows():
        for start in range(0, len(ids), 1000):  # bounded IN lists, whatever the export's size
            stmt = select(Customer).where(Customer.id.in_(ids[start:start + 1000])).order_by(Customer.id)
            for row in transfer.export_rows(stmt, user, keys, channel="api export job"):
                progress(1)
                yield row

    if fmt == "xlsx":
        path.write_bytes(xlsx_bytes(header, rows(), "customers"))
    else:
        with path.open("w", newline="", encoding="utf-8") as fh:  # write_csv adds the BOM
            write_csv(fh, header, rows())
    return f"{len(ids)} customers exported."


def export_response(stmt, user, fmt: str, channel: str) -> Response:
    """Stream the customers of ``stmt`` as CSV (or build XLSX), masked for ``user``."""
    header, keys = transfer.export_header(user)
    stamp = datetime.now().strftime("%Y%m%d-%H%M")
    if fmt == "xlsx":
        body = xlsx_bytes(header, transfer.export_rows(stmt, user, keys, channel=channel), "customers")
        db.session.commit()
        return Response(body, mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                        headers={"Content-Disposition": f'attachment; filename="customers-{stamp}.xlsx"'})

    def generate():
        buf = io.StringIO()
        write_csv(buf, header, [])
        yield buf.getvalue()
        for row in transfer.export_rows(stmt, user, keys, channel=channel):
            buf = io.StringIO()
            csv.writer(buf).writerow([safe_cell(v) for v in row])
            yield buf.getvalue()
        db.session.commit()  # keeps the personal-data access log of this export

    return Response(stream_with_context(generate()), mimetype="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="customers-{stamp}.csv"'})


# ---------------------------------------------------------------------------
# Activities
# ---------------------------------------------------------------------------


@activities_blp.route("/due")
class DueView(MethodView):
    @permission_required(ACT_READ)
    @activities_blp.arguments(DueArgs, location="query")
    @activities_blp.response(200, ACTIVITY_PAGE)
    def get(self, args):
        """My open tasks due today (and overdue ones, unless include_overdue=false)"""
        user = require(ACT_READ)
        stmt = services.due_tasks_stmt(user, args.get("date"), args["include_overdue"])
        rows, total = page_of(apply_sort(stmt, Activity, args.get("sort"), default="due_date"), args)
        return _json(page_body(services.activity_dict(rows, user, many=True), total, args))


@activities_blp.route("/<int:activity_id>")
class ActivityView(MethodView):
    @activities_blp.response(200, ActivityOut)
    def get(self, activity_id):
        """One activity or task"""
        user = require(ACT_READ)
        return _json(services.activity_dict(get_for(Activity, activity_id, ACT_READ, user), user))

    @permission_required(ACT_WRITE)
    @activities_blp.arguments(ActivityPatch(partial=True))
    @activities_blp.response(200, ActivityOut)
    def patch(self, data, activity_id):
        """Change or complete a task (done=true with outcome; next_step + next_due_date schedules
        the follow-up)"""
        user = require(ACT_WRITE)
        act = get_for(Activity, activity_id, ACT_WRITE, user)
        services.update_activity(act, data, user)
        db.session.commit()
        return _json(services.activity_dict(act, user))

    @activities_blp.response(204)
    def delete(self, activity_id):
        """Delete an activity"""
        user = require(ACT_WRITE)
        db.session.delete(get_for(Activity, activity_id, ACT_WRITE, user))
        db.session.commit()
        return "", 204


# ---------------------------------------------------------------------------
# Segments
# ---------------------------------------------------------------------------


def _segment_dict(seg: Segment, user) -> dict:
    data = SegmentOut().dump(seg)
    base = select_for(Customer, READ, user).with_only_columns(Customer.id)
    data["customer_count"] = db.session.scalar(select(func.count()).select_from(
        services.segment_customers_stmt(seg, base).subquery()))
    return data


@segments_blp.route("")
class SegmentsView(MethodView):
    @permission_required(SEG_READ)
    @segments_blp.arguments(SegmentArgs, location="query")
    @segments_blp.response(200, page_schema(SegmentOut))
    def get(self, args):
        """Saved segments (customer_count counts the customers you may see)"""
        user = require(SEG_READ)
        stmt = select_for(Segment, SEG_READ, user)
        if args.get("q"):
            stmt = stmt.where(Segment.name.icontains(args["q"].strip(), autoescape=True))
        rows, total = page_of(apply_sort(stmt, Segment, args.get("sort"), default="name"), args)
        return _json(page_body([_segment_dict(s, user) for s in rows], total, args))

    @permission_required(SEG_WRITE)
    @segments_blp.arguments(SegmentIn)
    @segments_blp.response(201, SegmentOut)
    def post(self, data):
        """Save a segment (tier, tags, region, min/max spend, last purchase before/after …)"""
        user = require(SEG_WRITE)
        seg = services.save_segment(data, user)
        db.session.commit()
        return _json(_segment_dict(seg, user), 201)


@segments_blp.route("/<int:segment_id>")
class SegmentView(MethodView):
    @segments_blp.response(200, SegmentOut)
    def get(self, segment_id):
        """One segment"""
        user = require(SEG_READ)
        return _json(_segment_dict(get_for(Segment, segment_id, SEG_READ, user, label="segment"), user))

    @permission_required(SEG_WRITE)
    @segments_blp.arguments(SegmentPatch(partial=True))
    @segments_blp.response(200, SegmentOut)
    def patch(self, data, segment_id):
        """Rename a segment or change its filters"""
        user = require(SEG_WRITE)
        seg = get_for(Segment, segment_id, SEG_WRITE, user, label="segment")
        services.save_segment(data, user, seg)
        db.session.commit()
        return _json(_segment_dict(seg, user))

    @segments_blp.response(204)
    def delete(self, segment_id):
        """Delete a segment (customers stay)"""
        user = require(SEG_WRITE)
        db.session.delete(get_for(Segment, segment_id, SEG_WRITE, user, label="segment"))
        db.session.commit()
        return "", 204


@segments_blp.route("/<int:segment_id>/customers")
class SegmentCustomersView(MethodView):
    @permission_required(SEG_READ)
    @segments_blp.arguments(CustomerArgs, location="query")
    @segments_blp.response(200, CUSTOMER_PAGE)
    def get(self, args, segment_id):
        """The customers of a segment that you may see"""
        user = require(SEG_READ)
        require(READ)
        seg = get_for(Segment, segment_id, SEG_READ, user, label="segment")
        services.check_purchase_sort(args.get("sort"), user)
        stmt = services.customer_filters(select_for(Customer, READ, user), args, request.args)
        stmt = services.segment_customers_stmt(seg, stmt)
        rows, total = page_of(apply_sort(stmt, Customer, args.get("sort")), args)
        return _json(page_body(services.customers_dump(rows, user), total, args))


# ---------------------------------------------------------------------------
# Leads
# ---------------------------------------------------------------------------


@leads_blp.route("")
class LeadsView(MethodView):
    @permission_required(LEAD_READ)
    @leads_blp.arguments(LeadArgs, location="query")
    @leads_blp.response(200, page_schema(LeadOut))
    def get(self, args):
        """List leads (search q; filters status, owner_id, customer_id)"""
        user = require(LEAD_READ)
        stmt = select_for(Lead, LEAD_READ, user)
        if args.get("q"):
            q = args["q"].strip()
            stmt = stmt.where(Lead.title.icontains(q, autoescape=True)
                              | Lead.contact_name.icontains(q, autoescape=True))
        for key in ("status", "owner_id", "customer_id"):
            if args.get(key) is not None:
                stmt = stmt.where(getattr(Lead, key) == args[key])
        rows, total = page_of(apply_sort(stmt, Lead, args.get("sort")), args)
        return _json(page_body(leads.lead_dict(rows, user, many=True), total, args))

    @permission_required(LEAD_WRITE)
    @leads_blp.arguments(LeadIn)
    @leads_blp.response(201, LeadOut)
    def post(self, data):
        """Create a lead (status: the workflow's initial state)"""
        user = require(LEAD_WRITE)
        lead = leads.save_lead(data, user)
        db.session.commit()
        return _json(leads.lead_dict(lead, user), 201)


@leads_blp.route("/<int:lead_id>")
class LeadView(MethodView):
    @leads_blp.response(200, LeadOut)
    def get(self, lead_id):
        """One lead"""
        user = require(LEAD_READ)
        return _json(leads.lead_dict(get_for(Lead, lead_id, LEAD_READ, user, label="lead"), user))

    @permission_required(LEAD_WRITE)
    @leads_blp.arguments(LeadPatch(partial=True))
    @leads_blp.response(200, LeadOut)
    def patch(self, data, lead_id):
        """Change a lead (its status changes only through transitions)"""
        user = require(LEAD_WRITE)
        lead = get_for(Lead, lead_id, LEAD_WRITE, user, label="lead")
        if "status" in data:
            raise ValidationError("Change the status through /transitions.",
                                  fields={"status": ["Read-only; use a transition."]})
        leads.save_lead(data, user, lead)
        db.session.commit()
        return _json(leads.lead_dict(lead, user))

    @leads_blp.response(204)
    def delete(self, lead_id):
        """Delete a lead"""
        user = require(LEAD_WRITE)
        db.session.delete(get_for(Lead, lead_id, LEAD_WRITE, user, label="lead"))
        db.session.commit()
        return "", 204


@leads_blp.route("/<int:lead_id>/transitions")
class LeadTransitionsView(MethodView):
    @leads_blp.response(200, TransitionOut(many=True))
    def get(self, lead_id):
        """What you may do with this lead now (and why not)"""
        user = require(LEAD_READ)
        lead = get_for(Lead, lead_id, LEAD_READ, user, label="lead")
        return _json(statemachine.available("lead", lead, user))

    @permission_required(LEAD_READ)
    @leads_blp.arguments(TransitionIn)
    @leads_blp.response(200, LeadTransitionOut)
    def post(self, data, lead_id):
        """Perform a transition: {"transition", "comment", "inputs"}"""
        user = require(LEAD_READ)
        lead = get_for(Lead, lead_id, LEAD_READ, user, label="lead")
        result = statemachine.perform("lead", lead, data["transition"], user, comment=data.get("comment"),
                                      inputs=data.get("inputs"))
        db.session.commit()
        return _json({**leads.lead_dict(lead, user), "result": result})


@leads_blp.route("/<int:lead_id>/history")
class LeadHistoryView(MethodView):
    @leads_blp.response(200, HistoryOut(many=True))
    def get(self, lead_id):
        """Transitions of this lead, oldest first"""
        user = require(LEAD_READ)
        lead = get_for(Lead, lead_id, LEAD_READ, user, label="lead")
        return _json(HistoryOut().dump(statemachine.history("lead", lead.id), many=True))
