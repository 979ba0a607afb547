"""Monthly targets from CSV/XLSX (``dovetail import targets``, ``POST /performance/targets/import``,
the web import page), with a row-level error report like the other imports.

Columns: ``period`` (YYYY-MM), ``rep`` (username) **or** ``team`` (team name), and any of
``revenue``, ``orders``, ``new_customers``, ``notes``. An empty cell leaves that metric as it is
(empty on a new target). Rows are keyed on (period, rep or team), so importing the same file
again changes nothing. Each good row is saved even when others fail.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from core.db import db
from core.importer import ImportReport, Problems, RowImport, run_import
from core.models import Team, User
from core.tabular import require_columns
from plugins.performance.schemas import TargetIn
from plugins.performance.services import can_see_team, set_target, visible_users

COLUMNS = ["period", "rep", "team", "revenue", "orders", "new_customers", "notes"]


COLUMN_OF = {"rep_id": "rep", "team_id": "team", "_schema": ""}


class TargetImport(RowImport):
    """Targets keyed on (period, rep or team); see the module docstring."""

    noun = "targets"
    required = frozenset({"period"})
    columns = frozenset(COLUMNS)
    column_of = COLUMN_OF
    schema = TargetIn()

    def __init__(self, user: Any = None) -> None:
        self.user = user
        ustmt = select(User.id, User.username)
        if user is not None:  # names outside the user's scope read as unknown (no enumeration)
            ustmt = ustmt.where(User.id.in_(visible_users(user)))
        self.users = {u: i for i, u in db.session.execute(ustmt)}
        self.teams = {n: i for i, n in db.session.execute(select(Team.id, Team.name))
                      if user is None or can_see_team(user, i)}
        self.seen: dict[tuple[str, str, int], int] = {}

    def check_header(self, path: Path, header: list[str]) -> None:
        super().check_header(path, header)
        if not ({"rep", "team"} & set(header)):
            require_columns(path, header, {"rep"})

    def parse(self, line: int, row: dict[str, str]) -> tuple[dict[str, Any], Problems]:
        problems: Problems = []
        raw: dict[str, Any] = {"period": row.get("period", "")}
        rep, team = row.get("rep", ""), row.get("team", "")
        if bool(rep) == bool(team):
            problems.append(("rep", "Give a rep (username) or a team (name), not both."))
        elif rep:
            if rep not in self.users:
                problems.append(("rep", f"No user '{rep}'."))
            raw["rep_id"] = self.users.get(rep)
        else:
            if team not in self.teams:
                problems.append(("team", f"No team '{team}'."))
            raw["team_id"] = self.teams.get(team)
        for key in ("orders", "new_customers"):
            text = row.get(key, "")
            if text != "":
                if text.isdigit():
                    raw[key] = int(text)
                else:
                    problems.append((key, "A whole number of at least 0."))
        if row.get("revenue", "") != "":
            raw["revenue"] = row["revenue"].replace(",", "")
        if row.get("notes", "") != "":
            raw["notes"] = row["notes"]
        if not any(k in raw for k in ("revenue", "orders", "new_customers", "notes")):
            problems.append(("revenue", "The row sets no target (revenue, orders, new_customers)."))
        return raw, problems

    def validate(self, line: int, row: dict[str, str]) -> tuple[dict[str, Any], Problems]:
        """A row's own problems first; the schema's only once the cells themselves are sound."""
        raw, problems = self.parse(line, row)
        if problems:
            return raw, problems
        return super().validate(line, row)

    def check(self, line: int, data: dict[str, Any], failed: set[str]) -> Problems:
        if failed or "period" not in data:
            return []
        kind = "rep" if data.get("rep_id") is not None else "team"
        key = (data["period"], kind, data.get("rep_id") or data.get("team_id"))
        if key in self.seen:
            return [(kind, f"Same {kind} and period as line {self.seen[key]}.")]
        self.seen[key] = line
        return []

    def save(self, line: int, data: dict[str, Any]) -> str:
        _t, outcome = set_target(data, self.user)
        return outcome


def import_targets(path: str | Path, *, user: Any = None, dry_run: bool = False, batch: int = 500,
                   progress: Any = None) -> ImportReport:
    """Import targets; counts ``created``, ``updated``, ``unchanged``, ``rejected``.

    ``user`` limits the reps and teams to those the user may set targets for (None: the CLI).
    Unpacks as ``(counts, errors)``.
    """
    return run_import(TargetImport(user), path, dry_run=dry_run, batch=batch, progress=progress)
