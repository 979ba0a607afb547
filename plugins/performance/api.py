"""REST: ``/api/v1/performance/...`` — sellers, teams, targets, performance, leaderboard,
commission rules and statements.

Revenue everywhere here is the orders plugin's one definition (README "Revenue"): orders in
the paid, shipped or completed states of the order workflow, dated by ``placed_at`` in the
company's local time, at their total minus the refunds recorded on them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Response, request
from flask.views import MethodView
from sqlalchemy import or_, select
from sqlalchemy.orm import lazyload

from core import statemachine, userjobs
from core.api import Blueprint, apply_sort, page_body, page_of, page_schema
from core.api import serialized as _json
from core.auth import permission_required, require
from core.db import db, lock_for_update
from core.errors import ConfigError, NotFound, ValidationError
from core.export import csv_bytes, xlsx_bytes
from core.models import User
from core.scope import get_for, select_for
from core.userjobs_api import JobSchema, job_response
from plugins.performance import commission, rules, services
from plugins.performance.models import SellerProfile, Statement, Target
from plugins.performance.periods import from_args
from plugins.performance.schemas import (
    GenerateIn,
    GenerateOut,
    LeaderboardArgs,
    LeaderboardOut,
    PerformanceOut,
    PeriodArgs,
    RulesCheckIn,
    RulesCheckOut,
    RulesOut,
    SellerArgs,
    SellerIn,
    SellerOut,
    SellerPatch,
    StatementArgs,
    StatementExportArgs,
    StatementHistoryOut,
    StatementOut,
    StatementTransitionIn,
    StatementTransitionOut,
    StatementTransitionsOut,
    TargetArgs,
    TargetImportResult,
    TargetIn,
    TargetOut,
    TeamListOut,
    TeamManagerIn,
    TeamOut,
)
from plugins.performance.statements import EXPORT_COLUMNS, export_rows, filtered, statement_dict, with_lines
from plugins.performance.targets import import_targets

blp = Blueprint("performance_api", __name__, url_prefix="/performance",
                description="Seller performance: sellers, teams, targets, figures, leaderboards, commissions. "
                            "Revenue = paid/shipped/completed orders by placed_at, net of returns.")

SELLER_READ, SELLER_MANAGE = "performance.seller.read", "performance.seller.manage"
TARGET_READ, TARGET_MANAGE, TARGET_IMPORT = ("performance.target.read", "performance.target.manage",
                                             "performance.target.import")
REPORT = "performance.report.read"
RULE_READ = "performance.rule.read"
ST_READ, ST_GENERATE, ST_EXPORT = ("performance.statement.read", "performance.statement.generate",
                                   "performance.statement.export")
needs = permission_required



# ---------------------------------------------------------------------------
# Sellers
# ---------------------------------------------------------------------------


@blp.route("/sellers")
class SellersView(MethodView):
    @needs(SELLER_READ)
    @blp.arguments(SellerArgs, location="query")
    @blp.response(200, page_schema(SellerOut))
    def get(self, args):
        """List seller profiles in your scope (status, team_id, q)"""
        user = require(SELLER_READ)
        stmt = select_for(SellerProfile, SELLER_READ, user).join(User, User.id == SellerProfile.user_id)
        if args.get("status"):
            stmt = stmt.where(SellerProfile.status == args["status"])
        if args.get("team_id") is not None:
            stmt = stmt.where(User.team_id == args["team_id"])
        if args.get("q"):
            q = args["q"].strip()
            stmt = stmt.where(or_(User.username.istartswith(q, autoescape=True),
                                  User.display_name.istartswith(q, autoescape=True),
                                  SellerProfile.certificate_no.istartswith(q, autoescape=True)))
        rows, total = page_of(apply_sort(stmt, SellerProfile, args.get("sort"), default="id"), args)
        return _json(page_body([services.seller_dict(p) for p in rows], total, args))

    @needs(SELLER_MANAGE)
    @blp.arguments(SellerIn)
    @blp.response(201, SellerOut)
    def post(self, data):
        """Make a user a seller: certificate number, status, joining date"""
        user = require(SELLER_MANAGE)
        prof = services.create_seller(data, user)
        db.session.commit()
        return _json(services.seller_dict(prof), 201)


@blp.route("/sellers/<int:seller_id>")
class SellerView(MethodView):
    @blp.response(200, SellerOut)
    def get(self, seller_id):
        """One seller profile"""
        user = require(SELLER_READ)
        return _json(services.seller_dict(get_for(SellerProfile, seller_id, SELLER_READ, user)))

    @needs(SELLER_MANAGE)
    @blp.arguments(SellerPatch)
    @blp.response(200, SellerOut)
    def patch(self, data, seller_id):
        """Change a seller's certificate number, status (active/suspended/terminated) or notes"""
        user = require(SELLER_MANAGE)
        prof = services.update_seller(get_for(SellerProfile, seller_id, SELLER_MANAGE, user), data)
        db.session.commit()
        return _json(services.seller_dict(prof))


# ---------------------------------------------------------------------------
# Teams (core teams) and their managers
# ---------------------------------------------------------------------------


@blp.route("/teams")
class TeamsView(MethodView):
    @needs(SELLER_READ)
    @blp.response(200, TeamListOut)
    def get(self):
        """Teams in your scope with their manager and number of members"""
        user = require(SELLER_READ)
        return _json({"items": [services.team_dict(t) for t in services.visible_teams(user)]})


@blp.route("/teams/<int:team_id>/manager")
class TeamManagerView(MethodView):
    @needs(SELLER_MANAGE)
    @blp.arguments(TeamManagerIn)
    @blp.response(200, TeamOut)
    def put(self, data, team_id):
        """Name the team's manager (a member of the team), or clear it with null"""
        user = require(SELLER_MANAGE)
        team = services.set_team_manager(services.get_team(team_id, user), data["manager_id"], user)
        db.session.commit()
        return _json(services.team_dict(team))


@blp.route("/teams/<int:team_id>/performance")
class TeamPerformanceView(MethodView):
    @needs(REPORT)
    @blp.arguments(PeriodArgs, location="query")
    @blp.response(200, PerformanceOut)
    def get(self, args, team_id):
        """A team's figures, target, attainment, members, and comparison with the previous period and last year"""
        user = require(REPORT)
        team = services.get_team(team_id, user)
        return _json(services.team_performance(team, from_args(args), user))


# ---------------------------------------------------------------------------
# Performance and leaderboard
# ---------------------------------------------------------------------------


@blp.route("/me")
class MyPerformanceView(MethodView):
    @needs(REPORT)
    @blp.arguments(PeriodArgs, location="query")
    @blp.response(200, PerformanceOut)
    def get(self, args):
        """Your own figures, target, attainment, rank and comparisons (period or date_from/date_to)"""
        user = require(REPORT)
        return _json(services.rep_performance(user, from_args(args)))


@blp.route("/reps/<int:rep_id>")
class RepPerformanceView(MethodView):
    @needs(REPORT)
    @blp.arguments(PeriodArgs, location="query")
    @blp.response(200, PerformanceOut)
    def get(self, args, rep_id):
        """A rep's figures, target, attainment, rank and comparisons (404 outside your scope)"""
        user = require(REPORT)
        rep = services.get_rep(rep_id, user)
        return _json(services.rep_performance(rep, from_args(args)))


@blp.route("/leaderboard")
class LeaderboardView(MethodView):
    @needs(REPORT)
    @blp.arguments(LeaderboardArgs, location="query")
    @blp.response(200, LeaderboardOut)
    def get(self, args):
        """Ranked reps or teams by revenue, orders, units, customers, new_customers or attainment"""
        user = require(REPORT)
        return _json(services.leaderboard(from_args(args), user, by=args["by"], level=args["level"],
                                          team_id=args.get("team_id")))


# ---------------------------------------------------------------------------
# Targets
# ---------------------------------------------------------------------------


@blp.route("/targets")
class TargetsView(MethodView):
    @needs(TARGET_READ)
    @blp.arguments(TargetArgs, location="query")
    @blp.response(200, page_schema(TargetOut))
    def get(self, args):
        """Monthly targets you may see (period, rep_id, team_id)"""
        user = require(TARGET_READ)
        stmt = services.target_select(user)
        for key in ("period", "rep_id", "team_id"):
            if args.get(key) is not None:
                stmt = stmt.where(getattr(Target, key) == args[key])
        rows, total = page_of(apply_sort(stmt, Target, args.get("sort"), default="-period"), args)
        return _json(page_body([services.target_dict(t) for t in rows], total, args))

    @needs(TARGET_MANAGE)
    @blp.arguments(TargetIn)
    @blp.response(200, TargetOut, description="The target was changed.")
    @blp.alt_response(201, schema=TargetOut, success=True, description="The target was created.")
    def put(self, data):
        """Set the target of a rep or team for a month (metrics left out stay; null clears one)"""
        user = require(TARGET_MANAGE)
        target, outcome = services.set_target(data, user)
        db.session.commit()
        return _json(services.target_dict(target), 201 if outcome == "created" else 200)


@blp.route("/targets/<int:target_id>")
class TargetView(MethodView):
    @blp.response(200, TargetOut)
    def get(self, target_id):
        """One target"""
        user = require(TARGET_READ)
        return _json(services.target_dict(_target(target_id, user)))

    @needs(TARGET_MANAGE)
    @blp.response(204)
    def delete(self, target_id):
        """Delete a target"""
        user = require(TARGET_MANAGE)
        db.session.delete(_target(target_id, user))
        db.session.commit()
        return "", 204


def _target(target_id: int, user: User) -> Target:
    t = db.session.scalar(services.target_select(user).where(Target.id == target_id))
    if t is None:
        raise NotFound(f"No target with id {target_id}.")
    return t


@blp.route("/targets/import")
class TargetImportView(MethodView):
    @needs(TARGET_IMPORT)
    @blp.response(200, TargetImportResult)
    @blp.alt_response(202, schema=JobSchema, description="Queued: follow GET /api/v1/jobs/{id}")
    def post(self):
        """Import targets from a CSV/XLSX upload (multipart field 'file'; ?dry_run=1 saves nothing)"""
        user = require(TARGET_IMPORT)
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            raise ValidationError("Upload a .csv or .xlsx file in the field 'file'.", fields={"file": ["Required."]})
        if Path(upload.filename).suffix.lower() not in (".csv", ".xlsx"):
            raise ValidationError("Use a .csv or .xlsx file.", fields={"file": ["Unsupported file type."]})
        job = userjobs.start_import("performance.targets_import", user, upload, import_targets,
                                    dry_run=request.args.get("dry_run") in ("1", "true"))
        if job.status in (userjobs.QUEUED, userjobs.RUNNING):
            return job_response(job, 202)  # follow GET /api/v1/jobs/{id}
        if job.status == userjobs.FAILED:
            raise ValidationError(job.summary or "The import failed.", fields={"file": [job.summary or "failed"]})
        counts = {k: v for k, v in (job.result or {}).items() if k not in ("rows", "dry_run")}
        return _json({"counts": counts, "errors": job.errors or []})


# ---------------------------------------------------------------------------
# Commission rules
# ---------------------------------------------------------------------------


def _issue(i: Any) -> dict[str, Any]:
    return {"file": i.file, "line": i.line, "column": i.column, "severity": i.severity, "message": i.message,
            "text": str(i)}


@blp.route("/commission-rules")
class RulesView(MethodView):
    @blp.response(200, RulesOut)
    def get(self):
        """The commission rules in force (config/commission.yaml), the cap, and every error or warning"""
        require(RULE_READ)
        cap = str(rules.cap_rate())
        try:
            rs = rules.load_rules()
        except ConfigError as exc:
            path, display = rules.rules_path()
            return _json({"file": display, "digest": "", "cap": cap, "rules": [], "default": None, "ok": False,
                          "issues": [_issue(i) for i in exc.issues]})
        return _json({**rs.as_dict(), "cap": cap, "ok": True, "issues": [_issue(i) for i in rs.issues]})


@blp.route("/commission-rules/check")
class RulesCheckView(MethodView):
    @needs(RULE_READ)
    @blp.arguments(RulesCheckIn)
    @blp.response(200, RulesCheckOut)
    def post(self, data):
        """Check a rules text (errors and cap warnings, located by line and column) without installing it"""
        require(RULE_READ)
        issues = rules.check_text(data["text"], "commission.yaml")
        return _json({"ok": not any(i.severity == "error" for i in issues), "issues": [_issue(i) for i in issues]})


# ---------------------------------------------------------------------------
# Commission statements
# ---------------------------------------------------------------------------


@blp.route("/statements")
class StatementsView(MethodView):
    @needs(ST_READ)
    @blp.arguments(StatementArgs, location="query")
    @blp.response(200, page_schema(StatementOut))
    def get(self, args):
        """Commission statements you may see (rep: own; manager: team; finance: all)"""
        user = require(ST_READ)
        rows, total = page_of(apply_sort(filtered(args, user), Statement, args.get("sort"), default="-period"), args)
        return _json(page_body([statement_dict(s, lines=False) for s in rows], total, args))


@blp.route("/statements/generate")
class GenerateView(MethodView):
    @needs(ST_GENERATE)
    @blp.arguments(GenerateIn)
    @blp.response(200, GenerateOut)
    def post(self, data):
        """Generate (or regenerate the drafts of) a month's statements; approved/paid ones are kept"""
        user = require(ST_GENERATE)
        rep_ids = [data["rep_id"]] if data.get("rep_id") is not None else None
        if rep_ids:
            services.get_rep(rep_ids[0], user)
        result = commission.generate(data["period"], rep_ids=rep_ids, user=user)
        db.session.commit()
        return _json(result.as_dict(lambda s: statement_dict(s, lines=False)))


@blp.route("/statements/export")
class StatementsExportView(MethodView):
    @needs(ST_EXPORT)
    @blp.arguments(StatementExportArgs, location="query")
    @blp.response(200, description="Statement lines as a CSV or XLSX file.", content_type="text/csv")
    def get(self, args):
        """Every line of the statements you may see as CSV or XLSX (period, rep_id filters)"""
        user = require(ST_EXPORT)
        return _download(with_lines(filtered(args, user)), args["format"],
                         f"commission_{args.get('period') or 'all'}")


@blp.route("/statements/<int:statement_id>")
class StatementView(MethodView):
    @blp.response(200, StatementOut)
    def get(self, statement_id):
        """One statement with every line traceable to its order line"""
        user = require(ST_READ)
        return _json(statement_dict(get_for(Statement, statement_id, ST_READ, user)))


@blp.route("/statements/<int:statement_id>/export")
class StatementExportView(MethodView):
    @needs(ST_EXPORT)
    @blp.arguments(StatementExportArgs, location="query")
    @blp.response(200, description="The statement's lines as a CSV or XLSX file.", content_type="text/csv")
    def get(self, args, statement_id):
        """One statement's lines as CSV or XLSX"""
        user = require(ST_EXPORT)
        st = get_for(Statement, statement_id, ST_EXPORT, user)
        return _download([st], args["format"], f"commission_{st.period}_{st.rep.username}")


def _download(statements: list[Statement], fmt: str, name: str) -> Response:
    rows = list(export_rows(statements))
    if fmt == "xlsx":
        return Response(xlsx_bytes(EXPORT_COLUMNS, rows, "commission"),
                        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                        headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'})
    return Response(csv_bytes(EXPORT_COLUMNS, rows), mimetype="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})


@blp.route("/statements/<int:statement_id>/transitions")
class StatementTransitions(MethodView):
    @blp.response(200, StatementTransitionsOut)
    def get(self, statement_id):
        """What you may do with this statement now (and why not)"""
        user = require(ST_READ)
        st = get_for(Statement, statement_id, ST_READ, user)
        return _json({"status": st.status, "items": statemachine.available(commission.ENTITY, st, user)})

    @needs(ST_READ)
    @blp.arguments(StatementTransitionIn)
    @blp.response(200, StatementTransitionOut)
    def post(self, data, statement_id):
        """Approve or mark paid: {"transition", "comment", "inputs"}"""
        user = require(ST_READ)
        get_for(Statement, statement_id, ST_READ, user)
        st = db.session.scalar(lock_for_update(
            select(Statement).options(lazyload(Statement.rep)).where(Statement.id == statement_id)))
        result = statemachine.perform(commission.ENTITY, st, data["transition"], user,
                                      comment=data.get("comment"), inputs=data.get("inputs") or {})
        db.session.commit()
        return _json({**result, "statement": statement_dict(st, lines=False)})


@blp.route("/statements/<int:statement_id>/history")
class StatementHistory(MethodView):
    @blp.response(200, StatementHistoryOut)
    def get(self, statement_id):
        """Transition history of the statement: from, to, actor, time, comment"""
        user = require(ST_READ)
        st = get_for(Statement, statement_id, ST_READ, user)
        rows = statemachine.history(commission.ENTITY, st.id)
        actors = dict(db.session.execute(select(User.id, User.username).where(
            User.id.in_({r.actor_id for r in rows if r.actor_id} or {-1}))).all())
        return _json({"items": [{"id": r.id, "transition": r.transition, "from": r.from_state, "to": r.to_state,
                                 "actor_id": r.actor_id, "actor": actors.get(r.actor_id, "system"),
                                 "at": r.at.isoformat(), "comment": r.comment, "inputs": r.inputs}
                                for r in rows]})
