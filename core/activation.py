"""Run-time config is activated, not polled: ``dovetail config apply`` and every worker.

The files an admin edits while the system runs — ``roles.yaml``, ``workflows/*.yaml``,
``custom_fields.yaml`` and the run-time part of ``dovetail.yaml`` — take effect only when
applied (``dovetail config apply``, ``POST /api/v1/config/apply``, the Apply button on the
Configuration page, ``/admin/config``). Applying reads every file, checks all of them (each part's checks, with
located errors), makes the database changes a part needs (a workflow's ``state_map``
moves, the custom-field version) and writes one :class:`core.models.ConfigVersion` row
holding the text of every file — in one transaction. A broken file refuses the whole
apply, names file, line and column, and the version in force stays.

Every worker process compares the newest version number with the one it runs (one indexed
``SELECT`` of one integer, at most once per ``DOVETAIL_CONFIG_CHECK_SECONDS``, default 1)
and, when it changed, builds every part from the row's texts and swaps the new frozen
definitions in. Editing a file without applying changes nothing. Before any version exists
(a database ``dovetail init`` has not seen yet) the app runs the files as found at start.

A part is contributed through the ``register_config_parts`` hook (see
:class:`ConfigPart`); the core contributes ``dovetail.yaml`` and ``roles.yaml``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from flask import Flask, current_app, request
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError

from core.config import MainSchema, read_main, read_text, validate_doc
from core.db import db
from core.errors import ConfigError, ConfigIssue, Conflict
from core.models import ConfigVersion

log = logging.getLogger("dovetail.config")
EXT_KEY = "dovetail_activation"
Docs = Mapping[str, str]


class ConfigPart:
    """One kind of run-time config file, checked and activated by :func:`apply`.

    Subclasses set ``name`` and implement the four steps; documents are keyed by the path
    relative to the config folder (``"workflows/order.yaml"``).
    """

    name: str = ""

    def files(self, app: Flask) -> list[str]:
        """The files of this part present in the config folder now (relative paths)."""
        return []

    def prepare(self, app: Flask, docs: Docs, *, applying: bool, force: bool) -> Any:
        """Check this part's documents; return what :meth:`install` needs, or raise a located
        :class:`ConfigError` listing every mistake. ``applying``: compare with the records in
        the database (an apply or a check); false when a worker loads an applied version."""
        return None

    def write(self, app: Flask, prepared: Any, actor: str | None) -> None:
        """Database changes of an apply, in the apply's transaction (never commit here)."""

    def install(self, app: Flask, prepared: Any) -> None:
        """Swap the prepared, frozen definition in (this process only)."""

    def notices(self, prepared: Any) -> list[str]:
        """What applying changes besides the definitions (records moved ...), for the admin."""
        return []


@dataclass
class ActivationState:
    """Per app: the parts, and the version this process runs."""

    parts: list[ConfigPart]
    interval: float
    version: int = 0                      # 0: the files as found at start (no version applied)
    documents: dict[str, str] = field(default_factory=dict)
    loaded: bool = False
    checked: float = float("-inf")
    table_ok: bool = False
    problems: list[ConfigIssue] = field(default_factory=list)   # why the last apply was refused
    refused_at: datetime | None = None
    checking_roles: frozenset[str] | None = None   # roles of the documents being prepared
    lock: threading.RLock = field(default_factory=threading.RLock)


def state(app: Flask | None = None) -> ActivationState | None:
    return (app or current_app).extensions.get(EXT_KEY)


def display(app: Flask, key: str) -> str:
    """How a config file is named in messages (relative to the working folder if inside)."""
    path = Path(app.extensions["dovetail"].config.config_dir) / key
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def config_path(app: Flask, key: str) -> Path:
    return Path(app.extensions["dovetail"].config.config_dir) / key


def roles_for_check(app: Flask | None = None) -> frozenset[str]:
    """Role names a file may refer to: those of the documents being checked, else in force."""
    app = app or current_app
    st = state(app)
    if st is not None and st.checking_roles is not None:
        return st.checking_roles
    return frozenset(app.extensions["dovetail"].config.roles)


# ---------------------------------------------------------------------------
# Reading and preparing
# ---------------------------------------------------------------------------


def read_documents(app: Flask) -> dict[str, str]:
    """The text of every run-time config file on disk; unreadable files are located errors."""
    st = state(app)
    docs: dict[str, str] = {}
    issues: list[ConfigIssue] = []
    for part in st.parts if st else ():
        for key in part.files(app):
            try:
                docs[key] = read_text(config_path(app, key), display(app, key))
            except ConfigError as exc:
                issues.extend(exc.issues)
    if issues:
        raise ConfigError(issues)
    return docs


def digest(docs: Docs) -> str:
    return hashlib.sha256(json.dumps(dict(docs), sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _prepare_all(app: Flask, st: ActivationState, docs: Docs, *, applying: bool,
                 force: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    issues: list[ConfigIssue] = []
    try:
        for part in st.parts:
            try:
                out[part.name] = part.prepare(app, docs, applying=applying, force=force)
            except ConfigError as exc:
                issues.extend(exc.issues)
            if part.name == "roles" and out.get("roles") is not None:
                st.checking_roles = frozenset(out["roles"][1])
    finally:
        st.checking_roles = None
    if issues:
        raise ConfigError(issues)
    return out


def _install_all(app: Flask, st: ActivationState, prepared: Mapping[str, Any]) -> None:
    for part in st.parts:
        part.install(app, prepared.get(part.name))


# ---------------------------------------------------------------------------
# Apply and check (CLI, API, web)
# ---------------------------------------------------------------------------


@dataclass
class Applied:
    version: int
    digest: str
    unchanged: bool
    notices: list[str]


def check(app: Flask | None = None, docs: Docs | None = None) -> list[str]:
    """Check the files on disk as :func:`apply` would, changing nothing; the notices
    (records that would move ...) or a located :class:`ConfigError`."""
    app = app or current_app
    st = _require(app)
    try:
        docs = read_documents(app) if docs is None else docs
        prepared = _prepare_all(app, st, docs, applying=True, force=False)
        return [n for part in st.parts for n in part.notices(prepared.get(part.name))]
    finally:
        db.session.rollback()


def apply(app: Flask | None = None, *, actor: str | None, force: bool = False,
          docs: Docs | None = None, note: str = "") -> Applied:
    """Check every file and activate them as one new version (see the module docstring).

    ``docs``: the documents to apply instead of the files on disk (an API edit of one
    file applies the version in force with that file changed). ``force``: accept a
    custom-field change that leaves stored values invalid. Raises a located
    :class:`ConfigError` (nothing changed, the version in force stays) or :class:`Conflict`
    when another apply won the race.
    """
    app = app or current_app
    st = _require(app)
    with st.lock:
        db.session.commit()  # start from a clean transaction (SQLite: the apply holds the lock)
        try:
            docs = dict(read_documents(app) if docs is None else docs)
            prepared = _prepare_all(app, st, docs, applying=True, force=force)
        except ConfigError as exc:
            db.session.rollback()
            st.problems, st.refused_at = list(exc.issues), datetime.now(UTC)
            log.error("config apply refused; version %s stays:\n%s", st.version, exc)
            raise
        dig = digest(docs)
        latest = db.session.scalar(select(ConfigVersion).order_by(ConfigVersion.version.desc()).limit(1))
        notices = [n for part in st.parts for n in part.notices(prepared.get(part.name))]
        if latest is not None and latest.digest == dig and not force:
            # read before the rollback: reading an expired row after it reloads it and leaves a
            # read transaction open (on SQLite that holds a lock other writers wait for)
            same = latest.version
            db.session.rollback()
            _install_all(app, st, prepared)
            st.version, st.documents, st.loaded, st.problems = same, docs, True, []
            return Applied(same, dig, True, notices)
        for part in st.parts:
            part.write(app, prepared.get(part.name), actor)
        row = ConfigVersion(version=(latest.version if latest else 0) + 1, applied_by=actor, digest=dig,
                            documents=docs, note=note or None)
        db.session.add(row)
        version = row.version  # not after the commit: that would reload the row (see above)
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            raise Conflict("Another config apply finished at the same time; run it again.") from None
        _install_all(app, st, prepared)
        st.version, st.documents, st.loaded, st.problems, st.table_ok = version, docs, True, [], True
        log.info("config version %s applied by %s (%s)", version, actor or "-", dig[:12])
        return Applied(version, dig, False, notices)


def documents_in_force(app: Flask | None = None) -> dict[str, str]:
    """The documents of the version this process runs (the files at start before any apply)."""
    app = app or current_app
    st = _require(app)
    sync(app, force=True)
    return dict(st.documents) if st.loaded else read_documents(app)


def in_force(app: Flask | None = None) -> ConfigVersion | None:
    """The newest applied version row, or None."""
    app = app or current_app
    st = _require(app)
    if not _table_ready(st):
        return None
    return db.session.scalar(select(ConfigVersion).order_by(ConfigVersion.version.desc()).limit(1))


def _require(app: Flask) -> ActivationState:
    st = state(app)
    if st is None:
        raise RuntimeError("config activation is not installed on this app")
    return st


# ---------------------------------------------------------------------------
# Every worker: compare the version, load a new one
# ---------------------------------------------------------------------------


def _table_ready(st: ActivationState) -> bool:
    if not st.table_ok:
        try:
            st.table_ok = inspect(db.session.connection()).has_table(ConfigVersion.__tablename__)
        except Exception:  # noqa: BLE001 - no database yet (before 'dovetail init'): run the files
            st.table_ok = False
    return st.table_ok


def sync(app: Flask | None = None, *, force: bool = False) -> None:
    """Run the newest applied version (cheap: at most one indexed SELECT per interval).

    Before any version exists, the files as found at start are loaded once. Only reads (the
    version number, then the row's texts): the parts' ``prepare(applying=False)`` and
    ``install`` touch no table, so a read request's deferred SQLite transaction stays a read
    and never meets "database is locked"; only :func:`apply` writes.
    """
    app = app or current_app
    st = state(app)
    if st is None:
        return
    now = time.monotonic()
    if not force and st.loaded and now - st.checked < st.interval:
        return
    # Never wait for another thread's load: this caller keeps the version it has.
    if not st.lock.acquire(blocking=False):
        return
    try:
        st.checked = now
        idle = not db.session().in_transaction()
        latest = None
        if _table_ready(st):
            latest = db.session.scalar(
                select(ConfigVersion.version).order_by(ConfigVersion.version.desc()).limit(1))
        if latest is not None and latest != st.version:
            row = db.session.execute(select(ConfigVersion).where(ConfigVersion.version == latest)).scalar_one()
            _load(app, st, row.version, dict(row.documents or {}))
        elif not st.loaded:
            _load_files(app, st)
        if idle and db.session().in_transaction():
            db.session.commit()  # end the read transaction this check began
    finally:
        st.lock.release()


def _load(app: Flask, st: ActivationState, version: int, docs: dict[str, str]) -> None:
    try:
        prepared = _prepare_all(app, st, docs, applying=False, force=True)
    except ConfigError as exc:
        # Applied elsewhere but not loadable here (another plugin set?): keep what runs.
        st.version, st.loaded = version, True
        st.problems, st.refused_at = list(exc.issues), datetime.now(UTC)
        log.error("config version %s cannot be loaded in this process; the running config stays:\n%s",
                  version, exc)
        return
    _install_all(app, st, prepared)
    st.version, st.documents, st.loaded = version, docs, True
    log.info("config version %s in force", version)


def _load_files(app: Flask, st: ActivationState) -> None:
    st.loaded = True
    try:
        docs = read_documents(app)
        prepared = _prepare_all(app, st, docs, applying=False, force=True)
    except ConfigError as exc:
        st.problems, st.refused_at = list(exc.issues), datetime.now(UTC)
        log.error("config files refused at start; built-in defaults stay:\n%s", exc)
        return
    _install_all(app, st, prepared)
    st.documents = docs


def apply_initial(app: Flask | None = None, *, actor: str | None = "init") -> Applied | None:
    """Apply the files as the first version when none exists (``dovetail init``, ``db upgrade``,
    ``run``); None when a version exists already."""
    app = app or current_app
    st = _require(app)
    st.table_ok = False
    if not _table_ready(st) or in_force(app) is not None:
        db.session.rollback()
        return None
    return apply(app, actor=actor, note="initial version")


class MainPart(ConfigPart):
    """``dovetail.yaml``: checked on apply; ``security`` changes take effect at once, other
    sections (plugins, database, locale, settings) at the next start (said as a notice)."""

    name = "main"
    KEY = "dovetail.yaml"
    RUNTIME = ("security",)

    def __init__(self, app: Flask) -> None:
        cfg = app.extensions["dovetail"].config
        start = validate_doc(cfg.main_doc, MainSchema()) if cfg.main_doc else MainSchema().load({})
        self.start = start
        # values given in code (tests, create_app(config=...)) keep winning over the file
        self.overrides = {k: v for k, v in cfg.security.items() if start["security"].get(k) != v}

    def files(self, app: Flask) -> list[str]:
        return [self.KEY] if config_path(app, self.KEY).is_file() else []

    def prepare(self, app: Flask, docs: Docs, *, applying: bool, force: bool) -> Any:
        text = docs.get(self.KEY)
        if text is None:
            return None
        _doc, main = read_main(config_path(app, self.KEY), display(app, self.KEY), plugins_required=False,
                               text=text)
        return main

    def notices(self, prepared: Any) -> list[str]:
        if prepared is None:
            return []
        changed = sorted(k for k in prepared if k not in self.RUNTIME and prepared[k] != self.start.get(k))
        return [f"dovetail.yaml: '{k}' changed; it takes effect at the next start" for k in changed]

    def install(self, app: Flask, prepared: Any) -> None:
        if prepared is None:
            return
        dv = app.extensions["dovetail"]
        security = {**prepared["security"], **self.overrides}
        if security != dict(dv.config.security):
            dv.config = dataclasses.replace(dv.config, security=MappingProxyType(security))


def install(app: Flask) -> ActivationState:
    """Collect the parts (``register_config_parts``) and check the version per request."""
    dv = app.extensions["dovetail"]
    parts: list[ConfigPart] = []
    for found in dv.pm.hook.register_config_parts(app=app):
        for part in found or ():
            if not isinstance(part, ConfigPart):
                raise TypeError(f"register_config_parts returned {part!r}, not a ConfigPart")
            if any(p.name == part.name for p in parts):
                raise ValueError(f"two config parts are named '{part.name}'")
            parts.append(part)
    order = {"main": 0, "roles": 1}
    parts.sort(key=lambda p: order.get(p.name, 2))
    interval = float(app.config.get("DOVETAIL_CONFIG_CHECK_SECONDS", 0.0 if dv.config.testing else 1.0))
    st = app.extensions[EXT_KEY] = ActivationState(parts, interval)
    with app.app_context():  # the version in force; the files as found only when none was applied
        sync(app, force=True)
        db.session.remove()

    @app.before_request
    def _config_version() -> None:
        if request.endpoint != "static":
            sync()

    return st


__all__ = ["ConfigPart", "ActivationState", "Applied", "apply", "apply_initial", "check", "sync",
           "install", "state", "in_force", "documents_in_force", "read_documents", "roles_for_check"]
