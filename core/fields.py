"""Marshmallow fields shared by every plugin's schemas."""

from __future__ import annotations

import re
import unicodedata
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import phonenumbers
from flask import current_app, has_app_context
from marshmallow import ValidationError as MarshmallowError
from marshmallow import fields, validate

from core.errors import ValidationError

#: the largest amount a ``Numeric(14, 2)`` money column holds
MAX_MONEY = Decimal("999999999999.99")


class Money(fields.Decimal):
    """An amount of money: ``Decimal`` to 2 places (half up), a string in JSON, never a float.

    ``non_negative=True`` refuses amounts below 0 and above :data:`MAX_MONEY`;
    ``minimum``/``maximum`` set other bounds. Output-only fields need neither.
    """

    def __init__(self, *, non_negative: bool = False, minimum: Decimal | int | None = None,
                 maximum: Decimal | int | None = None, **kwargs: Any) -> None:
        if non_negative:
            minimum = 0 if minimum is None else minimum
            maximum = MAX_MONEY if maximum is None else maximum
        validators = list(kwargs.pop("validate", None) or [])
        if callable(validators):  # pragma: no cover - a single validator
            validators = [validators]
        if minimum is not None or maximum is not None:
            error = (f"Must be between {minimum} and {maximum}." if minimum is not None and maximum is not None
                     else None)
            validators.insert(0, validate.Range(min=minimum, max=maximum, error=error))
        super().__init__(places=2, rounding=ROUND_HALF_UP, as_string=True, validate=validators or None,
                         **kwargs)


# ---------------------------------------------------------------------------
# Phone numbers
# ---------------------------------------------------------------------------

PHONE_ERROR = ("Not a valid phone number: a mobile, a landline with its area code (010-12345678), "
               "or an international number starting with +.")
_SEPARATORS = re.compile(r"[\s\-().\u00a0\u3000/]")


class PhoneError(ValidationError):
    """An invalid phone number; a field error on ``field`` (``phone`` by default)."""

    def __init__(self, value: str, field: str = "phone") -> None:
        super().__init__(f"'{value}' is not a valid phone number.", fields={field: [PHONE_ERROR]})


def phone_region() -> str:
    """The region numbers without a country code belong to: ``PHONE_REGION`` in the app config, else CN."""
    if has_app_context():
        return str(current_app.config.get("PHONE_REGION") or "CN").upper()
    return "CN"


def parse_phone(text: Any, region: str | None = None) -> phonenumbers.PhoneNumber | None:
    """A valid number parsed from ``text`` (national numbers in ``region``), else None."""
    raw = unicodedata.normalize("NFKC", "" if text is None else str(text)).strip()
    s = _SEPARATORS.sub("", raw)
    if not s or len(s) > 30:
        return None
    if s.startswith("00"):
        s = "+" + s[2:]
    try:
        num = phonenumbers.parse(s, (region or phone_region()).upper())
    except phonenumbers.NumberParseException:
        return None
    return num if phonenumbers.is_valid_number(num) else None


def normalise_phone(text: Any, region: str | None = None, field: str = "phone") -> str:
    """``"138 1234 5678"`` → ``"+8613812345678"``, ``"010-12345678"`` → ``"+861012345678"`` (E.164);
    raise :class:`PhoneError` for anything that is not a valid number."""
    num = parse_phone(text, region)
    if num is None:
        raise PhoneError("" if text is None else str(text), field)
    return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)


def phone_search_digits(query: str, region: str | None = None) -> str:
    """The digits to look for in stored numbers when searching by phone.

    A complete number (in any accepted format) gives its national significant number, which
    both E.164 values (``+8613812345678``) and older 11-digit values (``13812345678``) contain;
    a fragment gives its digits.
    """
    num = parse_phone(query, region)
    if num is not None:
        return phonenumbers.national_significant_number(num)
    return "".join(ch for ch in unicodedata.normalize("NFKC", query or "") if ch.isdigit())


class Phone(fields.String):
    """A phone number stored in E.164 (``+8613812345678``): mobiles, landlines with area code,
    HK/MO/TW and foreign numbers; numbers without ``+`` belong to ``region`` (default: the
    app's ``PHONE_REGION``, CN). Blank input loads as None."""

    def __init__(self, *, region: str | None = None, **kwargs: Any) -> None:
        self.region = region
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> str:
        text = super()._deserialize(value, attr, data, **kw)
        if text is None or not text.strip():
            return None  # type: ignore[return-value]  # blank loads as None (allow_none fields)
        try:
            return normalise_phone(text, self.region)
        except PhoneError:
            raise MarshmallowError(PHONE_ERROR) from None
