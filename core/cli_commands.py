"""Core CLI commands: init, db, run, plugins, users, roles, audit, demo."""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from sqlalchemy import select

from core.cli import cli, get_app, with_app
from core.errors import DovetailError
from core.state import dovetail


def fail(message: str) -> None:
    raise click.ClickException(message)


# ---------------------------------------------------------------------------
# init / db / run / demo
# ---------------------------------------------------------------------------


@cli.command()
@click.option("--admin", "admin_name", default="admin", show_default=True)
@click.option("--password-stdin", is_flag=True, help="Read the admin password from stdin.")
@click.option("--if-new", is_flag=True,
              help="Only when no user exists: also load the demo data. Otherwise just apply "
                   "pending migrations and say so (used by 'make run').")
@click.option("--demo-scale", default=1.0, show_default=True, type=float,
              help="Size of the demo data loaded with --if-new.")
@with_app
def init(admin_name: str, password_stdin: bool, if_new: bool, demo_scale: float) -> None:
    """Create the instance folder and database, and the first admin (password printed once)."""
    from core import activation, migrate
    from core.auth import create_user
    from core.db import db
    from core.models import User

    app = get_app()
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    migrate.upgrade_all(app)
    try:
        if activation.apply_initial(app) is not None:
            click.echo("Config files applied as version 1.")
    except DovetailError as exc:
        _config_errors(exc)
    if db.session.scalar(select(User.id).limit(1)) is not None:
        if if_new:
            click.echo("Instance already initialised (users exist): migrations applied, no admin "
                       "created, no demo data loaded.")
        else:
            click.echo("Database ready; users already exist, no admin created.")
        return
    password = sys.stdin.readline().strip() if password_stdin else secrets.token_urlsafe(12)
    create_user(admin_name, password, ["admin"], display_name="Administrator")
    db.session.commit()
    click.echo(f"Database ready at {app.config['SQLALCHEMY_DATABASE_URI']}.")
    if not password_stdin:
        click.echo(f"Admin login: {admin_name} / {password}  (shown once; change it with "
                   f"'dovetail users set-password {admin_name}')")
    if if_new:
        click.echo(f"Loading demo data (scale {demo_scale}) ...")
        populate_demo(app, demo_scale, 42)
        db.session.commit()
        click.echo("Demo data loaded.")
        for line in demo_logins(("manager", "rep")):
            click.echo(line)


def demo_logins(roles: tuple[str, ...]) -> list[str]:
    """A new password (shown once) for the first active user of each role in ``roles`` that
    the demo data created, so a fresh instance can be tried as a manager and as a rep."""
    from core.auth import hash_password
    from core.db import db
    from core.models import User, UserRole

    lines = []
    for role in roles:
        user = db.session.scalar(select(User).join(UserRole, UserRole.user_id == User.id)
                                 .where(UserRole.role == role, User.active.is_(True))
                                 .order_by(User.id).limit(1))
        if user is None:
            continue
        password = secrets.token_urlsafe(12)
        user.password_hash = hash_password(password)
        lines.append(f"Demo {role} login: {user.username} / {password}  (shown once)")
    db.session.commit()
    return lines


@cli.group()
def db() -> None:
    """Database migrations (one Alembic branch per plugin)."""


@db.command("upgrade")
@click.option("--plugin", default=None, help="Only this plugin (default: core and every enabled).")
@with_app
def db_upgrade(plugin: str | None) -> None:
    """Apply pending migrations of the core and the enabled plugins."""
    from core import activation, migrate

    for name, rev in migrate.upgrade_all(get_app(), only=plugin):
        click.echo(f"{name}: at {rev or 'base'}")
    if plugin is None:
        try:
            if activation.apply_initial(get_app()) is not None:
                click.echo("Config files applied as version 1.")
        except DovetailError as exc:
            _config_errors(exc)


@db.command("downgrade")
@click.argument("plugin")
@click.option("--to", "target", default="base", show_default=True)
@with_app
def db_downgrade(plugin: str, target: str) -> None:
    """Downgrade one plugin's tables (``base`` drops them: its data is lost)."""
    from core import migrate

    migrate.downgrade(get_app(), plugin, target)
    click.echo(f"{plugin}: at {target}")


@db.command("revision")
@click.option("--plugin", required=True)
@click.option("-m", "--message", required=True)
@with_app
def db_revision(plugin: str, message: str) -> None:
    """Autogenerate a migration for one plugin's models (developers)."""
    from core import migrate

    path = migrate.revision(get_app(), plugin, message)
    click.echo(f"created {path}")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--debug", is_flag=True)
def run(host: str, port: int, debug: bool) -> None:
    """Serve the web UI and API (development server; use a WSGI server in production)."""
    app = get_app()
    app.run(host=host, port=port, debug=debug, use_reloader=False, threaded=True)


def populate_demo(app, scale: float, seed: int) -> None:
    """Call every plugin's ``populate_demo`` in dependency order (catalog before inventory …).

    pluggy calls implementations last-registered first; plugins are registered in
    dependency order, so walk them in registration order instead.
    """
    args = {"scale": scale, "seed": seed}
    for impl in dovetail(app).pm.hook.populate_demo.get_hookimpls():
        impl.function(**{k: args[k] for k in impl.argnames})


@cli.command()
@click.option("--scale", default=1.0, show_default=True, type=float,
              help="1.0 = 1k customers, 100 products, 5k orders.")
@click.option("--seed", default=42, show_default=True, type=int)
@with_app
def demo(scale: float, seed: int) -> None:
    """Fill the database with a realistic demo company (Faker zh_CN)."""
    app = get_app()
    populate_demo(app, scale, seed)
    click.echo("Demo data loaded.")


# ---------------------------------------------------------------------------
# plugins
# ---------------------------------------------------------------------------


@cli.group()
def plugins() -> None:
    """List, inspect, enable, disable and scaffold plugins."""


@plugins.command("list")
@click.pass_context
def plugins_list(ctx: click.Context) -> None:
    """Every available plugin with version, enabled state and dependencies.

    A broken ``dovetail.yaml`` still lists what is installed, then prints its located
    errors and exits 1.
    """
    from core import plugin_admin
    from core.errors import ConfigError

    rows = plugin_admin.rows(ctx.find_root().params.get("config"), ctx.find_root().obj)
    broken = [issue for r in rows for issue in r.get("issues", ())]
    rows = [r for r in rows if not r.get("issues")]
    width = max([len(r["name"]) for r in rows] + [6])
    click.echo(f"{'PLUGIN':<{width}}  {'VERSION':<8}  {'ENABLED':<7}  DEPENDS")
    for r in rows:
        deps = ", ".join(r["depends"]) or "-"
        if r["optional"]:
            deps += f" (optional: {', '.join(r['optional'])})"
        state = "?" if broken else "yes" if r["enabled"] else "no"
        click.echo(f"{r['name']:<{width}}  {r['version']:<8}  {state:<7}  {deps}")
        if r["error"]:
            click.echo(f"{'':<{width}}  ! {r['error']}")
    if broken:
        raise ConfigError(broken)


@plugins.command("info")
@click.argument("name")
@click.pass_context
def plugins_info(ctx: click.Context, name: str) -> None:
    """Manifest, permissions, routes, menus, commands and actions of one plugin."""
    from core import plugin_admin

    for line in plugin_admin.info(ctx.find_root().params.get("config"), name, ctx.find_root().obj):
        click.echo(line)


@plugins.command("enable")
@click.argument("name")
@click.pass_context
def plugins_enable(ctx: click.Context, name: str) -> None:
    """Enable a plugin in dovetail.yaml (its dependencies must be enabled)."""
    from core import plugin_admin

    click.echo(plugin_admin.enable(ctx.find_root().params.get("config"), name, ctx.find_root().obj))


@plugins.command("disable")
@click.argument("name")
@click.option("--dry-run", is_flag=True, help="Print what goes away; change nothing.")
@click.pass_context
def plugins_disable(ctx: click.Context, name: str, dry_run: bool) -> None:
    """Disable a plugin; refused while an enabled plugin depends on it. Data is kept."""
    from core import plugin_admin

    for line in plugin_admin.disable(ctx.find_root().params.get("config"), name, dry_run,
                                     ctx.find_root().obj):
        click.echo(line)


@plugins.command("new")
@click.argument("name")
@click.option("--dest", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="Folder to create the package in.")
def plugins_new(name: str, dest: Path) -> None:
    """Scaffold a working plugin package (hooks, a model, an API route, a test)."""
    from core.scaffold import scaffold

    path = scaffold(name, dest)
    click.echo(f"Created {path}. Next: pip install -e {path} && pytest {path}")


# ---------------------------------------------------------------------------
# users / roles / audit
# ---------------------------------------------------------------------------


@cli.group()
def users() -> None:
    """Create, list and manage users."""


@users.command("create")
@click.argument("username")
@click.option("--role", "roles", multiple=True, required=True, help="Repeat for several roles.")
@click.option("--name", "display_name", default="")
@click.option("--team", default=None, help="Team name (created if missing).")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@with_app
def users_create(username: str, roles: tuple[str, ...], display_name: str, team: str | None,
                 password_stdin: bool) -> None:
    """Create a user; prints a generated password unless --password-stdin."""
    from core.auth import create_user
    from core.db import db
    from core.models import Team

    password = sys.stdin.readline().rstrip("\n") if password_stdin else secrets.token_urlsafe(12)
    team_id = None
    if team:
        t = db.session.scalar(select(Team).where(Team.name == team))
        if t is None:
            t = Team(name=team)
            db.session.add(t)
            db.session.flush()
        team_id = t.id
    user = create_user(username, password, list(roles), display_name=display_name, team_id=team_id)
    db.session.commit()
    click.echo(f"Created user {user.username} ({', '.join(roles)}).")
    if not password_stdin:
        click.echo(f"Password: {password}")


@users.command("list")
@with_app
def users_list() -> None:
    """All users with roles, team and state."""
    from core.db import db
    from core.models import User

    for u in db.session.scalars(select(User).order_by(User.username)):
        team = u.team.name if u.team else "-"
        state = "active" if u.active else "disabled"
        click.echo(f"{u.username:<20} {','.join(u.role_names):<24} {team:<16} {state}")


def _user(username: str):
    from core.auth import user_by_name

    user = user_by_name(username)
    if user is None:
        fail(f"no user '{username}'")
    return user


@users.command("set-password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True)
@with_app
def users_set_password(username: str, password_stdin: bool) -> None:
    """Set a user's password (prompted, or read from stdin)."""
    from core.auth import check_password_policy, hash_password
    from core.db import db

    user = _user(username)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    check_password_policy(password)
    user.password_hash = hash_password(password)
    db.session.commit()
    click.echo(f"Password of {username} changed.")


@users.command("disable")
@click.argument("username")
@with_app
def users_disable(username: str) -> None:
    """Disable a user and revoke their API tokens."""
    from core.db import db, utcnow
    from core.models import ApiToken

    user = _user(username)
    user.active = False
    for tok in db.session.scalars(select(ApiToken).where(ApiToken.user_id == user.id,
                                                         ApiToken.revoked_at.is_(None))):
        tok.revoked_at = utcnow()
    db.session.commit()
    click.echo(f"Disabled {username}; their API tokens are revoked.")


@cli.group()
def roles() -> None:
    """Roles from roles.yaml."""


@roles.command("list")
def roles_list() -> None:
    """Roles with scope and permissions."""
    app = get_app()
    for role in dovetail(app).config.roles.values():
        click.echo(f"{role.name:<14} scope={role.scope:<5} {', '.join(role.permissions)}")


@roles.command("check")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
def roles_check(file: Path | None) -> None:
    """Check a roles file (default: config/roles.yaml) against the enabled plugins.

    Prints every mistake as file:line:column and exits 1, or "ok". Nothing changes in a
    running server until 'dovetail config apply'.
    """
    from core.roles import load_roles, state

    app = get_app()  # a broken config/roles.yaml stops here, each mistake located
    dv = dovetail(app)
    path = file or dv.config.roles_file
    st = state(app)
    display = str(file) if file else (st.display if st else str(path))
    if not path.exists() and file is None:
        click.echo(f"{display}: not found; the built-in roles are in force ({', '.join(dv.config.roles)})")
        return
    _doc, found = load_roles(path, display, dv.registry, dv.available)
    click.echo(f"{display}: ok ({len(found)} roles: {', '.join(found)})")


@cli.group("config")
def config_group() -> None:
    """Check and apply the run-time config (roles, workflows, custom fields, dovetail.yaml)."""


def _config_errors(exc: Exception) -> None:
    """One line per located error on stderr, exit 1."""
    from core.errors import ConfigError

    issues = exc.issues if isinstance(exc, ConfigError) else []
    for issue in issues:
        click.echo(str(issue), err=True)
    if not issues:
        click.echo(f"error: {exc}", err=True)
    raise SystemExit(1)


@config_group.command("check")
@with_app
def config_check() -> None:
    """Check every config file as 'apply' would (file:line:column per mistake); change nothing."""
    from core import activation

    try:
        notices = activation.check(get_app())
    except DovetailError as exc:
        _config_errors(exc)
    for line in notices:
        click.echo(line)
    click.echo("ok: 'dovetail config apply' puts these files in force")


@config_group.command("apply")
@click.option("--force", is_flag=True, help="Accept a custom-field change that leaves stored values invalid.")
@with_app
def config_apply(force: bool) -> None:
    """Check every config file and put them in force in every worker, as one new version.

    A broken file refuses the whole apply (one line per mistake, exit 1); the version in
    force stays.
    """
    from core import activation

    try:
        done = activation.apply(get_app(), actor="cli", force=force, note="dovetail config apply")
    except DovetailError as exc:
        _config_errors(exc)
    for line in done.notices:
        click.echo(line)
    if done.unchanged:
        click.echo(f"config version {done.version} is in force already (no file changed)")
    else:
        click.echo(f"config version {done.version} applied ({done.digest[:12]})")


@cli.group()
def audit() -> None:
    """The audit chain."""


@contextmanager
def _audit_tables() -> Iterator[None]:
    """A database error while sealing or reading the chain becomes one line, not a traceback."""
    from sqlalchemy.exc import DBAPIError

    try:
        yield
    except DBAPIError as exc:
        cause = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else type(exc).__name__
        raise DovetailError(f"cannot read the audit chain ({cause}); if the database was not "
                            f"upgraded to this release, run 'dovetail db upgrade'") from exc


@audit.command("seal")
@with_app
def audit_seal() -> None:
    """Seal the committed entries written since the last seal into the hash chain.

    Writers take no lock; this is the one sequencer (run it from the job worker or cron)."""
    from core.audit import seal
    from core.db import db

    with _audit_tables():
        sealed = seal(db.session)
    click.echo(f"Sealed {sealed} new audit entries.")


@audit.command("verify")
@with_app
def audit_verify() -> None:
    """Seal the entries written since the last seal, then check every sealed entry's hash and
    link and the chain's end against its anchored head; exit 1 at the first problem (an
    altered or deleted entry, entries cut off the end)."""
    from core.audit import seal, verify
    from core.db import db

    with _audit_tables():
        sealed = seal(db.session)
        if sealed:
            click.echo(f"Sealed {sealed} new audit entries.")
        report = verify(db.session)
    if not report.ok:
        raise DovetailError(report.problem or "the audit chain does not verify")
    end = f", the last is entry {report.last_id}" if report.last_id else ""
    waiting = (f" {report.unsealed} entries committed since are not sealed yet."
               if report.unsealed else "")
    click.echo(f"Audit chain intact: {report.checked} entries{end}.{waiting}")


# ---------------------------------------------------------------------------
# Production serving and background work
# ---------------------------------------------------------------------------


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (0.0.0.0: all).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64),
              help="Worker processes (each builds its own app and database pool).")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Threads per worker.")
@click.option("--timeout", default=60, show_default=True, type=click.IntRange(5, 3600),
              help="Seconds before a silent worker is restarted.")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, workers: int, threads: int, timeout: int) -> None:
    """Serve the web UI and API with gunicorn (production).

    The config is checked first (a mistake is one line here, not a crash in every worker).
    Equivalent to: gunicorn -w N -b HOST:PORT 'core.app:create_app()'.
    """
    import os

    from gunicorn.app.base import BaseApplication

    get_app()  # validate config and plugins before forking workers
    config_dir = ctx.find_root().params.get("config")
    if config_dir is not None:
        os.environ["DOVETAIL_CONFIG"] = str(config_dir)
    options = {"bind": f"{host}:{port}", "workers": workers, "threads": threads, "timeout": timeout,
               "accesslog": "-"}

    class Server(BaseApplication):  # gunicorn is untyped (Any to mypy)
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> object:
            from core.app import create_app

            return create_app(os.environ.get("DOVETAIL_CONFIG"))

    click.echo(f"Serving on http://{host}:{port} with {workers} worker(s) (gunicorn).", err=True)
    Server().run()


@cli.command()
@click.option("--burst", is_flag=True, help="Process the pending outbox and due jobs, then exit.")
@click.option("--inline", is_flag=True, help="Work in this process without RQ, even when Redis is configured.")
@click.option("--interval", default=5.0, show_default=True, type=click.FloatRange(0.1, 3600),
              help="Seconds between schedule checks (and outbox polls inline).")
@with_app
def worker(burst: bool, inline: bool, interval: float) -> None:
    """Run background work: the outbox, scheduled jobs (reminders) and queued jobs.

    With DOVETAIL_REDIS_URL an RQ worker on the queue plus a scheduler; without it (or with
    --inline) an in-process loop. Run as many as you like: each job runs once per schedule.
    """
    from core import jobs

    if not inline and dovetail().redis is None:
        click.echo("No Redis configured (DOVETAIL_REDIS_URL): working inline.", err=True)
        inline = True
    try:
        report = jobs.work(burst=burst, inline=inline, interval=interval)
    except KeyboardInterrupt:
        click.echo("Worker stopped.", err=True)
        return
    if burst:
        ran = ", ".join(report.scheduled) or "none due"
        done = f"{report.outbox_done} outbox message(s) done; " if report.mode == "inline" else ""
        click.echo(f"Worker ({report.mode}) finished: {done}scheduled jobs: {ran}.")


@cli.group("outbox")
def outbox_group() -> None:
    """The outbox: work written with business changes, done by the worker."""


@outbox_group.command("status")
@with_app
def outbox_status() -> None:
    """Messages per kind and status, the last error of dead ones, and each scheduled job's last run."""
    from sqlalchemy import func

    from core import jobs
    from core.db import db
    from core.outbox import DEAD, OutboxMessage

    rows = db.session.execute(select(OutboxMessage.kind, OutboxMessage.status, func.count())
                              .group_by(OutboxMessage.kind, OutboxMessage.status)
                              .order_by(OutboxMessage.kind, OutboxMessage.status)).all()
    if not rows:
        click.echo("Outbox: empty.")
    for kind, status, n in rows:
        click.echo(f"{kind:40} {status:8} {n}")
    for msg in db.session.scalars(select(OutboxMessage).where(OutboxMessage.status == DEAD)
                                  .order_by(OutboxMessage.id.desc()).limit(10)):
        click.echo(f"dead #{msg.id} {msg.kind} after {msg.attempts} attempts: {msg.last_error}")
    for name, last in jobs.last_runs().items():
        click.echo(f"job {name:40} last run {last.isoformat(' ', 'seconds') + ' UTC' if last else 'never'}")
    db.session.rollback()  # only read: end the transaction (on SQLite it holds the write lock)


@outbox_group.command("retry")
@with_app
def outbox_retry() -> None:
    """Give dead messages (those that ran out of attempts) new attempts, once the cause is fixed."""
    from core.outbox import requeue_dead

    click.echo(f"{requeue_dead()} dead message(s) queued again.")
