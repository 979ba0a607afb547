"""The workflows in force for one app: the ``workflows/*.yaml`` of the applied config version.

Workflow files are one part of the run-time config (:mod:`core.activation`): ``dovetail
config apply`` checks every file (a file with errors refuses the whole apply, located
errors, the version in force stays), moves records out of states a file removes
(``state_map``: one audit entry and one history row per record) in the apply's
transaction, and every worker swaps in the new machines when it sees the new version.
Editing a file changes nothing until the config is applied.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Flask, current_app
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from core import activation, audit
from core.activation import ConfigPart
from core.db import db
from core.errors import ConfigError, ConfigIssue
from core.models import TransitionLog
from core.state import dovetail
from core.statemachine import Machine, machine_for, machine_from_dict
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
    dv = dovetail(app)
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


@dataclass
class Prepared:
    """Checked workflow documents, ready to install (and their record moves to write)."""

    files: dict[str, FileState] = field(default_factory=dict)
    machines: dict[str, Machine] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    moves: list[Result] = field(default_factory=list)


class WorkflowStore:
    """Per-app state: loaded machines by entity and the status of every file."""

    def __init__(self, app: Flask) -> None:
        cfg = dovetail(app).config
        self.dir = Path(cfg.config_dir) / "workflows"
        self.files: dict[str, FileState] = {}
        self.machines: dict[str, Machine] = {}
        self.sources: dict[str, str] = {}      # entity -> file name giving its machine
        self.lock = threading.RLock()
        self.loaded = False
        self.checked: dict[str, FileState] = {}   # the files as the last apply or check saw them
        self.refused: dict[str, FileState] = {}   # refused by the last apply (shown until one succeeds)

    def display(self, path: Path) -> str:
        try:
            return str(path.resolve().relative_to(Path.cwd().resolve()))
        except ValueError:
            return str(path)

    def refresh(self, *, apply: bool = False, force: bool = False) -> list[FileState]:
        """The files of the version in force (the version number is compared first).

        Files are never read here: a changed file takes effect through ``dovetail config
        apply``. ``apply``/``force`` are accepted for old callers and mean nothing.
        """
        activation.sync()
        return list(self.files.values())

    def reload(self, actor: str | None) -> tuple[bool, list[FileState], list[ConfigIssue]]:
        """``workflow reload``: apply the config (:func:`core.activation.apply`), as
        ``dovetail config apply`` does. Returns (applied, file states, located errors); when
        refused, nothing changed, the version in force stays and the files show why."""
        self.checked = {}  # a file that cannot be read refuses the apply before any check
        try:
            activation.apply(current_app, actor=actor, note="workflow reload")
        except ConfigError as exc:
            with self.lock:
                self.refused = {n: f for n, f in self.checked.items() if f.status == "refused"}
            return False, list(self.checked.values()), list(exc.issues)
        return True, list(self.files.values()), []

    # -- the config part (core.activation) ------------------------------------
    def prepare(self, docs: Any, *, applying: bool) -> Prepared:
        """Check every workflow document; located errors of all files in one ConfigError."""
        app = current_app._get_current_object()
        known = dataclasses.replace(known_from_app(), roles=activation.roles_for_check(app))
        out = Prepared()
        taken: dict[str, str] = {}
        issues: list[ConfigIssue] = []
        now = datetime.now(UTC)
        for key in sorted(k for k in docs if k.startswith("workflows/")):
            path = activation.config_path(app, key)
            display = activation.display(app, key)
            name = path.stem
            result = check_text(docs[key], display, known, counter=count_outside if applying else None,
                                taken=taken, in_force=self.in_force)
            fs = FileState(name, path, display, entity=result.entity, issues=result.issues, checked_at=now)
            out.files[name] = fs
            if result.skipped:
                fs.status, fs.notice = "skipped", result.skipped
                continue
            if not result.ok:
                fs.status = "refused"
                issues.extend(result.errors)
                continue
            fs.status, fs.version = "active", result.machine.version
            out.machines[result.entity] = result.machine
            out.sources[result.entity] = name
            taken[result.entity] = display
            if result.moves and applying:
                out.moves.append(result)
                fs.notice = "; ".join(f"moves {n} record(s) from '{old}' to '{new}'"
                                      for old, (new, n) in sorted(result.moves.items()))
        if applying:
            issues.extend(self._stranded_by_removal(out, now))
            self.checked = dict(out.files)
        if issues:
            raise ConfigError(issues)
        return out

    def _stranded_by_removal(self, out: Prepared, now: datetime) -> list[ConfigIssue]:
        """A file removed while records sit in states the built-in workflow lacks is refused."""
        issues: list[ConfigIssue] = []
        reg = current_app.extensions["dovetail"].registry
        for ent_name, name in self.sources.items():
            if ent_name in out.sources:
                continue
            pair = reg.workflow_entities.get(ent_name)
            default = pair[0].default_workflow if pair else None
            if not pair or not default:
                continue
            stranded = count_outside(pair[0], pair[0].state_field, set(default.get("states") or {}))
            if stranded:
                what = ", ".join(f"{n} in '{s}'" for s, n in sorted(stranded.items()))
                fs = self.files.get(name)
                shown = fs.display if fs else f"workflows/{name}.yaml"
                issue = ConfigIssue(shown, 1, 1, f"file removed, but {what} would have no state in "
                                    "the built-in workflow (hint: restore the file with a state_map)")
                issues.append(issue)
                out.files[name] = FileState(name, fs.path if fs else self.dir / f"{name}.yaml", shown,
                                            entity=ent_name, status="refused", issues=[issue], checked_at=now)
        return issues

    def write(self, prepared: Prepared) -> None:
        for result in prepared.moves:
            self._apply_moves(result)

    def install(self, prepared: Prepared) -> None:
        with self.lock:
            files = dict(prepared.files)
            for ent_name, name in self.sources.items():  # files removed: the built-in workflow again
                if ent_name not in prepared.sources and name not in files and name in self.files:
                    old = self.files[name]
                    files[name] = FileState(name, old.path, old.display, entity=ent_name, status="removed",
                                            notice="file removed; the built-in workflow is in force",
                                            checked_at=datetime.now(UTC))
            self.files, self.machines, self.sources = files, prepared.machines, prepared.sources
            self.refused, self.loaded = {}, True
        for ent, mach in prepared.machines.items():
            log.info("workflow %s for '%s' in force (version %s)", prepared.files[prepared.sources[ent]].display,
                     ent, mach.version)

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

    # -- lookups ---------------------------------------------------------------
    def in_force(self, entity: str) -> Machine | None:
        """The version running now (file or built-in), without looking at the files again."""
        if entity in self.machines:
            return self.machines[entity]
        pair = dovetail().registry.workflow_entities.get(entity)
        return default_machine(pair[0]) if pair else None

    def machine(self, entity: str) -> Machine | None:
        self.refresh()
        return self.machines.get(entity)

    def by_name(self, name: str) -> tuple[str, Machine] | None:
        """A workflow by file name or entity name: (entity, machine in force)."""
        self.refresh()
        state = self.files.get(name)
        entity = state.entity if state and state.entity else name
        reg = dovetail().registry
        if entity not in reg.workflow_entities:
            return None
        try:
            return entity, machine_for(entity)
        except Exception:  # noqa: BLE001 - NotFound: the entity has no workflow at all
            return None


def config_part() -> Any:
    """``workflows/*.yaml`` as a part of the run-time config (:mod:`core.activation`)."""
    class WorkflowsPart(ConfigPart):
        name = "workflows"

        def files(self, app: Flask) -> list[str]:
            folder = Path(app.extensions["dovetail"].config.config_dir) / "workflows"
            if not folder.is_dir():
                return []
            return [f"workflows/{p.name}" for p in sorted(folder.iterdir())
                    if p.suffix in (".yaml", ".yml") and p.is_file()]

        def prepare(self, app: Flask, docs: Any, *, applying: bool, force: bool) -> Prepared:
            return store(app).prepare(docs, applying=applying)

        def write(self, app: Flask, prepared: Prepared, actor: str | None) -> None:
            store(app).write(prepared)

        def install(self, app: Flask, prepared: Prepared) -> None:
            store(app).install(prepared)

        def notices(self, prepared: Prepared) -> list[str]:
            return [f"{fs.display}: {fs.notice}" for fs in prepared.files.values() if fs.notice]

    return WorkflowsPart()


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
