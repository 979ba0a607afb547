"""A throwaway plugin for the customfields tests: one custom-field entity ("gadget")
with a model, a list/create/patch API that uses core.custom exactly like the business
plugins do, and a CSV export."""

from __future__ import annotations

import csv
import io

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields
from sqlalchemy import String, select
from sqlalchemy.orm import Mapped, mapped_column

from core import custom, hookimpl
from core.api import ListArgs, page_body, page_of, page_schema
from core.auth import require_user
from core.db import JSONType, Model, db
from core.errors import NotFound
from core.registry import CustomFieldEntity, PluginManifest


class Gadget(Model, db.Model):
    __tablename__ = "cftest_gadget"

    name: Mapped[str] = mapped_column(String(80))
    custom: Mapped[dict] = mapped_column(JSONType, default=dict)


class GadgetIn(Schema):
    name = fields.String(required=True)
    custom = fields.Dict(load_default=dict)


class GadgetPatch(Schema):
    name = fields.String()
    custom = fields.Dict()


class GadgetOut(Schema):
    id = fields.Integer()
    name = fields.String()
    custom = fields.Dict()


class GadgetArgs(ListArgs):
    q = fields.String()


blp = Blueprint("cftest_gadgets", __name__, url_prefix="/cftest-gadgets")


def _out(g: Gadget, user) -> dict:
    return {"id": g.id, "name": g.name, "custom": custom.dump("gadget", g.custom, user)}


@blp.route("")
class Gadgets(MethodView):
    @blp.arguments(GadgetArgs, location="query")
    @blp.response(200, page_schema(GadgetOut))
    def get(self, args):
        user = require_user()
        stmt = custom.filter_query("gadget", Gadget, select(Gadget), request.args)
        rows, total = page_of(stmt.order_by(Gadget.id), args)
        return page_body([_out(g, user) for g in rows], total, args)

    @blp.arguments(GadgetIn)
    @blp.response(201, GadgetOut)
    def post(self, data):
        user = require_user()
        g = Gadget(name=data["name"], custom=custom.validate("gadget", data["custom"], user))
        db.session.add(g)
        db.session.commit()
        return _out(g, user)


@blp.route("/<int:gid>")
class GadgetView(MethodView):
    @blp.arguments(GadgetPatch)
    @blp.response(200, GadgetOut)
    def patch(self, data, gid):
        user = require_user()
        g = db.session.get(Gadget, gid)
        if g is None:
            raise NotFound("No such gadget.")
        if "custom" in data:
            g.custom = custom.validate("gadget", data["custom"], user, existing=g.custom, partial=True)
        db.session.commit()
        return _out(g, user)


@blp.route("/export")
class GadgetExport(MethodView):
    def get(self):
        user = require_user()
        cols = custom.columns("gadget", user)
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["id", "name"] + [f"custom.{k}" for k, _ in cols])
        for g in db.session.scalars(select(Gadget).order_by(Gadget.id)):
            vals = custom.dump("gadget", g.custom, user)
            w.writerow([g.id, g.name] + [vals.get(k, "") for k, _ in cols])
        return buf.getvalue(), 200, {"Content-Type": "text/csv"}


@hookimpl
def plugin_manifest():
    return PluginManifest(name="cftest", version="0.0.1")


@hookimpl
def register_models():
    return [Gadget]


@hookimpl
def register_blueprints():
    return [blp]


@hookimpl
def register_custom_field_entities():
    return [CustomFieldEntity("gadget", Gadget, permission_prefix="cftest.gadget")]
