"""Personal data kept out of the server's access log, and the personal-data access log kept
without making reads write.

**The personal-data access log** (PIPL, ``core_personal_access``): :func:`record` keeps one
unmasked read. In a write request it joins the request's transaction. In a read request
(GET/HEAD) it is queued and :func:`write_pending` writes the whole queue in one INSERT in
one short write transaction after the view returns and before the response is sent, so a
read never takes SQLite's write lock while it works, and a response whose access could not
be recorded is never sent (the write failing turns it into an error). A failed request
(status 400 and above) records nothing, as its data was not shown. A body generated while
it is sent (a streamed export) records each access at once, before the rows it covers.

**The server's access log**:

A search for a customer's phone number puts it in the URL (``/crm/customers?q=13812349876``),
and the request line ends up in the access log of whatever serves the app. A filter on the
``werkzeug`` logger (the development server behind ``dovetail run``) rewrites the query
string of every line it logs: the values of search and personal parameters (``q``,
``phone``, ``email`` …) and any value that looks like a phone number or an e-mail address
are masked the way the UI masks them for roles without the right (``138****9876``).
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import unquote_plus

from flask import request
from sqlalchemy import insert

from core.db import db, reads_only, utcnow, write_transaction
from core.models import PersonalAccess
from core.scope import mask_value

#: Per-request keys (the WSGI environ: ``g`` can outlive a request when an app context is shared).
_QUEUE, _SENDING = "dovetail.personal_access", "dovetail.personal_access.sending"


def record(user_id: int | None, entity: str, entity_ids: list[Any], channel: str) -> None:
    """Keep one personal-data access: queued in a read request, else in the current transaction.

    A read whose body is generated while it is sent (a streamed CSV export) records each
    access at once, in its own short transaction, before the rows it covers are yielded."""
    row = {"user_id": user_id, "entity": entity, "entity_ids": entity_ids, "channel": channel}
    if not reads_only():
        db.session.add(PersonalAccess(**row))
    elif request.environ.get(_SENDING):
        _write_now([row])
    else:
        request.environ.setdefault(_QUEUE, []).append(row)


def _write_now(rows: list[dict[str, Any]]) -> None:
    """Write access rows at once through the request's session: end its current transaction
    and write them in a short write transaction, both committed without expiring what the
    session holds (a streamed export goes on using the objects it loaded)."""
    session = db.session()
    keep = session.expire_on_commit
    session.expire_on_commit = False
    try:
        session.commit()
        now = utcnow()
        with write_transaction():
            session.execute(insert(PersonalAccess), [{**row, "at": now} for row in rows])
            session.commit()
    finally:
        session.expire_on_commit = keep


def pending() -> list[dict[str, Any]]:
    """The accesses this read request has queued and not yet written."""
    return list(request.environ.get(_QUEUE) or [])


def write_pending(status: int) -> None:
    """Write the read request's queued accesses (one INSERT, one short write transaction),
    after ending its read transaction; drop them when ``status`` is an error. Raises when
    the write fails, so the response is not sent as if the access were recorded."""
    rows = request.environ.pop(_QUEUE, None)
    request.environ[_SENDING] = True  # from now on the body is being sent: record at once
    if not rows or status >= 400:
        return
    db.session.commit()  # end the read transaction (deferred on SQLite)
    now = utcnow()
    with write_transaction():
        db.session.execute(insert(PersonalAccess), [{**row, "at": now} for row in rows])
        db.session.commit()

#: Query parameters whose values are personal or free-text searches (masked whatever they hold).
PERSONAL_PARAMS = frozenset({
    "q", "query", "search", "keyword", "keywords", "term", "phone", "phones", "mobile", "tel",
    "telephone", "email", "mail", "name", "contact", "address", "id_card", "id_number",
})

_QUERY = re.compile(r"\?([^\s\"'\x1b]*)")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE_CHARS = re.compile(r"[\s\-().]")
_PHONE = re.compile(r"^(?:(?:\+|00)?86)?1[3-9]\d{9}$|^0\d{9,11}$|^\+\d{8,15}$")
_COUNTRY = re.compile(r"^(?:\+|00)?86(?=1[3-9]\d{9}$)")


def _kind(value: str) -> str | None:
    if _EMAIL.match(value):
        return "email"
    if _PHONE.match(_PHONE_CHARS.sub("", value)):
        return "phone"
    return None


def mask_param(key: str, raw: str) -> str:
    """The logged form of one query parameter value (``raw`` as it appears in the URL)."""
    value = unquote_plus(raw)
    if not value:
        return raw
    kind = _kind(value)
    if kind == "phone":
        return mask_value(_COUNTRY.sub("", _PHONE_CHARS.sub("", value)), "phone")
    if kind == "email":
        return mask_value(value, "email")
    if unquote_plus(key).lower() in PERSONAL_PARAMS:
        return mask_value(value, "text")
    return raw


def mask_query(query: str) -> str:
    """Mask the personal values of a query string (``a=1&q=138…`` → ``a=1&q=138****…``)."""
    out = []
    for pair in query.split("&"):
        key, sep, raw = pair.partition("=")
        out.append(f"{key}{sep}{mask_param(key, raw)}" if sep else pair)
    return "&".join(out)


def mask_urls(text: str) -> str:
    """Mask the query string of every URL in a log line."""
    return _QUERY.sub(lambda m: "?" + mask_query(m.group(1)), text)


class AccessLogFilter(logging.Filter):
    """Rewrite a log record so query strings in it carry no personal data."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a record that cannot be formatted is left alone
            return True
        masked = mask_urls(message)
        if masked != message:
            record.msg, record.args = masked, ()
        return True


def install(logger_name: str = "werkzeug") -> None:
    """Put the filter on ``logger_name`` once (idempotent; called by ``create_app``)."""
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, AccessLogFilter) for f in logger.filters):
        logger.addFilter(AccessLogFilter())
