"""dovetail import/export products: row-level errors, idempotence, formula neutralising."""

from __future__ import annotations

import csv
import io

from sqlalchemy import func, select

from core.db import db
from plugins.catalog.models import Category, Product

GOOD_AND_BAD = """sku,name,category,unit,price,cost,active
NS-0001,蛋白粉,营养保健,罐,198.00,80.00,yes
NS-0002,钙镁片,营养保健,瓶,98.5,30,1
,无编码,营养保健,瓶,10,1,yes
NS-0003,鱼油,营养保健,瓶,abc,1,yes
NS-0004,维C,营养保健,瓶,20,1,maybe
NS-0001,重复,营养保健,瓶,20,1,yes
SK-0001,=HYPERLINK("x"),美容护肤,支,128.005,40,no
"""


class Cli:
    """The CLI runs in its own session; end the test's read transaction first (SQLite
    transactions begin IMMEDIATE, so an open one would block the command's writes)."""

    def __init__(self, runner):
        self.runner = runner

    def invoke(self, args):
        db.session.rollback()
        return self.runner.invoke(args)


def write(tmp_path, text, name="products.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_import_reports_bad_rows_and_keeps_good_ones(runner, tmp_path):
    runner = Cli(runner)
    path = write(tmp_path, GOOD_AND_BAD)
    report = tmp_path / "errors.csv"
    result = runner.invoke(["import", "products", str(path), "--errors", str(report)])
    assert result.exit_code == 2, result.output
    assert "3 created, 0 updated, 0 unchanged, 4 rejected" in result.output
    assert "line 4, column sku: Missing data for required field." in result.output
    assert "line 5, column price: Not a valid number." in result.output
    assert "line 6, column active: Use yes/no, true/false or 1/0." in result.output
    assert "line 7, column sku: Duplicate of line 2 in this file." in result.output
    rows = list(csv.reader(io.StringIO(report.read_text(encoding="utf-8-sig"))))
    assert rows[0] == ["line", "column", "reason"] and len(rows) == 5
    assert db.session.scalar(select(func.count()).select_from(Product)) == 3
    sk = db.session.scalar(select(Product).where(Product.sku == "SK-0001"))
    assert str(sk.price) == "128.01" and sk.active is False and sk.category.name == "美容护肤"
    assert db.session.scalar(select(func.count()).select_from(Category)) == 2

    again = runner.invoke(["import", "products", str(path)])  # idempotent on sku
    assert "0 created, 0 updated, 3 unchanged, 4 rejected" in again.output
    assert db.session.scalar(select(func.count()).select_from(Product)) == 3


def test_import_updates_existing_sku_and_dry_run_saves_nothing(runner, tmp_path):
    runner = Cli(runner)
    runner.invoke(["import", "products", str(write(tmp_path, "sku,name,price\nA-1,甲,10\n"))])
    path = write(tmp_path, "sku,name,price\nA-1,甲改,12.5\nB-1,乙,1\n", "second.csv")
    dry = runner.invoke(["import", "products", str(path), "--dry-run"])
    assert dry.exit_code == 0 and "Checked second.csv, 2 rows read: 1 created, 1 updated" in dry.output
    db.session.expire_all()
    assert db.session.scalar(select(Product.name).where(Product.sku == "A-1")) == "甲"
    assert db.session.scalar(select(func.count()).select_from(Product)) == 1
    result = runner.invoke(["import", "products", str(path)])
    assert result.exit_code == 0 and "1 created, 1 updated" in result.output
    db.session.expire_all()
    a = db.session.scalar(select(Product).where(Product.sku == "A-1"))
    assert a.name == "甲改" and str(a.price) == "12.50"


def test_import_xlsx_and_missing_columns(runner, tmp_path):
    runner = Cli(runner)
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["SKU", "Name", "Price", "custom.colour"])
    ws.append(["X-1", "面霜", 88, None])
    ws.append(["X-2", "乳液", -1, None])
    ws.append(["X-3", "精华", 9.9, "red"])
    path = tmp_path / "p.xlsx"
    wb.save(path)
    result = runner.invoke(["import", "products", str(path)])
    assert result.exit_code == 2
    assert "line 3, column price: Must be between 0 and 999999999999.99." in result.output
    assert "line 4, column custom.colour: Unknown field." in result.output  # customfields disabled
    assert db.session.scalar(select(Product.price).where(Product.sku == "X-1")) == 88

    bad = runner.invoke(["import", "products", str(write(tmp_path, "code,title\nA,B\n", "bad.csv"))])
    assert bad.exit_code == 1 and "lacks the column(s) name, price, sku" in bad.output
    odd = runner.invoke(["import", "products", str(write(tmp_path, "x", "bad.txt"))])
    assert odd.exit_code == 1 and "use a .csv or .xlsx file" in odd.output


def test_export_neutralises_formulas(runner, tmp_path):
    runner = Cli(runner)
    runner.invoke(["import", "products", str(write(tmp_path, GOOD_AND_BAD))])
    out = tmp_path / "out.csv"
    result = runner.invoke(["export", "products", "-o", str(out)])
    assert result.exit_code == 0
    rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert rows[0] == ["sku", "name", "category", "unit", "price", "cost", "active", "barcode", "description"]
    by_sku = {r[0]: r for r in rows[1:]}
    assert by_sku["SK-0001"][1] == "'=HYPERLINK(\"x\")"
    assert by_sku["NS-0002"][4:7] == ["98.50", "30.00", "yes"]
    xlsx = tmp_path / "out.xlsx"
    assert runner.invoke(["export", "products", "-o", str(xlsx)]).exit_code == 0
    from openpyxl import load_workbook

    ws = load_workbook(xlsx).active
    assert [c.value for c in ws[1]][:3] == ["sku", "name", "category"] and ws.max_row == 4
    stdout = runner.invoke(["export", "products"])
    assert "NS-0001,蛋白粉" in stdout.output


def test_category_of_a_rejected_row_is_not_left_behind(runner, tmp_path):
    runner = Cli(runner)
    path = write(tmp_path, "sku,name,category,price\nA-1,甲,新类,abc\nA-2,乙,新类,1\nA-3,丙,新类,2\n")
    result = runner.invoke(["import", "products", str(path)])
    assert "2 created, 0 updated, 0 unchanged, 1 rejected" in result.output
    cats = db.session.scalars(select(Category)).all()
    assert [c.name for c in cats] == ["新类"]
    assert {p.category_id for p in db.session.scalars(select(Product))} == {cats[0].id}
