"""Periods: a company month ``YYYY-MM`` or an inclusive date range, and the periods to
compare them with (the previous period of the same length, the same period a year earlier).

Days and months are the company's local ones (``timezone`` in dovetail.yaml), exactly as
the orders reports count them; :func:`bounds` turns a period into stored-UTC limits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from core.db import utcnow
from core.errors import ValidationError
from plugins.performance.sources import day_start, to_local

PERIOD_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


@dataclass(frozen=True)
class Period:
    """Local days ``start``..``end`` inclusive; ``month`` is ``YYYY-MM`` when it is one month."""

    start: date
    end: date

    @property
    def month(self) -> str | None:
        if self.start.day == 1 and self.end == month_end(self.start):
            return f"{self.start:%Y-%m}"
        return None

    @property
    def label(self) -> str:
        return self.month or f"{self.start.isoformat()}..{self.end.isoformat()}"

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def months(self) -> list[str] | None:
        """The months this period consists of exactly, or None when it has a partial month."""
        if self.start.day != 1 or self.end != month_end(self.end):
            return None
        out, d = [], self.start
        while d <= self.end:
            out.append(f"{d:%Y-%m}")
            d = month_end(d) + timedelta(days=1)
        return out

    def previous(self) -> Period:
        """The period just before, of the same length (the previous month for a month)."""
        if self.months() is not None:
            n = len(self.months() or [])
            start = add_months(self.start, -n)
            return Period(start, self.start - timedelta(days=1))
        return Period(self.start - timedelta(days=self.days), self.start - timedelta(days=1))

    def last_year(self) -> Period:
        """The same days one year earlier (29 February becomes 28 February)."""
        if self.months() is not None:
            return Period(add_months(self.start, -12), month_end(add_months(self.end.replace(day=1), -12)))
        return Period(_minus_year(self.start), _minus_year(self.end))

    def utc_bounds(self) -> tuple[datetime, datetime]:
        """Stored-UTC ``[from, to)`` limits: ``from <= placed_at < to``."""
        return day_start(self.start), day_start(self.end + timedelta(days=1))


def month_end(d: date) -> date:
    return add_months(d.replace(day=1), 1) - timedelta(days=1)


def add_months(d: date, n: int) -> date:
    """The first-of-month ``d`` moved by ``n`` months (``d`` must be a first of month)."""
    y, m = divmod(d.year * 12 + (d.month - 1) + n, 12)
    return date(y, m + 1, 1)


def _minus_year(d: date) -> date:
    try:
        return d.replace(year=d.year - 1)
    except ValueError:  # 29 February
        return d.replace(year=d.year - 1, day=28)


def parse_month(raw: Any, field: str = "period") -> Period:
    text = str(raw or "").strip()
    m = PERIOD_RE.match(text)
    if not m:
        raise ValidationError(f"{field} must be a month like 2026-01.",
                              fields={field: ["A month like 2026-01."]})
    start = date(int(m.group(1)), int(m.group(2)), 1)
    return Period(start, month_end(start))


def check_month(raw: Any, field: str = "period") -> str:
    """``raw`` as a valid ``YYYY-MM`` text, or a field error."""
    return parse_month(raw, field).month or ""


def current_month() -> Period:
    today = (to_local(utcnow()) or utcnow()).date()
    return Period(today.replace(day=1), month_end(today))


def _date(raw: Any, field: str) -> date:
    if isinstance(raw, date):
        return raw
    try:
        return date.fromisoformat(str(raw).strip())
    except ValueError:
        raise ValidationError(f"{field} must be a date like 2026-01-31.",
                              fields={field: ["Not a valid date."]}) from None


MAX_RANGE_DAYS = 3 * 366


def from_args(args: Any) -> Period:
    """``period=YYYY-MM``, or ``date_from``/``date_to`` (inclusive local days), or this month."""
    period = args.get("period")
    d1, d2 = args.get("date_from"), args.get("date_to")
    if period not in (None, ""):
        if d1 not in (None, "") or d2 not in (None, ""):
            raise ValidationError("Give either period or date_from/date_to, not both.",
                                  fields={"period": ["Not together with date_from/date_to."]})
        return parse_month(period)
    if d1 in (None, "") and d2 in (None, ""):
        return current_month()
    if d1 in (None, "") or d2 in (None, ""):
        missing = "date_from" if d1 in (None, "") else "date_to"
        raise ValidationError("A date range needs both date_from and date_to.",
                              fields={missing: ["Required with the other date."]})
    start, end = _date(d1, "date_from"), _date(d2, "date_to")
    if end < start:
        raise ValidationError("date_to is before date_from.", fields={"date_to": ["Before date_from."]})
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise ValidationError(f"A date range covers at most {MAX_RANGE_DAYS} days.",
                              fields={"date_to": [f"At most {MAX_RANGE_DAYS} days after date_from."]})
    return Period(start, end)
