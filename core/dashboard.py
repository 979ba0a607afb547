"""Dashboard widgets: each report marked for the dashboard renders as a card."""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from flask import current_app, url_for
from flask_babel import gettext
from werkzeug.routing import BuildError

from core.auth import has_permission, scope_of
from core.i18n import column_label, translate_cell
from core.state import dovetail


def widgets_for(user: Any) -> list[dict[str, Any]]:
    """Reports the user may run that declare ``params={"dashboard": "bar"|"line"|"table"}``.

    ``params["dashboard_for"]`` (``"own"``, ``"team"``, ``"all"``, comma-separated) limits a
    card to users of that record scope: a rep (own) sees their own figures, a manager (team)
    the team's cards, an owner (all) the company's."""
    out = []
    for report, _owner in dovetail().registry.reports.values():
        kind = report.params.get("dashboard")
        if not kind or not all(has_permission(user, p) for p in report.permissions):
            continue
        audience = report.params.get("dashboard_for")  # record scopes the card is for
        if audience and scope_of(user) not in [a.strip() for a in audience.split(",")]:
            continue
        try:
            columns, rows = report.run({}, user)
        except Exception:  # noqa: BLE001 - one failing widget must not blank the dashboard
            current_app.logger.exception("dashboard widget %s failed", report.key)
            continue
        # title and column names are the plugin's message ids: translated here, as plain text
        # (the page escapes them), never in the template with _(), which would mark them safe
        out.append({"key": report.key, "title": gettext(report.title), "kind": kind,
                    "columns": [column_label(c) for c in columns],
                    "rows": [[translate_cell(v) for v in r] for r in card_rows(kind, rows)]})
        card = out[-1]
        card["chart"] = chart_data(card["columns"], card["rows"])
        card["link"] = card_link(report, user)
    return out


#: the params keys that are display hints for the dashboard, not report parameters
DASHBOARD_KEYS = ("dashboard", "dashboard_for", "dashboard_link")


def card_link(report: Any, user: Any) -> str | None:
    """Where the card's title leads: the page named by ``params["dashboard_link"]`` (an
    endpoint of the owning plugin, with an optional query: ``"inventory_web.stock?low=1"``),
    else the report's own page when the user may open the reports pages, else None (an
    endpoint of a disabled plugin is skipped)."""
    endpoint, _, query = (report.params.get("dashboard_link") or "").partition("?")
    if endpoint:
        try:
            return url_for(endpoint) + ("?" + query if query else "")
        except BuildError:
            current_app.logger.warning("dashboard card %s links to unknown endpoint %s", report.key, endpoint)
    if has_permission(user, "core.report.read"):
        return url_for("core_reports.show", key=report.key)
    return None


#: rows a dashboard card shows
CARD_ROWS = 50


def card_rows(kind: str, rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
    """The rows of a card: a line chart is a time series, oldest first, so it shows the
    latest :data:`CARD_ROWS` points; other cards show the first (the top of a ranking)."""
    picked = rows[-CARD_ROWS:] if kind == "line" else rows[:CARD_ROWS]
    return [list(r) for r in picked]


def chart_data(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """JSON for ``static/charts.js`` (a ``data-chart`` attribute, escaped by the template):
    category labels from the first column and one series per numeric column (at most 3)."""
    numeric = [i for i in range(1, len(columns)) if rows and all(
        isinstance(r[i], int | float | Decimal) and not isinstance(r[i], bool) for r in rows)][:3]
    return json.dumps({"labels": [str(r[0]) for r in rows],
                       "series": [{"name": str(columns[i]), "values": [str(r[i]) for r in rows]}
                                  for i in numeric]}, ensure_ascii=False)
