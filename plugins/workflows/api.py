"""REST: ``/api/v1/workflows`` (list, one workflow with its diagram, check, reload)."""

from __future__ import annotations

from typing import Any

from flask import request
from flask.views import MethodView
from marshmallow import Schema, fields, validate
from marshmallow import ValidationError as MarshmallowError

from core.api import MAX_PER_PAGE, Blueprint, Int, page_body, page_schema
from core.api import serialized as _json
from core.auth import permission_required, require
from core.errors import NotFound, ValidationError
from core.state import dovetail
from core.statemachine import machine_for
from plugins.workflows import diagram
from plugins.workflows.checker import check_text
from plugins.workflows.store import count_outside, issue_dict, known_from_app, store

READ, MANAGE = "workflows.workflow.read", "workflows.workflow.manage"

blp = Blueprint("workflows_api", __name__, url_prefix="/workflows",
                description="Workflow definitions: list, diagram, check and reload")


class ListQuery(Schema):
    class Meta:
        unknown = "exclude"

    page = Int(load_default=1, validate=validate.Range(min=1))
    per_page = Int(load_default=50, validate=validate.Range(min=1, max=MAX_PER_PAGE))
    status = fields.String(load_default=None, validate=validate.OneOf(
        ["active", "built-in", "refused", "skipped", "pending", "removed"]))


class CheckIn(Schema):
    text = fields.String(required=True, metadata={"description": "The YAML text of one workflow file."})
    file = fields.String(load_default="workflow.yaml", validate=validate.Length(max=200))


class WorkflowIssueOut(Schema):
    file = fields.String()
    line = fields.Integer()
    column = fields.Integer()
    severity = fields.String()
    message = fields.String()
    text = fields.String(metadata={"description": "file:line:column: severity: message"})


class WorkflowRowOut(Schema):
    name = fields.String()
    entity = fields.String(allow_none=True)
    source = fields.String(allow_none=True)
    status = fields.String(metadata={"description": "active, built-in, none, refused, skipped, "
                                                   "pending or removed"})
    version = fields.String(allow_none=True)
    states = fields.Integer()
    transitions = fields.Integer()
    notice = fields.String(allow_none=True)
    issues = fields.List(fields.Nested(WorkflowIssueOut))


class WorkflowFileOut(Schema):
    name = fields.String()
    file = fields.String()
    entity = fields.String(allow_none=True)
    status = fields.String()
    version = fields.String(allow_none=True)
    notice = fields.String(allow_none=True)
    checked_at = fields.DateTime(allow_none=True)
    issues = fields.List(fields.Nested(WorkflowIssueOut))


class WorkflowOut(Schema):
    name = fields.String()
    entity = fields.String()
    field = fields.String()
    source = fields.String(allow_none=True)
    version = fields.String(allow_none=True)
    states = fields.List(fields.Dict(), metadata={"description": "key, label, initial, final"})
    transitions = fields.List(fields.Dict(), metadata={
        "description": "key, from, to, label, permission, roles, guard, actions, inputs, approvals"})
    state_map = fields.Dict()
    mermaid = fields.String()
    dot = fields.String()
    file_status = fields.Nested(WorkflowFileOut, allow_none=True)


class WorkflowCheckOut(Schema):
    ok = fields.Boolean()
    entity = fields.String(allow_none=True)
    skipped = fields.Boolean()
    moves = fields.Dict(metadata={"description": "state removed → {to, records} stranded in it"})
    issues = fields.List(fields.Nested(WorkflowIssueOut))


class WorkflowReloadOut(Schema):
    ok = fields.Boolean()
    files = fields.List(fields.Nested(WorkflowFileOut))
    errors = fields.List(fields.String(), metadata={"description": "located errors of any config file that "
                                                                   "refused the apply"})


def overview() -> list[dict[str, Any]]:
    """One row per workflow entity (its workflow in force) and per file not in force."""
    st = store()
    st.refresh(apply=False)
    reg = dovetail().registry
    rows: list[dict[str, Any]] = []
    for name in sorted(reg.workflow_entities):
        try:
            m = machine_for(name)
        except NotFound:
            m = None
        src = st.files.get(st.sources.get(name, ""))
        rows.append({"name": m.name if m else name, "entity": name, "source": m.source if m else None,
                     "status": "active" if src else ("built-in" if m else "none"),
                     "version": m.version if m else None, "states": len(m.states) if m else 0,
                     "transitions": len(m.transitions) if m else 0, "notice": None, "issues": []})
    for f in [*st.files.values(), *(f for n, f in st.refused.items() if st.files.get(n) is not f)]:
        if f.status != "active":
            rows.append({"name": f.name, "entity": f.entity, "source": f.display, "status": f.status,
                         "version": None, "states": 0, "transitions": 0, "notice": f.notice,
                         "issues": [issue_dict(i) for i in f.issues]})
    return rows


@blp.route("")
class WorkflowList(MethodView):
    @permission_required(READ)
    @blp.arguments(ListQuery, location="query")
    @blp.response(200, page_schema(WorkflowRowOut, "WorkflowPage"))
    def get(self, args):
        """Workflows in force, and files refused or skipped with their errors"""
        require(READ)
        rows = overview()
        if args.get("status"):
            rows = [r for r in rows if r["status"] == args["status"]]
        page, per = args["page"], args["per_page"]
        return _json(page_body(rows[(page - 1) * per:page * per], len(rows), args))


@blp.route("/<name>")
class WorkflowDetail(MethodView):
    @blp.response(200, WorkflowOut)
    def get(self, name):
        """One workflow in force: states, transitions, Mermaid and dot text"""
        require(READ)
        found = store().by_name(name)
        if found is None:
            raise NotFound(f"No workflow '{name}'.")
        entity, machine = found
        body = diagram.describe(machine)
        f = store().files.get(name)
        body["file_status"] = f.as_dict() if f else None
        body["entity"] = entity
        return _json(body)


@blp.route("/check")
class WorkflowCheck(MethodView):
    @permission_required(MANAGE)
    @blp.response(200, WorkflowCheckOut)
    def post(self):
        """Check YAML text (raw body, or JSON {"text", "file"}) without installing it"""
        require(MANAGE)
        if request.is_json:
            try:
                data = CheckIn().load(request.get_json(silent=True) or {})
            except MarshmallowError as err:
                raise ValidationError("Invalid input; see fields.", fields=err.messages) from None
            text, file = data["text"], data["file"]
        else:
            text, file = request.get_data(as_text=True), request.args.get("file", "workflow.yaml")
        if not text.strip():
            raise ValidationError("Send the workflow YAML as the request body.", fields={"text": ["Required."]})
        st = store()
        st.refresh(apply=False)
        taken = {e: st.files[s].display for e, s in st.sources.items() if st.files[s].path.name != file}
        result = check_text(text, file, known_from_app(), counter=count_outside, taken=taken,
                            in_force=st.in_force)
        return _json({"ok": result.ok and not result.skipped, "entity": result.entity,
                        "skipped": result.skipped,
                        "moves": {s: {"to": t, "records": n} for s, (t, n) in result.moves.items()},
                        "issues": [issue_dict(i) for i in result.issues]})


@blp.route("/reload")
class WorkflowReload(MethodView):
    @permission_required(MANAGE)
    @blp.response(200, WorkflowReloadOut)
    def post(self):
        """Apply the config (as POST /api/v1/config/apply): every file is checked and, if all pass, put
        in force in every worker; otherwise nothing changes and the refused files show their errors"""
        user = require(MANAGE)
        ok, files, issues = store().reload(user.username)
        return _json({"ok": ok, "files": [f.as_dict() for f in files], "errors": [str(i) for i in issues]})
