"""Schemathesis over ``/api/v1/openapi.json`` as admin, rep and anonymous (``make fuzz``).

Builds a throwaway instance with every plugin and a small demo company (SQLite in a
temporary folder, or a fresh schema on the PostgreSQL server given with ``--postgres``),
then runs schemathesis in-process against the WSGI app, once per identity, with two
checks: ``not_a_server_error`` (no 5xx) and ``response_schema_conformance`` (every answer
matches what the OpenAPI document says for its status). Exits 1 when any check failed.

    python tests/fuzz/run_schemathesis.py                        # SQLite, 20 examples
    python tests/fuzz/run_schemathesis.py --postgres postgresql+psycopg://postgres@127.0.0.1/test
    python tests/fuzz/run_schemathesis.py --as rep --operation 'orders' --max-examples 50

Not part of the default suite (a few minutes); the issue 7 acceptance criterion.
"""

from __future__ import annotations

import argparse
import logging
import re
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

IDENTITIES = ("admin", "rep", "anonymous")
CHECKS = ("not_a_server_error", "response_schema_conformance")


def build_app(workdir: Path, database_url: str, scale: float) -> Any:
    """An app with every available plugin, its tables and demo data."""
    from core.app import create_app, create_tables
    from core.cli_commands import populate_demo
    from core.plugins import discover

    config = workdir / "config"
    shutil.copytree(REPO / "config", config)
    (config / "dovetail.yaml").write_text("locale: en\n", encoding="utf-8")
    plugins = [name for name, av in discover().items() if av.error is None]
    app = create_app(config, plugins=plugins, testing=True, config={
        "database_url": database_url, "secret_key": "fuzz",
        "security": {"argon2_time_cost": 1, "argon2_memory_kib": 64}})
    app.instance_path = str(workdir / "instance")
    create_tables(app)
    with app.app_context():
        populate_demo(app, scale, 42)
    return app


def tokens(app: Any) -> dict[str, str | None]:
    """A bearer token for an admin and for a rep of the demo company."""
    from core.auth import create_user, issue_token
    from core.db import db
    from core.models import Team

    with app.app_context():
        team = db.session.query(Team).order_by(Team.id).first()
        out: dict[str, str | None] = {"anonymous": None}
        for role in ("admin", "rep"):
            user = create_user(f"fuzz_{role}", "fuzz-password-1", [role],
                               team_id=team.id if team is not None else None)
            out[role] = issue_token(user, "fuzz")
        db.session.commit()
    return out


def run_identity(app: Any, name: str, token: str | None, args: argparse.Namespace) -> list[str]:
    """Run schemathesis as one identity; returns one line per failing check."""
    import schemathesis
    from schemathesis.config import SchemathesisConfig
    from schemathesis.engine import Status, events, from_schema

    project: dict[str, Any] = {
        "checks": {"enabled": False, **{c: {"enabled": True} for c in CHECKS}},
        "generation": {"max-examples": args.max_examples, "mode": args.mode},
        "phases": {"stateful": {"enabled": False}},
        "continue-on-failure": True,
        "workers": 1,
    }
    if token:
        project["headers"] = {"Authorization": f"Bearer {token}"}
    config = SchemathesisConfig.from_dict({"seed": args.seed, **project})
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app, config=config)
    if args.operation:
        schema = schema.include(path_regex=args.operation)

    failures: list[str] = []
    seen: set[tuple[str, ...]] = set()
    statuses: Counter[str] = Counter()
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            statuses[event.status.value] += 1
            if event.status == Status.SKIP and args.verbose:
                print(f"[{name}] skipped {event.phase.value} {event.label}: {event.skip_reason}")
            if event.status not in (Status.FAILURE, Status.ERROR):
                continue
            for checks in event.recorder.checks.values():
                for check in checks:
                    if check.failure_info is None:
                        continue
                    failure = check.failure_info.failure
                    message = str(getattr(failure, "message", ""))
                    # One line per operation and kind of problem, not per generated value.
                    key = (check.name, event.label, failure.title,
                           re.sub(r'"[^"]*"|\d+', "…", message.split("Value:")[0])[:400])
                    if key in seen:
                        continue
                    seen.add(key)
                    failures.append(f"[{name}] {check.name}: {event.label}: {failure.title} -- "
                                    f"{message[:400]}")
                    if args.verbose:
                        print(failures[-1], "\n   ", check.failure_info.code_sample[:1500], flush=True)
        elif isinstance(event, events.NonFatalError):
            failures.append(f"[{name}] error: {event.label}: {event.info.format()[:500]}")
        elif isinstance(event, events.FatalError):
            failures.append(f"[{name}] fatal: {event.exception}")
    print(f"[{name}] scenarios: {dict(statuses)}; failing checks: {len(failures)}", flush=True)
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", metavar="URL",
                        help="run on a fresh schema of this PostgreSQL server instead of SQLite")
    parser.add_argument("--as", dest="identities", default=",".join(IDENTITIES),
                        help="comma-separated identities (default: admin,rep,anonymous)")
    parser.add_argument("--max-examples", type=int, default=20)
    parser.add_argument("--mode", default="all", choices=("all", "positive", "negative"))
    parser.add_argument("--operation", help="only paths matching this regular expression")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--scale", type=float, default=0.02, help="demo data scale")
    parser.add_argument("-v", "--verbose", action="store_true", help="print a reproduction per failure")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.CRITICAL)  # expected 4xx noise; failures are reported below

    workdir = Path(tempfile.mkdtemp(prefix="dovetail-fuzz-"))
    schema_name = None
    engine = None
    if args.postgres:
        import sqlalchemy as sa

        schema_name = "fuzz_" + uuid.uuid4().hex[:10]
        engine = sa.create_engine(args.postgres)
        with engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema_name}"'))
        sep = "&" if "?" in args.postgres else "?"
        url = f"{args.postgres}{sep}options=-csearch_path%3D{schema_name}"
    else:
        url = f"sqlite:///{workdir / 'fuzz.db'}"
    started = time.monotonic()
    try:
        app = build_app(workdir, url, args.scale)
        ids = tokens(app)
        failures: list[str] = []
        for name in [n.strip() for n in args.identities.split(",") if n.strip()]:
            if name not in ids:
                parser.error(f"unknown identity {name!r}; use {', '.join(IDENTITIES)}")
            failures += run_identity(app, name, ids[name], args)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if engine is not None:
            with engine.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema_name}" CASCADE'))
            engine.dispose()
    db = "PostgreSQL" if args.postgres else "SQLite"
    print(f"\n{db}: {len(failures)} failing checks in {time.monotonic() - started:.0f}s")
    for line in failures:
        print(" ", re.sub(r"\s+", " ", line))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
