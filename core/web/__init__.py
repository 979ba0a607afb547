"""The web shell: login, base layout, navigation from plugins' menu entries
(filtered by permission), Flask-Babel (zh_CN, en), CSRF on every form."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import Babel, gettext
from flask_login import LoginManager, login_required, login_user, logout_user
from flask_wtf import CSRFProtect, FlaskForm
from sqlalchemy import select
from werkzeug.exceptions import HTTPException
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired

from core.auth import current_user, has_permission
from core.db import db
from core.errors import DovetailError
from core.models import AuditEntry, User

bp = Blueprint("core_web", __name__)
LOCALES = ("zh_CN", "en")
login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()


def _select_locale() -> str:
    if request.args.get("lang") in LOCALES:
        session["lang"] = request.args["lang"]
    if session.get("lang") in LOCALES:
        return session["lang"]
    user = current_user() if request else None
    if user is not None and user.locale in LOCALES:
        return user.locale
    return request.accept_languages.best_match(LOCALES) or \
        current_app.extensions["dovetail"].config.locale


@login_manager.user_loader
def _load_user(user_id: str) -> User | None:
    user = db.session.get(User, int(user_id)) if user_id.isdigit() else None
    return user if user is not None and user.active else None


def menu_for(user: User | None) -> list[Any]:
    items = current_app.extensions["dovetail"].registry.menu
    out = []
    for item, _owner in items:
        if item.permission and not has_permission(user, item.permission):
            continue
        if item.endpoint not in current_app.view_functions:
            continue
        out.append(item)
    return out


def init_web(app: Flask) -> None:
    translations = str(Path(__file__).parent.parent / "translations")
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", translations)
    babel.init_app(app, locale_selector=_select_locale)
    login_manager.init_app(app)
    login_manager.login_view = "core_web.login"
    csrf.init_app(app)
    app.register_blueprint(bp)

    @app.context_processor
    def _inject() -> dict[str, Any]:
        user = current_user()
        return {"nav": menu_for(user) if user else [], "me": user,
                "has_permission": lambda p: has_permission(user, p),
                "locale": _select_locale(), "locales": LOCALES}


def html_error(exc: Exception):
    if isinstance(exc, DovetailError):
        status, message = exc.http_status, exc.message
    elif isinstance(exc, HTTPException):
        if exc.code in (301, 302, 303, 307, 308):
            return exc
        status, message = exc.code or 500, exc.description
    else:
        current_app.logger.exception("unhandled error on %s", request.path)
        status, message = 500, gettext("Internal error; it has been logged.")
    if status == 401:
        return redirect(url_for("core_web.login", next=request.full_path))
    return render_template("core/error.html", status=status, message=message), status


class LoginForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired()])
    password = PasswordField("Password", validators=[DataRequired()])


@bp.route("/login", methods=["GET", "POST"])
def login():
    from core.auth import authenticate

    form = LoginForm()
    error = None
    if form.validate_on_submit():
        try:
            user = authenticate(form.username.data, form.password.data, request.remote_addr)
        except DovetailError as exc:
            error = gettext(exc.message)
        else:
            db.session.commit()
            login_user(user)
            target = request.args.get("next") or ""
            if not target.startswith("/") or target.startswith("//"):
                target = url_for("core_web.index")
            return redirect(target)
    return render_template("core/login.html", form=form, error=error), (401 if error else 200)


@bp.post("/logout")
@login_required
def logout():
    logout_user()
    session.pop("lang", None)
    flash(gettext("Signed out."))
    return redirect(url_for("core_web.login"))


@bp.get("/")
@login_required
def index():
    from core.dashboard import widgets_for

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
    from core.app import plugin_rows

    return render_template("core/plugins.html", rows=plugin_rows(current_app))
