"""The ``dovetail`` command line (click).

Core commands are defined here; plugins add theirs through ``register_commands``.
Expected errors print one clear line and exit 1 — never a traceback.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app, has_app_context

from core.errors import ConfigError, DovetailError
from core.state import dovetail

CORE_GROUPS = ("import", "export")


def _make_app(ctx: click.Context) -> Flask:
    root = ctx.find_root()
    root.obj = root.obj if isinstance(root.obj, dict) else {}
    if root.obj.get("app") is None:
        from core.app import create_app  # noqa: PLC0415 - core.app imports this module (through core.plugins)

        root.obj["app"] = create_app(root.params.get("config"))
    return root.obj["app"]


def get_app() -> Flask:
    return _make_app(click.get_current_context())


def with_app(fn):
    """Run a command inside the configured app's context."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from core.audit import acting_as  # noqa: PLC0415 - core.audit -> core.auth -> core.state -> core.app imports this module

        app = get_app()
        if has_app_context() and current_app._get_current_object() is app:  # type: ignore[attr-defined]
            # Already inside this app (the ``runner`` test fixture): share its session, or a
            # second SQLite session would wait on the first one's write lock.
            with acting_as(None, "cli"):
                return fn(*args, **kwargs)
        with app.app_context():
            with acting_as(None, "cli"):
                return fn(*args, **kwargs)

    return wrapper


class DovetailGroup(click.Group):
    """Adds the enabled plugins' commands lazily (the app is built on first need)."""

    def _plugin_commands(self, ctx: click.Context) -> dict[str, click.Command]:
        try:
            app = _make_app(ctx)
        except DovetailError:
            return {}
        out: dict[str, click.Command] = {}
        groups: dict[str, click.Group] = {}
        for cmd, _owner in dovetail(app).registry.commands:
            if cmd.group:
                if cmd.group not in groups:
                    groups[cmd.group] = click.Group(cmd.group, help=f"{cmd.group.capitalize()} "
                                                    "commands contributed by plugins.")
                groups[cmd.group].add_command(cmd.command)
            else:
                out[str(cmd.command.name)] = cmd.command
        out.update(groups)
        return out

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = set(super().list_commands(ctx))
        if not ctx.resilient_parsing:
            names |= set(self._plugin_commands(ctx))
        return sorted(names)

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        """Expected errors become one line on stderr and exit 1; no traceback."""
        try:
            rv = super().main(args, prog_name or "dovetail", complete_var,
                              standalone_mode=False, **extra)
        except click.exceptions.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(1)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except ConfigError as exc:
            for issue in exc.issues:
                click.echo(str(issue), err=True)  # file:line:column: severity: message
            sys.exit(1)
        except DovetailError as exc:
            click.echo(f"error: {exc.message}", err=True)
            sys.exit(1)
        if standalone_mode:
            sys.exit(rv if isinstance(rv, int) else 0)
        return rv

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        cmd = super().get_command(ctx, name)
        if cmd is not None:
            return cmd
        found = self._plugin_commands(ctx).get(name)
        if found is None and not ctx.resilient_parsing:
            _make_app(ctx)  # a plugin command may be missing because the config is broken: say so
        return found


@click.group(cls=DovetailGroup)
@click.option("--config", "config", type=click.Path(file_okay=False, path_type=Path),
              envvar="DOVETAIL_CONFIG", default=None,
              help="Config folder (default: ./config or DOVETAIL_CONFIG).")
@click.version_option(package_name="dovetail")
@click.pass_context
def cli(ctx: click.Context, config: Path | None) -> None:
    """Dovetail: an ERP framework for direct-selling and sales-driven companies."""
    if not isinstance(ctx.obj, dict):
        ctx.obj = {}


main = cli  # console script entry point


from core import cli_commands  # noqa: E402,F401 - registers the core commands on ``cli``
