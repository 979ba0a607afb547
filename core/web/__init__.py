"""The web shell: login, base layout, navigation from plugins' menu entries
(filtered by permission), Flask-Babel (zh_CN, en), CSRF on every form.

Sessions are kept on the server: signing in stores a random token in the (signed) session
cookie and its SHA-256 in ``core_web_session``; a cookie opens a session only while that
row exists. Signing out deletes it, a password change or disabling a user deletes all of
the user's rows, and a row expires after ``PERMANENT_SESSION_LIFETIME``.
"""

from __future__ import annotations

import hashlib
import secrets
from functools import cached_property
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import Babel, Domain, gettext
from flask_login import LoginManager, login_required, login_user, logout_user
from flask_wtf import CSRFProtect, FlaskForm
from markupsafe import Markup, escape
from sqlalchemy import delete, event, inspect, select
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired

from core import activation
from core.app import plugin_rows
from core.auth import authenticate, current_user, has_permission
from core.dashboard import widgets_for
from core.db import database_unreachable, db, utcnow
from core.errors import DovetailError
from core.models import AuditEntry, User, WebSession
from core.state import dovetail
from core.web.security import safe_next_url

bp = Blueprint("core_web", __name__)
LOCALES = ("zh_CN", "en")
login_manager = LoginManager()
csrf = CSRFProtect()


class _AppDomain(Domain):
    """Flask-Babel's default domain caches loaded catalogues on the one ``Babel`` object,
    shared by every app in the process; each app has its own plugins and so its own
    translation directories, so the cache is kept on the app instead."""

    def get_translations_cache(self, ctx: Any) -> dict:
        return current_app.extensions.setdefault("dovetail_translations", {})


class _Babel(Babel):
    @cached_property
    def domain_instance(self) -> Domain:
        return _AppDomain(domain=self.domain)


babel = _Babel()


def _select_locale() -> str:
    if request.args.get("lang") in LOCALES:
        session["lang"] = request.args["lang"]
    if session.get("lang") in LOCALES:
        return session["lang"]
    user = current_user() if request and not g.get("dovetail_db_down") else None
    if user is not None and user.locale in LOCALES:
        return user.locale
    return request.accept_languages.best_match(LOCALES) or \
        dovetail().config.locale


def locale_code(loc: Any) -> str:
    """The configuration's name of a Babel locale: ``zh_CN`` for Babel's ``zh_Hans_CN``, as
    used by label mappings in workflow and custom-field files (``{en: ..., zh_CN: ...}``)."""
    if loc is None:
        return ""
    language = getattr(loc, "language", None)
    if language is None:
        return str(loc)
    territory = getattr(loc, "territory", None)
    return f"{language}_{territory}" if territory else language


#: Session key holding the token of this browser's ``core_web_session`` row.
SESSION_TOKEN = "_dovetail_sid"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@login_manager.user_loader
def _load_user(user_id: str) -> User | None:
    """The active user whose server-side session this cookie's token names, else None."""
    token = session.get(SESSION_TOKEN)
    if not user_id.isdigit() or not isinstance(token, str) or not token:
        return None
    if g.get("dovetail_db_down"):  # rendering the 503 page
        return None
    return db.session.scalar(
        select(User).join(WebSession, WebSession.user_id == User.id)
        .where(User.id == int(user_id), User.active.is_(True),
               WebSession.token_hash == _digest(token), WebSession.expires_at > utcnow()))


def start_session(user: User) -> None:
    """Record a new server-side session for ``user`` and sign the browser in (commits)."""
    now = utcnow()
    old = session.pop(SESSION_TOKEN, None)
    stale = WebSession.expires_at <= now
    if isinstance(old, str):
        stale = stale | (WebSession.token_hash == _digest(old))
    db.session.execute(delete(WebSession).where(stale))
    token = secrets.token_urlsafe(32)
    db.session.add(WebSession(user_id=user.id, token_hash=_digest(token), created_at=now,
                              expires_at=now + current_app.permanent_session_lifetime))
    db.session.commit()
    session[SESSION_TOKEN] = token
    login_user(user)


def end_session() -> None:
    """Delete this browser's server-side session and sign it out (commits)."""
    token = session.pop(SESSION_TOKEN, None)
    if isinstance(token, str):
        db.session.execute(delete(WebSession).where(WebSession.token_hash == _digest(token)))
        db.session.commit()
    logout_user()


def _end_sessions_on_credential_change(db_session: Session, _ctx: Any) -> None:
    """A new password or a disabled account ends every web session of that user (in the
    same transaction), wherever the change comes from: web, API, CLI."""
    ids = set()
    for obj in db_session.dirty:
        if not isinstance(obj, User):
            continue
        attrs: Any = inspect(obj).attrs
        if attrs.password_hash.history.has_changes() or (
                attrs.active.history.has_changes() and not obj.active):
            ids.add(obj.id)
    if ids:
        db_session.connection().execute(
            delete(WebSession.__table__).where(WebSession.__table__.c.user_id.in_(ids)))


def install_session_guard() -> None:
    """Listen on every ORM session (idempotent)."""
    if not event.contains(Session, "after_flush", _end_sessions_on_credential_change):
        event.listen(Session, "after_flush", _end_sessions_on_credential_change)


def menu_for(user: User | None) -> list[Any]:
    items = dovetail().registry.menu
    out = []
    for item, _owner in items:
        if item.permission and not has_permission(user, item.permission):
            continue
        if item.endpoint not in current_app.view_functions:
            continue
        out.append(item)
    return out


def gettext_escaped(message_id: Any) -> Markup:
    """Jinja global ``gettext_escaped(x)``: translate a message id held in a variable (a menu
    label, a report title, an enum value such as an activity type) and return it escaped.

    Use it instead of ``_(x)``: Flask-Babel's template ``_()`` marks its result safe and
    %-formats it, so data passed to it would be rendered as HTML (or crash on a ``%``).
    ``_()`` is for string literals only. Text that is already markup (a lazy or literal
    translation) is returned as it is; ``None`` and ``""`` give an empty string (gettext of
    ``""`` would be the catalogue header).
    """
    if hasattr(message_id, "__html__"):
        return Markup(message_id.__html__())
    text = "" if message_id is None else str(message_id)
    return escape(gettext(text) if text else text)


def translation_directories(app: Flask) -> list[str]:
    """The ``translations/`` folders of the enabled plugins (next to their plugin module, in
    load order) that exist, then the core's. A message id found in several catalogues takes
    the last one's text, so the core's own texts cannot be changed by a plugin."""
    dirs = []
    for plugin in app.extensions["dovetail"].registry.plugins:
        module_file = getattr(plugin.module, "__file__", None)
        folder = Path(module_file).parent / "translations" if module_file else None
        if folder is not None and folder.is_dir():
            dirs.append(str(folder))
    return [*dict.fromkeys(dirs), str(Path(__file__).parent.parent / "translations")]


def init_web(app: Flask) -> None:
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", ";".join(translation_directories(app)))
    babel.init_app(app, locale_selector=_select_locale)
    login_manager.init_app(app)
    login_manager.login_view = "core_web.login"
    csrf.init_app(app)
    install_session_guard()
    app.register_blueprint(bp)
    app.jinja_env.globals["gettext_escaped"] = gettext_escaped

    @app.context_processor
    def _inject() -> dict[str, Any]:
        user = None if g.get("dovetail_db_down") else current_user()
        return {"nav": menu_for(user) if user else [], "me": user,
                "has_permission": lambda p: has_permission(user, p),
                "locale": _select_locale(), "locales": LOCALES}


def html_error(exc: Exception):
    if database_unreachable(exc):
        return unavailable_page()
    if isinstance(exc, DovetailError):
        status, message = exc.http_status, exc.message
    elif isinstance(exc, HTTPException):
        if exc.code in (301, 302, 303, 307, 308):
            return exc
        status, message = exc.code or 500, exc.description or ""
    else:
        current_app.logger.exception("unhandled error on %s", request.path)
        status, message = 500, gettext("Internal error; it has been logged.")
    if status == 401:
        return redirect(url_for("core_web.login", next=request.full_path))
    return render_template("core/error.html", status=status, message=message), status


def unavailable_page() -> tuple[str, int, dict[str, str]]:
    """503 page while the database cannot be reached, rendered without touching it (no
    signed-in user, no menu)."""
    current_app.logger.warning("database unavailable on %s %s", request.method, request.path)
    g.dovetail_db_down = True
    body = render_template("core/error.html", status=503, message=gettext(
        "The database is unavailable; try again in a moment."))
    return body, 503, {"Retry-After": "30"}


class LoginForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired()])
    password = PasswordField("Password", validators=[DataRequired()])


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    error = None
    if form.validate_on_submit():
        try:
            user = authenticate(form.username.data, form.password.data, request.remote_addr)
        except DovetailError as exc:
            error = gettext(exc.message)
        else:
            # Committed first: a password rehash on login ends the user's other sessions
            # (see _end_sessions_on_credential_change), never the one started here.
            db.session.commit()
            start_session(user)
            return redirect(safe_next_url(request.args.get("next")) or url_for("core_web.index"))
    return render_template("core/login.html", form=form, error=error), (401 if error else 200)


@bp.post("/logout")
@login_required
def logout():
    end_session()
    session.pop("lang", None)
    flash(gettext("Signed out."))
    return redirect(url_for("core_web.login"))


@bp.get("/")
@login_required
def index():
    return render_template("core/index.html", widgets=widgets_for(current_user()))


@bp.get("/audit")
@login_required
def audit():
    user = current_user()
    if not has_permission(user, "core.audit.read"):
        abort(403)
    q = select(AuditEntry).order_by(AuditEntry.id.desc())
    entity = request.args.get("entity", "").strip()
    if entity:
        q = q.where(AuditEntry.entity == entity)
    rid = request.args.get("entity_id", "").strip()
    if rid:
        q = q.where(AuditEntry.entity_id == rid)
    page = max(int(request.args.get("page", "1") or 1) if request.args.get(
        "page", "1").isdigit() else 1, 1)
    rows = db.session.scalars(q.limit(50).offset((page - 1) * 50)).all()
    return render_template("core/audit.html", rows=rows, page=page, entity=entity, entity_id=rid)


@bp.get("/admin/users")
@login_required
def users():
    if not has_permission(current_user(), "core.user.manage"):
        abort(403)
    rows = db.session.scalars(select(User).order_by(User.username)).all()
    return render_template("core/users.html", rows=rows)


@bp.get("/admin/plugins")
@login_required
def plugins():
    if not has_permission(current_user(), "core.plugin.read"):
        abort(403)

    return render_template("core/plugins.html", rows=plugin_rows(current_app))


@bp.route("/admin/config", methods=["GET", "POST"])
@login_required
def config_page():
    """The run-time config: the version in force (when, by whom), Check and Apply (admins only).

    A refused check or apply lists every located error (file:line:column); nothing changes
    then and the version in force stays. The same work as ``dovetail config check|apply``.
    """
    user = current_user()
    if not has_permission(user, "core.config.apply"):
        abort(403)
    errors: list[str] = []
    notices: list[str] = []
    if request.method == "POST":
        action = request.form.get("action")
        try:
            if action == "apply":
                done = activation.apply(current_app, actor=user.username, note="web: Configuration page")
                notices = done.notices
                if done.unchanged:
                    flash(gettext("Config version %(v)s is in force already (no file changed).", v=done.version),
                          "info")
                else:
                    flash(gettext("Config version %(v)s applied.", v=done.version), "success")
            elif action == "check":
                notices = activation.check(current_app)
                flash(gettext("Every config file passed the check; Apply puts them in force."), "success")
            else:
                abort(400)
        except DovetailError as exc:
            errors = [str(i) for i in getattr(exc, "issues", ())] or [str(exc)]
            flash(gettext("The config files have errors; nothing was applied and the version in force stays.")
                  if action == "apply" else gettext("The config files have errors."), "error")
    st = activation.state(current_app)
    row = activation.in_force(current_app)
    if request.method == "GET" and st is not None and st.problems:
        errors = [str(i) for i in st.problems]  # the last refused apply, until one succeeds
    db.session.commit()  # end the read transaction
    status = 422 if errors and request.method == "POST" else 200
    return render_template("core/config.html", row=row, running=st.version if st else 0, errors=errors,
                           notices=notices, refused_at=st.refused_at if st and st.problems else None), status
