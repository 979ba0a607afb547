"""Check a Dovetail database after a load test: nothing oversold, no duplicates, ledger = stock.

Usage::

    python bench/check_invariants.py --database-url postgresql+psycopg://postgres@127.0.0.1/db [--audit]

Plain SQL over the tables (no app needed), so it also runs against a copy of production:

1. no stock row with ``reserved < 0`` or ``on_hand - reserved < 0`` (oversold; assumes
   ``inventory.allow_negative_stock`` is off, the default);
2. each stock row's ``reserved`` equals the sum of its active reservations;
3. each stock row's ``on_hand`` equals the sum of its ledger (``inventory_movement``);
4. no two orders of one creator share an Idempotency-Key;
5. no partial order: every order has lines; a confirmed order whose stock is ``reserved``
   holds active reservations for exactly its line quantities; a draft holds none;
6. with ``--audit``: the audit chain, sealed first, verifies (what ``dovetail audit verify`` does).

Exit status 1 and one line per problem when something is wrong.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import sqlalchemy as sa

CHECKS: list[tuple[str, str]] = [
    ("oversold stock (available < 0 or reserved < 0)",
     "SELECT product_id, warehouse_id, on_hand, reserved FROM inventory_stock "
     "WHERE reserved < 0 OR on_hand - reserved < 0"),
    ("reserved != sum of active reservations",
     "SELECT s.product_id, s.warehouse_id, s.reserved, coalesce(r.total, 0) FROM inventory_stock s "
     "LEFT JOIN (SELECT product_id, warehouse_id, sum(quantity) AS total FROM inventory_reservation "
     "WHERE status = 'active' GROUP BY product_id, warehouse_id) r "
     "ON r.product_id = s.product_id AND r.warehouse_id = s.warehouse_id "
     "WHERE s.reserved != coalesce(r.total, 0)"),
    ("on hand != ledger sum",
     "SELECT s.product_id, s.warehouse_id, s.on_hand, coalesce(m.total, 0) FROM inventory_stock s "
     "LEFT JOIN (SELECT product_id, warehouse_id, sum(quantity) AS total FROM inventory_movement "
     "GROUP BY product_id, warehouse_id) m ON m.product_id = s.product_id AND m.warehouse_id = s.warehouse_id "
     "WHERE s.on_hand != coalesce(m.total, 0)"),
    ("duplicate orders for one Idempotency-Key",
     "SELECT created_by_id, idempotency_key, count(*) FROM orders_order WHERE idempotency_key IS NOT NULL "
     "GROUP BY created_by_id, idempotency_key HAVING count(*) > 1"),
    ("orders without lines",
     "SELECT o.id, o.number, o.status FROM orders_order o "
     "WHERE NOT EXISTS (SELECT 1 FROM orders_line l WHERE l.order_id = o.id)"),
    ("reserved orders whose reservations differ from their lines",
     "SELECT o.id, o.number, coalesce(l.qty, 0), coalesce(r.qty, 0) FROM orders_order o "
     "LEFT JOIN (SELECT order_id, sum(quantity) AS qty FROM orders_line GROUP BY order_id) l ON l.order_id = o.id "
     "LEFT JOIN (SELECT source_id, sum(quantity) AS qty FROM inventory_reservation "
     "WHERE source_type = 'order' AND status = 'active' GROUP BY source_id) r ON r.source_id = o.id "
     "WHERE o.stock_state = 'reserved' AND o.status = 'confirmed' AND coalesce(l.qty, 0) != coalesce(r.qty, 0)"),
    ("drafts holding reservations",
     "SELECT o.id, o.number, r.qty FROM orders_order o JOIN (SELECT source_id, sum(quantity) AS qty "
     "FROM inventory_reservation WHERE source_type = 'order' AND status = 'active' GROUP BY source_id) r "
     "ON r.source_id = o.id WHERE o.status = 'draft'"),
]


def check(database_url: str, *, audit: bool = False, limit: int = 5) -> tuple[list[str], dict[str, Any]]:
    """Run every check; returns ``(problems, facts)`` (problems empty when all is well)."""
    engine = sa.create_engine(database_url)
    problems: list[str] = []
    facts: dict[str, Any] = {}
    try:
        with engine.connect() as conn:
            facts["orders"] = conn.execute(sa.text("SELECT count(*) FROM orders_order")).scalar()
            facts["by_status"] = dict(conn.execute(sa.text(
                "SELECT status, count(*) FROM orders_order GROUP BY status")).all())
            facts["stock_rows"] = conn.execute(sa.text("SELECT count(*) FROM inventory_stock")).scalar()
            for title, sql in CHECKS:
                rows = conn.execute(sa.text(sql)).all()
                if rows:
                    shown = "; ".join(str(tuple(r)) for r in rows[:limit])
                    problems.append(f"{title}: {len(rows)} row(s), e.g. {shown}")
        if audit:
            from sqlalchemy.orm import Session

            from core import audit as core_audit

            with Session(engine) as session:
                if hasattr(core_audit, "seal"):  # entries are written unsealed; chain them first
                    facts["audit_sealed"] = core_audit.seal(session)
                report = core_audit.verify(session)
            if isinstance(report, tuple):  # older core: (checked, first broken id or None)
                checked, broken = report
                problem = None if broken is None else f"broken at entry {broken}"
            else:
                checked, problem = report.checked, report.problem
            facts["audit_entries"] = checked
            if problem is not None:
                problems.append(f"audit chain: {problem}")
    finally:
        engine.dispose()
    return problems, facts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--database-url", required=True)
    ap.add_argument("--audit", action="store_true", help="also verify the audit chain")
    args = ap.parse_args()
    problems, facts = check(args.database_url, audit=args.audit)
    print(f"orders: {facts.get('orders')} {facts.get('by_status')}, stock rows: {facts.get('stock_rows')}"
          + (f", audit entries: {facts['audit_entries']}" if "audit_entries" in facts else ""))
    for p in problems:
        print("FAIL", p)
    if problems:
        sys.exit(1)
    print("OK: nothing oversold, reserved = reservations, ledger = on hand, no duplicate keys, no partial orders")


if __name__ == "__main__":
    main()
