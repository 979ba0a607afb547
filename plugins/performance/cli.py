"""``dovetail performance generate|rules``, ``dovetail import targets``, ``dovetail export statements``."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from sqlalchemy import select

from core.cli import with_app
from core.db import db
from core.errors import ValidationError
from core.export import write_export
from core.importer import import_command
from core.models import User
from plugins.performance.targets import import_targets


@click.group("performance")
def performance_cmd() -> None:
    """Seller performance: commission statements and rules."""


@performance_cmd.command("generate")
@click.argument("period")
@click.option("--rep", "reps", multiple=True, help="Only this rep (username); repeatable.")
@with_app
def generate_cmd(period: str, reps: tuple[str, ...]) -> None:
    """Generate the commission statements of PERIOD (YYYY-MM): new drafts, regenerated drafts;
    approved and paid statements are left as they are."""
    from plugins.performance import commission

    rep_ids = None
    if reps:
        found = dict(db.session.execute(select(User.username, User.id).where(User.username.in_(reps))).all())
        missing = [r for r in reps if r not in found]
        if missing:
            raise ValidationError(f"No user '{missing[0]}'.")
        rep_ids = [found[r] for r in reps]
    result = commission.generate(period, rep_ids=rep_ids)
    db.session.commit()
    for w in result.warnings:
        click.echo(w, err=True)
    for st in result.generated:
        cap = f" (capped from {st.gross_amount})" if st.capped else ""
        click.echo(f"{st.period} {st.rep.username}: {len(st.lines)} lines, net sales {st.net_base}, "
                   f"commission {st.total} {st.currency}{cap} [{st.status}]")
    for st, why in result.skipped:
        click.echo(f"{st.period} {st.rep.username}: skipped, {why}")
    click.echo(f"{len(result.generated)} statement(s) generated, {len(result.skipped)} kept.")


@performance_cmd.command("rules")
@with_app
def rules_cmd() -> None:
    """Check the commission rules file: errors and cap warnings as file:line:column; exit 1 on errors."""
    from plugins.performance.rules import check_file, rules_path

    issues = check_file()
    for i in issues:
        click.echo(str(i), err=i.severity == "error")
    _path, display = rules_path()
    errors = [i for i in issues if i.severity == "error"]
    if errors:
        click.echo(f"{display}: {len(errors)} error(s).", err=True)
        sys.exit(1)
    click.echo(f"{display}: ok ({len(issues)} warning(s)).")


import_targets_cmd = import_command("targets", import_targets, help="""\
    Import monthly targets from FILE (.csv or .xlsx); re-running the same file is safe.

    Columns: period (YYYY-MM), rep (username) or team (name), revenue, orders, new_customers,
    notes. Exit status 2 when some rows were rejected.
    """)


@click.command("statements")
@click.option("--period", default=None, help="Only this month (YYYY-MM).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="File to write (.csv or .xlsx); standard output (CSV) when omitted.")
@with_app
def export_statements_cmd(period: str | None, output: Path | None) -> None:
    """Export commission statement lines (one row per line, traceable to its order line)."""
    from plugins.performance.models import Statement
    from plugins.performance.periods import check_month
    from plugins.performance.statements import EXPORT_COLUMNS, export_rows, with_lines

    stmt = select(Statement)
    if period:
        stmt = stmt.where(Statement.period == check_month(period))
    rows = export_rows(with_lines(stmt))
    write_export(output, EXPORT_COLUMNS, rows, "commission", "lines")
