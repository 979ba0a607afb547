"""``GET /api/v1/jobs/{id}`` (and its file) and the web status page ``/jobs/<id>`` of user jobs.

Only the user who started a job, or an admin (``core.user.manage``), sees it; anyone else gets
404, as if it did not exist. The web page refreshes itself with a ``Refresh`` header while
the job is queued or running (no script: the content security policy forbids inline ones).
"""

from __future__ import annotations

from flask import Response, abort, jsonify, render_template, send_file
from flask.views import MethodView
from flask_login import login_required
from marshmallow import Schema, fields

from core.api import core_blp
from core.auth import current_user, require_user
from core.db import db
from core.errors import NotFound
from core.userjobs import DONE, FAILED, UserJob, output_path, visible_job
from core.web import bp as web_bp

#: Seconds between refreshes of the status page while the job is not finished.
REFRESH_SECONDS = 2


class JobProgress(Schema):
    done = fields.Integer(metadata={"description": "Rows processed so far"})
    total = fields.Integer(allow_none=True, metadata={"description": "Rows in the file (null: not counted yet)"})


class JobRowError(Schema):
    line = fields.Integer()
    column = fields.String()
    reason = fields.String()


class JobSchema(Schema):
    id = fields.Integer()
    kind = fields.String(metadata={"description": "What the job does, e.g. 'crm.customers_import'"})
    status = fields.String(metadata={"description": "queued, running, done or failed"})
    progress = fields.Nested(JobProgress)
    summary = fields.String(allow_none=True)
    result = fields.Dict(allow_none=True, metadata={"description": "Counts of an import (rows, created, …)"})
    errors = fields.List(fields.Nested(JobRowError), metadata={"description": "Row errors (at most 1000)"})
    download = fields.Boolean(metadata={"description": "A file is ready at /api/v1/jobs/{id}/file"})
    created_at = fields.DateTime()
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)


def job_body(job: UserJob) -> dict:
    """The API body of ``job`` (what :class:`JobSchema` documents)."""
    return job.as_dict()


def job_response(job: UserJob, status: int = 202) -> Response:
    """``job`` as a JSON response in :class:`JobSchema` (for an endpoint whose 200 answer is another schema)."""
    resp = jsonify(JobSchema().dump(job_body(job)))
    resp.status_code = status
    return resp


@core_blp.route("/jobs/<int:job_id>")
class JobView(MethodView):
    @core_blp.response(200, JobSchema)
    def get(self, job_id: int) -> dict:
        """A job you started (an import or export): status, progress, result and row errors"""
        job = visible_job(job_id, require_user())
        body = job_body(job)
        db.session.commit()  # end the read transaction
        return body


@core_blp.route("/jobs/<int:job_id>/file")
class JobFileView(MethodView):
    @core_blp.response(200, description="The file the job produced (CSV or XLSX)")
    def get(self, job_id: int) -> Response:
        """Download the file a finished export job produced"""
        job = visible_job(job_id, require_user())
        path = output_path(job)
        db.session.commit()
        return send_file(path, as_attachment=True, download_name=path.name.split("-", 1)[1])


@web_bp.get("/jobs/<int:job_id>")
@login_required
def job_page(job_id: int) -> Response:
    """The status page of a job; refreshes itself until the job is done or failed."""
    try:
        job = visible_job(job_id, current_user())
    except NotFound:
        db.session.rollback()  # end the read transaction (SQLite: it holds the write lock)
        abort(404)
    body = job_body(job)
    db.session.commit()
    resp = Response(render_template("core/job.html", job=body))
    if body["status"] not in (DONE, FAILED):
        resp.headers["Refresh"] = str(REFRESH_SECONDS)
    return resp


@web_bp.get("/jobs/<int:job_id>/file")
@login_required
def job_file(job_id: int) -> Response:
    """Download a finished export's file from the web."""
    try:
        job = visible_job(job_id, current_user())
        path = output_path(job)
    except NotFound:
        db.session.rollback()  # end the read transaction (SQLite: it holds the write lock)
        abort(404)
    db.session.commit()
    return send_file(path, as_attachment=True, download_name=path.name.split("-", 1)[1])
