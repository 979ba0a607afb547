"""``dovetail workflow check|show|simulate|reload|list``."""

from __future__ import annotations

from pathlib import Path

import click

from core.cli import with_app
from core.errors import NotFound
from core.state import dovetail
from plugins.workflows import diagram
from plugins.workflows.checker import check_text
from plugins.workflows.simulate import SimUser, parse_record, simulate
from plugins.workflows.store import count_outside, known_from_app, store


@click.group("workflow")
def workflow() -> None:
    """Check, show, simulate and reload the workflows in config/workflows/."""


def _echo_issue(issue) -> None:
    click.echo(str(issue), err=issue.severity == "error")


@workflow.command("check")
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@with_app
def check_cmd(files: tuple[Path, ...]) -> None:
    """Check workflow files (default: every file in config/workflows/); exit 1 on any error."""
    st = store()
    paths = list(files) or sorted(p for p in st.dir.glob("*.y*ml") if p.is_file())
    if not paths:
        click.echo(f"No workflow files in {st.display(st.dir)}.")
        return
    known = known_from_app()
    errors = 0
    taken: dict[str, str] = {}
    for path in paths:
        display = st.display(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            click.echo(f"{display}:1:1: error: cannot read: {exc}", err=True)
            errors += 1
            continue
        result = check_text(text, display, known, counter=count_outside, taken=taken, in_force=st.in_force)
        if result.skipped:
            click.echo(f"notice: {result.skipped}")
            continue
        for issue in result.issues:
            _echo_issue(issue)
        errors += len(result.errors)
        if result.entity and result.entity not in taken:
            taken[result.entity] = display
        if result.ok:
            warn = len(result.issues)
            moves = "".join(f"; on reload moves {n} record(s) from '{s}' to '{t}'"
                            for s, (t, n) in sorted(result.moves.items()))
            click.echo(f"{display}: ok ({result.entity}, {len(result.machine.states)} states, "
                       f"{len(result.machine.transitions)} transitions"
                       + (f", {warn} warning(s)" if warn else "") + f"){moves}")
    if errors:
        raise click.ClickException(f"{errors} error(s) in {len(paths)} file(s).")


@workflow.command("show")
@click.argument("name")
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot"]), default="mermaid", show_default=True)
@with_app
def show_cmd(name: str, fmt: str) -> None:
    """Print the state diagram of the workflow in force for NAME (file or entity name)."""
    found = store().by_name(name)
    if found is None:
        known = ", ".join(sorted(dovetail().registry.workflow_entities))
        raise NotFound(f"No workflow '{name}'; known: {known or 'none'}.")
    _entity, machine = found
    click.echo(diagram.mermaid(machine) if fmt == "mermaid" else diagram.dot(machine), nl=False)


@workflow.command("simulate")
@click.argument("name")
@click.option("--as", "role", required=True, help="Role to act as (from config/roles.yaml).")
@click.option("--record", "record", required=True, help='The record as JSON, e.g. \'{"status": "draft"}\'.')
@click.option("--steps", default="", help="Comma-separated transitions to walk, e.g. confirm,pay.")
@with_app
def simulate_cmd(name: str, role: str, record: str, steps: str) -> None:
    """Walk transitions over a JSON record as ROLE; nothing is written."""
    dv = dovetail()
    if role not in dv.config.roles:
        raise click.ClickException(f"Unknown role '{role}'; known: {', '.join(sorted(dv.config.roles))}.")
    found = store().by_name(name)
    if found is None:
        raise NotFound(f"No workflow '{name}'.")
    entity, machine = found
    ent = dv.registry.workflow_entities[entity][0]
    ctx = parse_record(record, machine, ent.context_names)
    wanted = [s.strip() for s in steps.split(",") if s.strip()]
    results = simulate(machine, ent, SimUser(role), ctx, wanted)
    start = ctx[next(iter(ctx))].get(machine.field) or machine.initial
    click.echo(f"{machine.name} as {role}, starting in '{start}' (nothing is written):")
    if not results:
        click.echo("  no transitions leave this state")
    for r in results:
        mark = "allowed" if r["allowed"] else "refused"
        arrow = f"{r['from']} -> {r['to']}" if r["to"] else r["from"]
        line = f"  {r['step']}: {mark} ({arrow})"
        if r["reason"]:
            line += f": {r['reason']}"
        if r.get("notes"):
            line += " [" + "; ".join(r["notes"]) + "]"
        click.echo(line)
    if wanted and (len(results) < len(wanted) or not results[-1]["allowed"]):
        raise click.ClickException(f"stopped at '{results[-1]['step']}'.")


@workflow.command("reload")
@with_app
def reload_cmd() -> None:
    """Apply the config, as 'dovetail config apply' does: every file is checked and, if all pass, put in
    force in every worker (records in removed states moved); a refused file changes nothing."""
    ok, files, issues = store().reload("cli")
    shown = set()
    for f in files:
        click.echo(f"{f.display}: {f.status}" + (f" (version {f.version})" if f.version else "")
                   + (f" - {f.notice}" if f.notice else ""))
        for issue in f.issues:
            _echo_issue(issue)
            shown.add(str(issue))
    for issue in issues:  # another config file (roles.yaml ...) refused the apply
        if str(issue) not in shown:
            _echo_issue(issue)
    if not ok:
        bad = sum(f.status == "refused" for f in files)
        raise click.ClickException(f"{bad} workflow file(s) refused, {len(issues)} error(s) in all; nothing "
                                   "changed and the config version in force stays.")


@workflow.command("list")
@with_app
def list_cmd() -> None:
    """Every workflow entity and where its workflow in force comes from."""
    from core.statemachine import machine_for

    st = store()
    st.refresh(apply=False)
    for name in sorted(dovetail().registry.workflow_entities):
        try:
            m = machine_for(name)
        except NotFound:
            click.echo(f"{name}: no workflow")
            continue
        click.echo(f"{name}: {m.source} (version {m.version}, {len(m.states)} states)")
    for f in st.files.values():
        if f.status != "active":
            click.echo(f"{f.display}: {f.status}" + (f" - {f.notice}" if f.notice else ""))
