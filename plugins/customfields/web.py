"""Admin pages: the fields per entity (read-only view of the file) and a form to add one."""

from __future__ import annotations

from typing import Any

import yaml
from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Optional

from core.auth import current_user, has_permission
from core.db import db
from core.errors import ConfigError, Conflict, DovetailError
from core.state import dovetail
from plugins.customfields import services, store
from plugins.customfields.api import _check_body, _plain_body
from plugins.customfields.definitions import KEY_RE, TYPES

bp = Blueprint("customfields_web", __name__, url_prefix="/admin/custom-fields",
               template_folder="templates")


def _need(perm: str) -> Any:
    user = current_user()
    if not has_permission(user, perm):
        abort(403)
    return user


class FieldForm(FlaskForm):
    entity = SelectField(_l("Entity"), validators=[DataRequired()])
    key = StringField(_l("Key"), validators=[DataRequired()])
    # field types are code words (as in custom_fields.yaml), not prose to translate
    type = SelectField(_l("Type"), choices=[(t, t) for t in TYPES], validators=[DataRequired()],
                       render_kw={"translate": "no"})
    label_en = StringField(_l("Label (English)"), validators=[Optional()])
    label_zh = StringField(_l("Label (Chinese)"), validators=[Optional()])
    required = BooleanField(_l("Required"))
    default = StringField(_l("Default"), validators=[Optional()])
    min = StringField(_l("Minimum"), validators=[Optional()])
    max = StringField(_l("Maximum"), validators=[Optional()])
    max_length = IntegerField(_l("Maximum length"), validators=[Optional()])
    pattern = StringField(_l("Pattern (regular expression)"), validators=[Optional()])
    choices = TextAreaField(_l("Choices (one per line: value or value=label)"), validators=[Optional()])
    help_en = StringField(_l("Help text"), validators=[Optional()])
    read_roles = StringField(_l("Roles that may read (comma separated; empty: everyone)"), validators=[Optional()])
    write_roles = StringField(_l("Roles that may write (comma separated; empty: everyone)"), validators=[Optional()])


def _scalar(text: str) -> Any:
    """A form value read as a YAML scalar (``5`` → 5, ``2026-01-01`` → a date), else text."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if isinstance(value, str | int | float | bool) or type(value).__name__ in ("date", "datetime") \
        else text


def _body(form: FieldForm) -> dict[str, Any]:
    label = {k: v for k, v in (("en", form.label_en.data), ("zh_CN", form.label_zh.data)) if v}
    body: dict[str, Any] = {"type": form.type.data, "label": label or None}
    if form.required.data:
        body["required"] = True
    for name in ("default", "min", "max", "pattern"):
        value = (getattr(form, name).data or "").strip()
        if value:
            body[name] = value if name == "pattern" else _scalar(value)
    if form.max_length.data:
        body["max_length"] = form.max_length.data
    if form.help_en.data:
        body["help"] = {"en": form.help_en.data}
    if form.choices.data and form.choices.data.strip():
        items = []
        for line in form.choices.data.splitlines():
            if not line.strip():
                continue
            value, _sep, label_text = line.partition("=")
            items.append({"value": value.strip(), "label": {"en": label_text.strip()}} if label_text.strip()
                         else value.strip())
        body["choices"] = items
    for name in ("read_roles", "write_roles"):
        roles = [r.strip() for r in (getattr(form, name).data or "").split(",") if r.strip()]
        if roles:
            body[name] = roles
    return body


@bp.get("/")
@login_required
def index():
    _need("customfields.field.read")
    st = store.refresh(write=True)
    entities = sorted(dovetail().registry.custom_field_entities)
    by_entity = {e: sorted(st.fields_of(e, include_hidden=True), key=lambda fd: fd.key) for e in entities}
    try:
        text = st.path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    return render_template("customfields/index.html", by_entity=by_entity, problems=st.problems,
                           warnings=st.warnings, file_text=text, file_name=store.FILE_NAME,
                           locale=services._locale(),
                           can_write=has_permission(current_user(), "customfields.field.write"))


@bp.route("/new", methods=["GET", "POST"])
@login_required
def new():
    user = _need("customfields.field.write")
    form = FieldForm()
    entities = sorted(dovetail().registry.custom_field_entities)
    form.entity.choices = [(e, e) for e in entities]
    errors: list[str] = []
    status = 200
    if form.validate_on_submit():
        entity, key = form.entity.data, (form.key.data or "").strip()
        body = {k: v for k, v in _body(form).items() if v is not None}
        try:
            if not KEY_RE.match(key):
                form.key.errors.append(_("Use lowercase letters, digits and _, starting with a letter."))
                raise DovetailError("invalid key")
            _check_body(body)
            if store.refresh().get(entity, key) is not None:
                raise Conflict(_("Custom field '%(key)s' already exists on %(entity)s.", key=key, entity=entity))

            def mutate(data: dict[str, Any]) -> None:
                if data["fields"].get(entity) is None:
                    data["fields"][entity] = {}
                data["fields"][entity][key] = _plain_body(body)

            store.edit(mutate, force=False, actor=user.username, note=f"added {entity}.{key} (web)")
            db.session.commit()
            flash(_("Custom field %(key)s added to %(entity)s.", key=key, entity=entity))
            return redirect(url_for("customfields_web.index"))
        except ConfigError as exc:
            errors = [i.message for i in exc.issues]
        except DovetailError as exc:
            _attach(form, exc, errors)
        status = 422
    elif form.is_submitted():
        status = 422
    return render_template("customfields/new.html", form=form, errors=errors), status


def _attach(form: FieldForm, exc: DovetailError, errors: list[str]) -> None:
    """Put field-level messages under their inputs; the rest above the form."""
    mapping = {"label": "label_en", "help": "help_en"}
    if not exc.fields:
        if exc.message != "invalid key":
            errors.append(exc.message)
        return
    for name, msgs in exc.fields.items():
        target = getattr(form, mapping.get(name, name), None)
        flat = _flatten(msgs)
        if target is not None and hasattr(target, "errors"):
            target.errors = list(target.errors) + flat
        else:
            errors.extend(f"{name}: {m}" for m in flat)


def _flatten(msgs: Any) -> list[str]:
    if isinstance(msgs, dict):
        return [m for v in msgs.values() for m in _flatten(v)]
    if isinstance(msgs, list | tuple):
        return [m for v in msgs for m in _flatten(v)]
    return [str(msgs)]
