"""``dovetail fields list`` and ``dovetail fields check [--force]``."""

from __future__ import annotations

import click

from core.cli import with_app
from core.errors import ConfigError


@click.group("fields")
def fields_group() -> None:
    """Custom fields defined in config/custom_fields.yaml."""


@fields_group.command("list")
@click.option("--entity", default=None, help="Only this entity (customer, order, product …).")
@click.option("--all", "show_all", is_flag=True, help="Include hidden fields.")
@with_app
def list_fields(entity: str | None, show_all: bool) -> None:
    """List the custom fields in force."""
    from plugins.customfields import store

    st = store.refresh(write=True)
    rows = sorted(st.defs.values(), key=lambda fd: (fd.entity, fd.key))
    rows = [fd for fd in rows if (show_all or not fd.hidden) and (entity is None or fd.entity == entity)]
    if not rows:
        click.echo("No custom fields.")
    for fd in rows:
        flags = []
        if fd.required:
            flags.append("required")
        if fd.hidden:
            flags.append("hidden")
        if fd.choices:
            flags.append("choices=" + "|".join(fd.choice_values))
        if fd.pattern:
            flags.append(f"pattern={fd.pattern}")
        if fd.min is not None or fd.max is not None:
            flags.append(f"range={'' if fd.min is None else fd.min}..{'' if fd.max is None else fd.max}")
        if fd.read_roles or fd.write_roles:
            flags.append(f"roles=r:{','.join(fd.read_roles) or '*'}/w:{','.join(fd.write_roles) or '*'}")
        click.echo(f"{fd.entity}.{fd.key}\t{fd.type}\t{fd.label_for('en')}\t{' '.join(flags)}".rstrip())
    for problem in st.problems:
        click.echo(f"warning: not in force: {problem}", err=True)


@fields_group.command("check")
@click.option("--force", is_flag=True, help="Report a change that strands stored values without failing.")
@with_app
def check(force: bool) -> None:
    """Validate the file (file:line:column) and count stored values a change strands; changes
    nothing ('dovetail config apply' puts the file in force)."""
    from core.activation import display
    from core.cli import get_app
    from core.config import read_text
    from core.db import db
    from plugins.customfields import store

    app = get_app()
    try:
        path = store.state(app).path
        text = read_text(path, display(app, store.FILE_NAME)) if path.exists() else "fields: {}\n"
        prepared = store.prepare({store.FILE_NAME: text}, applying=True, force=force)
    except ConfigError as exc:
        for issue in exc.issues:
            click.echo(str(issue), err=True)
        raise SystemExit(1) from None
    finally:
        db.session.rollback()
    for w in prepared.loaded.warnings:
        click.echo(str(w), err=True)
    for c in prepared.found:
        click.echo(f"{c.describe()} ({'accepted with --force' if c.misfits else 'ok'})")
    visible = sum(1 for fd in prepared.defs.values() if not fd.hidden)
    click.echo(f"{store.FILE_NAME}: {visible} field(s), {len(prepared.defs) - visible} hidden; "
               "'dovetail config apply' puts the file in force.")
