"""The one definition of revenue every report uses, and date buckets computed in SQL.

Part of the orders plugin's public API: the orders reports, marketing's campaign
effectiveness and any plugin that depends on ``orders`` import from here, so a sale means
the same thing on every page.

**Revenue** is the money customers paid and kept: orders in a revenue state
(:data:`REVENUE_STATES`: paid, shipped, completed — never drafts, confirmed-but-unpaid,
cancelled or returned orders), at the order total after every discount, **minus the refunds
recorded on the order** (partial returns), dated by ``placed_at`` in the company's time zone.
Per-product, per-category and profit figures count the same orders at their line totals.

:func:`bucket` turns ``placed_at`` into the local day, ISO week (its Monday) or month as a
string, in the database (PostgreSQL: ``AT TIME ZONE``; SQLite: the zone's UTC offsets over
the rows' time span, one ``CASE`` branch per offset change), so reports group in SQL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import case, func, literal, select
from sqlalchemy.sql import ColumnElement

from core.db import db
from core.i18n import N_
from core.statemachine import machine_for
from plugins.orders.models import Order, Payment
from plugins.orders.services import company_tz

#: Order states whose orders count as sales (the customer has paid).
REVENUE_STATES: tuple[str, ...] = ("paid", "shipped", "completed")

#: What every sales figure means; reports show it on the page and in the API.
REVENUE_DEFINITION = N_(
    "Revenue: orders in a state the order workflow marks as paid, shipped or completed (not drafts, unpaid, "
    "cancelled or returned orders), at the order total after discounts minus refunds, by order date in the "
    "company's time zone.")

GROUPINGS = ("day", "week", "month")


def revenue_states() -> tuple[str, ...]:
    """The states whose orders count as revenue: those the workflow in force reaches by
    transitions marked ``paid``, ``shipped`` or ``completed`` (renaming a state in config keeps
    its orders counted); :data:`REVENUE_STATES` when no such mark is declared."""
    marked = machine_for("order").states_marked("paid", "shipped", "completed")
    return tuple(sorted(marked)) or REVENUE_STATES


def is_revenue(order: Any = Order) -> ColumnElement[bool]:
    """SQL condition: the order (``Order`` or an alias/subquery with a ``status`` column) is a sale."""
    status = order.c.status if hasattr(order, "c") else order.status
    return status.in_(revenue_states())


def refunds_subquery() -> Any:
    """``(order_id, refunded)``: the refunds recorded per order; outer-join it on the order id."""
    return (select(Payment.order_id.label("order_id"), func.sum(Payment.amount).label("refunded"))
            .where(Payment.kind == "refund").group_by(Payment.order_id).subquery("orders_refunds"))


def net_revenue(total: Any, refunded: Any) -> ColumnElement[Any]:
    """SQL expression: an order's revenue, ``total − coalesce(refunded, 0)``."""
    return total - func.coalesce(refunded, 0)


def _tz_name() -> str:
    return company_tz().key


def _offsets(start: datetime, end: datetime) -> list[tuple[datetime, int]]:
    """``[(from_utc, offset_minutes), …]``: the zone's UTC offset from each moment on, for
    ``start`` … ``end`` (naive UTC); the first item starts at ``datetime.min``."""
    tz = company_tz()

    def off(t: datetime) -> int:
        delta = t.replace(tzinfo=UTC).astimezone(tz).utcoffset() or timedelta(0)
        return int(delta.total_seconds() // 60)

    out = [(datetime.min, off(start))]
    t = start
    while t < end:
        nxt = min(t + timedelta(days=1), end)
        if off(nxt) != off(t):  # a change within the day: find its minute
            lo, hi = t, nxt
            while hi - lo > timedelta(minutes=1):
                mid = lo + (hi - lo) / 2
                lo, hi = (mid, hi) if off(mid) == off(t) else (lo, mid)
            out.append((hi.replace(second=0, microsecond=0), off(nxt)))
        t = nxt
    return out


def _sqlite_local(column: Any, start: datetime | None, end: datetime | None) -> ColumnElement[Any]:
    if start is None or end is None:
        start = end = datetime.now(UTC).replace(tzinfo=None)
    steps = _offsets(start - timedelta(days=1), end + timedelta(days=1))

    def shifted(minutes: int) -> ColumnElement[Any]:
        return func.datetime(column, literal(f"{minutes:+d} minutes"))

    if len(steps) == 1:
        return shifted(steps[0][1])
    whens = [(column < steps[i + 1][0], shifted(m)) for i, (_t, m) in enumerate(steps[:-1])]
    return case(*whens, else_=shifted(steps[-1][1]))


def bucket(column: Any, grouping: str, start: datetime | None = None,
           end: datetime | None = None) -> ColumnElement[str]:
    """SQL expression: ``column`` (naive UTC) as a local ``YYYY-MM-DD`` day, the ``YYYY-MM-DD``
    Monday of its ISO week, or ``YYYY-MM``. ``start``/``end`` (naive UTC) bound the rows'
    times; SQLite needs them to know the zone's offsets (PostgreSQL ignores them)."""
    if grouping not in GROUPINGS:
        raise ValueError(f"grouping must be one of {', '.join(GROUPINGS)}")
    if db.engine.dialect.name == "postgresql":
        local = func.timezone(_tz_name(), func.timezone("UTC", column))
        if grouping == "month":
            return func.to_char(local, "YYYY-MM")
        if grouping == "week":
            return func.to_char(func.date_trunc("week", local), "YYYY-MM-DD")
        return func.to_char(local, "YYYY-MM-DD")
    local = _sqlite_local(column, start, end)
    if grouping == "month":
        return func.strftime("%Y-%m", local)
    if grouping == "week":  # the next Sunday (or today if Sunday), then back to Monday
        return func.date(local, "weekday 0", "-6 days")
    return func.date(local)


def time_span(where: Any) -> tuple[datetime | None, datetime | None]:
    """The first and last ``placed_at`` of the orders matching ``where`` (for :func:`bucket`)."""
    row = db.session.execute(select(func.min(Order.placed_at), func.max(Order.placed_at)).where(where)).one()
    return row[0], row[1]


__all__ = ["GROUPINGS", "REVENUE_DEFINITION", "REVENUE_STATES", "bucket", "is_revenue", "net_revenue",
           "refunds_subquery", "revenue_states", "time_span"]
