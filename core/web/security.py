"""HTTP hardening shared by the web UI and the API: where a login may send the browser
next, cookies marked ``Secure`` over HTTPS, and the security headers of every response.

The Content-Security-Policy allows no inline script or style anywhere; the one exception
is the interactive API documentation (``/api/v1/docs``, Swagger UI vendored under
``static/vendor``; a CDN only if ``OPENAPI_SWAGGER_UI_URL`` is set to one), whose page
gets a policy naming that CDN, if any, and the SHA-256 of exactly the inline bootstrap script it
sent, and inline styles (Swagger UI injects them; the page shows no user data).
"""

from __future__ import annotations

import base64
import hashlib
import re
import unicodedata
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, has_request_context, request
from flask.sessions import SecureCookieSessionInterface

#: The policy of every page and API answer.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "font-src 'self'; connect-src 'self'; object-src 'none'; frame-ancestors 'none'; "
       "base-uri 'self'; form-action 'self'")

#: The policy of the API documentation page; ``{scripts}`` and ``{cdn}`` are filled per answer.
DOCS_CSP = ("default-src 'self'; script-src 'self' {cdn}{scripts}; "
            "style-src 'self' {cdn} 'unsafe-inline'; img-src 'self' data:; font-src 'self' {cdn}; "
            "connect-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'self'; "
            "form-action 'self'")

#: Endpoints of flask-smorest's documentation pages.
DOCS_ENDPOINTS = ("api-docs.openapi_swagger_ui", "api-docs.openapi_redoc",
                  "api-docs.openapi_rapidoc")

HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}

#: Sent over HTTPS only (a browser ignores it over plain HTTP anyway).
HSTS = "max-age=31536000"

_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)


def safe_next_url(target: str | None) -> str | None:
    """``target`` when it is a path on this site, else None.

    Browsers drop tabs and new lines inside URLs and read ``\\`` as ``/``, so
    ``/\\t/evil.example`` or ``/\\evil.example`` become ``//evil.example``, another site.
    Anything holding a control, format or space character or a backslash is refused, then
    only a path that starts with exactly one ``/`` and names no scheme or host is accepted.
    """
    if not target or len(target) > 2048:
        return None
    if "\\" in target or any(unicodedata.category(ch)[0] in "CZ" for ch in target):
        return None
    if not target.startswith("/") or target.startswith("//"):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with the cookie ``Secure`` whenever the request came
    over HTTPS (directly, or through a trusted proxy's ``X-Forwarded-Proto``), besides
    when ``SESSION_COOKIE_SECURE`` says so always."""

    def get_cookie_secure(self, app: Flask) -> bool:
        if super().get_cookie_secure(app):
            return True
        return has_request_context() and request.is_secure


def _docs_policy(response: Response, cdn: str) -> str:
    body = response.get_data(as_text=True)
    hashes = "".join(
        f" 'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'"
        for s in _INLINE_SCRIPT.findall(body))
    return DOCS_CSP.format(cdn=cdn, scripts=hashes)


def add_security_headers(response: Response, docs_cdn: str | None = None) -> Response:
    """Set the security headers a view did not set itself (``after_request``)."""
    headers: Any = response.headers
    if "Content-Security-Policy" not in headers:
        if (request.endpoint in DOCS_ENDPOINTS and not response.direct_passthrough
                and response.mimetype == "text/html"):
            headers["Content-Security-Policy"] = _docs_policy(response, docs_cdn or "")
        else:
            headers["Content-Security-Policy"] = CSP
    for name, value in HEADERS.items():
        headers.setdefault(name, value)
    if request.is_secure:
        headers.setdefault("Strict-Transport-Security", HSTS)
    return response


def cdn_origin(url: str | None) -> str | None:
    """``https://cdn.example/path/`` → ``https://cdn.example`` (for a CSP source list)."""
    if not url:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None
