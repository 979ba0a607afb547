"""Dashboard widgets: each report marked for the dashboard renders as a card."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_babel import gettext

from core.auth import has_permission
from core.state import dovetail


def widgets_for(user: Any) -> list[dict[str, Any]]:
    """Reports the user may run that declare ``params={"dashboard": "bar"|"line"|"table"}``."""
    out = []
    for report, _owner in dovetail().registry.reports.values():
        kind = report.params.get("dashboard")
        if not kind or not all(has_permission(user, p) for p in report.permissions):
            continue
        try:
            columns, rows = report.run({}, user)
        except Exception:  # noqa: BLE001 - one failing widget must not blank the dashboard
            current_app.logger.exception("dashboard widget %s failed", report.key)
            continue
        # title and column names are the plugin's message ids: translated here, as plain text
        # (the page escapes them), never in the template with _(), which would mark them safe
        out.append({"key": report.key, "title": gettext(report.title), "kind": kind,
                    "columns": [gettext(c) if c else c for c in columns],
                    "rows": [list(r) for r in rows[:50]]})
    return out
