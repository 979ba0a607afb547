"""Reports on the core reports pages (``/reports``, ``GET /api/v1/reports/<key>``, CSV/XLSX).

Revenue: paid/shipped/completed orders by ``placed_at`` (local), net of returns — the
plugin's definition (README "Revenue"). Rows are limited to the reps and teams the user may
see; ranks are among everyone competing.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from core.i18n import N_
from core.models import User
from core.registry import Report
from plugins.performance.periods import current_month, from_args
from plugins.performance.services import TARGET_METRICS, leaderboard, rep_performance

PERM = "performance.report.read"
COLUMNS = ["rank", "revenue", "orders", "units", "customers", "new_customers", "target_revenue", "attainment"]
#: the headers of these columns on the web pages (keys shown as words, core.i18n.column_label)
COLUMN_LABELS = (N_("Rep"), N_("Team"), N_("Rank"), N_("Revenue"), N_("Orders"), N_("Units"), N_("Customers"),
                 N_("New customers"), N_("Target revenue"), N_("Attainment"))


def _by(params: Mapping[str, Any]) -> str:
    return str(params.get("by") or "revenue")


def rep_leaderboard(params: Mapping[str, Any], user: User):
    board = leaderboard(from_args(params), user, by=_by(params))
    return ["rep", "team", *COLUMNS], [
        (r["display_name"] or r["username"], r["team"] or "", r["rank"], r["revenue"], r["orders"], r["units"],
         r["customers"], r["new_customers"], r["target_revenue"] or "", r["attainment"] or "")
        for r in board["items"]]


def team_leaderboard(params: Mapping[str, Any], user: User):
    board = leaderboard(from_args(params), user, by=_by(params), level="team")
    return ["team", *COLUMNS], [
        (r["team"], r["rank"], r["revenue"], r["orders"], r["units"], r["customers"], r["new_customers"],
         r["target_revenue"] or "", r["attainment"] or "") for r in board["items"]]


# ---------------------------------------------------------------------------
# Dashboard cards (this month, in the user's scope)
# ---------------------------------------------------------------------------

#: the metrics of a target, as the "my month" card names them
_METRIC_LABELS = {"revenue": N_("Revenue"), "orders": N_("Orders"), "new_customers": N_("New customers")}
#: the headers of the cards' columns
CARD_LABELS = (N_("Metric"), N_("Actual"), N_("Target"), N_("Attainment percent"))


def _dec(value: Any) -> Decimal | None:
    return Decimal(str(value)) if value not in (None, "") else None


def my_month(params: Mapping[str, Any], user: User):
    """The user's own revenue, orders and new customers this month against their target."""
    data = rep_performance(user, current_month())
    figures, target, att = data["figures"], data["target"] or {}, data["attainment"]
    rows = []
    for key in TARGET_METRICS:
        actual = _dec(figures[key]) if key == "revenue" else figures[key]
        goal = target.get(key)
        rows.append((_METRIC_LABELS[key], actual, _dec(goal) if key == "revenue" else goal, _dec(att.get(key))))
    return ["metric", "actual", "target", "attainment_percent"], rows


def team_leaderboard_card(params: Mapping[str, Any], user: User):
    """This month's reps the user may see, best revenue first: revenue, target, attainment."""
    board = leaderboard(current_month(), user)
    return ["rep", "revenue", "target_revenue", "attainment_percent"], [
        (r["display_name"] or r["username"], _dec(r["revenue"]), _dec(r["target_revenue"]), _dec(r["attainment"]))
        for r in board["items"]]


def team_attainment(params: Mapping[str, Any], user: User):
    """This month's teams the user may see: revenue against the team target."""
    board = leaderboard(current_month(), user, level="team")
    return ["team", "revenue", "target_revenue", "attainment_percent"], [
        (r["team"], _dec(r["revenue"]), _dec(r["target_revenue"]), _dec(r["attainment"])) for r in board["items"]]


REPORTS = [
    Report("performance.rep_leaderboard", "Rep leaderboard (net revenue, attainment)", PERM, rep_leaderboard),
    Report("performance.team_leaderboard", "Team leaderboard (net revenue, attainment)", PERM, team_leaderboard),
    Report("performance.my_month", "My sales this month vs target", PERM, my_month,
           {"dashboard": "table", "dashboard_for": "own", "dashboard_link": "performance_web.me"},
           description=N_("Revenue: paid, shipped and completed orders by order date, net of returns.")),
    Report("performance.team_month", "Team leaderboard this month", PERM, team_leaderboard_card,
           {"dashboard": "bar", "dashboard_for": "team", "dashboard_link": "performance_web.leaderboard"},
           description=N_("Revenue: paid, shipped and completed orders by order date, net of returns.")),
    Report("performance.team_attainment", "Team attainment this month", PERM, team_attainment,
           {"dashboard": "table", "dashboard_for": "team", "dashboard_link": "performance_web.leaderboard"},
           description=N_("Revenue: paid, shipped and completed orders by order date, net of returns.")),
]
