"""Web pages: my performance, a rep's or team's performance, leaderboard, targets (form and
import), commission statements (generate, approve, pay, export) and sellers."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required
from sqlalchemy import select
from sqlalchemy.orm import lazyload

from core import statemachine
from core.api import apply_sort, page_of
from core.auth import has_permission, require
from core.db import db, lock_for_update
from core.errors import ConfigError, DovetailError
from core.i18n import N_, shown, state_label
from core.models import Team, User
from core.scope import get_for, select_for
from core.uploads import saved_upload
from plugins.performance import commission, rules, services
from plugins.performance.models import SELLER_STATUSES, SellerProfile, Statement, Target
from plugins.performance.periods import current_month, from_args
from plugins.performance.schemas import GenerateIn, SellerIn, SellerPatch, TargetIn
from plugins.performance.statements import filtered, statement_dict
from plugins.performance.targets import COLUMNS, import_targets

#: values stored as codes and shown translated on the pages: statement line kinds, seller
#: statuses and the rule column of a line no rule priced
SHOWN_WORDS = (N_("sale"), N_("adjustment"), N_("active"), N_("suspended"), N_("terminated"), N_("(no rule)"))

bp = Blueprint("performance_web", __name__, url_prefix="/performance", template_folder="templates")
REPORT = "performance.report.read"
TARGET_READ, TARGET_MANAGE, TARGET_IMPORT = ("performance.target.read", "performance.target.manage",
                                             "performance.target.import")
ST_READ, ST_GENERATE, ST_EXPORT = ("performance.statement.read", "performance.statement.generate",
                                   "performance.statement.export")
SELLER_READ, SELLER_MANAGE = "performance.seller.read", "performance.seller.manage"
RULE_READ = "performance.rule.read"


def _page() -> int:
    raw = request.args.get("page", "1")
    return max(int(raw), 1) if raw.isdigit() else 1


def _period() -> Any:
    """The period from the query string; a bad value is shown as a message, not an error page."""
    try:
        return from_args({k: request.args.get(k) for k in ("period", "date_from", "date_to")})
    except DovetailError as exc:
        flash(exc.message, "error")
        return current_month()


def _form_data(keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: request.form.get(k, "").strip() for k in keys if request.form.get(k, "").strip() != ""}


def _fail(exc: DovetailError) -> None:
    db.session.rollback()
    details = "; ".join(f"{k}: {' '.join(map(str, v)) if isinstance(v, list) else v}"
                        for k, v in (exc.fields or {}).items())
    flash(shown(exc.message) + (f" ({details})" if details else ""), "error")


# ---------------------------------------------------------------------------
# Performance
# ---------------------------------------------------------------------------


@bp.get("/")
@login_required
def me():
    user = require(REPORT)
    period = _period()
    return render_template("performance/performance.html", data=services.rep_performance(user, period),
                           title=_("My performance"), period=period)


@bp.get("/reps/<int:rep_id>")
@login_required
def rep(rep_id: int):
    user = require(REPORT)
    period = _period()
    target = services.get_rep(rep_id, user)
    return render_template("performance/performance.html", data=services.rep_performance(target, period),
                           title=target.display_name or target.username, period=period)


@bp.get("/teams/<int:team_id>")
@login_required
def team(team_id: int):
    user = require(REPORT)
    period = _period()
    t = services.get_team(team_id, user)
    return render_template("performance/team.html", data=services.team_performance(t, period, user),
                           period=period)


@bp.get("/leaderboard")
@login_required
def leaderboard():
    user = require(REPORT)
    period = _period()
    by = request.args.get("by") or "revenue"
    level = "team" if request.args.get("level") == "team" else "rep"
    try:
        board = services.leaderboard(period, user, by=by, level=level)
    except DovetailError as exc:
        flash(exc.message, "error")
        board = services.leaderboard(period, user, level=level)
    return render_template("performance/leaderboard.html", board=board, period=period, level=level,
                           metrics=services.LEADERBOARD_METRICS)


# ---------------------------------------------------------------------------
# Targets
# ---------------------------------------------------------------------------


def _reps_and_teams(user: User) -> tuple[list[User], list[Team]]:
    reps = list(db.session.scalars(select(User).where(User.id.in_(services.visible_users(user)), User.active)
                                   .order_by(User.username)))
    return reps, services.visible_teams(user)


@bp.get("/targets")
@login_required
def targets():
    user = require(TARGET_READ)
    period = request.args.get("period", "").strip()
    stmt = services.target_select(user)
    if period:
        stmt = stmt.where(Target.period == period)
    rows, total = page_of(apply_sort(stmt, Target, None, default="-period"), {"page": _page(), "per_page": 50})
    reps, teams = _reps_and_teams(user)
    return render_template("performance/targets.html", rows=[services.target_dict(t) for t in rows], total=total,
                           page=_page(), per_page=50, reps=reps, teams=teams,
                           default_period=period or current_month().month,
                           can_manage=has_permission(user, TARGET_MANAGE),
                           can_import=has_permission(user, TARGET_IMPORT))


@bp.post("/targets")
@login_required
def target_save():
    user = require(TARGET_MANAGE)
    raw: dict[str, Any] = _form_data(("period", "revenue", "notes"))
    for key in ("orders", "new_customers", "rep_id", "team_id"):
        value = request.form.get(key, "").strip()
        if value:
            raw[key] = int(value) if value.isdigit() else value
    try:
        target, outcome = services.set_target(services.load(TargetIn(), raw), user)
        db.session.commit()
    except DovetailError as exc:
        _fail(exc)
    else:
        flash(_("Target for %(period)s saved (%(outcome)s).", period=target.period, outcome=_(outcome)))
    return redirect(url_for("performance_web.targets", period=request.form.get("period", "")))


@bp.post("/targets/<int:target_id>/delete")
@login_required
def target_delete(target_id: int):
    user = require(TARGET_MANAGE)
    t = db.session.scalar(services.target_select(user).where(Target.id == target_id))
    if t is not None:
        db.session.delete(t)
        db.session.commit()
        flash(_("Target deleted."))
    return redirect(url_for("performance_web.targets"))


@bp.route("/targets/import", methods=["GET", "POST"])
@login_required
def targets_import():
    user = require(TARGET_IMPORT)
    counts = message = None
    errors: list[Any] = []
    if request.method == "POST":
        choose = _("Choose a .csv or .xlsx file.")
        try:
            with saved_upload(request.files.get("file"), missing=choose, wrong_type=choose) as path:
                counts, errors = import_targets(path, user=user, dry_run=request.form.get("dry_run") == "1")
        except DovetailError as exc:
            db.session.rollback()
            message = exc.message
    return render_template("performance/import.html", counts=counts, errors=errors, message=message,
                           columns=", ".join(COLUMNS)), (422 if message else 200)


# ---------------------------------------------------------------------------
# Statements
# ---------------------------------------------------------------------------


@bp.get("/statements")
@login_required
def statements():
    user = require(ST_READ)
    args = {"period": request.args.get("period", "").strip() or None,
            "status": request.args.get("status", "").strip() or None}
    rows, total = page_of(apply_sort(filtered(args, user), Statement, None, default="-period"),
                          {"page": _page(), "per_page": 50})
    return render_template("performance/statements.html", rows=[statement_dict(s, lines=False) for s in rows],
                           total=total, page=_page(), per_page=50, period=args["period"] or "",
                           default_period=current_month().month,
                           can_generate=has_permission(user, ST_GENERATE),
                           can_export=has_permission(user, ST_EXPORT))


@bp.post("/statements/generate")
@login_required
def statements_generate():
    user = require(ST_GENERATE)
    try:
        data = services.load(GenerateIn(), _form_data(("period",)))
        result = commission.generate(data["period"], user=user)
        db.session.commit()
    except ConfigError as exc:
        db.session.rollback()
        for issue in exc.issues:
            flash(str(issue), "error")
        return redirect(url_for("performance_web.statements"))
    except DovetailError as exc:
        _fail(exc)
        return redirect(url_for("performance_web.statements"))
    flash(_("%(n)s statement(s) generated for %(period)s, %(k)s kept as they were.",
            n=len(result.generated), period=result.period, k=len(result.skipped)))
    for w in result.warnings:
        flash(w, "warning")
    return redirect(url_for("performance_web.statements", period=result.period))


@bp.get("/statements/<int:statement_id>")
@login_required
def statement(statement_id: int):
    user = require(ST_READ)
    st = get_for(Statement, statement_id, ST_READ, user)
    return render_template("performance/statement.html", st=statement_dict(st),
                           transitions=statemachine.available(commission.ENTITY, st, user),
                           history=statemachine.history(commission.ENTITY, st.id),
                           can_export=has_permission(user, ST_EXPORT))


@bp.post("/statements/<int:statement_id>/transition")
@login_required
def statement_transition(statement_id: int):
    user = require(ST_READ)
    get_for(Statement, statement_id, ST_READ, user)
    st = db.session.scalar(lock_for_update(
        select(Statement).options(lazyload(Statement.rep)).where(Statement.id == statement_id)))
    inputs = {k[len("input."):]: v for k, v in request.form.items() if k.startswith("input.") and v != ""}
    try:
        statemachine.perform(commission.ENTITY, st, request.form.get("transition", ""), user,
                             comment=request.form.get("comment") or None, inputs=inputs)
        db.session.commit()
        flash(_("Statement is now %(status)s.", status=state_label(commission.ENTITY, st.status)))
    except DovetailError as exc:
        _fail(exc)
    return redirect(url_for("performance_web.statement", statement_id=statement_id))


@bp.get("/rules")
@login_required
def commission_rules():
    require(RULE_READ)
    try:
        rs, issues, ok = rules.load_rules(), None, True
        issues = rs.issues
    except ConfigError as exc:
        rs, issues, ok = None, exc.issues, False
    return render_template("performance/rules.html", rs=rs, issues=issues, ok=ok, cap=rules.cap_rate(),
                           file=rules.rules_path()[1])


# ---------------------------------------------------------------------------
# Sellers and team managers
# ---------------------------------------------------------------------------


@bp.get("/sellers")
@login_required
def sellers():
    user = require(SELLER_MANAGE)
    rows, total = page_of(apply_sort(select_for(SellerProfile, SELLER_READ, user), SellerProfile, None,
                                     default="id"), {"page": _page(), "per_page": 50})
    reps, teams = _reps_and_teams(user)
    have = set(db.session.scalars(select(SellerProfile.user_id)))
    return render_template("performance/sellers.html", rows=[services.seller_dict(p) for p in rows], total=total,
                           page=_page(), per_page=50, candidates=[u for u in reps if u.id not in have],
                           teams=[services.team_dict(t) for t in teams], statuses=SELLER_STATUSES,
                           members={t.id: [u for u in reps if u.team_id == t.id] for t in teams})


@bp.post("/sellers")
@login_required
def seller_create():
    user = require(SELLER_MANAGE)
    raw: dict[str, Any] = _form_data(("certificate_no", "status", "joined_on", "notes"))
    uid = request.form.get("user_id", "")
    raw["user_id"] = int(uid) if uid.isdigit() else uid
    try:
        services.create_seller(services.load(SellerIn(), raw), user)
        db.session.commit()
        flash(_("Seller profile saved."))
    except DovetailError as exc:
        _fail(exc)
    return redirect(url_for("performance_web.sellers"))


@bp.post("/sellers/<int:seller_id>")
@login_required
def seller_update(seller_id: int):
    user = require(SELLER_MANAGE)
    prof = get_for(SellerProfile, seller_id, SELLER_MANAGE, user)
    raw: dict[str, Any] = {k: (request.form.get(k, "").strip() or None)
                           for k in ("certificate_no", "joined_on", "notes") if k in request.form}
    if request.form.get("status"):
        raw["status"] = request.form["status"]
    try:
        services.update_seller(prof, services.load(SellerPatch(), raw))
        db.session.commit()
        flash(_("Seller profile saved."))
    except DovetailError as exc:
        _fail(exc)
    return redirect(url_for("performance_web.sellers"))


@bp.post("/teams/<int:team_id>/manager")
@login_required
def team_manager(team_id: int):
    user = require(SELLER_MANAGE)
    t = services.get_team(team_id, user)
    raw = request.form.get("manager_id", "").strip()
    try:
        services.set_team_manager(t, int(raw) if raw.isdigit() else None, user)
        db.session.commit()
        flash(_("Team manager saved."))
    except DovetailError as exc:
        _fail(exc)
    return redirect(url_for("performance_web.sellers"))
