"""Reports registered by plugins: one API and one web page for all of them.

``GET /api/v1/reports`` lists the reports the user may run; ``GET /api/v1/reports/<key>``
runs one (query parameters are passed to the report) as JSON, ``?format=csv`` or
``?format=xlsx``. Reports scope their rows through :mod:`core.scope` themselves.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, flash, render_template, request
from flask.views import MethodView
from flask_babel import gettext
from flask_login import login_required
from marshmallow import Schema, fields

from core.api import core_blp
from core.auth import has_permission, require
from core.dashboard import DASHBOARD_KEYS, chart_data
from core.errors import NotFound, PermissionDenied, ValidationError
from core.export import csv_bytes, xlsx_bytes
from core.i18n import column_label, translate_cell, translate_text
from core.state import dovetail

web_bp = Blueprint("core_reports", __name__)


def _reports() -> dict[str, Any]:
    return {k: r for k, (r, _o) in dovetail().registry.reports.items()}


def query_params(report: Any) -> dict[str, str]:
    """The query parameters ``report`` documents (``dashboard`` is a display hint, not one)."""
    return {k: v for k, v in report.params.items() if k not in DASHBOARD_KEYS}


def may_run(user: Any, report: Any) -> bool:
    """Whether ``user`` has every permission ``report`` needs."""
    return all(has_permission(user, perm) for perm in report.permissions)


def run_report(key: str, params: dict[str, Any], user: Any) -> tuple[Any, list[str], list[list[Any]]]:
    report = _reports().get(key)
    if report is None:
        raise NotFound(f"No report '{key}'.")
    for perm in report.permissions:  # 403 on the API and the web page alike
        if not has_permission(user, perm):
            raise PermissionDenied(f"You need the permission '{perm}' to run the report '{key}'.")
    columns, rows = report.run(params, user)
    return report, list(columns), [list(r) for r in rows]


def download(report: Any, columns: list[str], rows: list[list[Any]], fmt: str) -> Response:
    name = report.key.replace(".", "_")
    if fmt == "xlsx":
        return Response(xlsx_bytes(columns, rows, report.key), headers={
            "Content-Disposition": f'attachment; filename="{name}.xlsx"'},
            mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    return Response(csv_bytes(columns, rows), mimetype="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})


class ReportInfo(Schema):
    key = fields.String()
    title = fields.String()
    permission = fields.String()
    description = fields.String(metadata={"description": "What the figures mean (which records count)."})
    parameters = fields.Function(lambda r: query_params(r), metadata={
        "type": "object", "additionalProperties": {"type": "string"},
        "description": "Query parameters the report takes, with what each means."})


class ReportResult(Schema):
    key = fields.String()
    title = fields.String()
    description = fields.String()
    columns = fields.List(fields.String())
    rows = fields.List(fields.List(fields.Raw()))


@core_blp.route("/reports")
class ReportList(MethodView):
    @core_blp.response(200, ReportInfo(many=True))
    def get(self):
        """Reports the current user may run"""
        user = require("core.report.read")
        return [r for r in _reports().values() if may_run(user, r)]


@core_blp.route("/reports/<key>")
class ReportRun(MethodView):
    @core_blp.response(200, ReportResult)
    def get(self, key):
        """Run a report; ?format=csv|xlsx downloads it"""
        user = require("core.report.read")
        params = {k: v for k, v in request.args.items() if k != "format"}
        report, columns, rows = run_report(key, params, user)
        fmt = request.args.get("format", "json")
        if fmt in ("csv", "xlsx"):
            return download(report, columns, rows, fmt)
        return {"key": report.key, "title": report.title, "description": report.description,
                "columns": columns,
                "rows": [[str(v) if v is not None and not isinstance(v, int | str) else v
                          for v in r] for r in rows]}


@web_bp.get("/reports")
@login_required
def index():
    user = require("core.report.read")
    items = [r for r in _reports().values() if may_run(user, r)]
    return render_template("core/reports.html", reports=items)


@web_bp.get("/reports/<key>")
@login_required
def show(key: str):
    user = require("core.report.read")
    params = {k: v for k, v in request.args.items() if k != "format"}
    fmt = request.args.get("format")
    try:
        report, columns, rows = run_report(key, params, user)
    except NotFound:
        abort(404)
    except ValidationError as exc:
        if fmt in ("csv", "xlsx"):  # a download has no page to show the message on
            raise
        # like the list pages' filters: say what is wrong and show the report unfiltered
        flash(exc.message, "error")
        params = {}
        report, columns, rows = run_report(key, params, user)
    if fmt in ("csv", "xlsx"):
        return download(report, columns, rows, fmt)
    # column keys and label cells are message ids of the plugin; the page shows them
    # translated (and escaped), the API and downloads keep them as they are
    headers = [column_label(c) for c in columns]
    rows = [[translate_cell(v) for v in r] for r in rows]
    widget = {"title": gettext(report.title), "kind": report.params.get("dashboard", "bar"),
              "columns": headers, "rows": rows, "chart": chart_data(headers, rows)}
    inputs = {k: params.get(k, "") for k in query_params(report)}
    return render_template("core/report.html", report=report, columns=headers, rows=rows,
                           description=translate_text(report.description),
                           widget=widget, inputs=inputs, groupings=("day", "week", "month"))
