"""The REST shell: flask-smorest under ``/api/v1``, one JSON error shape, one
pagination shape, whitelisted sorting, and the core endpoints (auth, plugins, audit).

Every 4xx/5xx answers ``{"error": {"code", "message", "fields"}}``. Every list
answers ``{"items", "page", "per_page", "total"}``; ``per_page`` is capped.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from flask import Flask, current_app, jsonify, request
from flask.views import MethodView
from flask_smorest import Api, Blueprint
from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from sqlalchemy import Select, func, select
from werkzeug.exceptions import HTTPException

from core.auth import (
    authenticate,
    issue_token,
    require,
    require_user,
    revoke_token,
)
from core.db import db
from core.errors import DovetailError
from core.models import AuditEntry

log = logging.getLogger("dovetail.api")

MAX_PER_PAGE = 200

HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 409: "conflict", 413: "too_large",
              415: "unsupported_media_type", 422: "validation_error", 428: "precondition_required",
              429: "too_many_requests", 500: "internal_error"}


def error_body(status: int, message: str, fields_: Mapping[str, Any] | None = None,
               code: str | None = None) -> dict[str, Any]:
    return {"error": {"code": code or HTTP_CODES.get(status, "error"), "message": message,
                      "fields": dict(fields_ or {})}}


def _flatten_smorest_messages(messages: Any) -> dict[str, Any]:
    """flask-smorest nests by location (json/query/headers); clients want field names."""
    if isinstance(messages, Mapping) and set(messages) <= {"json", "query", "form", "headers",
                                                           "files", "path", "cookies"}:
        out: dict[str, Any] = {}
        for value in messages.values():
            if isinstance(value, Mapping):
                out.update({str(k): v for k, v in value.items()})
        return out
    return dict(messages) if isinstance(messages, Mapping) else {"_schema": messages}


def handle_error(exc: Exception):
    """Turn any exception under /api into the one JSON error shape."""
    if isinstance(exc, DovetailError):
        return jsonify(exc.to_dict()), exc.http_status
    if isinstance(exc, HTTPException):
        status = exc.code or 500
        data = getattr(exc, "data", None) or {}
        fields_ = _flatten_smorest_messages(data.get("messages", {})) if data else {}
        message = "Invalid input; see fields." if fields_ else (exc.description or exc.name)
        return jsonify(error_body(status, message, fields_)), status
    log.exception("unhandled error on %s %s", request.method, request.path)
    return jsonify(error_body(500, "Internal error; it has been logged.")), 500


def _json_default(value: Any) -> Any:
    """Decimal bounds (``Range(min=Decimal("0"))``) are numbers in OpenAPI, not strings."""
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return str(value)


_NUMERIC_KEYWORDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
                     "default", "example")


def _numbers_as_numbers(node: Any) -> None:
    """Decimal fields (``as_string=True``) render bounds and defaults as strings; OpenAPI
    wants numbers for ``type: number``. Fixes the document in place."""
    from decimal import Decimal, InvalidOperation

    if isinstance(node, dict):
        if node.get("type") in ("number", "integer"):
            for key in _NUMERIC_KEYWORDS:
                value = node.get(key)
                if isinstance(value, str):
                    try:
                        node[key] = _json_default(Decimal(value))
                    except InvalidOperation:
                        pass
        for child in node.values():
            _numbers_as_numbers(child)
    elif isinstance(node, list):
        for child in node:
            _numbers_as_numbers(child)


class DovetailApi(Api):
    """flask-smorest Api whose errors use the Dovetail error shape."""

    def handle_http_exception(self, error: HTTPException):  # noqa: D401
        return handle_error(error)

    def openapi_document(self) -> dict[str, Any]:
        """The OpenAPI document, amended live by plugins (custom fields appear at once)."""
        import copy

        doc = copy.deepcopy(self.spec.to_dict())
        current_app.extensions["dovetail"].pm.hook.amend_openapi(spec=doc)
        _numbers_as_numbers(doc)
        return doc

    def _openapi_json(self):
        return current_app.response_class(
            __import__("json").dumps(self.openapi_document(), indent=2, default=_json_default),
            mimetype="application/json")


# ---------------------------------------------------------------------------
# Lists: pagination, whitelisted sorting, filtering
# ---------------------------------------------------------------------------


class ListArgs(Schema):
    """Base query schema for lists. Subclasses set ``Meta.sortable`` field names."""

    class Meta:
        sortable: Sequence[str] = ("id",)
        unknown = "exclude"

    page = fields.Integer(load_default=1, validate=validate.Range(min=1))
    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=MAX_PER_PAGE))
    sort = fields.String(load_default=None, metadata={
        "description": "Field to sort by; prefix with '-' for descending."})

    @validates_schema
    def _check_sort(self, data: dict[str, Any], **_: Any) -> None:
        sort = data.get("sort")
        if sort:
            allowed = tuple(getattr(self.Meta, "sortable", ("id",)))
            if sort.lstrip("-") not in allowed:
                raise ValidationError(f"Cannot sort by '{sort.lstrip('-')}'; allowed: "
                                      f"{', '.join(allowed)}.", field_name="sort")


def apply_sort(stmt: Select, model: type, sort: str | None, default: str = "-id") -> Select:
    """Sort by a field already checked against the whitelist in :class:`ListArgs`."""
    key = sort or default
    col = getattr(model, key.lstrip("-"))
    return stmt.order_by(col.desc() if key.startswith("-") else col.asc(), model.id.desc()
                         if key.startswith("-") else model.id.asc())


def page_of(stmt: Select, args: Mapping[str, Any]) -> tuple[list[Any], int]:
    """Run one page of ``stmt``; returns (rows, total)."""
    page, per_page = args.get("page", 1), min(args.get("per_page", 50), MAX_PER_PAGE)
    total = db.session.scalar(select(func.count()).select_from(
        stmt.order_by(None).subquery())) or 0
    rows = db.session.scalars(stmt.limit(per_page).offset((page - 1) * per_page)).all()
    return list(rows), total


def page_body(items: list[Any], total: int, args: Mapping[str, Any]) -> dict[str, Any]:
    return {"items": items, "page": args.get("page", 1), "per_page": args.get("per_page", 50),
            "total": total}


def page_schema(item_schema: type[Schema], name: str | None = None) -> type[Schema]:
    """A response schema ``{items: [item], page, per_page, total}`` for OpenAPI."""
    return type(name or f"{item_schema.__name__.removesuffix('Schema')}Page", (Schema,), {
        "items": fields.List(fields.Nested(item_schema)),
        "page": fields.Integer(), "per_page": fields.Integer(), "total": fields.Integer()})


# ---------------------------------------------------------------------------
# Core endpoints
# ---------------------------------------------------------------------------

core_blp = Blueprint("core", __name__, url_prefix="/", description="Authentication, plugins, audit")


class TokenRequest(Schema):
    username = fields.String(required=True)
    password = fields.String(required=True, load_only=True)
    name = fields.String(load_default="api", validate=validate.Length(max=80))


class TokenResponse(Schema):
    token = fields.String()
    token_type = fields.String()
    expires_in_days = fields.Integer()


@core_blp.route("/auth/token")
class TokenView(MethodView):
    @core_blp.arguments(TokenRequest)
    @core_blp.response(201, TokenResponse)
    def post(self, data):
        """Exchange a username and password for a bearer token"""
        user = authenticate(data["username"], data["password"], request.remote_addr)
        token = issue_token(user, data["name"])
        db.session.commit()
        return {"token": token, "token_type": "Bearer",
                "expires_in_days": current_app.extensions["dovetail"].config.security[
                    "token_ttl_days"]}

    @core_blp.response(204)
    def delete(self):
        """Revoke the bearer token used for this request"""
        require_user()
        token = request.headers.get("Authorization", "")[7:].strip()
        revoke_token(token)
        db.session.commit()


class MeSchema(Schema):
    id = fields.Integer()
    username = fields.String()
    display_name = fields.String()
    roles = fields.List(fields.String(), attribute="role_names")
    team_id = fields.Integer(allow_none=True)
    permissions = fields.Method("_perms")

    def _perms(self, user):
        from core.auth import permissions_of

        return sorted(permissions_of(user))


@core_blp.route("/auth/me")
class MeView(MethodView):
    @core_blp.response(200, MeSchema)
    def get(self):
        """The authenticated user, their roles and permissions"""
        return require_user()


class PluginSchema(Schema):
    name = fields.String()
    version = fields.String()
    description = fields.String()
    enabled = fields.Boolean()
    depends = fields.List(fields.String())
    optional = fields.List(fields.String())
    error = fields.String(allow_none=True)


@core_blp.route("/plugins")
class PluginsView(MethodView):
    @core_blp.response(200, PluginSchema(many=True))
    def get(self):
        """Available plugins with version, dependencies and enabled state"""
        require("core.plugin.read")
        from core.app import plugin_rows

        return plugin_rows(current_app)


class AuditSchema(Schema):
    id = fields.Integer()
    at = fields.DateTime()
    actor_id = fields.Integer(allow_none=True)
    actor = fields.String()
    action = fields.String()
    entity = fields.String()
    entity_id = fields.String()
    before = fields.Raw(allow_none=True)
    after = fields.Raw(allow_none=True)
    note = fields.String(allow_none=True)
    hash = fields.String()


class AuditArgs(ListArgs):
    class Meta(ListArgs.Meta):
        sortable = ("id", "at")

    entity = fields.String()
    entity_id = fields.String()
    actor = fields.String()
    action = fields.String()
    since = fields.DateTime()
    until = fields.DateTime()


@core_blp.route("/audit")
class AuditView(MethodView):
    @core_blp.arguments(AuditArgs, location="query")
    @core_blp.response(200, page_schema(AuditSchema))
    def get(self, args):
        """Search the audit log (append-only, hash-chained)"""
        require("core.audit.read")
        stmt = select(AuditEntry)
        for key in ("entity", "entity_id", "actor", "action"):
            if args.get(key):
                stmt = stmt.where(getattr(AuditEntry, key) == args[key])
        if args.get("since"):
            stmt = stmt.where(AuditEntry.at >= args["since"])
        if args.get("until"):
            stmt = stmt.where(AuditEntry.at < args["until"])
        rows, total = page_of(apply_sort(stmt, AuditEntry, args.get("sort")), args)
        return page_body(rows, total, args)


def init_api(app: Flask) -> DovetailApi:
    app.config.update(
        API_TITLE="Dovetail API", API_VERSION="v1", OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api/v1", OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="/docs",
        OPENAPI_SWAGGER_UI_URL="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/",
        API_SPEC_OPTIONS={"components": {"securitySchemes": {
            "bearerAuth": {"type": "http", "scheme": "bearer"}}},
            "security": [{"bearerAuth": []}]},
    )
    api = DovetailApi(app)
    api.register_blueprint(core_blp, url_prefix="/api/v1")
    return api
