"""The workflows in force for one app, loaded from ``config/workflows/*.yaml`` and reloaded on change.

A file takes effect only after it passes the check; a file that fails it is refused,
logged and shown at ``GET /api/v1/workflows`` while the running version stays. A file
whose ``state_map`` moves records is applied at a clean point (a reload command, the
reload API, or the start of a request), one audit entry and one history row per record.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Flask, current_app
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from core import audit
from core.db import db
from core.errors import ConfigIssue
from core.models import TransitionLog
from core.statemachine import Machine, machine_from_dict
from plugins.workflows.checker import Known, Result, check_text

log = logging.getLogger("dovetail.plugins.workflows")
EXT_KEY = "dovetail_workflows"


@dataclass
class FileState:
    """What happened to one file the last time it was looked at."""

    name: str
    path: Path
    display: str
    stamp: tuple[int, int] | None = None
    entity: str | None = None
    status: str = "new"          # active, refused, skipped, pending, removed
    issues: list[ConfigIssue] = field(default_factory=list)
    notice: str | None = None
    version: str = ""
    checked_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "file": self.display, "entity": self.entity, "status": self.status,
                "version": self.version or None, "notice": self.notice,
                "checked_at": self.checked_at.isoformat() if self.checked_at else None,
                "issues": [issue_dict(i) for i in self.issues]}


def issue_dict(i: ConfigIssue) -> dict[str, Any]:
    return {"file": i.file, "line": i.line, "column": i.column, "severity": i.severity,
            "message": i.message, "text": str(i)}


def known_from_app(app: Flask | None = None) -> Known:
    """Entities, actions, permissions and roles of the running app, for the check."""
    dv = (app or current_app).extensions["dovetail"]
    reg = dv.registry
    enabled = set(reg.enabled_names)
    disabled_plugins = {n for n, av in dv.available.items() if n not in enabled and av.error is None}
    disabled_entities: dict[str, str] = {}
    for name in sorted(disabled_plugins):
        fn = getattr(dv.available[name].module, "register_workflow_entities", None)
        if fn is None:
            continue
        try:
            for ent in fn() or ():
                if ent.name not in reg.workflow_entities:
                    disabled_entities[ent.name] = name
        except Exception as exc:  # noqa: BLE001 - a disabled plugin must not break the check
            log.warning("cannot list workflow entities of disabled plugin %s: %s", name, exc)
    return Known(entities={k: v[0] for k, v in reg.workflow_entities.items()},
                 disabled_entities=disabled_entities, actions=dict(reg.actions),
                 disabled_plugins=frozenset(disabled_plugins), permissions=frozenset(reg.permissions),
                 roles=frozenset(dv.config.roles))


def count_outside(ent: Any, state_field: str, states: set[str]) -> dict[str, int]:
    """How many records of ``ent`` sit in a state not in ``states``, per state."""
    col = getattr(ent.model, state_field)
    stmt = select(col, func.count()).where(col.not_in(sorted(states))).group_by(col)
    try:
        with db.session.begin_nested():
            rows = db.session.execute(stmt).all()
    except SQLAlchemyError as exc:  # tables not created yet (before 'dovetail init'): no records
        log.debug("cannot count %s records: %s", ent.name, exc)
        return {}
    return {str(state): int(n) for state, n in rows if state is not None}


class WorkflowStore:
    """Per-app state: loaded machines by entity and the status of every file."""

    def __init__(self, app: Flask) -> None:
        cfg = app.extensions["dovetail"].config
        self.dir = Path(cfg.config_dir) / "workflows"
        self.files: dict[str, FileState] = {}
        self.machines: dict[str, Machine] = {}
        self.sources: dict[str, str] = {}      # entity -> file name giving its machine
        self.lock = threading.RLock()
        self.loaded = False

    # -- scanning ------------------------------------------------------------
    def _scan(self) -> dict[str, tuple[Path, tuple[int, int]]]:
        out: dict[str, tuple[Path, tuple[int, int]]] = {}
        if not self.dir.is_dir():
            return out
        for path in sorted(self.dir.iterdir()):
            if path.suffix in (".yaml", ".yml") and path.is_file():
                st = path.stat()
                out[path.stem] = (path, (st.st_mtime_ns, st.st_size))
        return out

    def display(self, path: Path) -> str:
        try:
            return str(path.resolve().relative_to(Path.cwd().resolve()))
        except ValueError:
            return str(path)

    def changed(self) -> bool:
        scan = self._scan()
        if set(scan) != {n for n, f in self.files.items() if f.status != "removed"}:
            return True
        return any(self.files[n].stamp != stamp for n, (_p, stamp) in scan.items())

    def refresh(self, *, apply: bool, force: bool = False) -> list[FileState]:
        """Look at every file; check and install the changed ones.

        ``apply``: state_map moves may be written (and committed) now; otherwise a file that
        needs them waits as ``pending``. ``force`` re-checks unchanged files too.
        """
        with self.lock:
            if self.loaded and not force and not self.changed():
                return list(self.files.values())
            self.loaded = True
            scan = self._scan()
            known = known_from_app()
            for name in [n for n in self.files if n not in scan]:
                self._removed(name, apply=apply)
            for name, (path, stamp) in scan.items():
                state = self.files.get(name)
                if state is not None and state.stamp == stamp and state.status != "pending" and not force:
                    continue
                self._load(name, path, stamp, known, apply=apply)
            return list(self.files.values())

    def _taken(self, name: str) -> dict[str, str]:
        return {ent: self.files[src].display for ent, src in self.sources.items() if src != name}

    def _load(self, name: str, path: Path, stamp: tuple[int, int], known: Known, *, apply: bool) -> None:
        display = self.display(path)
        state = self.files.setdefault(name, FileState(name, path, display))
        state.path, state.display, state.checked_at = path, display, datetime.now(UTC)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            state.stamp, state.status = stamp, "refused"
            state.issues = [ConfigIssue(display, 1, 1, f"cannot read: {exc}")]
            log.error("workflow file refused: %s", state.issues[0])
            return
        result = check_text(text, display, known, counter=count_outside, taken=self._taken(name),
                            in_force=self.in_force)
        state.entity, state.issues, state.notice = result.entity, result.issues, None
        if result.skipped:
            state.stamp, state.status, state.notice = stamp, "skipped", result.skipped
            log.info("%s", result.skipped)
            self._drop_source(name)
            return
        if not result.ok:
            state.stamp, state.status = stamp, "refused"
            running = self.machines.get(result.entity or "")
            keep = f"version {running.version} from {running.source} stays" if running else \
                "the built-in workflow stays"
            log.error("workflow file %s refused (%s):\n%s", display, keep,
                      "\n".join(str(i) for i in result.errors))
            return
        if result.moves and not apply:
            state.status = "pending"
            state.notice = "waiting to move records out of removed states (run 'dovetail workflow reload')"
            return
        if result.moves:
            self._apply_moves(result)
        state.stamp, state.status, state.version = stamp, "active", result.machine.version
        old = self.sources.get(result.entity)
        if old and old != name and old in self.files:
            self.files[old].status = "refused"
        self.machines[result.entity] = result.machine
        self.sources[result.entity] = name
        log.info("workflow %s for '%s' in force (version %s)", display, result.entity, result.machine.version)

    def _drop_source(self, name: str) -> None:
        for ent in [e for e, src in self.sources.items() if src == name]:
            del self.sources[ent]
            self.machines.pop(ent, None)

    def _removed(self, name: str, *, apply: bool) -> None:
        state = self.files[name]
        ent_name = state.entity
        if ent_name and self.sources.get(ent_name) == name:
            dv = current_app.extensions["dovetail"]
            pair = dv.registry.workflow_entities.get(ent_name)
            default = pair[0].default_workflow if pair else None
            if pair and default:
                stranded = count_outside(pair[0], pair[0].state_field, set(default.get("states") or {}))
                if stranded:
                    what = ", ".join(f"{n} in '{s}'" for s, n in sorted(stranded.items()))
                    state.status = "refused"
                    state.issues = [ConfigIssue(state.display, 1, 1, f"file removed, but {what} would have "
                                                "no state in the built-in workflow; the file's version stays "
                                                "(hint: restore the file with a state_map)")]
                    log.error("%s", state.issues[0])
                    return
        self._drop_source(name)
        state.status, state.stamp, state.issues = "removed", None, []
        state.notice = "file removed; the built-in workflow is in force"

    def _apply_moves(self, result: Result) -> None:
        """Move records out of removed states (one audit entry and one history row each), commit."""
        ent = known_from_app().entities[result.entity]
        col = getattr(ent.model, ent.state_field)
        with audit.acting_as(None, "workflows"):
            for old, (new, _count) in sorted(result.moves.items()):
                for rec in db.session.scalars(select(ent.model).where(col == old)):
                    setattr(rec, ent.state_field, new)
                    db.session.add(TransitionLog(entity=ent.name, record_id=rec.id, transition="state_map",
                                                 from_state=old, to_state=new, actor_id=None,
                                                 comment=f"state '{old}' removed by {result.file}"))
                    audit.record(db.session, "workflow_state_map", ent.name, rec.id,
                                 before={ent.state_field: old}, after={ent.state_field: new},
                                 note=f"{result.file} (version {result.machine.version}) removes state '{old}'")
            db.session.commit()

    # -- lookups ---------------------------------------------------------------
    def in_force(self, entity: str) -> Machine | None:
        """The version running now (file or built-in), without looking at the files again."""
        if entity in self.machines:
            return self.machines[entity]
        pair = current_app.extensions["dovetail"].registry.workflow_entities.get(entity)
        return default_machine(pair[0]) if pair else None

    def machine(self, entity: str) -> Machine | None:
        self.refresh(apply=False)
        return self.machines.get(entity)

    def by_name(self, name: str) -> tuple[str, Machine] | None:
        """A workflow by file name or entity name: (entity, machine in force)."""
        from core.statemachine import machine_for

        self.refresh(apply=False)
        state = self.files.get(name)
        entity = state.entity if state and state.entity else name
        reg = current_app.extensions["dovetail"].registry
        if entity not in reg.workflow_entities:
            return None
        try:
            return entity, machine_for(entity)
        except Exception:  # noqa: BLE001 - NotFound: the entity has no workflow at all
            return None


def store(app: Flask | None = None) -> WorkflowStore:
    app = app or current_app
    st = app.extensions.get(EXT_KEY)
    if st is None:
        st = app.extensions[EXT_KEY] = WorkflowStore(app)
    return st


def default_machine(entity: Any) -> Machine | None:
    if entity.default_workflow is None:
        return None
    return machine_from_dict(entity.default_workflow, name=entity.name)
