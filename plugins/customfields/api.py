"""``/api/v1/custom-fields``: list, read, create, change and hide field definitions.

Every write edits ``config/custom_fields.yaml`` (the one source of truth) atomically and
reloads it; the answer is what the file now says.
"""

from __future__ import annotations

from typing import Any

from flask import request
from flask.views import MethodView
from marshmallow import Schema, fields, validate
from marshmallow import ValidationError as MarshmallowError

from core.api import Blueprint, ListArgs, page_body, page_schema
from core.auth import permission_required, require
from core.db import db
from core.errors import ConfigError, Conflict, NotFound, ValidationError
from core.state import dovetail
from plugins.customfields import services, store
from plugins.customfields.definitions import KEY_RE, TYPES, FieldSchema

blp = Blueprint("customfields", __name__, url_prefix="/custom-fields",
                description="Custom field definitions (config/custom_fields.yaml)")

READ, WRITE = "customfields.field.read", "customfields.field.write"


class LabelOut(Schema):
    en = fields.String()
    zh_CN = fields.String()


class ChoiceOut(Schema):
    value = fields.String()
    label = fields.Nested(LabelOut)


class CustomFieldOut(Schema):
    entity = fields.String()
    key = fields.String()
    type = fields.String(metadata={"enum": list(TYPES)})
    label = fields.Nested(LabelOut)
    required = fields.Boolean()
    default = fields.Raw(allow_none=True)
    min = fields.Raw(allow_none=True)
    max = fields.Raw(allow_none=True)
    max_length = fields.Integer(allow_none=True)
    places = fields.Integer(allow_none=True)
    pattern = fields.String(allow_none=True)
    choices = fields.List(fields.Nested(ChoiceOut))
    help = fields.Nested(LabelOut)
    read_roles = fields.List(fields.String())
    write_roles = fields.List(fields.String())
    hidden = fields.Boolean()


class CustomFieldArgs(ListArgs):
    class Meta(ListArgs.Meta):
        sortable = ("entity", "key", "type")

    entity = fields.String()
    type = fields.String(validate=validate.OneOf(TYPES))
    include_hidden = fields.Boolean(load_default=False)


class ForceArgs(Schema):
    force = fields.Boolean(load_default=False, metadata={
        "description": "Change the field even though stored values no longer fit."})


class CheckOut(Schema):
    file = fields.String()
    problems = fields.List(fields.String())
    warnings = fields.List(fields.String())
    changes = fields.List(fields.Dict())


def _actor(user: Any) -> str:
    return getattr(user, "username", None) or "api"


def _get_json() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ValidationError("Send a JSON object.", fields={"_schema": ["Send a JSON object."]})
    return body


def _check_body(body: dict[str, Any]) -> dict[str, Any]:
    """Validate an API body with the same schema as the file (field-level messages)."""
    roles = list(dovetail().config.roles)
    try:
        return FieldSchema(roles=roles).load(body)
    except MarshmallowError as err:
        raise ValidationError("Invalid field definition.", fields=err.messages) from None


def _plain_body(body: dict[str, Any]) -> dict[str, Any]:
    """What goes into the YAML file for one field: the given options, none empty."""
    return {k: v for k, v in body.items() if v is not None and v != [] and v != {}
            and not (k in ("required", "hidden") and v is False)}


def _write(mutate: Any, force: bool, user: Any, note: str) -> None:
    try:
        store.edit(mutate, force=force, actor=_actor(user), note=note)
    except ConfigError as exc:
        raise ValidationError("The change would make the file invalid.",
                              fields={"_schema": [i.message for i in exc.issues]}) from None
    db.session.commit()


def _out(entity: str, key: str) -> dict[str, Any]:
    fd = store.state().get(entity, key)
    if fd is None:
        raise NotFound(f"No custom field '{key}' on {entity}.")
    return fd.to_json()


@blp.route("")
class CustomFieldsView(MethodView):
    @permission_required(READ)
    @blp.arguments(CustomFieldArgs, location="query")
    @blp.response(200, page_schema(CustomFieldOut, "CustomFieldPage"))
    def get(self, args):
        """List custom field definitions (filter by entity and type)"""
        require(READ)
        st = store.refresh()
        rows = [fd.to_json() for fd in st.defs.values()
                if (args.get("include_hidden") or not fd.hidden)
                and (not args.get("entity") or fd.entity == args["entity"])
                and (not args.get("type") or fd.type == args["type"])]
        key = args.get("sort") or "entity"
        rows.sort(key=lambda r: (str(r[key.lstrip("-")]), r["entity"], r["key"]), reverse=key.startswith("-"))
        page, per_page = args["page"], args["per_page"]
        return page_body(rows[(page - 1) * per_page: page * per_page], len(rows), args)

    @permission_required(WRITE)
    @blp.arguments(ForceArgs, location="query")
    @blp.response(201, CustomFieldOut)
    def post(self, args):
        """Add a custom field (written to config/custom_fields.yaml); a removed key may come back"""
        user = require(WRITE)
        body = _get_json()
        entity, key = body.pop("entity", None), body.pop("key", None)
        errors: dict[str, list[str]] = {}
        if not isinstance(entity, str) or not services.has_entity(entity):
            known = ", ".join(sorted(dovetail().registry.custom_field_entities))
            errors["entity"] = [f"Unknown entity; use one of: {known}."]
        if not isinstance(key, str) or not KEY_RE.match(key):
            errors["key"] = ["Use lowercase letters, digits and _, starting with a letter."]
        try:
            _check_body(body)
        except ValidationError as exc:
            errors.update(exc.fields)
        if errors:
            raise ValidationError("Invalid field definition.", fields=errors)
        store.refresh()
        if _in_file(entity, key):
            raise Conflict(f"Custom field '{key}' already exists on {entity}; change it with PATCH.")

        def mutate(data: dict[str, Any]) -> None:
            data["fields"].setdefault(entity, {})
            if data["fields"][entity] is None:
                data["fields"][entity] = {}
            data["fields"][entity][key] = _plain_body(body)

        _write(mutate, args["force"], user, f"added {entity}.{key}")
        return _out(entity, key)


@blp.route("/check")
class CheckView(MethodView):
    @blp.response(200, CheckOut)
    def get(self):
        """Check the file against the version in force: errors, and values a change would strand"""
        require(READ)
        st = store.refresh()
        found: list[dict[str, Any]] = []
        problems = list(st.problems)
        try:
            loaded = store.read_file(st.path)
            changed = store.changes(st.defs, loaded.defs)
            found = [c.to_json() for c in changed]
            # what applying the file would refuse (the version in force stays until then)
            problems += [f"{c.describe()}; refused (fix the values, or apply with --force)"
                         for c in store.blocking(changed)]
        except ConfigError as exc:
            problems = [str(i) for i in exc.issues]
        db.session.commit()  # end the read transaction (counting stored values)
        return {"file": str(st.path.name), "problems": problems, "warnings": st.warnings, "changes": found}


@blp.route("/<string:entity>/<string:key>")
class CustomFieldView(MethodView):
    @blp.response(200, CustomFieldOut)
    def get(self, entity, key):
        """One custom field definition"""
        require(READ)
        store.refresh()
        return _out(entity, key)

    @permission_required(WRITE)
    @blp.arguments(ForceArgs, location="query")
    @blp.response(200, CustomFieldOut)
    def patch(self, args, entity, key):
        """Change a custom field; refused (409) when stored values no longer fit, unless force=true"""
        user = require(WRITE)
        body = _get_json()
        for fixed in ("entity", "key"):
            if fixed in body and body[fixed] != {"entity": entity, "key": key}[fixed]:
                raise ValidationError("Invalid field definition.", fields={
                    fixed: [f"The {fixed} of a field cannot change; add a new field instead."]})
            body.pop(fixed, None)
        st = store.refresh()
        if st.get(entity, key) is None:
            raise NotFound(f"No custom field '{key}' on {entity}.")
        current = _raw_field(entity, key)
        merged = {**current, **body}
        merged = {k: v for k, v in merged.items() if v is not None}
        _check_body(merged)

        def mutate(data: dict[str, Any]) -> None:
            data["fields"][entity][key] = _plain_body(merged)

        _write(mutate, args["force"], user, f"changed {entity}.{key}")
        return _out(entity, key)

    @blp.response(204)
    def delete(self, entity, key):
        """Hide a custom field: it leaves forms, lists and the API; stored values are kept"""
        user = require(WRITE)
        st = store.refresh()
        if st.get(entity, key) is None:
            raise NotFound(f"No custom field '{key}' on {entity}.")

        def mutate(data: dict[str, Any]) -> None:
            data["fields"][entity][key]["hidden"] = True

        _write(mutate, False, user, f"hid {entity}.{key}")


def _in_file(entity: str, key: str) -> bool:
    loaded = store.read_file(store.state().path)
    return isinstance(((loaded.data.get("fields") or {}).get(entity) or {}).get(key), dict)


def _raw_field(entity: str, key: str) -> dict[str, Any]:
    """The field's options exactly as written in the file."""
    loaded = store.read_file(store.state().path)
    raw = ((loaded.data.get("fields") or {}).get(entity) or {}).get(key)
    if not isinstance(raw, dict):
        raise NotFound(f"Custom field '{key}' on {entity} was removed from the file; add it again with POST.")
    return dict(raw)
