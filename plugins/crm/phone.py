"""Phone numbers: mainland mobiles normalised to 11 digits starting with 1.

Accepted input: optional ``+86`` / ``0086`` / ``86`` country prefix, spaces, dashes,
dots and brackets anywhere, full-width digits. Anything else is refused.
"""

from __future__ import annotations

import re
import unicodedata

from core.errors import ValidationError

PHONE_ERROR = "Not a mainland mobile number: use 11 digits starting with 1 (optional +86)."
_SEPARATORS = re.compile(r"[\s\-().\u00a0\u3000]")
_MOBILE = re.compile(r"1\d{10}")


class PhoneError(ValidationError):
    """An invalid phone number; a field error on ``phone``."""

    def __init__(self, value: str, field: str = "phone") -> None:
        super().__init__(f"'{value}' is not a mainland mobile number.", fields={field: [PHONE_ERROR]})


def normalise_phone(text: str) -> str:
    """``"+86 138-0013-8000"`` → ``"13800138000"``; raise :class:`PhoneError` if not a mobile."""
    raw = "" if text is None else str(text)
    s = _SEPARATORS.sub("", unicodedata.normalize("NFKC", raw))
    if s.startswith("+86"):
        s = s[3:]
    elif s.startswith("0086"):
        s = s[4:]
    elif len(s) == 13 and s.startswith("86"):
        s = s[2:]
    if not _MOBILE.fullmatch(s):
        raise PhoneError(raw)
    return s
