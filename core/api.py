"""The REST shell: flask-smorest under ``/api/v1``, one JSON error shape, one
pagination shape, whitelisted sorting, and the core endpoints (auth, plugins, audit).

Every 4xx/5xx answers ``{"error": {"code", "message", "fields"}}``. Every list
answers ``{"items", "page", "per_page", "total"}``; ``per_page`` is capped.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import re
from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import wraps
from typing import Any

from flask import Flask, current_app, jsonify, request
from flask.views import MethodView
from flask_smorest import Api
from flask_smorest import Blueprint as SmorestBlueprint
from flask_smorest.utils import unpack_tuple_response
from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from sqlalchemy import Select, func, select
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter

from core import activation
from core.app import plugin_rows
from core.auth import (
    authenticate,
    issue_token,
    permission_required,
    permissions_of,
    require,
    require_user,
    revoke_token,
)
from core.db import db
from core.errors import ConfigError, DovetailError
from core.errors import DovetailError as BadRequest
from core.errors import ValidationError as Invalid
from core.errors import ValidationError as _Invalid
from core.models import AuditEntry
from core.state import dovetail

log = logging.getLogger("dovetail.api")

MAX_PER_PAGE = 200
#: Ids and integers fit PostgreSQL's ``integer`` (4 bytes): larger ones are refused
#: (422 in bodies and queries, 404 in paths) before a query could fail on them.
MAX_INT = 2**31 - 1
#: The largest amount a money column (NUMERIC(14, 2)) holds.
MAX_MONEY = Decimal("999999999999.99")
#: JSON bodies nested deeper than this are refused (400) before any schema sees them.
MAX_JSON_DEPTH = 32

HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 409: "conflict", 413: "too_large",
              415: "unsupported_media_type", 422: "validation_error", 428: "precondition_required",
              429: "too_many_requests", 500: "internal_error", 503: "service_unavailable"}


# ---------------------------------------------------------------------------
# Bounded numbers for schemas
# ---------------------------------------------------------------------------


def _add_range(kw: dict[str, Any], lo: int | None, hi: int | None) -> dict[str, Any]:
    given = kw.pop("validate", None)
    extra = [] if given is None else list(given) if isinstance(given, list | tuple) else [given]
    kw["validate"] = [validate.Range(min=lo, max=hi), *extra]
    return kw


class Id(fields.Integer):
    """A record id: an integer from 1 to 2^31-1. Use it for every id in a schema (bodies
    and query filters), so an id the database cannot hold is a 422, not a 500."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**_add_range(kw, 1, MAX_INT))


class Int(fields.Integer):
    """An integer within ``minimum`` … ``maximum`` (default the 4-byte range), for
    quantities, counts and limits: never a database overflow."""

    def __init__(self, *, minimum: int | None = -MAX_INT - 1, maximum: int | None = MAX_INT,
                 **kw: Any) -> None:
        super().__init__(**_add_range(kw, minimum, maximum))


class IdConverter(IntegerConverter):
    """``<int:…>`` in URLs: 1 … 2^31-1, so ``/orders/2147483648`` is a 404 on every database."""

    def __init__(self, url_map: Any, *args: Any, **kw: Any) -> None:
        kw.setdefault("min", 1)
        kw.setdefault("max", MAX_INT)
        super().__init__(url_map, *args, **kw)


def _id_param_schema(converter: IntegerConverter) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer"}
    if converter.min is not None:
        schema["minimum"] = converter.min
    if converter.max is not None:
        schema["maximum"] = converter.max
    return schema


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------


class ErrorDetail(Schema):
    code = fields.String(required=True, metadata={
        "description": "Stable machine-readable code: bad_request, unauthorized, forbidden, "
                       "not_found, conflict, validation_error, too_many_requests, "
                       "service_unavailable, …"})
    message = fields.String(required=True, metadata={"description": "What went wrong and what "
                                                                     "to do, for people."})
    fields_ = fields.Dict(keys=fields.String(), required=True, data_key="fields", metadata={
        "description": "Problems per input field (field name → messages); empty when none."})


class ErrorSchema(Schema):
    """The one error payload of the API: ``{"error": {"code", "message", "fields"}}``."""

    error = fields.Nested(ErrorDetail, required=True)


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


def database_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` says the database cannot be reached (down, refused, pool exhausted,
    connection lost), as opposed to a query the database rejected."""
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.TimeoutError)


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
    # Safety nets: input the schemas let through but the database refused.
    if database_unavailable(exc):
        log.warning("database unavailable on %s %s: %s", request.method, request.path,
                    str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        resp = jsonify(error_body(503, "The database is unavailable; try again shortly."))
        resp.headers["Retry-After"] = "30"
        return resp, 503
    if isinstance(exc, sa_exc.IntegrityError):
        log.warning("integrity error on %s %s: %s", request.method, request.path, exc.orig)
        return jsonify(error_body(409, "The change conflicts with existing data (a value that "
                                       "must be unique is taken, or a referenced record is "
                                       "missing or still in use).")), 409
    if isinstance(exc, sa_exc.DataError):
        log.warning("data error on %s %s: %s", request.method, request.path, exc.orig)
        return jsonify(error_body(422, "A value is out of range or not valid for its field.")), 422
    log.exception("unhandled error on %s %s", request.method, request.path)
    return jsonify(error_body(500, "Internal error; it has been logged.")), 500


# ---------------------------------------------------------------------------
# Request checks for /api: authenticate first, then refuse malformed input centrally
# ---------------------------------------------------------------------------

_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")


def public(view: Any) -> Any:
    """Mark an API view (method or MethodView class) as open to anonymous callers; every
    other /api/v1 endpoint authenticates before its input is read."""
    view.__dovetail_public__ = True
    return view


def _is_public() -> bool:
    endpoint = request.endpoint or ""
    if endpoint.startswith("api-docs."):
        return True
    fn = current_app.view_functions.get(endpoint)
    cls = getattr(fn, "view_class", None)
    method = getattr(cls, request.method.lower(), None) if cls is not None else None
    return any(getattr(obj, "__dovetail_public__", False) for obj in (fn, cls, method))


def _text_problem(text: str) -> str | None:
    bad = _BAD_TEXT.search(text)
    if bad is None:
        return None
    return ("Must not contain NUL characters." if bad.group() == "\x00" else
            "Must be valid Unicode text (a lone surrogate such as \\ud800 is not).")


def _nested(path: tuple[str, ...], message: str) -> dict[str, Any]:
    """``("custom", "t")`` → ``{"custom": {"t": [message]}}``, as marshmallow reports fields."""
    out: Any = [message]
    for part in reversed(path or ("_schema",)):
        out = {part: out}
    return out


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]} is out of range")
    return value


def check_json_body(raw: bytes) -> None:
    """Parse a JSON body the way the schemas will and refuse, before they see it, what would
    break them: nesting deeper than :data:`MAX_JSON_DEPTH`, NaN/Infinity or numbers beyond
    a float, NUL characters and lone surrogates in any key or string."""
    try:
        doc = json.loads(raw, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError:
        raise BadRequest(f"The JSON body is nested too deeply (at most {MAX_JSON_DEPTH} levels)."
                         ) from None
    except ValueError as exc:  # includes UnicodeDecodeError
        raise BadRequest(f"The body is not valid JSON: {exc}.") from None
    stack: list[tuple[Any, tuple[str, ...], int]] = [(doc, (), 1)]
    while stack:
        node, path, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise BadRequest(f"The JSON body is nested too deeply (at most {MAX_JSON_DEPTH} levels).")
        if isinstance(node, str):
            problem = _text_problem(node)
            if problem:
                raise _Invalid("Invalid input; see fields.", fields=_nested(path, problem))
        elif isinstance(node, dict):
            for key, value in node.items():
                problem = _text_problem(key)
                if problem:
                    raise _Invalid("Invalid input; see fields.",
                                   fields=_nested(path, f"Field name: {problem}"))
                stack.append((value, (*path, key), depth + 1))
        elif isinstance(node, list):
            stack.extend((value, (*path, str(i)), depth + 1) for i, value in enumerate(node))


def check_api_request() -> None:
    """``before_request`` for /api/v1: authenticate (401) unless the endpoint is public, then
    refuse malformed text and JSON. Views check their permission before reading input
    (``@permission_required`` outside ``@blp.arguments``), so no field list reaches a
    caller who may not use the operation."""
    if not request.path.startswith("/api/") or request.url_rule is None:
        return
    if not _is_public():
        require_user()
    # Query strings are left to the schemas and filters (a NUL there matches nothing);
    # text the database cannot store is a 422 through the DataError safety net.
    for key, value in (request.view_args or {}).items():
        problem = _text_problem(value) if isinstance(value, str) else None
        if problem:
            raise _Invalid("Invalid input; see fields.", fields={key: [problem]})
    if request.is_json and request.content_length != 0:
        raw = request.get_data(cache=True)
        if raw.strip():
            check_json_body(raw)


def _json_default(value: Any) -> Any:
    """Decimal bounds (``Range(min=Decimal("0"))``) are numbers in OpenAPI, not strings."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return str(value)


_BOUND_KEYWORDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
_NUMERIC_KEYWORDS = (*_BOUND_KEYWORDS, "default", "example")

#: What the API really sends for ``Decimal(as_string=True)``: a decimal string ("12.50").
DECIMAL_PATTERN = r"^-?[0-9]+(\.[0-9]+)?$"
#: What the API really sends for datetimes: ISO 8601; UTC when there is no offset.
DATETIME_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?(Z|[+-][0-9]{2}:?[0-9]{2})?$"


def _document_truth(self: Any, field: fields.Field, ret: dict[str, Any], **_: Any) -> dict[str, Any]:
    """apispec attribute function: document values as the API sends them. Decimals are
    strings (numbers are accepted on input too); datetimes are ISO 8601 and may have no
    offset (UTC), which JSON Schema's ``date-time`` format would reject."""
    if isinstance(field, fields.Decimal) and field.as_string:
        ret["type"] = "string"
        ret.pop("format", None)
        return {"pattern": DECIMAL_PATTERN}
    if isinstance(field, fields.DateTime) and ret.get("format") == "date-time":
        ret.pop("format")
        return {"pattern": DATETIME_PATTERN}
    return {}


def _numbers_as_numbers(node: Any) -> None:
    """Decimal fields (``as_string=True``) render bounds and defaults as strings; OpenAPI
    wants numbers for ``type: number``. Fixes the document in place."""
    if isinstance(node, dict):
        if "type" in node or "pattern" in node:
            for key in _NUMERIC_KEYWORDS if node.get("type") in ("number", "integer") else _BOUND_KEYWORDS:
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
    """flask-smorest Api whose errors use the Dovetail error shape (documented too)."""

    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error: HTTPException):  # noqa: D401
        return handle_error(error)

    def openapi_document(self) -> dict[str, Any]:
        """The OpenAPI document, amended live by plugins (custom fields appear at once)."""
        doc = copy.deepcopy(self.spec.to_dict())
        dovetail().pm.hook.amend_openapi(spec=doc)
        _numbers_as_numbers(doc)
        return doc

    def _openapi_json(self):
        return current_app.response_class(
            __import__("json").dumps(self.openapi_document(), indent=2, default=_json_default),
            mimetype="application/json")


# ---------------------------------------------------------------------------
# Responses: the documented schema is what is sent
# ---------------------------------------------------------------------------


class Serialized:
    """A body a view built already in JSON form (for speed, or masked by ``core.scope.dump``).

    Return ``Serialized(body)`` (or ``Serialized(body), status``) from a view of
    :class:`Blueprint`: the body is cut to the declared response schema's own field list
    (:func:`project`), so it cannot carry a field the OpenAPI document does not name.
    Everything else a view returns is dumped by its schema, as flask-smorest does.
    """

    __slots__ = ("body",)

    def __init__(self, body: Any) -> None:
        self.body = body


def serialized(body: Any, status: int = 200) -> tuple[Serialized, int]:
    """``return serialized(body, 201)`` from a view: see :class:`Serialized`."""
    return Serialized(body), status


def _project_field(field: fields.Field, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(field, fields.Nested) and not isinstance(field, fields.Pluck):
        schema = field.schema
        many = field.many or getattr(schema, "many", False)
        return project(schema, value, many=many)
    if isinstance(field, fields.List) and isinstance(value, list):
        return [_project_field(field.inner, v) for v in value]
    if isinstance(value, date | Decimal):  # not yet in JSON form: the field writes it
        return field._serialize(value, None, None)
    return value


def project(schema: Schema, body: Any, *, many: bool | None = None) -> Any:
    """``body`` (JSON-ready) cut to the fields ``schema`` documents, recursively through
    nested schemas and lists of them; values are kept as they are."""
    many = schema.many if many is None else many
    if many:
        return [project(schema, item, many=False) for item in body] if isinstance(body, list) else body
    if not isinstance(body, Mapping):
        return body
    out: dict[str, Any] = {}
    for name, field in schema.dump_fields.items():
        key = field.data_key or name
        if key in body:
            out[key] = _project_field(field, body[key])
    extra = set(body) - set(out)
    if extra and current_app and current_app.testing:
        log.warning("%s %s: %s left out of the answer, not in %s", request.method, request.path,
                    ", ".join(sorted(map(str, extra))), type(schema).__name__)
    return out


class Blueprint(SmorestBlueprint):
    """flask-smorest ``Blueprint`` whose views may return :class:`Serialized` bodies, which
    are cut to the declared response schema's fields; other results are dumped by it."""

    def response(self, status_code: Any, schema: Any = None, **kw: Any) -> Any:
        """As flask-smorest's ``response``; a :class:`Serialized` result is projected."""
        documented = super().response(status_code, schema, **kw)
        instance = schema() if isinstance(schema, type) else schema
        shape = instance if isinstance(instance, Schema) else None

        def decorator(func: Any) -> Any:
            @wraps(func)
            def view(*args: Any, **kwargs: Any) -> Any:
                result, status, headers = unpack_tuple_response(func(*args, **kwargs))
                if isinstance(result, Serialized):
                    body = result.body if shape is None else project(shape, result.body)
                    resp = jsonify(body)
                    resp.status_code = status or int(status_code)
                    if headers:
                        resp.headers.update(headers)
                    return resp
                return result, status, headers

            return documented(view)

        return decorator


class WorkflowResultOut(Schema):
    """What ``core.statemachine.perform`` answers: the transition done, or waiting for approvals."""

    status = fields.String(metadata={"description": "done, or pending_approval"})
    from_ = fields.String(data_key="from")
    to = fields.String()
    approvals = fields.Dict(metadata={"description": "given and required, while pending approval."})


# ---------------------------------------------------------------------------
# Lists: pagination, whitelisted sorting, filtering
# ---------------------------------------------------------------------------


class ListArgs(Schema):
    """Base query schema for lists. Subclasses set ``Meta.sortable`` field names."""

    class Meta:
        sortable: Sequence[str] = ("id",)
        unknown = "exclude"

    page = Int(load_default=1, minimum=1, maximum=1_000_000)
    per_page = Int(load_default=50, minimum=1, maximum=MAX_PER_PAGE)
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


def apply_sort(stmt: Select, model: type[Any], sort: str | None, default: str = "-id") -> Select:
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
@public
class TokenView(MethodView):
    @core_blp.arguments(TokenRequest)
    @core_blp.response(201, TokenResponse)
    def post(self, data):
        """Exchange a username and password for a bearer token"""
        user = authenticate(data["username"], data["password"], request.remote_addr)
        token = issue_token(user, data["name"])
        db.session.commit()
        return {"token": token, "token_type": "Bearer",
                "expires_in_days": dovetail().config.security[
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


class ConfigApplyArgs(Schema):
    force = fields.Boolean(load_default=False)


class ConfigApplied(Schema):
    version = fields.Integer()
    digest = fields.String()
    unchanged = fields.Boolean()
    notices = fields.List(fields.String())


@core_blp.route("/config/apply")
class ConfigApplyView(MethodView):
    @permission_required("core.config.apply")
    @core_blp.arguments(ConfigApplyArgs, location="query")
    @core_blp.response(200, ConfigApplied)
    def post(self, args):
        """Check every config file and put them in force in every worker (422 lists located errors)"""
        user = require("core.config.apply")
        try:
            done = activation.apply(current_app, actor=user.username, force=args["force"],
                                    note="POST /api/v1/config/apply")
        except ConfigError as exc:
            raise Invalid("The config files have errors; nothing was applied and the version in force "
                          "stays.", fields={"files": [str(i) for i in exc.issues]}) from None
        return {"version": done.version, "digest": done.digest, "unchanged": done.unchanged,
                "notices": done.notices}


@core_blp.route("/plugins")
class PluginsView(MethodView):
    @core_blp.response(200, PluginSchema(many=True))
    def get(self):
        """Available plugins with version, dependencies and enabled state"""
        require("core.plugin.read")

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
    sealed_seq = fields.Integer(allow_none=True, metadata={
        "description": "Position in the hash chain; null until the entry is sealed"})
    hash = fields.String(allow_none=True, metadata={"description": "Null until the entry is sealed"})


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
    @permission_required("core.audit.read")
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
        # Swagger UI vendored under core/web/static (swagger-ui-dist from npm): the page works offline
        OPENAPI_SWAGGER_UI_URL="/static/vendor/swagger-ui/",
        API_SPEC_OPTIONS={"components": {"securitySchemes": {
            "bearerAuth": {"type": "http", "scheme": "bearer"}}},
            "security": [{"bearerAuth": []}]},
    )
    # Before any route is added: every <int:…> in a URL is an id of 1 … 2^31-1.
    app.url_map.converters["int"] = IdConverter
    api = DovetailApi(app)
    api.register_converter(IdConverter, _id_param_schema)
    api.ma_plugin.converter.add_attribute_function(_document_truth)
    app.before_request(check_api_request)
    api.register_blueprint(core_blp, url_prefix="/api/v1")
    return api


from core import userjobs_api as _userjobs_api  # noqa: E402,F401 - its routes are on core_blp and the web blueprint
