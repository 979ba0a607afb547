"""The definitions in force: ``config/custom_fields.yaml`` as applied, compared with the
last accepted version, and edited in place by the API and the admin page.

The file is one part of the run-time config (:mod:`core.activation`): a hand edit takes
effect through ``dovetail config apply``; an API or page edit changes the file (comments
kept, one atomic write: :mod:`core.yamlwrite`) and applies the version in force with the
new file in the same step. A change that makes stored values invalid (type change,
narrower choices …) is refused, located at the field, unless forced; the version in
force then stays.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from flask import Flask, current_app, has_app_context
from ruamel.yaml.comments import CommentedMap
from sqlalchemy import inspect, select

from core import activation
from core.activation import ConfigPart, roles_for_check
from core.config import parse_yaml
from core.db import db
from core.errors import ConfigError, ConfigIssue, Conflict
from core.state import dovetail
from core.yamlwrite import edit_text, write_atomic
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
    st = State(Path(dovetail(app).config.config_dir) / FILE_NAME)
    app.extensions[EXT_KEY] = st
    return st


# ---------------------------------------------------------------------------
# Reading the file
# ---------------------------------------------------------------------------


def _entities() -> dict[str, Any]:
    reg = dovetail().registry
    return {name: ent for name, (ent, _owner) in reg.custom_field_entities.items()}


def _inert_entities() -> dict[str, str]:
    """Entities of installed but disabled plugins (their fields stay in the file, inactive)."""
    dv = dovetail()
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
    return sorted(roles_for_check())


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
# The config part (core.activation)
# ---------------------------------------------------------------------------


@dataclass
class Prepared:
    loaded: Loaded
    defs: Defs
    forced: bool
    found: list[Change]


def refresh(*, write: bool = False, app: Flask | None = None) -> State:
    """The state in force (the applied config version is compared first; files are not read).

    ``write`` is accepted for old callers and means nothing: a changed file takes effect
    through ``dovetail config apply`` (or an edit through the API or the admin page).
    """
    activation.sync(app)
    return state(app)


def _refusal(text: str, display: str, bad: list[Change]) -> ConfigError:
    """Each field whose stored values no longer fit, located at its key."""
    doc = parse_yaml(text, display)
    return ConfigError([doc.issue(("fields", c.entity, c.key), c.describe() + "; refused (fix the values, "
                                  "or apply with --force)", key=True) for c in bad])


def prepare(docs: Mapping[str, str], *, applying: bool, force: bool) -> Prepared:
    """Check the file's text; when ``applying``, compare with the stored values too."""
    st = state()
    app = current_app._get_current_object()
    display = activation.display(app, FILE_NAME)
    text = docs.get(FILE_NAME, "fields: {}\n")
    loaded = parse_text(text, display)
    if not applying:  # an applied version: its accepted definitions include the removed ones
        base = _defs_of(accepted(st))
        return Prepared(loaded, with_removed(base if base is not None else st.defs, loaded.defs), False, [])
    old = st.defs or _defs_of(accepted(st)) or {}
    found = changes(old, loaded.defs) if old else []
    bad = blocking(found)
    if bad and not force:
        raise _refusal(text, display, bad)
    return Prepared(loaded, with_removed(old, loaded.defs), bool(bad), found)


def write_version(prepared: Prepared, actor: str | None, note: str = "") -> None:
    st = state()
    version = accepted(st)
    if version is None or version.sha256 != prepared.loaded.sha256 or prepared.forced:
        prepared.loaded.defs = prepared.defs
        record_accepted(st, prepared.loaded, forced=prepared.forced, actor=actor, note=note or "config apply")


def install_version(prepared: Prepared) -> None:
    st = state()
    with st.lock:
        st.defs, st.sha256, st.problems = prepared.defs, prepared.loaded.sha256, []
        st.warnings = [str(w) for w in prepared.loaded.warnings]


def config_part() -> Any:
    """``custom_fields.yaml`` as a part of the run-time config (:mod:`core.activation`)."""
    class CustomFieldsPart(ConfigPart):
        name = "customfields"

        def files(self, app: Flask) -> list[str]:
            return [FILE_NAME] if state(app).path.is_file() else []

        def prepare(self, app: Flask, docs: Any, *, applying: bool, force: bool) -> Prepared:
            return prepare(docs, applying=applying, force=force)

        def write(self, app: Flask, prepared: Prepared, actor: str | None) -> None:
            write_version(prepared, actor)

        def install(self, app: Flask, prepared: Prepared) -> None:
            install_version(prepared)

        def notices(self, prepared: Prepared) -> list[str]:
            return [f"{FILE_NAME}: {c.describe()}; accepted (forced)" for c in prepared.found if c.misfits]

    return CustomFieldsPart()


# ---------------------------------------------------------------------------
# Writing the file (API and web)
# ---------------------------------------------------------------------------


@contextmanager
def _file_lock(st: State) -> Iterator[None]:
    """One writer at a time, across threads (RLock) and worker processes (flock on a lock
    file in the instance folder, so the config folder stays clean)."""
    with st.lock:
        try:
            import fcntl  # noqa: PLC0415 - POSIX-only module, loaded where the lock is taken
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
    """Apply ``mutate(data)`` to the file (comments kept), validate, check stored values,
    write the file and apply the config version in force with this file changed.

    The file must be valid before the edit (a broken file is fixed by hand first).
    Raises :class:`Conflict` naming the counts when values no longer fit and not ``force``.
    """
    st = state()
    db.session.commit()  # wait for the lock holding no database transaction (SQLite would deadlock)
    with _file_lock(st):
        try:
            text = st.path.read_text(encoding="utf-8") if st.path.exists() else "fields: {}\n"
            current = parse_text(text, FILE_NAME)
        except (OSError, UnicodeDecodeError) as exc:
            raise Conflict(f"{FILE_NAME} cannot be read: {exc}") from None
        except ConfigError as exc:
            raise Conflict(f"{FILE_NAME} has errors; fix them first: {exc.message}") from None

        def change(data: Any) -> None:
            if not data.get("fields"):
                data["fields"] = CommentedMap()  # block style, not 'fields: {}'
            mutate(data)

        new_text = edit_text(text, change)
        loaded = parse_text(new_text, FILE_NAME)  # raises ConfigError on a bad result
        base = st.defs or current.defs
        found = changes(base, loaded.defs)
        bad = blocking(found)
        if bad and not force:
            raise Conflict("; ".join(c.describe() for c in bad) + ". Add ?force=true to change it anyway.",
                           fields={"changes": [c.to_json() for c in bad]})
        docs = activation.documents_in_force()
        docs[FILE_NAME] = new_text
        write_atomic(st.path, new_text)
        activation.apply(actor=actor, force=bool(bad), docs=docs, note=note)
        loaded.defs = st.defs
        return loaded, found


def active() -> bool:
    return has_app_context() and EXT_KEY in current_app.extensions
