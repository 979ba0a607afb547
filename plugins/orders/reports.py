"""Sales reports (``orders.*``) and order statistics, always limited to the user's scope.

Sales are orders whose status is not draft, cancelled or returned, dated by ``placed_at`` in
the company's time zone (days and months are local, as people count them);
revenue is the order total (after discounts), or the line totals for per-product and
per-category figures. Profit is line revenue minus quantity × the cost copied at order time.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from core.db import db, quantize
from core.errors import ValidationError
from core.models import User
from core.registry import Report
from core.scope import restrict
from plugins.orders.models import ZERO, Order, OrderLine
from plugins.orders.services import NON_SALES, day_start, to_local

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


def _sales(stmt: Any, params: Mapping[str, Any], user: User) -> Any:
    stmt = restrict(stmt, Order, user).where(Order.status.not_in(NON_SALES))
    d1, d2 = _date(params, "date_from"), _date(params, "date_to")
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


def sales_by_day(params: Mapping[str, Any], user: User):
    """Revenue and orders per local day (grouped in Python: time zones differ per database)."""
    days: dict[str, list[Any]] = {}
    stmt = _sales(select(Order.placed_at, Order.total), params, user)
    for placed, total in db.session.execute(stmt.execution_options(yield_per=2000)):
        key = to_local(placed).date().isoformat()
        acc = days.setdefault(key, [ZERO, 0])
        acc[0] += total or ZERO
        acc[1] += 1
    return ["day", "revenue", "orders"], [(d, _money(v[0]), v[1]) for d, v in sorted(days.items())]


def sales_by_rep(params: Mapping[str, Any], user: User):
    stmt = _sales(select(Order.owner_id, User.username, func.count(Order.id), func.sum(Order.total))
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
    from plugins.catalog.models import Category

    stmt = _sales(select(Category.name, func.sum(OrderLine.quantity), func.sum(OrderLine.line_total))
                  .select_from(OrderLine).join(Order, Order.id == OrderLine.order_id)
                  .outerjoin(Category, Category.id == OrderLine.category_id)
                  .group_by(Category.name), params, user)
    rows = [(name or "(none)", int(qty or 0), _money(total)) for name, qty, total in db.session.execute(stmt)]
    rows.sort(key=lambda r: r[2], reverse=True)
    return ["category", "quantity", "revenue"], rows


def sales_by_region(params: Mapping[str, Any], user: User):
    from plugins.crm.models import Customer

    stmt = _sales(select(Customer.region, func.count(func.distinct(Order.customer_id)), func.count(Order.id),
                         func.sum(Order.total))
                  .join(Customer, Customer.id == Order.customer_id).group_by(Customer.region), params, user)
    rows = [(region or "(none)", customers, n, _money(total))
            for region, customers, n, total in db.session.execute(stmt)]
    rows.sort(key=lambda r: r[3], reverse=True)
    return ["region", "customers", "orders", "revenue"], rows


def profit(params: Mapping[str, Any], user: User):
    """Revenue, cost (copied at sale time), profit and margin per local month."""
    stmt = _sales(select(Order.placed_at, func.sum(OrderLine.line_total),
                         func.sum(OrderLine.unit_cost * OrderLine.quantity))
                  .select_from(OrderLine).join(Order, Order.id == OrderLine.order_id)
                  .group_by(Order.id, Order.placed_at), params, user)
    months: dict[str, list[Decimal]] = {}
    for placed, revenue, cost in db.session.execute(stmt.execution_options(yield_per=2000)):
        acc = months.setdefault(to_local(placed).strftime("%Y-%m"), [ZERO, ZERO])
        acc[0] += revenue or ZERO
        acc[1] += cost or ZERO
    rows = []
    for m, (revenue, cost) in sorted(months.items()):
        revenue, cost = _money(revenue), _money(cost)
        margin = quantize(Decimal(100) * (revenue - cost) / revenue) if revenue else ZERO
        rows.append((m, revenue, cost, quantize(revenue - cost), margin))
    return ["month", "revenue", "cost", "profit", "margin_percent"], rows


REPORTS = [
    Report("orders.sales_by_day", "Sales by day", PERM, sales_by_day, {"dashboard": "line"}),
    Report("orders.sales_by_rep", "Sales by rep", PERM, sales_by_rep),
    Report("orders.sales_by_product", "Sales by product", PERM, sales_by_product),
    Report("orders.sales_by_category", "Sales by category", PERM, sales_by_category),
    Report("orders.sales_by_region", "Sales by region", PERM, sales_by_region),
    Report("orders.profit", "Profit (revenue − cost) by month", PERM, profit,
           extra_permissions=("catalog.product.read_cost",)),
]


def services_currency() -> str:
    from plugins.orders.services import settings

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
    by_status = {}
    orders = 0
    revenue = ZERO
    for status, n, total in db.session.execute(base):
        by_status[status] = {"orders": n, "total": str(_money(total))}
        if status not in NON_SALES:
            orders += n
            revenue += _money(total)
    customers = db.session.scalar(_sales(select(func.count(func.distinct(Order.customer_id))),
                                         params, user)) or 0
    return {"by_status": by_status, "orders": orders, "revenue": str(quantize(revenue)),
            "average_order_value": str(quantize(revenue / orders) if orders else ZERO),
            "customers": customers, "currency": services_currency()}
