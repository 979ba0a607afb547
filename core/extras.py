"""Optional dependencies (``pip install 'dovetail[demo,redis,postgresql]'``) imported on use.

A missing extra is an expected error: one line naming the extra to install, no traceback.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from core.errors import DovetailError

#: module → extra that installs it
EXTRAS = {"faker": "demo", "redis": "redis", "rq": "redis", "psycopg": "postgresql"}


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise a :class:`DovetailError` saying which extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        extra = EXTRAS[module]
        raise DovetailError(f"{purpose} needs the '{extra}' extra: pip install 'dovetail[{extra}]'") from None


def check_database_driver(url: str) -> None:
    """Refuse a PostgreSQL URL up front when psycopg is not installed."""
    if url.startswith("postgresql+psycopg") or url.startswith("postgresql:"):
        require("psycopg", f"the database URL '{url.split('://', 1)[0]}://…'")
