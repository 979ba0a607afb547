"""Message ids in data: report labels, column headers and definitions translated where shown.

Reports return plain data (the API and CSV/XLSX downloads keep stable English keys and
labels); the web pages translate it for the reader. Three conventions make that possible:

- :func:`N_` marks a literal for ``pybabel extract`` (``-k N_``) and returns a
  :class:`MessageId`, a ``str`` that a page knows to translate (an RFM segment name, a funnel
  stage) while record data (a customer or product name) is shown as it is.
- A column key such as ``average_order_value`` is shown as the message id
  ``"Average order value"`` (:func:`column_label`); a reports module lists those ids with
  :func:`N_` so they are extracted.
- A definition text made of sentences, each a message id, is translated sentence by
  sentence (:func:`translate_text`), so a shared sentence (the revenue definition) is
  translated once.

A :class:`Message` (from :func:`M_`) is a formatted text such as why a workflow button
is disabled: English as a string, translated when a template shows it.
"""

from __future__ import annotations

import re
from typing import Any

from flask_babel import get_locale, gettext
from markupsafe import escape

from core.errors import DovetailError


class MessageId(str):
    """A string that is a message id: shown translated on web pages, as it is elsewhere."""

    __slots__ = ()


class Message(str):
    """A text that is English where it is data (the API, logs, exceptions) and translated where
    a page shows it: Jinja calls :meth:`__html__`, which translates and escapes it once.

    Build it with :func:`M_`; ``shown`` gives the arguments a reader sees (a role's label
    instead of its key) when they differ from the English text's."""

    msgid: str
    args: dict[str, Any]
    shown: dict[str, Any] | None

    def __new__(cls, msgid: str, args: dict[str, Any] | None = None,
                shown: dict[str, Any] | None = None) -> Message:
        obj = super().__new__(cls, msgid % args if args else msgid)
        obj.msgid, obj.args, obj.shown = msgid, dict(args or {}), shown
        return obj

    def translated(self) -> str:
        """The text in the request's language (English outside a request)."""
        try:
            return gettext(self.msgid, **(self.shown if self.shown is not None else self.args))
        except RuntimeError:  # no application context: the English text
            return str(self)

    def __html__(self) -> str:
        return str(escape(self.translated()))


def shown(text: Any) -> str:
    """What a page shows for ``text``: a :class:`Message` translated, other text as it is
    (for flash messages, which are stored as plain strings)."""
    return text.translated() if isinstance(text, Message) else ("" if text is None else str(text))


def state_label(entity: str, key: str | None) -> str:
    """A workflow state as the reader sees it: its label in the workflow in force for
    ``entity``, in the request's language (the key for a state the workflow does not have)."""
    from core.statemachine import label_of, machine_for  # noqa: PLC0415 - core.statemachine imports this module

    if not key:
        return ""
    try:
        state = machine_for(entity).states.get(key)
    except DovetailError:  # no workflow for this entity
        return key
    return label_of(state.label) if state is not None else key


def transition_label(entity: str, key: str | None) -> str:
    """A workflow transition as the reader sees it (history rows): its label in the workflow in
    force for ``entity``, in the request's language (the key for one it no longer has)."""
    from core.statemachine import label_of, machine_for  # noqa: PLC0415 - core.statemachine imports this module

    if not key:
        return ""
    try:
        t = machine_for(entity).transitions.get(key)
    except DovetailError:
        return key
    return label_of(t.label) if t is not None else key


def M_(msgid: str, shown: dict[str, Any] | None = None, **args: Any) -> Message:  # noqa: N802 - like N_
    """``M_("requires the permission '%(permission)s'", permission=p)``: a :class:`Message`
    (extracted with ``-k M_``)."""
    return Message(msgid, args, shown)


def N_(message_id: str) -> MessageId:  # noqa: N802 - the gettext convention for "mark only"
    """Mark ``message_id`` for extraction without translating it now (no locale at import)."""
    return MessageId(message_id)


_SNAKE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
#: column keys shown in capitals in every language
_ACRONYMS = frozenset({"sku", "id", "rfm"})


def column_label(key: str) -> str:
    """The translated header of a report column: ``"average_order_value"`` →
    ``gettext("Average order value")``; a column named in words is translated as it is."""
    if not key:
        return key
    if key in _ACRONYMS:
        return key.upper()
    text = key.replace("_", " ").capitalize() if _SNAKE.fullmatch(key) else key
    return gettext(text)


def translate_cell(value: Any) -> Any:
    """A report cell for a page: a :class:`MessageId` translated, anything else unchanged."""
    return gettext(value) if isinstance(value, MessageId) and value else value


_SENTENCE_END = re.compile(r"(?<=\.)\s+(?=[A-Z(])")


def translate_text(text: str) -> str:
    """Translate a whole message id, or else each of its sentences (Chinese joins them
    without spaces)."""
    if not text:
        return ""
    whole = gettext(text)
    if whole != text:
        return whole
    parts = [gettext(p) for p in _SENTENCE_END.split(text)]
    locale = get_locale()
    joiner = "" if locale is not None and locale.language in ("zh", "ja") else " "
    return joiner.join(parts)


__all__ = ["M_", "Message", "MessageId", "N_", "column_label", "shown", "state_label", "transition_label",
           "translate_cell", "translate_text"]
