"""The workflows plugin: manifest and hook implementations (thin; logic lives in the modules)."""

from __future__ import annotations

import logging

from core import hookimpl
from core.i18n import N_
from core.registry import CliCommand, MenuItem, Permission, PluginManifest, Report

log = logging.getLogger("dovetail.plugins.workflows")


@hookimpl
def plugin_manifest():
    return PluginManifest(name="workflows", version="1.0.0",
                          description="Workflows as YAML files in config/workflows/: check, show, simulate, "
                                      "reload without restart")


@hookimpl
def register_permissions():
    return [Permission("workflows.workflow.read", "See workflows, their diagrams and file errors"),
            Permission("workflows.workflow.manage", "Check workflow files and reload them")]


@hookimpl
def register_blueprints():
    from plugins.workflows.api import blp

    return [blp]


@hookimpl
def register_web_blueprints():
    from plugins.workflows.web import bp

    return [bp]


@hookimpl
def register_menu_items():
    return [MenuItem("workflows.list", "Workflows", "workflows_web.index", "workflows.workflow.read", order=700)]


@hookimpl
def register_reports():
    from plugins.workflows.dashboard import approvals_waiting

    return [Report("workflows.approvals", "Waiting for my approval", "workflows.workflow.read", approvals_waiting,
                   {"dashboard": "table", "dashboard_for": "team, all"},
                   description=N_("Records in your scope waiting in a state whose next step needs your role "
                                  "(an approval, a step restricted to your role, or a transition marked approved) "
                                  "and that you may take now."))]


@hookimpl
def register_commands():
    from plugins.workflows.cli import workflow

    return [CliCommand(workflow)]


@hookimpl
def app_ready(app):
    """Create the store; the workflows come from the applied config version (core.activation)."""
    from plugins.workflows.store import store

    store(app)


@hookimpl
def register_config_parts(app):
    from plugins.workflows.store import config_part

    return [config_part()]


@hookimpl
def workflow_definition(entity):
    from plugins.workflows.store import store

    return store().machine(entity)
