"""Historical order import: the end state equals the live orders it was exported from (sales
by rep, crm purchase figures, performance figures), the owner column round-trips, bad owners
are row errors, dry runs save nothing."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select, text, update

from core.db import db


@pytest.fixture
def dovetail_plugins():
    return ["crm", "catalog", "orders", "performance"]


@pytest.fixture
def shop(make_user, make_customer, make_product, admin_api):
    """Live orders of two reps: paid, confirmed (no sale), cancelled, one reassigned to rep2."""
    from plugins.orders.models import Order

    rep1, rep2 = make_user("rep1", role="rep"), make_user("rep2", role="rep")
    c1 = make_customer(rep1, external_code="C1")
    c2 = make_customer(rep2, phone="13900000002")
    c3 = make_customer(rep1, name="王五", external_code="C3")
    p1, p2 = make_product("128.50", sku="TEA-1"), make_product("19.99", sku="CUP-1")

    def order(customer, lines, *transitions):
        r = admin_api.post("/api/v1/orders", json={"customer_id": customer.id, "lines": [
            {"product_id": p.id, "quantity": q} for p, q in lines]})
        assert r.status_code == 201, r.json
        for t in transitions:
            body = {"transition": t, **({"inputs": {"method": "cash"}} if t == "pay" else {})}
            t_r = admin_api.post(f"/api/v1/orders/{r.json['id']}/transitions", json=body)
            assert t_r.status_code == 200, t_r.json
        return r.json["id"]

    order(c1, [(p1, 2), (p2, 3)], "confirm", "pay")
    order(c1, [(p2, 1)], "confirm", "pay")
    moved = order(c2, [(p1, 1)], "confirm", "pay")
    order(c2, [(p2, 7)], "confirm")
    order(c3, [(p1, 3), (p2, 2)], "confirm", "pay")
    order(c3, [(p1, 1)], "confirm", "cancel")
    db.session.execute(update(Order).where(Order.id == moved).values(owner_id=rep1.id))  # reassigned
    db.session.commit()
    return {"rep1": rep1, "rep2": rep2}


def _state(admin_api) -> dict:
    from plugins.crm.models import Customer
    from plugins.performance.figures import rep_figures
    from plugins.performance.periods import Period

    db.session.expire_all()
    by_rep = admin_api.get("/api/v1/reports/orders.sales_by_rep").json["rows"]
    customers = sorted((c.name, c.order_count, str(c.total_spent), c.last_purchase_at.replace(microsecond=0)
                        if c.last_purchase_at else None) for c in db.session.scalars(select(Customer)))
    figures = {rep: (str(f.revenue), f.orders, f.units, f.customers) for rep, f in
               rep_figures(Period(date(2000, 1, 1), date(2100, 12, 31))).items()}
    return {"sales_by_rep": by_rep, "customers": customers, "performance": figures}


def _clear_orders() -> None:
    """Remove every order and what crm kept of them: the same customers, products and reps
    with no order history, as a fresh database the export is imported into."""
    for table in ("orders_payment", "orders_shipment", "orders_adjustment", "orders_line", "orders_order",
                  "crm_purchase"):
        db.session.execute(text(f"DELETE FROM {table}"))
    db.session.execute(text("UPDATE crm_customer SET order_count = 0, total_spent = 0, last_purchase_at = NULL"))
    db.session.commit()


def test_export_then_import_gives_the_same_reports(shop, runner, admin_api, tmp_path):
    before = _state(admin_api)
    # orders keep their creator (admin) as owner, the reassigned one is rep1's: neither is
    # the customer's rep, so only the owner column can bring them back
    assert sorted(row[0] for row in before["sales_by_rep"]) == ["admin", "rep1"]
    export = tmp_path / "orders.csv"
    assert runner.invoke(["export", "orders", "-o", str(export)]).exit_code == 0
    header = export.read_text(encoding="utf-8-sig").splitlines()[0].split(",")
    assert "owner" in header
    _clear_orders()
    assert _state(admin_api)["sales_by_rep"] == []

    dry = runner.invoke(["import", "orders", str(export), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "6 orders (8 lines)" in dry.output and "Nothing was saved" in dry.output
    assert _state(admin_api)["sales_by_rep"] == []

    res = runner.invoke(["import", "orders", str(export)])
    assert res.exit_code == 0, res.output
    assert "8 rows read: 6 orders (8 lines), 0 already imported, 0 rejected." in res.output
    assert _state(admin_api) == before
    again = runner.invoke(["import", "orders", str(export)])
    assert "0 orders (0 lines), 6 already imported" in again.output
    assert _state(admin_api) == before  # a re-run changes no figure


def test_owner_column_default_and_unknown_user(shop, runner, admin_api, tmp_path):
    from plugins.orders.models import Order

    f = tmp_path / "history.csv"
    f.write_text("external_number,order_date,status,customer,sku,quantity,unit_price,owner\n"
                 "H-1,2025-01-05,completed,C1,TEA-1,1,100,rep2\n"
                 "H-2,2025-01-06,paid,C1,TEA-1,1,50,\n"
                 "H-3,2025-01-07,paid,C3,CUP-1,2,10,ghost\n"
                 "H-4,2025-01-08,paid,C3,CUP-1,2,10,rep1\n"
                 "H-4,2025-01-08,paid,C3,TEA-1,1,10,rep2\n", encoding="utf-8")
    res = runner.invoke(["import", "orders", str(f), "--owner", "rep2"])
    assert res.exit_code == 2
    assert "line 4, column owner: No active user 'ghost'." in res.output
    assert "line 6, column owner: Differs from line 5 of order H-4." in res.output
    assert "2 orders (2 lines), 0 already imported, 2 rejected." in res.output
    owners = dict(db.session.execute(select(Order.external_number, Order.owner_id)
                                     .where(Order.external_number.like("H-%"))).all())
    # a named owner wins; an empty cell takes --owner (the importing user)
    assert owners == {"H-1": shop["rep2"].id, "H-2": shop["rep2"].id}
    g = tmp_path / "no-owner.csv"
    g.write_text("external_number,order_date,status,customer,sku,quantity,unit_price\n"
                 "N-1,2025-02-01,paid,C1,TEA-1,1,100\n", encoding="utf-8")
    assert runner.invoke(["import", "orders", str(g)]).exit_code == 0
    # without --owner the customer's rep owns it, as before the owner column existed
    assert db.session.scalar(select(Order.owner_id).where(Order.external_number == "N-1")) == shop["rep1"].id
    bad = runner.invoke(["import", "orders", str(g), "--owner", "nobody"])
    assert bad.exit_code == 1 and "no active user 'nobody'" in bad.output and "Traceback" not in bad.output


def test_statements_per_batch_do_not_grow_with_orders(shop, tmp_path):
    """Bulk writes: importing 40 orders costs the same statements as importing 4."""
    from sqlalchemy import event

    from plugins.orders.importer import import_orders

    def run(first: int, n: int) -> int:
        f = tmp_path / f"bulk{first}.csv"
        rows = [f"B-{i},2025-03-0{1 + i % 9},completed,{'C1' if i % 2 else 'C3'},{'TEA-1' if i % 3 else 'CUP-1'},2,9.9"
                for i in range(first, first + n)]
        f.write_text("external_number,order_date,status,customer,sku,quantity,unit_price\n" + "\n".join(rows) + "\n",
                     encoding="utf-8")
        seen: list[str] = []

        def count(conn, cursor, statement, *args):
            seen.append(statement)

        engine = db.engine
        event.listen(engine, "before_cursor_execute", count)
        try:
            report = import_orders(f)
        finally:
            event.remove(engine, "before_cursor_execute", count)
        assert report.counts["imported"] == n and not report.errors
        return len(seen)

    run(0, 1)  # the first order of a year also creates its number sequence row
    assert run(100, 4) == run(200, 40)
