"""Web pages: workflows list, one workflow's diagram, check a file, reload."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from core.auth import has_permission, require
from core.errors import NotFound
from core.statemachine import label_of
from plugins.workflows import diagram
from plugins.workflows.api import MANAGE, READ, overview
from plugins.workflows.checker import check_text
from plugins.workflows.store import count_outside, known_from_app, store

bp = Blueprint("workflows_web", __name__, url_prefix="/workflows", template_folder="templates")

PER_PAGE = 50
STATUSES = [("active", _l("Active (file)")), ("built-in", _l("Built-in")), ("refused", _l("Refused")),
            ("skipped", _l("Skipped")), ("pending", _l("Pending")), ("removed", _l("Removed"))]


@bp.get("/")
def index():
    user = require(READ)
    rows = overview()
    q = request.args.get("q", "").strip().lower()
    status = request.args.get("status", "")
    if q:
        rows = [r for r in rows if q in (r["name"] or "").lower() or q in (r["entity"] or "").lower()]
    if status:
        rows = [r for r in rows if r["status"] == status]
    page = int(request.args["page"]) if request.args.get("page", "").isdigit() else 1
    page = max(page, 1)
    return render_template("workflows/index.html", rows=rows[(page - 1) * PER_PAGE:page * PER_PAGE],
                           total=len(rows), page=page, per_page=PER_PAGE,
                           statuses=STATUSES,
                           can_manage=has_permission(user, MANAGE))


@bp.get("/<name>")
def detail(name: str):
    user = require(READ)
    found = store().by_name(name)
    if found is None:
        raise NotFound(_("No workflow '%(name)s'.", name=name))
    entity, machine = found

    f = store().files.get(name) or next((x for x in store().files.values()
                                         if x.entity == entity and x.status != "active"), None)
    return render_template("workflows/detail.html", m=machine, entity=entity, file=f,
                           info=diagram.describe(machine), label_of=label_of,
                           svg=diagram.svg(machine, lambda s: label_of(s.label)),
                           can_manage=has_permission(user, MANAGE))


@bp.route("/check", methods=["GET", "POST"])
def check():
    require(MANAGE)
    text = request.form.get("text", "")
    file = request.form.get("file", "").strip() or "workflow.yaml"
    result = None
    if request.method == "POST":
        if not text.strip():
            flash(_("Paste the YAML text of one workflow file."), "error")
        else:
            st = store()
            st.refresh(apply=False)
            result = check_text(text, file, known_from_app(), counter=count_outside, in_force=st.in_force)
    return render_template("workflows/check.html", text=text, file=file, result=result)


@bp.post("/reload")
def reload():
    user = require(MANAGE)
    ok, files, issues = store().reload(user.username)
    refused = [f for f in files if f.status == "refused"]
    if refused:
        flash(_("%(n)s file(s) refused; their running versions stay. See the errors below.", n=len(refused)),
              "error")
    elif not ok:
        flash(_("The config files have errors; nothing was applied: %(errors)s",
                errors="; ".join(str(i) for i in issues)), "error")
    else:
        flash(_("Workflows reloaded."), "success")
    return redirect(url_for("workflows_web.index"))
