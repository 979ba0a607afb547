"""User-started background work (large imports and exports) with a status and progress.

A :class:`UserJob` row records one piece of work a user asked for: its kind, who asked,
``queued → running → done | failed``, rows done of the total, the result summary and the
importer's row-level error report, and the files it reads and writes (kept under the
instance folder's ``jobs/`` directory). :func:`start_import` stores the uploaded file and
queues the core job ``core.user_job`` (:mod:`core.jobs`: RQ with Redis, at once without);
:func:`start_export` does the same for an export whose rows were chosen at request time.

The work to run is named by a dotted path (``package.module:function``) kept on the row, so
a worker in another process runs the same code; only ``core.`` and ``plugins.`` functions
are accepted. The requesting user is resolved again when the job runs.
"""

from __future__ import annotations

import importlib
import json
import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import current_app, g
from sqlalchemy import ForeignKey, Integer, String, Text, update
from sqlalchemy.orm import Mapped, Session, mapped_column
from werkzeug.datastructures import FileStorage

from core.audit import acting_as
from core.db import IdMixin, JSONType, db, utcnow
from core.errors import DovetailError, NotFound, ValidationError
from core.models import User

log = logging.getLogger("dovetail.userjobs")

#: Name of the core job (:mod:`core.jobs`) that runs one :class:`UserJob`.
USER_JOB = "core.user_job"
QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
#: Upload types an import accepts.
IMPORT_SUFFIXES = (".csv", ".xlsx")
#: Progress is written to the database at most once per this many rows.
PROGRESS_EVERY = 500
#: Row errors kept on the row (the full report is the errors file).
MAX_ERRORS = 1000
#: Permission that lets an admin see every user's jobs.
ADMIN_PERMISSION = "core.user.manage"


class UserJob(IdMixin, db.Model):
    """One import or export a user started: status, progress, result and files."""

    __tablename__ = "core_user_job"

    kind: Mapped[str] = mapped_column(String(100))
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("core_user.id"), index=True)
    status: Mapped[str] = mapped_column(String(10), default=QUEUED)
    rows_done: Mapped[int] = mapped_column(Integer, default=0)
    rows_total: Mapped[int | None] = mapped_column(Integer)
    summary: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict | None] = mapped_column(JSONType)
    errors: Mapped[list | None] = mapped_column(JSONType)
    handler: Mapped[str] = mapped_column(String(200))
    params: Mapped[dict] = mapped_column(JSONType, default=dict)
    input_file: Mapped[str | None] = mapped_column(String(300))
    output_file: Mapped[str | None] = mapped_column(String(300))
    errors_file: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()

    @property
    def progress(self) -> dict[str, int | None]:
        """``{"done", "total"}`` rows."""
        return {"done": self.rows_done, "total": self.rows_total}

    def as_dict(self) -> dict[str, Any]:
        """Plain data for the API and the status page."""
        return {"id": self.id, "kind": self.kind, "status": self.status, "progress": self.progress,
                "summary": self.summary, "result": self.result, "errors": self.errors or [],
                "download": bool(self.output_file) and self.status == DONE,
                "created_at": self.created_at, "started_at": self.started_at, "finished_at": self.finished_at}


def jobs_dir() -> Path:
    """Where job files live: ``<instance>/jobs`` (created on demand)."""
    path = Path(current_app.instance_path) / "jobs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _resolve(handler: str) -> Callable[..., Any]:
    """The function named ``package.module:function`` (core or plugin code only)."""
    module, _, name = handler.partition(":")
    if not name or not module.startswith(("core.", "plugins.")):
        raise ValueError(f"job handler '{handler}' must be 'core.…:function' or 'plugins.…:function'")
    return getattr(importlib.import_module(module), name)


def _handler_name(func: Callable[..., Any]) -> str:
    name = f"{func.__module__}:{func.__qualname__}"
    _resolve(name)  # refuse a lambda or a function from elsewhere now, not in the worker
    return name


def _create(kind: str, user: User, handler: Callable[..., Any], params: dict[str, Any]) -> UserJob:
    job = UserJob(kind=kind, requested_by_id=user.id, status=QUEUED, handler=_handler_name(handler),
                  params=params, rows_done=0)
    db.session.add(job)
    db.session.flush()
    return job


def _launch(job: UserJob) -> UserJob:
    """Commit the row and queue (or, without Redis, run) it; returns the row as it is now."""
    from core import jobs  # noqa: PLC0415 - core.jobs declares the job that runs this module's work

    job_id = job.id
    db.session.commit()
    jobs.enqueue(USER_JOB, job_id=job_id)
    db.session.expire_all()
    found = db.session.get(UserJob, job_id)
    assert found is not None
    return found


def start_import(kind: str, user: User, upload: FileStorage | None, importer: Callable[..., Any], *,
                 user_args: tuple[str, ...] = ("user",), **params: Any) -> UserJob:
    """Store ``upload`` and run ``importer(path, progress=…, **params)`` as a job for ``user``.

    ``user_args``: keyword arguments that receive the requesting user when the job runs.
    A missing upload or a wrong file type is refused here (:class:`ValidationError`).
    """
    if upload is None or not upload.filename:
        raise ValidationError("Upload the file as multipart field 'file'.", fields={"file": ["Required."]})
    suffix = Path(upload.filename).suffix.lower()
    if suffix not in IMPORT_SUFFIXES:
        raise ValidationError("Upload a .csv or .xlsx file.", fields={"file": ["Upload a .csv or .xlsx file."]})
    job = _create(kind, user, importer, {**params, "_user_args": list(user_args)})
    path = jobs_dir() / f"{job.id}-input{suffix}"
    upload.save(path)
    job.input_file = path.name
    return _launch(job)


def start_export(kind: str, user: User, exporter: Callable[..., Any], ids: list[int], *,
                 suffix: str = ".csv", **params: Any) -> UserJob:
    """Run ``exporter(ids, path, user=…, progress=…, **params)`` as a job for ``user``.

    ``ids`` are the records the user may export, chosen at request time (their rights then);
    they are kept in the job's input file. The exporter writes ``path`` and returns a summary.
    """
    job = _create(kind, user, exporter, params)
    path = jobs_dir() / f"{job.id}-ids.json"
    path.write_text(json.dumps(ids), encoding="utf-8")
    job.input_file = path.name
    job.output_file = f"{job.id}-{kind.replace('.', '-')}{suffix}"
    job.rows_total = len(ids)
    return _launch(job)


def _set(job_id: int, **values: Any) -> None:
    """Update the job row in a session of its own (committed now, outside the work's transaction)."""
    with Session(db.engine) as session:
        session.execute(update(UserJob).where(UserJob.id == job_id).values(**values))
        session.commit()


class _Progress:
    """Counts rows and writes ``rows_done`` through the work's own session every batch."""

    def __init__(self, job_id: int, every: int | None = None) -> None:
        self.job_id, self.every, self.done = job_id, every or PROGRESS_EVERY, 0

    def __call__(self, n: int = 1) -> None:
        before = self.done
        self.done += n
        if self.done // self.every != before // self.every:
            # in the importer's transaction: committed with the batch it belongs to
            db.session.execute(update(UserJob).where(UserJob.id == self.job_id).values(rows_done=self.done))


def run(job_id: int) -> str:
    """Run the :class:`UserJob` ``job_id`` (the body of the ``core.user_job`` job); returns its status."""
    job = db.session.get(UserJob, job_id)
    if job is None or job.status != QUEUED:
        return "skipped"
    user = db.session.get(User, job.requested_by_id)
    params = dict(job.params or {})
    handler, input_file, output_file = job.handler, job.input_file, job.output_file
    folder = jobs_dir()
    db.session.rollback()
    total = None
    if output_file is None and input_file:
        from core.tabular import count_rows  # noqa: PLC0415 - only imports need it

        try:
            total = count_rows(folder / input_file)
        except (DovetailError, OSError, ValueError):
            total = None
    _set(job_id, status=RUNNING, started_at=utcnow(), **({"rows_total": total} if total is not None else {}))
    progress = _Progress(job_id)
    g.dovetail_user = user  # scope and masking helpers read the acting user from here outside a request
    try:
        with acting_as(user):  # the audit trail names the requester, not "worker"
            return _run(job_id, handler, params, user, folder, input_file, output_file, progress)
    finally:
        g.pop("dovetail_user", None)


def _run(job_id: int, handler: str, params: dict[str, Any], user: User | None, folder: Path,
         input_file: str | None, output_file: str | None, progress: _Progress) -> str:
    try:
        func = _resolve(handler)
        if output_file is None:
            for name in params.pop("_user_args", []):
                params[name] = user
            report = func(folder / str(input_file), progress=progress, **params)
            errors_name = None
            if report.errors:
                errors_name = f"{job_id}-errors.csv"
                report.write_errors(folder / errors_name)
            data = report.as_dict(limit=MAX_ERRORS)
            errors = data.pop("errors")
            db.session.rollback()
            _set(job_id, status=DONE, finished_at=utcnow(), rows_done=report.rows, summary=report.summary(),
                 result=data, errors=errors, errors_file=errors_name)
        else:
            ids = json.loads((folder / str(input_file)).read_text(encoding="utf-8"))
            summary = func(ids, folder / output_file, user=user, progress=progress, **params)
            db.session.commit()  # the export's personal-data access records
            _set(job_id, status=DONE, finished_at=utcnow(), rows_done=progress.done, summary=str(summary))
    except DovetailError as exc:  # a file the importer refuses as a whole: a clear message
        db.session.rollback()
        _set(job_id, status=FAILED, finished_at=utcnow(), summary=exc.message,
             errors=[{"line": 0, "column": col, "reason": msg} for col, msgs in (exc.fields or {}).items()
                     for msg in (msgs if isinstance(msgs, list) else [msgs])])
        return FAILED
    except Exception:  # noqa: BLE001 - recorded on the job (the user sees "failed"), logged in full
        db.session.rollback()
        log.exception("user job %s failed", job_id)
        _set(job_id, status=FAILED, finished_at=utcnow(), summary="The job failed unexpectedly; see the server log.")
        return FAILED
    return DONE


def visible_job(job_id: int, user: User | None) -> UserJob:
    """The job ``job_id`` if ``user`` started it or is an admin; otherwise :class:`NotFound`."""
    from core.auth import has_permission  # noqa: PLC0415 - core.auth is imported late by core modules

    job = db.session.get(UserJob, job_id, populate_existing=True)  # the worker changes it elsewhere
    if job is None or user is None or (job.requested_by_id != user.id and not has_permission(user, ADMIN_PERMISSION)):
        raise NotFound(f"No job {job_id}.")
    return job


def output_path(job: UserJob) -> Path:
    """The finished export's file; :class:`NotFound` while there is none."""
    if job.status != DONE or not job.output_file or not (jobs_dir() / job.output_file).is_file():
        raise NotFound("This job has no file to download (yet).")
    return jobs_dir() / job.output_file


__all__ = ["DONE", "FAILED", "QUEUED", "RUNNING", "USER_JOB", "UserJob", "output_path", "run",
           "start_export", "start_import", "visible_job"]
