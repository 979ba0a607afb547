"""CLI: ``dovetail export campaign-audience CAMPAIGN_ID`` (the consenting target list)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from core.cli import with_app
from core.db import db
from core.errors import NotFound
from plugins.crm.public import Customer


@click.command("campaign-audience")
@click.argument("campaign_id", type=int)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="CSV file to write; default: standard output.")
@click.option("--as", "as_user", default=None,
              help="Export what this user may see, masked as they would see it (default: everything).")
@with_app
def export_audience_cmd(campaign_id: int, output: Path | None, as_user: str | None) -> None:
    """Export a campaign's consenting target customers as CSV (formula cells neutralised)."""
    from core.export import write_csv
    from core.scope import dump
    from plugins.marketing import services
    from plugins.marketing.models import Campaign
    from plugins.marketing.schemas import AUDIENCE_COLUMNS, AudienceOut

    user = None
    if as_user:
        from core.auth import user_by_name

        user = user_by_name(as_user)
        if user is None or not user.active:
            raise NotFound(f"no active user '{as_user}'")
    campaign = db.session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound(f"no campaign with id {campaign_id}")
    rows = db.session.scalars(services.audience_query(campaign, user)).all()
    schema = AudienceOut(many=True)
    data = dump(schema, rows, Customer, user, many=True, channel="cli export audience") if user is not None \
        else schema.dump(rows)
    header = [label for _k, label in AUDIENCE_COLUMNS]
    values = ([r.get(k) for k, _l in AUDIENCE_COLUMNS] for r in data)
    if output is None:
        n = write_csv(sys.stdout, header, values)
    else:
        with output.open("w", encoding="utf-8", newline="") as fh:
            n = write_csv(fh, header, values)
    db.session.commit()  # keeps the personal-data access log
    click.echo(f"Exported {n} customers of campaign '{campaign.name}'.", file=sys.stderr)
