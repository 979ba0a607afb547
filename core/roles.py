"""The roles in force: ``config/roles.yaml``, checked and activated while the app runs.

Like workflow and custom-field files, the file is looked at on every request (one
``os.stat``); a changed file is read and checked (shape, keys, scopes, permissions no
plugin declares, each located to file:line:column). A good file swaps in a new frozen
roles mapping (``app.extensions["dovetail"].config`` is replaced by a copy holding it,
never mutated); a bad one is refused and logged, its errors are shown to admins (users
page, ``dovetail roles check``) and the last good roles stay in force.

:func:`load_roles` is the one step that reads and checks a roles file; :func:`refresh`
is the per-request trigger, kept separate so an explicit "apply the config" step can
replace the polling without touching the checks.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Flask, current_app

from core.config import Role, YamlDoc, read_roles
from core.errors import ConfigError, ConfigIssue

log = logging.getLogger("dovetail.roles")
EXT_KEY = "dovetail_roles"

Stamp = tuple[int, int, int] | None


def load_roles(path: Path | str, display: str, registry: Any,
               available: Mapping[str, Any]) -> tuple[YamlDoc, Mapping[str, Role]]:
    """Read ``path`` and check it against the plugins: ``(doc, frozen roles)`` or a located
    :class:`ConfigError` listing every mistake (shape, keys and scopes, and the permissions
    of every role that can be read, in one go)."""
    from core.plugins import check_role_permissions

    try:
        doc, roles = read_roles(path, display)
    except ConfigError as exc:
        doc = _readable(exc, path, display)
        if doc is None:
            raise
        issues = list(exc.issues)
        try:
            check_role_permissions(_permissions_only(doc), doc, registry, available)
        except ConfigError as more:
            issues += more.issues
        raise ConfigError(sorted(issues, key=lambda i: (i.line, i.column))) from None
    check_role_permissions(roles, doc, registry, available)
    return doc, roles


def _readable(exc: ConfigError, path: Path | str, display: str) -> YamlDoc | None:
    """The parsed file when ``exc`` is about its content (not its syntax), else None."""
    from core.config import load_yaml_file

    try:
        return load_yaml_file(path, display)
    except ConfigError:
        return None


def _permissions_only(doc: YamlDoc) -> Mapping[str, Role]:
    """Each role's permission list as far as it can be read from a file the schema refused,
    so unknown permissions are reported together with the other mistakes."""
    from core.config import roles_from

    raw = doc.data.get("roles") if isinstance(doc.data, Mapping) else None
    out: dict[str, Any] = {}
    for name, body in (raw.items() if isinstance(raw, Mapping) else ()):
        perms = body.get("permissions") if isinstance(body, Mapping) else None
        if isinstance(perms, list):
            out[str(name)] = {"permissions": [p if isinstance(p, str) else "*" for p in perms]}
    return roles_from(out)


@dataclass
class RolesState:
    """What the app knows of its roles file (``app.extensions["dovetail_roles"]``)."""

    path: Path
    display: str
    stamp: Stamp = None
    issues: list[ConfigIssue] = field(default_factory=list)   # why the file on disk is not in force
    checked_at: datetime | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def problems(self) -> list[str]:
        return [str(i) for i in self.issues]


def _stamp(path: Path) -> Stamp:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def state(app: Flask | None = None) -> RolesState | None:
    """The roles state of ``app``; None when its roles were given in code (tests)."""
    return (app or current_app).extensions.get(EXT_KEY)


def refresh(app: Flask | None = None) -> RolesState | None:
    """Activate ``roles.yaml`` if it changed since it was last looked at (cheap otherwise)."""
    app = app or current_app
    st = state(app)
    if st is None:
        return None
    now = _stamp(st.path)
    if now == st.stamp:
        return st
    # Never wait for another thread's reload: this request keeps the roles in force and
    # the next one sees the new ones.
    if not st.lock.acquire(blocking=False):
        return st
    try:
        if now != st.stamp:
            _activate(app, st, now)
    finally:
        st.lock.release()
    return st


def _activate(app: Flask, st: RolesState, now: Stamp) -> None:
    dv = app.extensions["dovetail"]
    st.stamp, st.checked_at = now, datetime.now(UTC)
    if now is None:
        st.issues = [ConfigIssue(st.display, 1, 1, "file not found; the roles in force stay (hint: "
                                                   "restore the file)")]
        log.error("%s", st.issues[0])
        return
    try:
        doc, roles = load_roles(st.path, st.display, dv.registry, dv.available)
    except ConfigError as exc:
        st.issues = list(exc.issues)
        log.error("roles file refused; the roles in force stay:\n%s", exc)
        return
    st.issues = []
    dv.config = dataclasses.replace(dv.config, roles=roles, roles_doc=doc)
    log.info("roles from %s in force: %s", st.display, ", ".join(roles))


def install(app: Flask) -> None:
    """Watch the roles file of ``app`` (unless its roles were given in code)."""
    cfg = app.extensions["dovetail"].config
    if cfg.roles_overridden:
        return
    path = Path(cfg.config_dir) / "roles.yaml"
    app.extensions[EXT_KEY] = RolesState(path, _display(path), _stamp(path))

    @app.before_request
    def _roles_file_changed() -> None:
        from flask import request

        if request.endpoint != "static":
            refresh()

    @app.context_processor
    def _roles_problems() -> dict[str, Any]:
        """Admins see why an edited roles file is not in force (the users page shows it)."""
        from core.auth import current_user, has_permission

        st = state()
        if st is None or not st.issues or not has_permission(current_user(), "core.user.manage"):
            return {"roles_problems": []}
        return {"roles_problems": st.problems}


__all__ = ["load_roles", "refresh", "install", "state", "RolesState"]
