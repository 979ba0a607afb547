"""dovetail import stock (counts) and dovetail export stock."""

from __future__ import annotations

import csv
import io

from sqlalchemy import select

from core.db import db
from plugins.inventory import services
from plugins.inventory.models import Movement


def invoke(runner, args):
    db.session.rollback()  # the CLI has its own session; SQLite writers begin IMMEDIATE
    return runner.invoke(args)


def test_import_counts_as_adjustments_with_row_errors(runner, stockroom, tmp_path):
    s = stockroom
    services.receive(s.p1, s.sh, 10)
    services.reserve_for("order", 1, [{"product_id": s.p1, "quantity": 2}])
    db.session.commit()
    path = tmp_path / "count.csv"
    path.write_text("sku,warehouse,counted,reorder_point\n"
                    "SKU-001,WH-SH,7,5\n"
                    "SKU-002,,4,\n"
                    "SKU-003,wh-gz,0,\n"
                    "NOPE,WH-SH,1,\n"
                    "SKU-002,WH-XX,1,\n"
                    "SKU-003,WH-SH,-1,\n"
                    "SKU-003,WH-SH,2.5,\n"
                    "SKU-001,WH-SH,8,\n", encoding="utf-8")
    result = invoke(runner, ["import", "stock", str(path), "--reference", "CNT-2026-01"])
    assert result.exit_code == 2, result.output
    assert "2 adjusted, 1 unchanged, 5 rejected" in result.output
    for text in ["line 5, column sku: No product with SKU 'NOPE'.",
                 "line 6, column warehouse: No warehouse with code 'WH-XX'.",
                 "line 7, column counted: Must be zero or more.",
                 "line 8, column counted: '2.5' is not a whole number.",
                 "line 9, column sku: SKU-001 in WH-SH was already counted on line 2."]:
        assert text in result.output
    db.session.expire_all()
    assert services.stock_of(s.p1, s.sh).on_hand == 7 and services.stock_of(s.p1, s.sh).reserved == 2
    assert services.stock_of(s.p1, s.sh).reorder_point == 5
    assert services.stock_of(s.p2, s.sh).on_hand == 4  # empty warehouse: the default one
    adj = db.session.scalars(select(Movement).where(Movement.kind == "adjustment").order_by(Movement.id)).all()
    assert [(m.product_id, m.quantity, m.reason, m.reference) for m in adj] == [
        (s.p1, -3, "stock count", "CNT-2026-01"), (s.p2, 4, "stock count", "CNT-2026-01")]

    again = invoke(runner, ["import", "stock", str(path)])
    assert "0 adjusted, 3 unchanged, 5 rejected" in again.output
    assert services.check_ledger() == []


def test_import_needs_sku_and_counted_columns(runner, stockroom, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("product,qty\nA,1\n", encoding="utf-8")
    result = invoke(runner, ["import", "stock", str(path)])
    assert result.exit_code == 1 and "lacks the column(s)" in result.output


def test_export_stock(runner, stockroom, tmp_path):
    s = stockroom
    services.receive(s.p1, s.sh, 9)
    services.receive(s.p1, s.gz, 1)
    services.reserve_for("order", 1, [{"product_id": s.p1, "quantity": 4}])
    services.set_reorder_point(s.p1, 6)
    db.session.commit()
    out = tmp_path / "stock.csv"
    assert invoke(runner, ["export", "stock", "-o", str(out)]).exit_code == 0
    rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert rows == [["sku", "name", "warehouse", "on_hand", "reserved", "available", "reorder_point"],
                    ["SKU-001", "产品1", "WH-GZ", "1", "0", "1", "6"],
                    ["SKU-001", "产品1", "WH-SH", "9", "4", "5", "6"]]
    only = invoke(runner, ["export", "stock", "--warehouse", "wh-gz"])
    assert only.output.count("SKU-001") == 1
