"""Reports on the core reports pages (``/reports``, ``GET /api/v1/reports/<key>``, CSV/XLSX).

Revenue: paid/shipped/completed orders by ``placed_at`` (local), net of returns — the
plugin's definition (README "Revenue"). Rows are limited to the reps and teams the user may
see; ranks are among everyone competing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.i18n import N_
from core.models import User
from core.registry import Report
from plugins.performance.periods import from_args
from plugins.performance.services import leaderboard

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


REPORTS = [
    Report("performance.rep_leaderboard", "Rep leaderboard (net revenue, attainment)", PERM, rep_leaderboard),
    Report("performance.team_leaderboard", "Team leaderboard (net revenue, attainment)", PERM, team_leaderboard),
]
