"""The core's own contributions, registered like any plugin (style: core features are plugins)."""

from __future__ import annotations

from core import hookimpl, roles
from core.activation import MainPart
from core.events import TRANSITION_EVENT
from core.jobs import JobRun, core_jobs
from core.models import CORE_MODELS
from core.outbox import OutboxMessage
from core.registry import EventType, MenuItem, Permission
from core.userjobs import UserJob


@hookimpl
def register_models():
    return [*CORE_MODELS, OutboxMessage, JobRun, UserJob]


@hookimpl
def register_jobs():
    """The core's background jobs: outbox processing and pruning (and audit sealing)."""
    return core_jobs()


@hookimpl
def register_permissions():
    return [
        Permission("core.user.manage", "Create, disable and edit users"),
        Permission("core.audit.read", "Read and search the audit log"),
        Permission("core.plugin.read", "List plugins and their state"),
        Permission("core.report.read", "Open the reports page"),
        Permission("core.config.apply", "Check and apply the config files (roles, workflows, custom fields)"),
        Permission("core.personal.export", "Export or erase a person's data on request (PIPL)"),
    ]


@hookimpl
def register_event_types():
    return [EventType(TRANSITION_EVENT, "A workflow transition happened: entity, id, transition, "
                                        "from_state, to_state, marks")]


@hookimpl(trylast=True)
def register_menu_items():
    return [
        MenuItem("core.dashboard", "Dashboard", "core_web.index", None, order=0),
        MenuItem("core.reports", "Reports", "core_reports.index", "core.report.read", order=800),
        MenuItem("core.audit", "Audit log", "core_web.audit", "core.audit.read", order=900),
        MenuItem("core.users", "Users", "core_web.users", "core.user.manage", order=910),
        MenuItem("core.plugins", "Plugins", "core_web.plugins", "core.plugin.read", order=920),
        MenuItem("core.config", "Configuration", "core_web.config_page", "core.config.apply", order=930),
    ]


@hookimpl(tryfirst=True)
def app_ready(app):
    """Show admins why an edited ``roles.yaml`` was refused (users page)."""
    roles.install(app)


@hookimpl(tryfirst=True)
def register_config_parts(app):
    """``dovetail.yaml`` (its run-time part) and ``roles.yaml``, applied by ``dovetail config apply``."""
    return [MainPart(app), roles.part(app)]
