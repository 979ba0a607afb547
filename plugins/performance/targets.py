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
from core.errors import DovetailError
from core.export import write_csv
from core.models import Team, User
from core.tabular import RowError, read_rows, require_columns
from plugins.performance.schemas import TargetIn
from plugins.performance.services import can_see_team, load, set_target, visible_users

COLUMNS = ["period", "rep", "team", "revenue", "orders", "new_customers", "notes"]


def _flatten(messages: Any, prefix: str = "") -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            out.extend(_flatten(value, str(key) if not prefix else f"{prefix}.{key}"))
    elif isinstance(messages, list):
        for m in messages:
            out.extend(_flatten(m, prefix))
    else:
        out.append((prefix, str(messages)))
    return out


COLUMN_OF = {"rep_id": "rep", "team_id": "team", "_schema": ""}


def _row(line: int, row: dict[str, str], users: dict[str, int], teams: dict[str, int]) \
        -> tuple[dict[str, Any] | None, list[RowError]]:
    errors: list[RowError] = []
    raw: dict[str, Any] = {"period": row.get("period", "")}
    rep, team = row.get("rep", ""), row.get("team", "")
    if bool(rep) == bool(team):
        errors.append(RowError(line, "rep", "Give a rep (username) or a team (name), not both."))
    elif rep:
        if rep not in users:
            errors.append(RowError(line, "rep", f"No user '{rep}'."))
        raw["rep_id"] = users.get(rep)
    else:
        if team not in teams:
            errors.append(RowError(line, "team", f"No team '{team}'."))
        raw["team_id"] = teams.get(team)
    for key in ("orders", "new_customers"):
        text = row.get(key, "")
        if text != "":
            if text.isdigit():
                raw[key] = int(text)
            else:
                errors.append(RowError(line, key, "A whole number of at least 0."))
    if row.get("revenue", "") != "":
        raw["revenue"] = row["revenue"].replace(",", "")
    if row.get("notes", "") != "":
        raw["notes"] = row["notes"]
    if not any(k in raw for k in ("revenue", "orders", "new_customers", "notes")):
        errors.append(RowError(line, "revenue", "The row sets no target (revenue, orders, new_customers)."))
    if errors:
        return None, errors
    try:
        return load(TargetIn(), raw), []
    except DovetailError as exc:
        return None, [RowError(line, COLUMN_OF.get(col, col), msg) for col, msg in _flatten(exc.fields)]


def import_targets(path: str | Path, *, user: Any = None, dry_run: bool = False,
                   progress: Any = None) -> tuple[dict[str, int], list[RowError]]:
    """Import targets; returns ``({created, updated, unchanged, rejected}, errors)``.

    ``user`` limits the reps and teams to those the user may set targets for (None: the CLI).
    """
    counts = {"created": 0, "updated": 0, "unchanged": 0, "rejected": 0}
    errors: list[RowError] = []
    ustmt = select(User.id, User.username)
    if user is not None:  # names outside the user's scope read as unknown (no enumeration)
        ustmt = ustmt.where(User.id.in_(visible_users(user)))
    users = {u: i for i, u in db.session.execute(ustmt)}
    teams = {n: i for i, n in db.session.execute(select(Team.id, Team.name))
             if user is None or can_see_team(user, i)}
    seen: dict[tuple[str, str, int], int] = {}
    checked = False
    for line, row in read_rows(path):
        if progress is not None:
            progress.update(1)
        if not checked:
            require_columns(path, set(row), {"period"})
            if not ({"rep", "team"} & set(row)):
                require_columns(path, set(row), {"rep"})
            checked = True
        data, row_errors = _row(line, row, users, teams)
        if data is not None:
            key = (data["period"], "rep" if data.get("rep_id") is not None else "team",
                   data.get("rep_id") or data.get("team_id"))
            if key in seen:
                row_errors = [RowError(line, key[1], f"Same {key[1]} and period as line {seen[key]}.")]
            else:
                seen[key] = line
        if row_errors:
            errors.extend(row_errors)
            counts["rejected"] += 1
            continue
        try:
            with db.session.begin_nested():
                _t, outcome = set_target(data, user)
            counts[outcome] += 1
        except DovetailError as exc:
            counts["rejected"] += 1
            flat = _flatten(exc.fields) if exc.fields else [("", exc.message)]
            errors.extend(RowError(line, COLUMN_OF.get(col, col), msg) for col, msg in flat)
    if dry_run:
        db.session.rollback()
    else:
        db.session.commit()
    return counts, errors


def write_report(errors: list[RowError], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        write_csv(fh, ["line", "column", "reason"], [(e.line, e.column, e.reason) for e in errors])
