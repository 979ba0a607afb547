"""Marshmallow fields shared by every plugin's schemas."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from marshmallow import fields, validate

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
