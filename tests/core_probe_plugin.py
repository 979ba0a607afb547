"""A throw-away plugin for the core tests (``create_app(extra_plugins={"probe": ...})``).

It owns one audited, scoped model with personal fields, a REST resource going through
core.scope, and endpoints that raise each kind of error, so the core's shells
(error shape, scope, masking, audit) are tested without any business plugin.
"""

from __future__ import annotations

from flask import jsonify
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from core import hookimpl
from core.api import ListArgs, apply_sort, page_body, page_of, page_schema
from core.auth import permission_required, require
from core.db import AuditedMixin, Model, db
from core.errors import Conflict, DovetailError
from core.registry import Permission, PluginManifest
from core.scope import dump, get_for, select_for

READ, WRITE, PERSONAL = "probe.note.read", "probe.note.write", "probe.note.read_personal"


class Note(Model, AuditedMixin, db.Model):
    __tablename__ = "probe_note"
    __scope_owner__ = "owner_id"
    __personal_fields__ = {"person": "name", "phone": "phone"}
    __personal_permission__ = PERSONAL

    title: Mapped[str] = mapped_column(String(80))
    person: Mapped[str | None] = mapped_column(String(80))
    phone: Mapped[str | None] = mapped_column(String(20))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("core_user.id"), nullable=True)


class NoteIn(Schema):
    title = fields.String(required=True, validate=validate.Length(min=1, max=80))
    person = fields.String(load_default=None)
    phone = fields.String(load_default=None, validate=validate.Regexp(r"^1\d{10}$", error="Not a mobile."))


class NoteOut(Schema):
    id = fields.Integer()
    title = fields.String()
    person = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    owner_id = fields.Integer(allow_none=True)


class NotePatch(Schema):
    title = fields.String(validate=validate.Length(min=1, max=80))
    phone = fields.String(allow_none=True)


class NoteArgs(ListArgs):
    class Meta(ListArgs.Meta):
        sortable = ("id", "title")


blp = Blueprint("probe", __name__, url_prefix="/probe", description="Core test probe")


@blp.route("/notes")
class Notes(MethodView):
    @permission_required(READ)
    @blp.arguments(NoteArgs, location="query")
    @blp.response(200, page_schema(NoteOut))
    def get(self, args):
        """List notes in the user's scope"""
        user = require(READ)
        rows, total = page_of(apply_sort(select_for(Note, READ, user), Note, args.get("sort")), args)
        return jsonify(page_body(dump(NoteOut(), rows, Note, user, many=True), total, args))

    @permission_required(WRITE)
    @blp.arguments(NoteIn)
    @blp.response(201, NoteOut)
    def post(self, data):
        """Create a note"""
        user = require(WRITE)
        note = Note(**data, owner_id=user.id)
        db.session.add(note)
        db.session.commit()
        resp = jsonify(dump(NoteOut(), note, Note, user))
        resp.status_code = 201
        return resp


@blp.route("/notes/<int:note_id>")
class NoteView(MethodView):
    @permission_required(READ)
    @blp.response(200, NoteOut)
    def get(self, note_id):
        """One note (404 outside scope)"""
        user = require(READ)
        return jsonify(dump(NoteOut(), get_for(Note, note_id, READ, user), Note, user))

    @permission_required(WRITE)
    @blp.arguments(NotePatch)
    @blp.response(200, NoteOut)
    def patch(self, data, note_id):
        """Change a note"""
        user = require(WRITE)
        note = get_for(Note, note_id, WRITE, user)
        for k, v in data.items():
            setattr(note, k, v)
        db.session.commit()
        return jsonify(dump(NoteOut(), note, Note, user))

    @permission_required(WRITE)
    @blp.response(204)
    def delete(self, note_id):
        """Delete a note"""
        user = require(WRITE)
        db.session.delete(get_for(Note, note_id, WRITE, user))
        db.session.commit()


@blp.route("/conflict")
class ConflictView(MethodView):
    @blp.response(200)
    def post(self):
        """Always 409"""
        raise Conflict("Note 'x' already exists.", fields={"title": ["Taken."]})


@blp.route("/bad")
class BadView(MethodView):
    @blp.response(200)
    def post(self):
        """Always 400"""
        raise DovetailError("This request makes no sense.")


@blp.route("/crash")
class CrashView(MethodView):
    @blp.response(200)
    def post(self):
        """Always 500"""
        raise RuntimeError("secret internal detail")


@hookimpl
def plugin_manifest():
    return PluginManifest(name="probe", version="0.0.1", description="core test probe")


@hookimpl
def register_models():
    return [Note]


@hookimpl
def register_permissions():
    return [Permission(READ), Permission(WRITE), Permission(PERSONAL)]


@hookimpl
def register_blueprints():
    return [blp]
