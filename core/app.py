"""``create_app``: load config, resolve plugins, build one Flask app."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy
from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from core import accesslog, activation, audit, builtin, extras
from core.config import Config, load_config, validate_plugin_settings
from core.db import configure_engine, db, engine_options
from core.errors import ConfigError, ConfigIssue, DovetailError
from core.models import PersonalAccess
from core.plugins import Available, Registry, build_manager, check_roles, collect, discover, resolve
from core.state import EXTENSION, dovetail

log = logging.getLogger("dovetail")


@dataclass
class Dovetail:
    """Per-app state in ``app.extensions["dovetail"]``: config, plugin manager, registry."""

    config: Config
    pm: pluggy.PluginManager
    registry: Registry
    available: Mapping[str, Available]
    redis: Any = None

    @property
    def hook(self) -> Any:
        return self.pm.hook

    def settings(self, plugin: str) -> Mapping[str, Any]:
        return self.registry.settings.get(plugin, {})

    def enabled(self, plugin: str) -> bool:
        return plugin in self.registry.enabled_names

    def all_tables(self) -> list[Any]:
        tables: list[Any] = []
        for models in self.registry.models.values():
            tables.extend(m.__table__ for m in models)
        return tables


def _validate_settings(cfg: Config, registry: Registry, available: Mapping[str, Available],
                       ordered: list[Available]) -> None:
    """Each plugin's ``settings:`` section checked against its schema (into ``registry.settings``);
    a section for an unknown plugin is refused. Every mistake is reported in one ConfigError."""
    issues: list[ConfigIssue] = []
    for name in cfg.settings:
        if name not in registry.enabled_names and name not in available:
            doc = cfg.main_doc
            msg = f"settings for unknown plugin '{name}'"
            issues.append(doc.issue(("settings", name), msg, key=True) if doc else
                          ConfigIssue("dovetail.yaml", 1, 1, msg))
    for p in ordered:
        try:
            registry.settings[p.name] = validate_plugin_settings(cfg, p.name,
                                                                 p.loaded.settings_schema)
        except ConfigError as exc:
            issues.extend(exc.issues)
    if issues:
        raise ConfigError(issues)


def _new_flask(cfg: Config, testing: bool) -> Flask:
    """The Flask object with the settings from ``cfg`` (and ProxyFix behind trusted proxies)."""
    app = Flask("dovetail", instance_path=str(cfg.instance_path),
                template_folder=str(Path(__file__).parent / "web" / "templates"),
                static_folder=str(Path(__file__).parent / "web" / "static"))
    app.config.update(
        SECRET_KEY=cfg.secret_key,
        SQLALCHEMY_DATABASE_URI=cfg.database_url,
        SQLALCHEMY_ENGINE_OPTIONS=engine_options(cfg.database_url),
        TESTING=testing,
        WTF_CSRF_ENABLED=not testing,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        JSON_SORT_KEYS=False,
        MAX_CONTENT_LENGTH=32 * 1024 * 1024,
        BABEL_DEFAULT_LOCALE=cfg.locale,
        BABEL_DEFAULT_TIMEZONE=cfg.timezone,
    )
    proxies = cfg.security.get("trusted_proxies", 0)
    if proxies:
        # Behind ``proxies`` reverse proxies: their X-Forwarded-For gives the client address
        # (login throttling per IP) and X-Forwarded-Proto says HTTPS (Secure cookies, HSTS).

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)  # type: ignore[method-assign]
    return app


def _install_handlers(app: Flask, api: Any, registry: Registry) -> None:
    """Error pages and JSON errors, security headers, /healthz, the personal-access log, rollback."""
    from core.api import handle_error  # noqa: PLC0415 - core.api imports core.app (through core.state)
    from core.web.security import add_security_headers, cdn_origin  # noqa: PLC0415 - core.web imports core.app

    @app.errorhandler(Exception)
    def _any_error(exc: Exception):
        """API errors answer the JSON error shape (503 while the database is unreachable);
        web errors a page (the 503 page is rendered without touching the database)."""
        try:
            db.session.rollback()
        except Exception:  # noqa: BLE001 - the connection may be gone; the answer still goes out
            log.debug("rollback failed while handling %r", exc, exc_info=True)
        if request.path.startswith("/api/"):
            return handle_error(exc)
        from core.web import html_error  # noqa: PLC0415 - core.web imports core.app (through core.state)

        return html_error(exc)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        """flask-smorest answers every HTTP error in JSON, web pages' too (a CSRF failure
        on /login, a 404): the API keeps its handler, web paths get a page."""
        if request.path.startswith("/api/"):
            return api.handle_http_exception(exc)
        from core.web import html_error  # noqa: PLC0415 - core.web imports core.app (through core.state)

        return html_error(exc)

    docs_cdn = cdn_origin(app.config.get("OPENAPI_SWAGGER_UI_URL"))

    @app.after_request
    def _security_headers(response):
        return add_security_headers(response, docs_cdn)

    @app.get("/healthz")
    def healthz():
        try:
            db.session.execute(db.text("SELECT 1"))
            return jsonify({"status": "ok", "plugins": registry.enabled_names})
        except Exception:  # noqa: BLE001 - health endpoint reports, never raises
            return jsonify({"status": "error", "reason": "database unreachable"}), 503

    @app.after_request
    def _keep_access_log(response):
        """Reads that showed unmasked personal data leave a PersonalAccess row: keep it
        (a read request's queued rows in one INSERT, see core.accesslog)."""
        if response.status_code < 400 and any(isinstance(o, PersonalAccess) for o in db.session.new):
            db.session.commit()
        accesslog.write_pending(response.status_code)
        return response

    @app.teardown_request
    def _rollback_leftovers(exc: BaseException | None) -> None:
        if exc is not None:
            db.session.rollback()


def create_app(config_dir: str | Path | None = None, *, config: Mapping[str, Any] | None = None,
               plugins: Iterable[str] | None = None,
               extra_plugins: Mapping[str, ModuleType | str] | None = None,
               testing: bool = False) -> Flask:
    """Build the app.

    ``config_dir``: folder holding dovetail.yaml/roles.yaml (default ``DOVETAIL_CONFIG``
    or ``./config``). ``config``: overrides (``database_url``, ``roles``, ``settings`` …).
    ``plugins``: the enabled set (overrides dovetail.yaml). ``extra_plugins``: modules to
    make available besides the entry points (tests).
    Raises :class:`ConfigError` or :class:`PluginError` with a message naming the culprit.
    """
    overrides = dict(config or {})
    if plugins is not None:
        overrides["enabled"] = list(plugins)
    cfg = load_config(config_dir, overrides=overrides, testing=testing)
    available = discover(extra_plugins)
    ordered = resolve(cfg.enabled, available, cfg.main_doc)
    pm = build_manager(ordered, [builtin])
    registry = collect(pm, ordered)

    _validate_settings(cfg, registry, available, ordered)
    check_roles(cfg, registry, available)
    extras.check_database_driver(cfg.database_url)
    registry.freeze()

    app = _new_flask(cfg, testing)
    from core.web.security import SessionInterface  # noqa: PLC0415 - core.web imports core.app


    app.session_interface = SessionInterface()
    accesslog.install()
    redis_client = None
    if cfg.redis_url:
        redis = extras.require("redis", "DOVETAIL_REDIS_URL (a Redis-backed queue)")
        redis_client = redis.Redis.from_url(cfg.redis_url)
    app.extensions[EXTENSION] = Dovetail(cfg, pm, registry, available, redis_client)

    db.init_app(app)
    with app.app_context():
        configure_engine(db.engine)
    audit.install()

    from core import reports  # noqa: F401, PLC0415 - registers /api/v1/reports on the core blueprint; imports core.app back
    from core.api import init_api  # noqa: PLC0415 - core.api imports core.app (through core.state)

    api = init_api(app)
    for bp, _owner in registry.api_blueprints:
        api.register_blueprint(bp, url_prefix="/api/v1" + (bp.url_prefix or ""))

    from core.api import core_blp  # noqa: PLC0415 - core.api imports core.app (through core.state)
    from core.web import csrf, init_web  # noqa: PLC0415 - core.web imports core.app (through core.state)

    init_web(app)
    app.register_blueprint(reports.web_bp)
    # The API authenticates with bearer tokens, never cookies: CSRF does not apply to it.
    for bp in [core_blp] + [b for b, _ in registry.api_blueprints]:
        csrf.exempt(bp)
    for bp, _owner in registry.web_blueprints:
        app.register_blueprint(bp)

    _install_handlers(app, api, registry)

    pm.hook.app_ready(app=app)

    activation.install(app)  # after app_ready: the parts read what plugins set up there
    return app


def plugin_rows(app: Flask) -> list[dict[str, Any]]:
    """All available plugins with their state, for the CLI, API and web."""
    dv: Dovetail = dovetail(app)
    rows = []
    for name, av in sorted(dv.available.items()):
        m = av.manifest
        rows.append({"name": name, "version": m.version if m else "?",
                     "description": m.description if m else "",
                     "enabled": name in dv.registry.enabled_names,
                     "depends": list(m.depends) if m else [],
                     "optional": list(m.optional) if m else [], "error": av.error})
    return rows


def create_tables(app: Flask) -> None:
    """Create the tables of the core and the enabled plugins only (tests, quick start)."""
    with app.app_context():
        db.metadata.create_all(db.engine, tables=dovetail(app).all_tables())


__all__ = ["create_app", "create_tables", "Dovetail", "DovetailError", "plugin_rows"]
