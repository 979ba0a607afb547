"""Background jobs: on RQ (Redis at ``DOVETAIL_REDIS_URL``) when configured, inline otherwise.

Jobs are declared like any contribution (``register_jobs`` returning :class:`core.registry.Job`);
the core's own are outbox processing and pruning and sealing the audit chain. :func:`enqueue` puts a job on the RQ queue
when Redis is configured and otherwise runs it at once — the same function
(:func:`run_job`) either way, in a fresh application context with its own database session.

Jobs with ``every`` are scheduled: :func:`tick` claims the due ones in the database
(``core_job_run`` holds each job's last run, so several workers never double-run a job and a
restart forgets nothing) and enqueues them. ``dovetail worker`` runs an RQ worker with a
scheduler thread calling :func:`tick`; without Redis (or with ``--inline``) it loops in-process.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, current_app, has_app_context
from sqlalchemy import String, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from core import extras, outbox
from core.audit import acting_as, seal
from core.db import db, utcnow
from core.registry import Job
from core.state import dovetail

log = logging.getLogger("dovetail.jobs")

#: RQ queue name (``DOVETAIL_QUEUE`` or the app config key of the same name overrides it).
DEFAULT_QUEUE = "dovetail"
#: Name of the core job that processes the outbox.
OUTBOX_JOB = "core.outbox_process"
#: Name of the core job that seals the audit chain.
AUDIT_JOB = "core.audit_seal"
#: A commit queues at most one outbox job per this many seconds (the schedule covers the rest).
KICK_SECONDS = 1


def _current() -> Flask:
    """The app behind ``current_app`` (the object itself, to hand to other threads/contexts)."""
    return current_app._get_current_object()  # type: ignore[attr-defined]


class JobRun(db.Model):
    """When a scheduled job last started (claimed by one worker's scheduler)."""

    __tablename__ = "core_job_run"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    last_run_at: Mapped[datetime | None] = mapped_column()


class UnknownJob(LookupError):
    """A job name no enabled plugin declared with ``register_jobs`` (a bug)."""


@dataclass(frozen=True)
class Enqueued:
    """What :func:`enqueue` did: queued on RQ (``job_id``) or ran inline (``result``)."""

    name: str
    queued: bool
    job_id: str | None = None
    result: Any = None


def _process_outbox(limit: int = 500) -> int:
    return outbox.process(limit).total


def _prune_outbox(days: int = 7) -> int:
    return outbox.prune(timedelta(days=days))


def _seal_audit() -> int:
    return seal(db.session)


def _run_user_job(job_id: int) -> str:
    from core import userjobs  # noqa: PLC0415 - user jobs import the importer; load it when needed

    return userjobs.run(job_id)


def core_jobs() -> list[Job]:
    """The core's own jobs (registered by :mod:`core.builtin` like any plugin's)."""
    return [
        Job(OUTBOX_JOB, _process_outbox, every=5, description="Run due outbox messages"),
        Job(AUDIT_JOB, _seal_audit, every=5,
            description="Seal committed audit entries into the hash chain (the one sequencer)"),
        Job("core.outbox_prune", _prune_outbox, every=86400,
            description="Delete outbox messages done more than a week ago"),
        Job("core.user_job", _run_user_job, description="Run an import or export a user started (core_user_job)"),
    ]


def job_named(name: str) -> Job:
    """The declared job ``name``; raises :class:`UnknownJob`."""
    found = dovetail().registry.jobs.get(name)
    if found is None:
        raise UnknownJob(f"job '{name}' is not declared by any enabled plugin (declare it with register_jobs)")
    return found[0]


def queue_name(app: Flask | None = None) -> str:
    """The RQ queue this app's jobs go to."""
    app = app or current_app
    return str(app.config.get("DOVETAIL_QUEUE") or os.environ.get("DOVETAIL_QUEUE") or DEFAULT_QUEUE)


def get_queue(app: Flask | None = None) -> Any:
    """The RQ ``Queue`` when Redis is configured, else ``None`` (jobs run inline)."""
    app = app or _current()
    redis = dovetail(app).redis
    if redis is None:
        return None

    rq = extras.require("rq", "DOVETAIL_REDIS_URL (the background job queue)")
    return rq.Queue(queue_name(app), connection=redis)


_worker_app: Flask | None = None


def _app() -> Flask:
    """The current app, or (in an RQ worker process started elsewhere) one built from the config."""
    global _worker_app
    if has_app_context():
        return _current()
    if _worker_app is None:
        from core.app import create_app  # noqa: PLC0415 - core.app imports this module (through core.builtin)

        _worker_app = create_app(os.environ.get("DOVETAIL_CONFIG"))
    return _worker_app


def run_job(name: str, kwargs: dict[str, Any] | None = None) -> Any:
    """Run job ``name`` now, in a fresh application context (its own database session, acting
    as the system), and return its result. RQ calls this; so does inline :func:`enqueue`."""
    with _app().app_context(), acting_as(None, "worker"):
        return job_named(name).func(**(kwargs or {}))


def enqueue(job_name: str, **kwargs: Any) -> Enqueued:
    """Queue ``job_name(**kwargs)`` on RQ when Redis is configured, otherwise run it now.

    Call it outside a database transaction: an inline job commits in its own session.
    """
    job_named(job_name)  # an unknown name fails here, in both modes
    queue = get_queue()
    if queue is None:
        return Enqueued(job_name, False, result=run_job(job_name, kwargs))
    job = queue.enqueue_call(run_job, args=(job_name, kwargs), description=job_name,
                             result_ttl=3600, failure_ttl=7 * 86400)
    return Enqueued(job_name, True, job_id=job.id)


def outbox_committed(ids: list[int]) -> None:
    """A transaction committed outbox messages ``ids``: run them now without Redis (behaviour
    stays immediate), or queue one outbox job (at most one per :data:`KICK_SECONDS`)."""
    app = _current()
    redis = dovetail(app).redis
    if redis is None:
        # a fresh context: the committing session (db.session here) may emit no more SQL now
        with app.app_context():
            outbox.process(ids=ids)
        return
    if redis.set(f"dovetail:outbox:kick:{queue_name(app)}", "1", nx=True, ex=KICK_SECONDS):
        enqueue(OUTBOX_JOB)


# ---------------------------------------------------------------------------
# Schedule
# ---------------------------------------------------------------------------


def _claim(name: str, every: int, now: datetime) -> bool:
    """Mark ``name`` as started at ``now`` if its last run is ``every`` seconds old or more."""
    with Session(db.engine) as session:
        row = session.get(JobRun, name, with_for_update=True)
        if row is None:
            session.add(JobRun(name=name, last_run_at=now))
            try:
                session.commit()
            except IntegrityError:  # another scheduler inserted it first
                session.rollback()
                return False
            return True
        if row.last_run_at is not None and row.last_run_at > now - timedelta(seconds=every):
            session.rollback()
            return False
        row.last_run_at = now
        session.commit()
        return True


def due_jobs(now: datetime | None = None) -> list[str]:
    """Claim and return the scheduled jobs due at ``now`` (each claimed by one caller only)."""
    now = now or utcnow()
    return [name for name, (job, _owner) in sorted(dovetail().registry.jobs.items())
            if job.every is not None and _claim(name, job.every, now)]


def tick(now: datetime | None = None) -> list[str]:
    """Enqueue every due scheduled job (inline without Redis); returns their names. A job that
    fails inline is logged and does not stop the others."""
    names = due_jobs(now)
    for name in names:
        try:
            enqueue(name)
        except Exception:  # noqa: BLE001 - one failing job must not stop the schedule; logged
            log.exception("scheduled job %s failed", name)
    return names


def last_runs() -> dict[str, datetime | None]:
    """Each scheduled job's last start (``None``: never)."""
    rows = dict(db.session.execute(select(JobRun.name, JobRun.last_run_at)).all())
    return {name: rows.get(name) for name, (job, _o) in sorted(dovetail().registry.jobs.items())
            if job.every is not None}


@dataclass
class WorkReport:
    """What :func:`work` did in burst mode: scheduled jobs run or queued, outbox messages done."""

    mode: str
    scheduled: list[str] = field(default_factory=list)
    outbox_done: int = 0


def _drain_outbox() -> int:
    done = 0
    while True:
        n = outbox.process().total
        done += n
        if n == 0:
            return done


def work(*, burst: bool = False, inline: bool | None = None, interval: float = 5.0,
         stop: threading.Event | None = None) -> WorkReport:
    """Process background work until stopped (``burst``: what is pending now, then return).

    With Redis (and not ``inline``): an RQ worker on this app's queue plus a scheduler thread
    calling :func:`tick` every ``interval`` seconds. Otherwise an in-process loop running due
    scheduled jobs and the outbox. Needs an application context.
    """
    app = _current()
    queue = None if inline else get_queue(app)
    stop = stop or threading.Event()
    if queue is None:
        report = WorkReport("inline")

        while True:
            report.outbox_done += _drain_outbox() if burst else outbox.process().total
            report.scheduled += tick()
            if burst or stop.wait(interval):
                return report
    report = WorkReport("rq")
    rq = extras.require("rq", "dovetail worker with DOVETAIL_REDIS_URL")  # optional: the 'redis' extra
    if burst:
        report.scheduled = tick()
        enqueue(OUTBOX_JOB)
    else:
        def scheduler() -> None:
            while not stop.is_set():
                with app.app_context():
                    try:
                        tick()
                    except Exception:  # noqa: BLE001 - the scheduler keeps going (database down a moment)
                        log.exception("scheduler tick failed")
                stop.wait(interval)

        threading.Thread(target=scheduler, name="dovetail-scheduler", daemon=True).start()
    try:
        rq.SimpleWorker([queue], connection=queue.connection).work(burst=burst, logging_level="WARNING")
    finally:
        stop.set()
    return report

