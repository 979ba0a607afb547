"""The roles in force: ``config/roles.yaml``, checked, and activated by ``dovetail config apply``.

:func:`load_roles` is the one step that reads and checks a roles file (shape, keys, scopes,
permissions no plugin declares, each located to file:line:column). The file is one part of
the run-time config (:mod:`core.activation`): editing it changes nothing until the config is
applied; a good file then swaps in a new frozen roles mapping in every worker, a bad one
refuses the apply, its errors are shown to admins (users page, ``dovetail config check``,
``dovetail roles check``) and the last good roles stay in force.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask, current_app

from core import activation
from core.activation import ConfigPart, config_path, display
from core.auth import current_user, has_permission
from core.config import DEFAULT_ROLES, Role, YamlDoc, load_yaml_file, parse_yaml, read_roles, roles_from
from core.errors import ConfigError, ConfigIssue
from core.plugins import check_role_permissions
from core.state import dovetail

log = logging.getLogger("dovetail.roles")


def load_roles(path: Path | str, display: str, registry: Any, available: Mapping[str, Any], *,
               text: str | None = None) -> tuple[YamlDoc, Mapping[str, Role]]:
    """Read ``path`` and check it against the plugins: ``(doc, frozen roles)`` or a located
    :class:`ConfigError` listing every mistake (shape, keys and scopes, and the permissions
    of every role that can be read, in one go)."""
    try:
        doc, roles = read_roles(path, display, text=text)
    except ConfigError as exc:
        readable = _readable(exc, path, display, text)
        if readable is None:
            raise
        doc = readable
        issues = list(exc.issues)
        try:
            check_role_permissions(_permissions_only(doc), doc, registry, available)
        except ConfigError as more:
            issues += more.issues
        raise ConfigError(sorted(issues, key=lambda i: (i.line, i.column))) from None
    check_role_permissions(roles, doc, registry, available)
    return doc, roles


def _readable(exc: ConfigError, path: Path | str, display: str, text: str | None = None) -> YamlDoc | None:
    """The parsed file when ``exc`` is about its content (not its syntax), else None."""
    try:
        return load_yaml_file(path, display) if text is None else parse_yaml(text, display)
    except ConfigError:
        return None


def _permissions_only(doc: YamlDoc) -> Mapping[str, Role]:
    """Each role's permission list as far as it can be read from a file the schema refused,
    so unknown permissions are reported together with the other mistakes."""
    raw = doc.data.get("roles") if isinstance(doc.data, Mapping) else None
    out: dict[str, Any] = {}
    for name, body in (raw.items() if isinstance(raw, Mapping) else ()):
        perms = body.get("permissions") if isinstance(body, Mapping) else None
        if isinstance(perms, list):
            out[str(name)] = {"permissions": [p if isinstance(p, str) else "*" for p in perms]}
    return roles_from(out)


def _part_class() -> type:
    """``roles.yaml`` as a run-time config part (see :mod:`core.activation`): checked on
    apply, installed as a new frozen roles mapping (``dovetail(app).config`` is
    replaced by a copy holding it, never mutated). Roles given in code (tests) stay as given."""
    class _RolesPart(ConfigPart):
        name = "roles"
        KEY = "roles.yaml"

        def __init__(self, app: Flask) -> None:
            self.overridden = dovetail(app).config.roles_overridden

        def files(self, app: Flask) -> list[str]:
            # a roles file that was in force and is now missing is an error, not "built-in roles"
            had = dovetail(app).config.roles_doc is not None
            return [self.KEY] if not self.overridden and (had or config_path(app, self.KEY).is_file()) else []

        def prepare(self, app: Flask, docs: Any, *, applying: bool, force: bool) -> Any:
            if self.overridden:
                return None
            text = docs.get(self.KEY)
            if text is None:
                return None, roles_from(DEFAULT_ROLES)
            dv = dovetail(app)
            return load_roles(config_path(app, self.KEY), display(app, self.KEY), dv.registry, dv.available,
                              text=text)

        def install(self, app: Flask, prepared: Any) -> None:
            if prepared is None:
                return
            doc, roles = prepared
            dv = dovetail(app)
            if dict(roles) != dict(dv.config.roles) or doc is not dv.config.roles_doc:
                dv.config = dataclasses.replace(dv.config, roles=roles, roles_doc=doc)
                log.info("roles in force: %s", ", ".join(roles))

    return _RolesPart


def part(app: Flask) -> Any:
    """The roles part of ``app`` (registered by the core's ``register_config_parts``)."""
    return _part_class()(app)


@dataclass
class RolesState:
    """Why the roles file is not in force: the roles errors of the last refused apply."""

    path: Path
    display: str
    issues: list[ConfigIssue] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        return [str(i) for i in self.issues]


def state(app: Flask | None = None) -> RolesState | None:
    """The roles state of ``app``; None when its roles were given in code (tests)."""
    app = app or current_app
    cfg = dovetail(app).config
    if cfg.roles_overridden:
        return None
    st = activation.state(app)
    shown = activation.display(app, "roles.yaml")
    issues = [i for i in (st.problems if st else ()) if i.file == shown]
    return RolesState(Path(cfg.config_dir) / "roles.yaml", shown, issues)


def install(app: Flask) -> None:
    """Show admins why an edited roles file was refused (the users page shows it)."""

    @app.context_processor
    def _roles_problems() -> dict[str, Any]:
        st = state()
        if st is None or not st.issues or not has_permission(current_user(), "core.user.manage"):
            return {"roles_problems": []}
        return {"roles_problems": st.problems}


__all__ = ["load_roles", "part", "install", "state", "RolesState"]
