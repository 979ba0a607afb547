"""CLI: ``dovetail import customers``, ``dovetail export customers``, ``dovetail crm recycle``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from sqlalchemy import select

from core.cli import with_app
from core.db import db
from core.errors import DovetailError, NotFound
from core.importer import ImportReport, import_command
from core.models import User


def _user(username: str | None) -> User | None:
    if not username:
        return None
    from core.auth import user_by_name

    user = user_by_name(username)
    if user is None or not user.active:
        raise NotFound(f"no active user '{username}'")
    return user


def _import(file: Path, *, owner_name: str | None, **kw: Any) -> ImportReport:
    from plugins.crm.transfer import import_customers

    return import_customers(file, default_owner=_user(owner_name), **kw)


import_customers_cmd = import_command("customers", _import, options=[click.option(
    "--owner", "owner_name", default=None,
    help="Username owning rows without an 'owner' cell (default: the public pool).")], help="""\
    Import customers from FILE (.csv or .xlsx); bad rows are reported, good rows imported.

    Rows match existing customers by external_code, else by phone, so re-running the
    same file creates no duplicates. Exit status 2 when some rows were rejected.
    """)


@click.command("customers")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="File to write (.csv or .xlsx); default: CSV on standard output.")
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx"]), default=None,
              help="Default: from the output file's suffix, else csv.")
@click.option("--as", "as_user", default=None,
              help="Export what this user may see, masked as they would see it (default: everything).")
@click.option("--segment", "segment_id", type=int, default=None, help="Only the customers of this segment.")
@with_app
def export_customers_cmd(output: Path | None, fmt: str | None, as_user: str | None,
                         segment_id: int | None) -> None:
    """Export customers as CSV or XLSX (cells starting with = + - @ are neutralised)."""
    from sqlalchemy import func

    from core.export import write_csv, xlsx_bytes
    from core.scope import select_for
    from plugins.crm import services
    from plugins.crm.models import Customer, Segment
    from plugins.crm.transfer import export_header, export_rows

    user = _user(as_user)
    if user is not None:
        from core.auth import has_permission
        from core.errors import PermissionDenied

        if not has_permission(user, "crm.customer.export"):
            raise PermissionDenied(f"user '{user.username}' lacks the permission 'crm.customer.export'")
    fmt = fmt or ("xlsx" if output is not None and output.suffix.lower() == ".xlsx" else "csv")
    if fmt == "xlsx" and output is None:
        raise click.ClickException("XLSX needs an output file: use -o FILE.xlsx")
    stmt = select_for(Customer, "crm.customer.export", user) if user is not None else select(Customer)
    if segment_id is not None:
        seg = db.session.get(Segment, segment_id)
        if seg is None:
            raise NotFound(f"no segment with id {segment_id}")
        stmt = services.segment_customers_stmt(seg, stmt)
    header, keys = export_header(user)
    total = db.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = export_rows(stmt, user, keys, channel="cli export")
    if output is None:
        n = write_csv(sys.stdout, header, rows)
    else:
        with click.progressbar(rows, length=total, label="Exporting customers", file=sys.stderr) as bar:
            if fmt == "xlsx":
                output.write_bytes(xlsx_bytes(header, bar, "customers"))
                n = total
            else:
                with output.open("w", newline="", encoding="utf-8") as fh:
                    n = write_csv(fh, header, bar)
        click.echo(f"Exported {n} customers to {output}.", err=True)
    db.session.commit()  # the personal-data access log of an export made --as a user


@click.group("crm")
def crm_group() -> None:
    """CRM maintenance commands."""


@crm_group.command("recycle")
@click.option("--days", type=click.IntRange(1, 3650), default=None,
              help="Override pool_return_days for this run.")
@click.option("--dry-run", is_flag=True, help="List who would return to the pool; change nothing.")
@with_app
def recycle_cmd(days: int | None, dry_run: bool) -> None:
    """Return owned customers without follow-up for N days to the public pool (audited)."""
    from core.db import utcnow
    from plugins.crm import pool, services

    n_days = days if days is not None else int(services.settings().get("pool_return_days", 30))
    if dry_run:
        rows = db.session.execute(pool.stale_stmt(n_days, utcnow())).all()
        for cid, owner in rows:
            click.echo(f"customer {cid} (owner {owner})")
        click.echo(f"{len(rows)} customers would return to the pool (no follow-up for {n_days} days).")
        return
    try:
        moved = pool.recycle(days=n_days)
        db.session.commit()
    except DovetailError:
        db.session.rollback()
        raise
    click.echo(f"{len(moved)} customers returned to the pool (no follow-up for {n_days} days).")


@crm_group.command("recompute-stats")
@with_app
def recompute_stats_cmd() -> None:
    """Rebuild every customer's order count, spend and last purchase from the purchase history.

    The figures are normally kept by increments after each order change (through the
    outbox); run this after a restore, an import straight into the tables, or to check them.
    """
    from plugins.crm.history import recompute_all

    changed = recompute_all()
    db.session.commit()
    click.echo(f"Purchase figures rebuilt: {changed} customer(s) corrected.")
