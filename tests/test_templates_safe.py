"""Templates stay XSS-safe and ready for a Content-Security-Policy without 'unsafe-inline'.

Every page template (core, built-in plugins, the plugin scaffold, the external test plugin)
is scanned: no inline <script> or <style>, no on*= event attributes, no javascript: URLs, no
style="" attributes (styling lives in core/web/static/dovetail.css, scripts in static .js
files); nothing marked safe by hand (|safe, Markup, autoescape off); and _() only around a
string literal, because Flask-Babel's template _() marks its result safe and %-formats it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import render_template_string
from flask_babel import lazy_gettext

REPO = Path(__file__).resolve().parent.parent
TEMPLATE_DIRS = [REPO / "core" / "web" / "templates", REPO / "plugins", REPO / "core" / "scaffold" / "template",
                 REPO / "tests" / "external_plugin"]

JINJA_COMMENT = re.compile(r"\{#.*?#\}", re.S)
RULES = [
    ("an inline <script> (use <script src> with a file under static/)",
     re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)),
    ("an inline <style> block (put the rules in static/dovetail.css)", re.compile(r"<style\b", re.I)),
    ("a style attribute (use a class in static/dovetail.css)", re.compile(r"<[^>]*\sstyle\s*=", re.I | re.S)),
    ("an on* event attribute (attach handlers from a static .js file)",
     re.compile(r"<[^>]*\son[a-z]+\s*=", re.I | re.S)),
    ("a javascript: URL", re.compile(r"javascript\s*:", re.I)),
    ("the |safe filter (escape where the markup is built, or return Markup from code that escapes)",
     re.compile(r"\|\s*safe\b")),
    ("Markup() in a template", re.compile(r"\bMarkup\s*\(")),
    ("autoescape switched off", re.compile(r"autoescape\s+false", re.I)),
    ("_() around something other than a string literal (use gettext_escaped(x) for a message id in a "
     "variable, and never translate record data)", re.compile(r"(?<![\w.])_\(\s*(?!['\"])")),
]


def templates() -> list[Path]:
    found = []
    for root in TEMPLATE_DIRS:
        for path in sorted(root.rglob("*")):
            if path.is_file() and "templates" in path.parts and (path.suffix == ".html" or path.name.endswith(
                    ".html.tmpl")):
                found.append(path)
    return found


def problems(text: str) -> list[str]:
    text = JINJA_COMMENT.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    out = []
    for what, pattern in RULES:
        for m in pattern.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            out.append(f"{line}: {what}: {m.group(0)[:60]!r}")
    return out


def test_the_scan_sees_every_plugins_templates():
    names = {p.relative_to(REPO).parts[1] for p in templates() if p.relative_to(REPO).parts[0] == "plugins"}
    assert {"catalog", "crm", "customfields", "inventory", "marketing", "orders", "workflows"} <= names
    assert any(p.name == "macros.html" for p in templates())


def test_no_template_has_inline_script_style_handlers_or_unescaped_output():
    found = {str(p.relative_to(REPO)): problems(p.read_text(encoding="utf-8")) for p in templates()}
    found = {k: v for k, v in found.items() if v}
    assert not found, "\n".join(f"{k}:{line}" for k, lines in found.items() for line in lines)


@pytest.mark.parametrize("snippet", [
    '<tr style="background:#fff">', "<script>alert(1)</script>", '<a href="javascript:go()">',
    '<button onclick="go()">', "{{ svg|safe }}", "{{ _(label) }}", "{{ _(f.label) }}", "<style>p{}</style>",
    "{% autoescape false %}",
])
def test_the_scan_catches(snippet):
    assert problems(snippet)


@pytest.mark.parametrize("snippet", [
    "{{ _('Save') }}", '{{ _("Page %(p)s", p=page) }}', '<script src="/static/x.js" defer></script>',
    "{# {{ _(label) }} in a comment #}", "{{ gettext_escaped(item.label) }}", '<input name="one">',
])
def test_the_scan_allows(snippet):
    assert not problems(snippet)


@pytest.fixture
def dovetail_plugins():
    return []


def test_gettext_escaped_translates_message_ids_and_escapes_everything_else(app):
    page = "{{ gettext_escaped(x) }}"
    with app.test_request_context("/?lang=zh_CN"):
        assert render_template_string(page, x="Active") == "启用"
        assert render_template_string(page, x="<script>alert(1)</script>50%") == \
            "&lt;script&gt;alert(1)&lt;/script&gt;50%"
        assert render_template_string(page, x="") == "" and render_template_string(page, x=None) == ""
        assert render_template_string(page, x=lazy_gettext("Inactive")) == "停用"
        # the template _() must never see data: it marks its result safe (the bug this guards)
        assert render_template_string("{{ _(x) }}", x="<b>") == "<b>"
