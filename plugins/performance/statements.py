"""Commission statements as data: JSON shape, list filters and the CSV/XLSX export layout
(one row per line, each traceable to its order line, with the statement's totals)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Select
from sqlalchemy.orm import selectinload

from core.db import db
from core.scope import select_for
from plugins.performance.models import Statement, StatementLine
from plugins.performance.sources import to_local

READ = "performance.statement.read"


def _s(value: Any) -> Any:
    if value is None:
        return None
    return value.isoformat() if isinstance(value, datetime) else str(value)


def line_dict(sl: StatementLine) -> dict[str, Any]:
    return {"id": sl.id, "kind": sl.kind, "order_id": sl.order_id, "order_number": sl.order_number,
            "order_line_id": sl.order_line_id, "completed_at": _s(sl.completed_at), "sku": sl.sku,
            "product_name": sl.product_name, "category_id": sl.category_id, "category_name": sl.category_name,
            "quantity": sl.quantity, "base_amount": str(sl.base_amount), "rule": sl.rule,
            "rate_percent": _s(sl.rate_percent), "per_unit": _s(sl.per_unit), "cap_factor": _s(sl.cap_factor),
            "amount": str(sl.amount), "refers_statement_id": sl.refers_statement_id}


def statement_dict(st: Statement, *, lines: bool = True) -> dict[str, Any]:
    out = {"id": st.id, "rep_id": st.rep_id, "rep": st.rep.username if st.rep else None,
           "period": st.period, "status": st.status, "currency": st.currency,
           "sales_base": str(st.sales_base), "adjustment_base": str(st.adjustment_base),
           "net_base": str(st.net_base), "gross_amount": str(st.gross_amount), "cap_rate": str(st.cap_rate),
           "cap_amount": str(st.cap_amount), "total": str(st.total), "capped": bool(st.capped),
           "rules_digest": st.rules_digest, "warnings": list(st.warnings or []),
           "generated_at": _s(st.generated_at), "approved_at": _s(st.approved_at),
           "approved_by_id": st.approved_by_id, "paid_at": _s(st.paid_at),
           "payment_reference": st.payment_reference, "line_count": len(st.lines)}
    if lines:
        out["lines"] = [line_dict(sl) for sl in st.lines]
    return out


def filtered(args: Mapping[str, Any], user: Any) -> Select:
    """Statements ``user`` may see (rep: own, manager: team, finance/admin: all), filtered."""
    stmt = select_for(Statement, READ, user)
    if args.get("period"):
        stmt = stmt.where(Statement.period == args["period"])
    if args.get("rep_id") is not None:
        stmt = stmt.where(Statement.rep_id == args["rep_id"])
    if args.get("status"):
        stmt = stmt.where(Statement.status == args["status"])
    return stmt


EXPORT_COLUMNS = ["statement_id", "period", "rep", "status", "kind", "order_number", "order_id",
                  "order_line_id", "completed_on", "sku", "product", "category", "quantity", "base_amount",
                  "rule", "rate_percent", "per_unit", "cap_factor", "amount", "refers_statement_id",
                  "statement_net_base", "statement_gross", "statement_cap", "statement_total", "currency"]


def export_rows(statements: Iterable[Statement]) -> Iterable[list[Any]]:
    for st in statements:
        rep = st.rep.username if st.rep else st.rep_id
        head = [st.id, st.period, rep, st.status]
        tail = [st.net_base, st.gross_amount, st.cap_amount, st.total, st.currency]
        if not st.lines:
            yield head + ["", "", "", "", "", "", "", "", 0, "0.00", "(no lines)", "", "", "", "0.00", ""] + tail
        for sl in st.lines:
            done = to_local(sl.completed_at)
            yield head + [sl.kind, sl.order_number, sl.order_id, sl.order_line_id,
                          done.date().isoformat() if done else "", sl.sku, sl.product_name,
                          sl.category_name or "", sl.quantity, sl.base_amount, sl.rule,
                          sl.rate_percent if sl.rate_percent is not None else "",
                          sl.per_unit if sl.per_unit is not None else "",
                          sl.cap_factor if sl.cap_factor is not None else "", sl.amount,
                          sl.refers_statement_id or ""] + tail


def with_lines(stmt: Select) -> list[Statement]:
    return list(db.session.scalars(stmt.options(selectinload(Statement.lines))
                                   .order_by(Statement.period, Statement.rep_id)))
