"""The core's own contributions, registered like any plugin (style: core features are plugins)."""

from __future__ import annotations

from core import hookimpl
from core.models import CORE_MODELS
from core.registry import MenuItem, Permission


@hookimpl
def register_models():
    return list(CORE_MODELS)


@hookimpl
def register_permissions():
    return [
        Permission("core.user.manage", "Create, disable and edit users"),
        Permission("core.audit.read", "Read and search the audit log"),
        Permission("core.plugin.read", "List plugins and their state"),
        Permission("core.report.read", "Open the reports page"),
        Permission("core.personal.export", "Export or erase a person's data on request (PIPL)"),
    ]


@hookimpl(trylast=True)
def register_menu_items():
    return [
        MenuItem("core.dashboard", "Dashboard", "core_web.index", None, order=0),
        MenuItem("core.reports", "Reports", "core_reports.index", "core.report.read", order=800),
        MenuItem("core.audit", "Audit log", "core_web.audit", "core.audit.read", order=900),
        MenuItem("core.users", "Users", "core_web.users", "core.user.manage", order=910),
        MenuItem("core.plugins", "Plugins", "core_web.plugins", "core.plugin.read", order=920),
    ]


@hookimpl(tryfirst=True)
def app_ready(app):
    """Watch ``config/roles.yaml``: a changed file is checked and, when good, in force from the
    next request (first, so plugins reloading their own files already see the new roles)."""
    from core import roles

    roles.install(app)
