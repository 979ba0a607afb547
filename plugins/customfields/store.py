"""The definitions in force: loaded from ``config/custom_fields.yaml``, reloaded when the
file changes, compared with the last accepted version, and written back atomically.

One source of truth: the YAML file. The API edits the file (temp file + rename, the
file's leading comment block kept) and the running app reloads it; hand edits are picked
up on the next request (an ``os.stat`` per request). A change that makes stored values
invalid (type change, narrower choices …) is refused unless forced; the version in force
then stays and the refusal is reported (``dovetail fields check``, the admin page, the
``/api/v1/custom-fields/check`` endpoint).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml
from flask import Flask, current_app, has_app_context
from sqlalchemy import inspect, select

from core.config import parse_yaml
from core.db import db
from core.errors import ConfigError, ConfigIssue, Conflict
from plugins.customfields.definitions import Defs, FieldDef, definitions_from_doc, fits
from plugins.customfields.models import AcceptedVersion

log = logging.getLogger("dovetail.plugins.customfields")
FILE_NAME = "custom_fields.yaml"
EXT_KEY = "customfields"


@dataclass
class Change:
    """A field whose stored values may no longer fit; ``misfits`` counts those."""

    entity: str
    key: str
    before: dict[str, Any]
    after: dict[str, Any]
    misfits: int
    checked: int

    def describe(self) -> str:
        what = ", ".join(f"{k} {self.before[k]!r} → {self.after[k]!r}" for k in self.after
                         if self.before.get(k) != self.after.get(k))
        return (f"{self.entity}.{self.key}: {what}: {self.misfits} of {self.checked} stored "
                f"value(s) no longer fit")

    def to_json(self) -> dict[str, Any]:
        return {"entity": self.entity, "key": self.key, "before": self.before, "after": self.after,
                "misfits": self.misfits, "checked": self.checked}


@dataclass
class Loaded:
    defs: Defs
    sha256: str
    data: dict[str, Any]
    header: str
    warnings: list[ConfigIssue]


@dataclass
class State:
    """Per-app state (``app.extensions['customfields']``)."""

    path: Path
    defs: Defs = field(default_factory=dict)
    seen: tuple[int, int] | None = None
    sha256: str | None = None
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)
    table_ok: bool = False

    # -- what is in force --------------------------------------------------

    def fields_of(self, entity: str, *, include_hidden: bool = False) -> list[FieldDef]:
        return [fd for (ent, _k), fd in self.defs.items()
                if ent == entity and (include_hidden or not fd.hidden)]

    def get(self, entity: str, key: str) -> FieldDef | None:
        return self.defs.get((entity, key))


def state(app: Flask | None = None) -> State:
    app = app or current_app
    return app.extensions[EXT_KEY]


def install(app: Flask) -> State:
    st = State(Path(app.extensions["dovetail"].config.config_dir) / FILE_NAME)
    app.extensions[EXT_KEY] = st
    return st


# ---------------------------------------------------------------------------
# Reading the file
# ---------------------------------------------------------------------------


def _entities() -> dict[str, Any]:
    reg = current_app.extensions["dovetail"].registry
    return {name: ent for name, (ent, _owner) in reg.custom_field_entities.items()}


def _inert_entities() -> dict[str, str]:
    """Entities of installed but disabled plugins (their fields stay in the file, inactive)."""
    dv = current_app.extensions["dovetail"]
    out: dict[str, str] = {}
    for name, av in dv.available.items():
        if name in dv.registry.enabled_names or av.module is None:
            continue
        fn = getattr(av.module, "register_custom_field_entities", None)
        if fn is None:
            continue
        try:
            for ent in fn() or ():
                out[getattr(ent, "name", "")] = name
        except Exception:  # noqa: BLE001 - a disabled plugin's failure only loses the hint
            log.debug("could not ask disabled plugin %s for its entities", name, exc_info=True)
    return out


def _roles() -> list[str]:
    return list(current_app.extensions["dovetail"].config.roles)


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _header_of(text: str) -> str:
    """The leading block of comments and blank lines, kept when the API rewrites the file."""
    lines = []
    for line in text.splitlines(keepends=True):
        if line.strip() == "" or line.lstrip().startswith("#"):
            lines.append(line)
        else:
            break
    return "".join(lines)


def parse_text(text: str, display: str) -> Loaded:
    """Parse and validate file text against the enabled entities and roles (ConfigError)."""
    doc = parse_yaml(text, display)
    defs, warnings = definitions_from_doc(doc, _entities(), _roles(), _inert_entities())
    data = doc.data if isinstance(doc.data, dict) else {}
    data.setdefault("fields", {})
    if data["fields"] is None:
        data["fields"] = {}
    return Loaded(defs, hashlib.sha256(text.encode("utf-8")).hexdigest(), data, _header_of(text),
                  warnings)


def read_file(path: Path) -> Loaded:
    """The file as it is now; a missing file means no custom fields (an empty one is an error)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = "fields: {}\n"
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([ConfigIssue(_display(path), 1, 1, f"cannot read: {exc}")]) from None
    return parse_text(text, _display(path))


def _stat(path: Path) -> tuple[int, int]:
    try:
        s = path.stat()
        return (s.st_mtime_ns, s.st_size)
    except FileNotFoundError:
        return (0, -1)


# ---------------------------------------------------------------------------
# The accepted version (database)
# ---------------------------------------------------------------------------


def _table_ready(st: State) -> bool:
    if not st.table_ok:
        try:
            st.table_ok = inspect(db.session.connection()).has_table(AcceptedVersion.__tablename__)
        except Exception:  # noqa: BLE001 - no database yet (before 'dovetail init'): run from the file
            st.table_ok = False
    return st.table_ok


def accepted(st: State) -> AcceptedVersion | None:
    if not _table_ready(st):
        return None
    return db.session.scalar(select(AcceptedVersion).order_by(AcceptedVersion.id.desc()).limit(1))


def _defs_of(version: AcceptedVersion | None) -> Defs | None:
    if version is None:
        return None
    out: Defs = {}
    for d in version.definitions or ():
        fd = FieldDef.from_json(d)
        out[(fd.entity, fd.key)] = fd
    return out


def record_accepted(st: State, loaded: Loaded, *, forced: bool, actor: str | None, note: str = "") -> None:
    """Add the accepted version (the caller commits)."""
    if not _table_ready(st):
        return
    db.session.add(AcceptedVersion(sha256=loaded.sha256, forced=forced, accepted_by=actor, note=note or None,
                                   definitions=[fd.to_json() for fd in loaded.defs.values()]))


# ---------------------------------------------------------------------------
# Comparing versions
# ---------------------------------------------------------------------------


def changes(old: Defs, new: Defs) -> list[Change]:
    """Fields whose value shape changed, each with the count of stored values that no longer fit."""
    out: list[Change] = []
    ents = _entities()
    for (entity, key), fd in new.items():
        before = old.get((entity, key))
        if before is None or fd.hidden or before.shape() == fd.shape():
            continue
        ent = ents.get(entity)
        misfits = checked = 0
        if ent is not None:
            col = getattr(ent.model, ent.column)
            for values in db.session.scalars(select(col).where(col.is_not(None))).yield_per(1000):
                if not isinstance(values, Mapping) or values.get(key) is None:
                    continue
                checked += 1
                if not fits(fd, values[key]):
                    misfits += 1
        out.append(Change(entity, key, before.shape(), fd.shape(), misfits, checked))
    return out


def with_removed(old: Defs | None, new: Defs) -> Defs:
    """``new`` plus the fields of ``old`` it no longer lists, as hidden: a removed field keeps
    its definition in the version in force, so adding it back with another type is compared
    with the values it left behind."""
    out = dict(new)
    for k, fd in (old or {}).items():
        if k not in out:
            out[k] = replace(fd, hidden=True)
    return out


def blocking(found: Iterable[Change]) -> list[Change]:
    return [c for c in found if c.misfits]


# ---------------------------------------------------------------------------
# Reload
# ---------------------------------------------------------------------------


def refresh(*, write: bool = False, app: Flask | None = None) -> State:
    """Reload the file if it changed since last seen (cheap when it did not).

    ``write``: record a newly accepted version in the database and commit (request
    start, CLI); elsewhere the change is taken in memory and recorded on the next request.
    """
    st = state(app)
    now = _stat(st.path)
    if now == st.seen:
        return st
    # Never wait for another thread's reload or edit: this caller may hold a database
    # transaction (on SQLite even a read holds the write lock) that the other thread needs.
    # It keeps the version in force for this call; the next call sees the new one.
    if not st.lock.acquire(blocking=False):
        return st
    try:
        if now == st.seen:
            return st
        idle = not db.session().in_transaction()
        _reload(st, now, write=write)
        if write and idle and db.session().in_transaction():
            db.session.commit()  # end the read transaction this reload began (request start)
    finally:
        st.lock.release()
    return st


def _reload(st: State, now: tuple[int, int], *, write: bool) -> None:
    version = accepted(st)
    base = _defs_of(version)
    if not st.defs and base is not None:
        st.defs = base  # what was in force before this process started
    try:
        loaded = read_file(st.path)
    except ConfigError as exc:
        st.seen = now
        st.problems = [str(i) for i in exc.issues]
        log.error("custom fields file refused; the version in force stays:\n%s", exc)
        if not st.defs and base is None:
            st.defs = {}
        return
    st.warnings = [str(w) for w in loaded.warnings]
    if version is not None and version.sha256 == loaded.sha256:
        st.defs, st.sha256, st.seen, st.problems = with_removed(base, loaded.defs), loaded.sha256, now, []
        return
    old = base if base is not None else st.defs
    found = blocking(changes(old, loaded.defs)) if old else []
    st.seen = now
    if found:
        st.problems = [c.describe() + "; refused (run 'dovetail fields check --force' to accept)"
                       for c in found]
        log.error("custom fields change refused:\n%s", "\n".join(st.problems))
        return
    loaded.defs = with_removed(old, loaded.defs)
    st.defs, st.sha256, st.problems = loaded.defs, loaded.sha256, []
    if write and _table_ready(st):
        record_accepted(st, loaded, forced=False, actor=None, note="reloaded from file")
        db.session.commit()


def force_accept(actor: str | None, *, forced: bool, note: str = "") -> tuple[Loaded, list[Change]]:
    """Accept the file as it is now (CLI ``fields check [--force]``); raise when refused."""
    st = state()
    with st.lock:
        loaded = read_file(st.path)
        version = accepted(st)
        old = _defs_of(version) if version is not None else st.defs
        found = changes(old or {}, loaded.defs)
        bad = blocking(found)
        loaded.defs = with_removed(old, loaded.defs)
        if bad and not forced:
            raise Conflict("; ".join(c.describe() for c in bad) + ". Refused: fix the values or force.",
                           fields={"changes": [c.to_json() for c in bad]})
        if version is None or version.sha256 != loaded.sha256 or bad:
            record_accepted(st, loaded, forced=bool(bad), actor=actor, note=note)
            db.session.commit()
            if st.path.exists():
                os.utime(st.path)  # running workers that refused this file look at it again
        st.defs, st.sha256, st.problems, st.seen = loaded.defs, loaded.sha256, [], _stat(st.path)
        st.warnings = [str(w) for w in loaded.warnings]
        return loaded, found


# ---------------------------------------------------------------------------
# Writing the file (API and web)
# ---------------------------------------------------------------------------


def render(header: str, data: Mapping[str, Any]) -> str:
    body = yaml.safe_dump(dict(data), allow_unicode=True, sort_keys=False, default_flow_style=False,
                          width=100)
    if header and not header.endswith("\n"):
        header += "\n"
    return header + body


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temp file and a rename (never half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".custom_fields.", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


@contextmanager
def _file_lock(st: State) -> Iterator[None]:
    """One writer at a time, across threads (RLock) and worker processes (flock on a lock
    file in the instance folder, so the config folder stays clean)."""
    with st.lock:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: one process per instance there
            yield
            return
        folder = Path(current_app.instance_path)
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "custom_fields.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


def edit(mutate: Any, *, force: bool, actor: str | None, note: str) -> tuple[Loaded, list[Change]]:
    """Apply ``mutate(data)`` to the file's data, validate, check stored values, write, reload.

    The file must be valid before the edit (a broken file is fixed by hand first).
    Raises :class:`Conflict` naming the counts when values no longer fit and not ``force``.
    """
    st = state()
    db.session.commit()  # wait for the lock holding no database transaction (SQLite would deadlock)
    with _file_lock(st):
        try:
            current = read_file(st.path)
        except ConfigError as exc:
            raise Conflict(f"{FILE_NAME} has errors; fix them first: {exc.message}") from None
        if st.defs and st.sha256 != current.sha256 and st.problems:
            raise Conflict(f"{FILE_NAME} holds a change that was refused; run 'dovetail fields check' first: "
                           + "; ".join(st.problems))
        data = yaml.safe_load(yaml.safe_dump(current.data))  # deep copy of plain data
        data.setdefault("fields", {})
        mutate(data)
        text = render(current.header, data)
        loaded = parse_text(text, FILE_NAME)  # raises ConfigError on a bad result
        found = changes(st.defs or current.defs, loaded.defs)
        bad = blocking(found)
        loaded.defs = with_removed(st.defs or current.defs, loaded.defs)
        if bad and not force:
            raise Conflict("; ".join(c.describe() for c in bad) + ". Add ?force=true to change it anyway.",
                           fields={"changes": [c.to_json() for c in bad]})
        write_atomic(st.path, text)
        record_accepted(st, loaded, forced=bool(bad), actor=actor, note=note)
        st.defs, st.sha256, st.problems, st.seen = loaded.defs, loaded.sha256, [], _stat(st.path)
        st.warnings = [str(w) for w in loaded.warnings]
        return loaded, found


def active() -> bool:
    return has_app_context() and EXT_KEY in current_app.extensions
