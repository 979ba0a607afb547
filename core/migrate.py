"""Alembic migrations with one history per plugin.

Each plugin keeps its revisions in its own folder (``PluginManifest.migrations``)
and its own version table (``alembic_version_<plugin>``), so enabling a plugin
later creates exactly its tables and disabling one never confuses another's
history. One shared ``env.py`` (``core/migrations``) runs them all.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import Script
from flask import Flask

from core.db import db
from core.errors import DovetailError
from core.state import dovetail

SCRIPT_LOCATION = Path(__file__).parent / "migrations"
CORE_VERSIONS = SCRIPT_LOCATION / "versions"


def locations(app: Flask) -> list[tuple[str, Path]]:
    """(name, versions folder) for the core and each enabled plugin, in load order."""
    dv = dovetail(app)
    out = [("core", CORE_VERSIONS)]
    for p in dv.registry.plugins:
        if p.loaded.migrations:
            out.append((p.name, Path(p.loaded.migrations)))
    return out


def _tables(app: Flask, name: str) -> set[str]:
    return {t.name for t in dovetail(app).registry.tables_of(name)}


def alembic_config(app: Flask, name: str, versions: Path, connection: Any = None) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(SCRIPT_LOCATION))
    cfg.set_main_option("version_locations", str(versions))
    cfg.set_main_option("path_separator", "os")  # alembic >= 1.16 deprecates the legacy space/comma split
    cfg.attributes.update(connection=connection, version_table=f"alembic_version_{name}",
                          tables=_tables(app, name), metadata=db.metadata)
    return cfg


def _find(app: Flask, name: str) -> Path:
    for n, path in locations(app):
        if n == name:
            return path
    raise DovetailError(f"plugin '{name}' is not enabled or has no migrations")


def current(app: Flask, name: str) -> str | None:
    with db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"version_table": f"alembic_version_{name}"})
        return ctx.get_current_revision()


def upgrade_all(app: Flask, only: str | None = None) -> list[tuple[str, str | None]]:
    """Bring the core and every enabled plugin (or only one) to its head."""
    done = []
    for name, path in locations(app):
        if only and name != only:
            continue
        with db.engine.begin() as conn:
            command.upgrade(alembic_config(app, name, path, conn), "head")
        done.append((name, current(app, name)))
    return done


def downgrade(app: Flask, name: str, target: str = "base") -> None:
    path = _find(app, name)
    with db.engine.begin() as conn:
        command.downgrade(alembic_config(app, name, path, conn), target)


def revision(app: Flask, name: str, message: str) -> str:
    """Autogenerate the next revision of ``name`` from the difference to its models."""
    path = _find(app, name)
    path.mkdir(parents=True, exist_ok=True)
    existing = [p for p in path.glob("*.py") if re.match(r"\d{4}_", p.name)]
    rev_id = f"{name}_{len(existing) + 1:04d}"
    with db.engine.begin() as conn:
        cfg = alembic_config(app, name, path, conn)
        cfg.set_main_option("file_template", f"{len(existing) + 1:04d}_%%(slug)s")
        script = command.revision(cfg, message=message, autogenerate=True, rev_id=rev_id,
                                  version_path=str(path))
    return script.path if isinstance(script, Script) else str(path)


def pending_diff(app: Flask, name: str) -> list[Any]:
    """Differences between the database and ``name``'s models (empty when in sync)."""
    tables = _tables(app, name)

    def include(obj: Any, obj_name: str, type_: str, reflected: bool, compare_to: Any) -> bool:
        if type_ == "table":
            return obj_name in tables
        table = getattr(obj, "table", None)
        return table is None or table.name in tables

    with db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"include_object": include,
                                                     "compare_type": True,
                                                     "target_metadata": db.metadata})
        return [d for d in compare_metadata(ctx, db.metadata)]
