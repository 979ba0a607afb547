"""Manifest and hooks of the loyalty plugin."""

from __future__ import annotations

from pathlib import Path

import click
from flask import Blueprint, render_template
from flask.views import MethodView
from flask_login import login_required
from flask_smorest import Blueprint as ApiBlueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import ForeignKey, String, select
from sqlalchemy.orm import Mapped, mapped_column

from core import hookimpl
from core.api import ListArgs, apply_sort, page_body, page_of, page_schema
from core.auth import permission_required, require
from core.cli import with_app
from core.db import AuditedMixin, Model, db
from core.errors import NotFound
from core.registry import CliCommand, MenuItem, Permission, PluginManifest
from core.scope import dump, select_for

READ = "loyalty.member.read"
WRITE = "loyalty.member.write"


class Member(Model, AuditedMixin, db.Model):
    __tablename__ = "loyalty_member"
    __scope_owner__ = "owner_id"
    __personal_fields__ = {"phone": "phone"}
    __personal_permission__ = WRITE

    code: Mapped[str] = mapped_column(String(40), unique=True)
    phone: Mapped[str | None] = mapped_column(String(20))
    points: Mapped[int] = mapped_column(default=0)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("core_user.id", ondelete="SET NULL"),
                                                 nullable=True, index=True)


class MemberIn(Schema):
    code = fields.String(required=True, validate=validate.Length(min=1, max=40))
    phone = fields.String(load_default=None, validate=validate.Length(max=20))
    points = fields.Integer(load_default=0, validate=validate.Range(min=0))


class MemberOut(Schema):
    id = fields.Integer()
    code = fields.String()
    phone = fields.String(allow_none=True)
    points = fields.Integer()
    owner_id = fields.Integer(allow_none=True)


class MemberArgs(ListArgs):
    class Meta(ListArgs.Meta):
        sortable = ("id", "code", "points")


api = ApiBlueprint("loyalty", __name__, url_prefix="/loyalty", description="Loyalty members")


@api.route("/members")
class Members(MethodView):
    @permission_required(READ)
    @api.arguments(MemberArgs, location="query")
    @api.response(200, page_schema(MemberOut))
    def get(self, args):
        """List loyalty members"""
        user = require(READ)
        rows, total = page_of(apply_sort(select_for(Member, READ, user), Member, args.get("sort")), args)
        return page_body(dump(MemberOut(), rows, Member, user, many=True), total, args)

    @permission_required(WRITE)
    @api.arguments(MemberIn)
    @api.response(201, MemberOut)
    def post(self, data):
        """Enrol a member"""
        user = require(WRITE)
        member = Member(**data, owner_id=user.id)
        db.session.add(member)
        db.session.commit()
        return dump(MemberOut(), member, Member, user)


web = Blueprint("loyalty_web", __name__, url_prefix="/loyalty", template_folder="templates")


@web.get("/")
@login_required
def index():
    user = require(READ)
    rows = db.session.scalars(select_for(Member, READ, user).order_by(Member.code)).all()
    return render_template("loyalty/index.html", rows=rows)


@click.group("loyalty")
def loyalty_cli() -> None:
    """Loyalty points."""


@loyalty_cli.command("award")
@click.argument("code")
@click.argument("points", type=click.IntRange(min=1))
@with_app
def award(code: str, points: int) -> None:
    """Add POINTS to the member with CODE."""
    member = db.session.scalar(select(Member).where(Member.code == code))
    if member is None:
        raise NotFound(f"No loyalty member with code '{code}'.")
    member.points += points
    db.session.commit()
    click.echo(f"{code}: {member.points} points")


@hookimpl
def plugin_manifest():
    return PluginManifest(name="loyalty", version="0.3.0", description="Loyalty points for members",
                          migrations=str(Path(__file__).parent / "migrations" / "versions"))


@hookimpl
def register_models():
    return [Member]


@hookimpl
def register_permissions():
    return [Permission(READ, "See loyalty members"), Permission(WRITE, "Enrol members, award points")]


@hookimpl
def register_blueprints():
    return [api]


@hookimpl
def register_web_blueprints():
    return [web]


@hookimpl
def register_menu_items():
    return [MenuItem("loyalty.members", "Loyalty", "loyalty_web.index", READ, order=650)]


@hookimpl
def register_commands():
    return [CliCommand(loyalty_cli)]
