"""Sales reports (``orders.*``) and order statistics, always limited to the user's scope.

Every figure uses the one definition of revenue in :mod:`plugins.orders.revenue`
(paid, shipped or completed orders at their total after discounts minus refunds, dated by
``placed_at`` in the company's time zone); per-product, per-category and profit figures
count the same orders at their line totals. Profit is line revenue minus quantity × the
cost copied at order time. Reports take ``date_from``/``date_to`` (local days, inclusive),
``owner_id`` and, where they group by time, ``group`` (day, week or month); grouping and
sums are done by the database, so they scale with the number of orders.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import case, func, select

from core.db import db, quantize
from core.errors import ValidationError
from core.i18n import N_
from core.models import User
from core.registry import Report
from core.scope import restrict
from core.statemachine import label_of, machine_for
from plugins.catalog.public import Category
from plugins.crm.public import Customer, Lead
from plugins.orders.models import ZERO, Order, OrderLine
from plugins.orders.revenue import (
    GROUPINGS,
    REVENUE_DEFINITION,
    bucket,
    is_revenue,
    net_revenue,
    refunds_subquery,
)
from plugins.orders.services import day_start, settings, to_local

PERM = "orders.report.read"


def _date(params: Mapping[str, Any], key: str) -> date | None:
    raw = params.get(key)
    if raw in (None, ""):
        return None
    if isinstance(raw, date):
        return raw
    try:
        return date.fromisoformat(str(raw))
    except ValueError:
        raise ValidationError(f"{key} must be a date like 2026-01-31.", fields={key: ["Not a valid date."]}) \
            from None


def _range(params: Mapping[str, Any]) -> tuple[date | None, date | None]:
    d1, d2 = _date(params, "date_from"), _date(params, "date_to")
    if d1 and d2 and d1 > d2:
        raise ValidationError("date_from must not be after date_to.",
                              fields={"date_from": ["After date_to."]})
    return d1, d2


def _grouping(params: Mapping[str, Any], default: str) -> str:
    group = params.get("group") or default
    if group not in GROUPINGS:
        raise ValidationError(f"group must be one of: {', '.join(GROUPINGS)}.",
                              fields={"group": [f"One of: {', '.join(GROUPINGS)}."]})
    return str(group)


def _sales(stmt: Any, params: Mapping[str, Any], user: User) -> Any:
    """``stmt`` limited to sales (the revenue definition) in ``user``'s scope and the filters."""
    stmt = restrict(stmt, Order, user).where(is_revenue(Order))
    d1, d2 = _range(params)
    if d1:
        stmt = stmt.where(Order.placed_at >= day_start(d1))
    if d2:
        stmt = stmt.where(Order.placed_at < day_start(d2 + timedelta(days=1)))
    owner = params.get("owner_id")
    if owner not in (None, ""):
        try:
            stmt = stmt.where(Order.owner_id == int(owner))
        except (TypeError, ValueError):
            raise ValidationError("owner_id must be a user id.", fields={"owner_id": ["Not a number."]}) \
                from None
    return stmt


def _money(v: Any) -> Decimal:
    return quantize(v if v is not None else ZERO)


def _span(params: Mapping[str, Any], user: User) -> tuple[datetime | None, datetime | None]:
    row = db.session.execute(_sales(select(func.min(Order.placed_at), func.max(Order.placed_at)),
                                    params, user)).one()
    return row[0], row[1]


def sales_by_day(params: Mapping[str, Any], user: User):
    """Revenue and orders per local day, week or month (``group``), oldest first."""
    group = _grouping(params, "day")
    lo, hi = _span(params, user)
    if lo is None:
        return ["day" if group == "day" else group, "revenue", "orders"], []
    refunds = refunds_subquery()
    label = bucket(Order.placed_at, group, lo, hi).label("bucket")
    stmt = _sales(select(label, func.sum(net_revenue(Order.total, refunds.c.refunded)), func.count(Order.id))
                  .outerjoin(refunds, refunds.c.order_id == Order.id)
                  .group_by(label).order_by(label), params, user)
    rows = [(b, _money(total), n) for b, total, n in db.session.execute(stmt)]
    return ["day" if group == "day" else group, "revenue", "orders"], rows


def _order_revenue_sum() -> tuple[Any, Any]:
    refunds = refunds_subquery()
    return refunds, func.sum(net_revenue(Order.total, refunds.c.refunded))


def sales_by_rep(params: Mapping[str, Any], user: User):
    refunds, revenue = _order_revenue_sum()
    stmt = _sales(select(Order.owner_id, User.username, func.count(Order.id), revenue)
                  .outerjoin(refunds, refunds.c.order_id == Order.id)
                  .outerjoin(User, User.id == Order.owner_id)
                  .group_by(Order.owner_id, User.username), params, user)
    rows = [(name or "—", _money(total), n, _money(Decimal(total or 0) / n if n else 0))
            for _oid, name, n, total in db.session.execute(stmt)]
    rows.sort(key=lambda r: r[1], reverse=True)
    return ["rep", "revenue", "orders", "average_order_value"], rows


def sales_by_product(params: Mapping[str, Any], user: User):
    stmt = _sales(select(OrderLine.sku, func.max(OrderLine.name), func.sum(OrderLine.quantity),
                         func.sum(OrderLine.line_total))
                  .join(Order, Order.id == OrderLine.order_id).group_by(OrderLine.sku), params, user)
    rows = [(sku, name, int(qty or 0), _money(total)) for sku, name, qty, total in db.session.execute(stmt)]
    rows.sort(key=lambda r: r[3], reverse=True)
    return ["sku", "product", "quantity", "revenue"], rows


def sales_by_category(params: Mapping[str, Any], user: User):
    stmt = _sales(select(Category.name, func.sum(OrderLine.quantity), func.sum(OrderLine.line_total))
                  .select_from(OrderLine).join(Order, Order.id == OrderLine.order_id)
                  .outerjoin(Category, Category.id == OrderLine.category_id)
                  .group_by(Category.name), params, user)
    rows = [(name or N_("(none)"), int(qty or 0), _money(total)) for name, qty, total in db.session.execute(stmt)]
    rows.sort(key=lambda r: r[2], reverse=True)
    return ["category", "quantity", "revenue"], rows


def sales_by_region(params: Mapping[str, Any], user: User):
    refunds, revenue = _order_revenue_sum()
    stmt = _sales(select(Customer.region, func.count(func.distinct(Order.customer_id)), func.count(Order.id),
                         revenue)
                  .outerjoin(refunds, refunds.c.order_id == Order.id)
                  .join(Customer, Customer.id == Order.customer_id).group_by(Customer.region), params, user)
    rows = [(region or N_("(none)"), customers, n, _money(total))
            for region, customers, n, total in db.session.execute(stmt)]
    rows.sort(key=lambda r: r[3], reverse=True)
    return ["region", "customers", "orders", "revenue"], rows


def profit(params: Mapping[str, Any], user: User):
    """Line revenue, cost (copied at sale time), profit and margin per local month (``group``)."""
    group = _grouping(params, "month")
    lo, hi = _span(params, user)
    if lo is None:
        return [group, "revenue", "cost", "profit", "margin_percent"], []
    label = bucket(Order.placed_at, group, lo, hi).label("bucket")
    stmt = _sales(select(label, func.sum(OrderLine.line_total),
                         func.sum(OrderLine.unit_cost * OrderLine.quantity))
                  .select_from(OrderLine).join(Order, Order.id == OrderLine.order_id)
                  .group_by(label).order_by(label), params, user)
    rows = []
    for m, revenue, cost in db.session.execute(stmt):
        revenue, cost = _money(revenue), _money(cost)
        margin = quantize(Decimal(100) * (revenue - cost) / revenue) if revenue else ZERO
        rows.append((m, revenue, cost, quantize(revenue - cost), margin))
    return [group, "revenue", "cost", "profit", "margin_percent"], rows


def _per_customer(params: Mapping[str, Any], user: User) -> Any:
    """Per customer: orders, revenue, first and last order (in the range and filters)."""
    refunds, revenue = _order_revenue_sum()
    return _sales(select(Order.customer_id.label("customer_id"), func.count(Order.id).label("orders"),
                         revenue.label("revenue"), func.min(Order.placed_at).label("first"),
                         func.max(Order.placed_at).label("last"))
                  .outerjoin(refunds, refunds.c.order_id == Order.id)
                  .group_by(Order.customer_id), params, user)


def revenue_per_customer(params: Mapping[str, Any], user: User):
    """Each customer's orders, revenue, average order value and last order day; top 500 by revenue."""
    per = _per_customer(params, user).subquery()
    stmt = (select(Customer.name, Customer.region, per.c.orders, per.c.revenue, per.c.last)
            .join(Customer, Customer.id == per.c.customer_id)
            .order_by(per.c.revenue.desc(), Customer.id).limit(500))
    rows = [(name, region or N_("(none)"), n, _money(rev), _money(Decimal(rev or 0) / n if n else 0),
             to_local(last).date() if last else None)
            for name, region, n, rev, last in db.session.execute(stmt)]
    return ["customer", "region", "orders", "revenue", "average_order_value", "last_order"], rows


#: RFM segments, first match wins; r, f and m are scores 1 … 3 (3 best).
RFM_SEGMENTS = (
    (N_("Champions"), lambda r, f, m: r == 3 and f >= 2 and m >= 2),
    (N_("Loyal"), lambda r, f, m: r >= 2 and f >= 2),
    (N_("New"), lambda r, f, m: r == 3 and f == 1),
    (N_("At risk"), lambda r, f, m: r == 1 and (f >= 2 or m >= 2)),
    (N_("Hibernating"), lambda r, f, m: r == 1),
    (N_("Potential"), lambda r, f, m: True),
)


def _score(value: Any, low: Any, high: Any) -> int:
    return 1 if value < low else (3 if value >= high else 2)


def customer_analysis(params: Mapping[str, Any], user: User):
    """RFM segments (recency: days since the last order, up to ``date_to`` or today;
    frequency: orders; monetary: revenue) with customers, orders, revenue and share of revenue.
    Scores are 1 … 3: recency ≤ 30 days 3, ≤ 90 days 2; frequency ≥ 4 orders 3, ≥ 2 2;
    monetary at or above the median customer's revenue 2, at or above twice the median 3."""
    per = _per_customer(params, user).subquery()
    data = db.session.execute(select(per.c.orders, per.c.revenue, per.c.last)).all()
    _d1, d2 = _range(params)
    ref = d2 or to_local(datetime.utcnow()).date()  # noqa: DTZ003 - naive UTC like the stored times
    amounts = sorted(_money(r) for _n, r, _l in data)
    median = amounts[len(amounts) // 2] if amounts else ZERO
    acc: dict[str, list[Any]] = {name: [0, 0, ZERO] for name, _ in RFM_SEGMENTS}
    for n, rev, last in data:
        days = (ref - to_local(last).date()).days
        r = 3 if days <= 30 else (2 if days <= 90 else 1)
        f = _score(n, 2, 4)
        m = _score(_money(rev), median, median * 2) if median else 2
        name = next(seg for seg, test in RFM_SEGMENTS if test(r, f, m))
        acc[name][0] += 1
        acc[name][1] += n
        acc[name][2] += _money(rev)
    total = sum((v[2] for v in acc.values()), ZERO)
    rows = [(name, c, n, quantize(rev), quantize(Decimal(100) * rev / total) if total else ZERO)
            for name, (c, n, rev) in acc.items()]
    return ["segment", "customers", "orders", "revenue", "revenue_share_percent"], rows


def customer_retention(params: Mapping[str, Any], user: User):
    """Per day, week or month (``group``, default month): customers who bought, how many bought
    for the first time ever (new) or had bought before (returning), and the repeat-purchase
    rate (customers with two or more orders in the period ÷ customers)."""
    group = _grouping(params, "month")
    lo, hi = _span(params, user)
    if lo is None:
        return [group, "customers", "new_customers", "returning_customers", "repeat_rate_percent"], []
    first = (select(Order.customer_id.label("customer_id"), func.min(Order.placed_at).label("first"))
             .where(is_revenue(Order)).group_by(Order.customer_id).subquery("first_orders"))
    label = bucket(Order.placed_at, group, lo, hi).label("bucket")
    first_label = bucket(first.c.first, group, min(lo, _first_ever() or lo), hi)
    per = _sales(select(label, Order.customer_id.label("customer_id"), func.count(Order.id).label("orders"),
                        func.max(case((first_label == label, 1), else_=0)).label("is_new"))
                 .join(first, first.c.customer_id == Order.customer_id)
                 .group_by(label, Order.customer_id), params, user).subquery()
    stmt = (select(per.c.bucket, func.count(), func.sum(per.c.is_new),
                   func.sum(case((per.c.orders >= 2, 1), else_=0)))
            .group_by(per.c.bucket).order_by(per.c.bucket))
    rows = []
    for b, customers, new, repeat in db.session.execute(stmt):
        new = int(new or 0)
        rows.append((b, customers, new, customers - new,
                     quantize(Decimal(100) * int(repeat or 0) / customers) if customers else ZERO))
    return [group, "customers", "new_customers", "returning_customers", "repeat_rate_percent"], rows


def _first_ever() -> datetime | None:
    return db.session.scalar(select(func.min(Order.placed_at)).where(is_revenue(Order)))


def sales_funnel(params: Mapping[str, Any], user: User):
    """Leads created in the range (``date_from``/``date_to``) and how far they got: linked to a
    customer, that customer placed an order (not a draft or cancelled) on or after the lead was
    created, and paid one (a sale by the revenue definition). Leads in ``user``'s scope."""
    leads = restrict(select(Lead.id, Lead.customer_id, Lead.created_at), Lead, user)
    d1, d2 = _range(params)
    if d1:
        leads = leads.where(Lead.created_at >= day_start(d1))
    if d2:
        leads = leads.where(Lead.created_at < day_start(d2 + timedelta(days=1)))
    lead = leads.subquery()

    def later(cond: Any) -> Any:
        return select(Order.id).where(Order.customer_id == lead.c.customer_id,
                                      Order.placed_at >= lead.c.created_at, cond).exists()

    row = db.session.execute(select(
        func.count(lead.c.id),
        func.sum(case((lead.c.customer_id.is_not(None), 1), else_=0)),
        func.sum(case((later(Order.status.not_in(("draft", "cancelled"))), 1), else_=0)),
        func.sum(case((later(is_revenue(Order)), 1), else_=0)))).one()
    total = int(row[0] or 0)
    stages = [(N_("Leads"), total), (N_("Leads with a customer"), int(row[1] or 0)),
              (N_("Leads that ordered"), int(row[2] or 0)), (N_("Leads that paid"), int(row[3] or 0))]
    return ["stage", "leads", "conversion_percent"], [
        (name, n, quantize(Decimal(100) * n / total) if total else ZERO) for name, n in stages]


def _totals(params: Mapping[str, Any], user: User, d1: date, d2: date) -> tuple[Decimal, int, int]:
    refunds, revenue = _order_revenue_sum()
    p = {**params, "date_from": d1, "date_to": d2}
    row = db.session.execute(_sales(select(revenue, func.count(Order.id), func.count(func.distinct(
        Order.customer_id))).outerjoin(refunds, refunds.c.order_id == Order.id), p, user)).one()
    return _money(row[0]), int(row[1] or 0), int(row[2] or 0)


def _year_back(d: date) -> date:
    try:
        return d.replace(year=d.year - 1)
    except ValueError:  # 29 February
        return d.replace(year=d.year - 1, day=28)


def period_comparison(params: Mapping[str, Any], user: User):
    """Revenue, orders, customers and average order value of the range (default: this month
    so far) against the previous range of the same length and the same range a year before."""
    d1, d2 = _range(params)
    today = to_local(datetime.utcnow()).date()  # noqa: DTZ003 - naive UTC like the stored times
    d2 = d2 or today
    d1 = d1 or d2.replace(day=1)
    length = (d2 - d1).days + 1
    periods = [(N_("This period"), d1, d2),
               (N_("Previous period"), d1 - timedelta(days=length), d1 - timedelta(days=1)),
               (N_("Same period last year"), _year_back(d1), _year_back(d2))]
    rows = []
    base = None
    for name, a, b in periods:
        revenue, orders, customers = _totals(params, user, a, b)
        base = base or revenue
        change = (quantize(Decimal(100) * (base - revenue) / revenue) if revenue else None) \
            if name != "This period" else None
        rows.append((name, a, b, revenue, orders, customers,
                     _money(revenue / orders if orders else 0), change))
    return ["period", "from", "to", "revenue", "orders", "customers", "average_order_value",
            "this_period_change_percent"], rows


# ---------------------------------------------------------------------------
# Dashboard cards
# ---------------------------------------------------------------------------

#: days the revenue trend card covers, today included
TREND_DAYS = 30


def revenue_trend(params: Mapping[str, Any], user: User):
    """Revenue and orders per local day of the latest :data:`TREND_DAYS` days, today last; a
    day without sales is a zero (the line does not skip it)."""
    today = to_local(datetime.utcnow()).date()  # noqa: DTZ003 - naive UTC like the stored times
    first = today - timedelta(days=TREND_DAYS - 1)
    _cols, rows = sales_by_day({"date_from": first.isoformat(), "date_to": today.isoformat(), "group": "day"},
                               user)
    by_day = {str(d): (rev, n) for d, rev, n in rows}
    days = [(first + timedelta(days=i)).isoformat() for i in range(TREND_DAYS)]
    return ["day", "revenue", "orders"], [(d, *by_day.get(d, (ZERO, 0))) for d in days]


def orders_by_state(params: Mapping[str, Any], user: User):
    """The order pipeline: orders and their total per workflow state (the state's label, in
    the workflow's order), in the user's scope; final states without orders are left out."""
    machine = machine_for("order")
    stmt = restrict(select(Order.status, func.count(Order.id), func.sum(Order.total)), Order, user) \
        .group_by(Order.status)
    found = {status: (n, _money(total)) for status, n, total in db.session.execute(stmt)}
    rows = []
    for key, state in machine.states.items():
        n, total = found.pop(key, (0, ZERO))
        if n or not state.final:
            rows.append((label_of(state.label), n, total))
    rows.extend((key, n, total) for key, (n, total) in sorted(found.items()))  # states no longer in the file
    return ["state", "orders", "total"], rows


_RANGE = "date_from, date_to: local days (inclusive); owner_id: a rep's user id"
_GROUPED = {"date_from": "first local day (YYYY-MM-DD)", "date_to": "last local day (YYYY-MM-DD)",
            "owner_id": "a rep's user id", "group": "day, week or month"}
_RANGED = {k: v for k, v in _GROUPED.items() if k != "group"}
# Definitions are sentences, each a message id (the page translates them one by one).
_LINES = REVENUE_DEFINITION + " " + N_("Product, category and profit figures: the line totals of those orders.")

#: the headers of this module's columns (keys shown as words, core.i18n.column_label)
COLUMN_LABELS = (N_("Day"), N_("Week"), N_("Month"), N_("Revenue"), N_("Orders"), N_("Rep"),
                 N_("Average order value"), N_("Product"), N_("Quantity"), N_("Category"),
                 N_("Region"), N_("Customers"), N_("Cost"), N_("Profit"), N_("Margin percent"),
                 N_("Customer"), N_("Last order"), N_("Segment"), N_("Revenue share percent"),
                 N_("New customers"), N_("Returning customers"), N_("Repeat rate percent"), N_("Stage"),
                 N_("Leads"), N_("Conversion percent"), N_("Period"), N_("From"), N_("To"),
                 N_("This period change percent"), N_("State"), N_("Total"))

REPORTS = [
    Report("orders.revenue_trend", "Revenue, latest 30 days", PERM, revenue_trend,
           {"dashboard": "line", "dashboard_for": "all", "dashboard_link": "orders_web.orders"},
           description=REVENUE_DEFINITION),
    Report("orders.pipeline", "Orders by state", "orders.order.read", orders_by_state,
           {"dashboard": "bar", "dashboard_for": "team", "dashboard_link": "orders_web.orders"},
           description=N_("Every order in your scope, by its current workflow state; total before refunds.")),
    Report("orders.sales_by_day", "Sales by day", PERM, sales_by_day,
           {**_GROUPED, "dashboard": "line"},
           description=REVENUE_DEFINITION),
    # dashboard_for: the record scopes whose dashboard shows the card (manager: team, owner: all)
    Report("orders.sales_by_rep", "Sales by rep", PERM, sales_by_rep,
           {**_RANGED, "dashboard": "bar", "dashboard_for": "team, all"}, description=REVENUE_DEFINITION),
    Report("orders.sales_by_product", "Sales by product", PERM, sales_by_product,
           {**_RANGED, "dashboard": "bar", "dashboard_for": "all"}, description=_LINES),
    Report("orders.sales_by_category", "Sales by category", PERM, sales_by_category, _RANGED,
           description=_LINES),
    Report("orders.sales_by_region", "Sales by region", PERM, sales_by_region, _RANGED,
           description=REVENUE_DEFINITION),
    Report("orders.profit", "Profit (revenue − cost) by month", PERM, profit, _GROUPED,
           extra_permissions=("catalog.product.read_cost",), description=_LINES),
    Report("orders.revenue_per_customer", "Revenue per customer", PERM, revenue_per_customer, _RANGED,
           description=REVENUE_DEFINITION),
    Report("orders.customer_analysis", "Customer analysis (RFM segments)", PERM, customer_analysis, _RANGED,
           description=REVENUE_DEFINITION + " " + N_("Recency is counted to date_to (or today).")),
    Report("orders.customer_retention", "New and returning customers, repeat-purchase rate", PERM,
           customer_retention, _GROUPED,
           description=REVENUE_DEFINITION + " " + N_("New: the customer's first sale ever falls in the period.")),
    Report("orders.sales_funnel", "Sales funnel: leads to orders", PERM, sales_funnel,
           {"date_from": _RANGED["date_from"], "date_to": _RANGED["date_to"]},
           description=N_("Leads created in the range; ordered: their customer placed a non-draft, "
                          "non-cancelled order after the lead was created; paid: their customer placed a "
                          "sale as defined next.") + " " + REVENUE_DEFINITION),
    Report("orders.period_comparison", "Period comparison", PERM, period_comparison, _RANGED,
           description=REVENUE_DEFINITION + " " + N_("Default range: this month so far.")),
]


def services_currency() -> str:
    return str(settings().get("currency", "CNY"))


def order_stats(user: User, params: Mapping[str, Any]) -> dict[str, Any]:
    """Counts by status and sales figures in the user's scope (``GET /orders/stats``)."""
    base = restrict(select(Order.status, func.count(Order.id), func.sum(Order.total)).group_by(Order.status),
                    Order, user)
    d1, d2 = _date(params, "date_from"), _date(params, "date_to")
    if d1:
        base = base.where(Order.placed_at >= day_start(d1))
    if d2:
        base = base.where(Order.placed_at < day_start(d2 + timedelta(days=1)))
    if params.get("owner_id") is not None:
        base = base.where(Order.owner_id == params["owner_id"])
    if params.get("owner_id") is None:
        params = {k: v for k, v in params.items() if k != "owner_id"}
    by_status = {}
    for status, n, total in db.session.execute(base):
        by_status[status] = {"orders": n, "total": str(_money(total))}
    refunds, net = _order_revenue_sum()
    row = db.session.execute(_sales(select(func.count(Order.id), net).outerjoin(
        refunds, refunds.c.order_id == Order.id), params, user)).one()
    orders, revenue = int(row[0] or 0), _money(row[1])
    customers = db.session.scalar(_sales(select(func.count(func.distinct(Order.customer_id))),
                                         params, user)) or 0
    return {"by_status": by_status, "orders": orders, "revenue": str(quantize(revenue)),
            "average_order_value": str(quantize(revenue / orders) if orders else ZERO),
            "customers": customers, "currency": services_currency()}
