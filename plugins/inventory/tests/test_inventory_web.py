"""Server-rendered pages of catalog and inventory."""

from __future__ import annotations

from core.db import db
from plugins.inventory import services


def test_stock_pages_highlight_low_stock(web_login, stockroom):
    s = stockroom
    services.receive(s.p1, s.sh, 3)
    services.receive(s.p2, s.sh, 30)
    services.set_reorder_point(s.p1, 5)
    db.session.commit()
    c = web_login()
    page = c.get("/inventory/stock").get_data(as_text=True)
    assert "SKU-001" in page and "SKU-002" in page and "Low stock" in page
    low = c.get("/inventory/stock?low=1").get_data(as_text=True)
    assert "SKU-001" in low and "SKU-002" not in low
    ledger = c.get(f"/inventory/movements?product_id={s.p1}").get_data(as_text=True)
    assert "+3" in ledger
    assert "WH-SH" in c.get("/inventory/warehouses").get_data(as_text=True)
    assert c.get("/").status_code == 200  # the dashboard shows the stock value widget
    r = c.post("/inventory/stock/reorder-point", data={"sku": "SKU-002", "warehouse_id": s.sh,
                                                       "reorder_point": "40"})
    assert r.status_code == 302
    assert services.stock_of(s.p2, s.sh).reorder_point == 40
    assert "SKU-002" in c.get("/inventory/stock?low=1").get_data(as_text=True)


def test_movement_form_posts_and_shows_errors(web_login, stockroom):
    s = stockroom
    c = web_login()
    assert c.get("/inventory/movements/new?kind=receipt").status_code == 200
    r = c.post("/inventory/movements/new", data={"kind": "receipt", "sku": "SKU-001", "warehouse_id": s.sh,
                                                 "quantity": 12, "reference": "PO-7"})
    assert r.status_code == 302
    assert services.stock_of(s.p1, s.sh).on_hand == 12
    r = c.post("/inventory/movements/new", data={"kind": "adjustment", "sku": "SKU-001", "warehouse_id": s.sh,
                                                 "quantity": -2})
    assert r.status_code == 422 and "Required for adjustments." in r.get_data(as_text=True)
    r = c.post("/inventory/movements/new", data={"kind": "issue", "sku": "SKU-001", "warehouse_id": s.sh,
                                                 "quantity": 13})
    assert r.status_code == 422 and "Only 12 available in WH-SH." in r.get_data(as_text=True)
    r = c.post("/inventory/movements/new", data={"kind": "issue", "sku": "NOPE", "warehouse_id": s.sh,
                                                 "quantity": 1})
    assert r.status_code == 422 and "No product with this SKU." in r.get_data(as_text=True)


def test_warehouse_form(web_login, stockroom):
    c = web_login()
    r = c.post("/inventory/warehouses/new", data={"code": "wh-cd", "name": "成都仓", "active": "y"})
    assert r.status_code == 302
    r = c.post("/inventory/warehouses/new", data={"code": "WH-CD", "name": "again"})
    assert r.status_code == 422 and "Already used." in r.get_data(as_text=True)


def test_catalog_pages(web_login, stockroom):
    s = stockroom
    c = web_login()
    page = c.get("/catalog/products?q=SKU-00").get_data(as_text=True)
    assert "SKU-001" in page and "产品1" in page
    assert "产品2" in c.get(f"/catalog/products/{s.p2}").get_data(as_text=True)
    r = c.post("/catalog/products/new", data={"sku": "NEW-1", "name": "新品", "unit": "盒", "price": "9.90",
                                              "active": "y"})
    assert r.status_code == 302
    r = c.post("/catalog/products/new", data={"sku": "NEW-1", "name": "x", "unit": "盒", "price": "1"})
    assert r.status_code == 422 and "Already used by product" in r.get_data(as_text=True)
    r = c.post(f"/catalog/products/{s.p1}/edit", data={"sku": "SKU-001", "name": "改名", "unit": "件",
                                                      "price": "-5"})
    assert r.status_code == 422 and "Must be between 0" in r.get_data(as_text=True)
    r = c.post("/catalog/categories", data={"name": "护肤"})
    assert r.status_code == 302
    assert "护肤" in c.get("/catalog/categories").get_data(as_text=True)


def test_upload_imports(web_login, stockroom):
    import io

    from sqlalchemy import select

    from plugins.catalog.models import Product

    s = stockroom
    c = web_login()
    assert c.get("/catalog/products/import").status_code == 200
    data = {"file": (io.BytesIO("sku,name,price\nUP-1,上传品,5\nUP-2,,5\n".encode()), "p.csv")}
    page = c.post("/catalog/products/import", data=data, content_type="multipart/form-data")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "Missing data for required field." in text and "<td>3</td>" in text
    assert db.session.scalar(select(Product.name).where(Product.sku == "UP-1")) == "上传品"
    r = c.post("/catalog/products/import", data={"file": (io.BytesIO(b"x"), "p.txt")},
               content_type="multipart/form-data")
    assert r.status_code == 422 and "Use a .csv or .xlsx file." in r.get_data(as_text=True)
    r = c.post("/catalog/products/import", data={}, content_type="multipart/form-data")
    assert r.status_code == 422 and "Choose a .csv or .xlsx file." in r.get_data(as_text=True)

    data = {"file": (io.BytesIO(b"sku,counted\nSKU-001,7\nSKU-009,1\n"), "count.csv"), "reference": "CNT-9"}
    page = c.post("/inventory/stock/import", data=data, content_type="multipart/form-data")
    assert page.status_code == 200 and "No product with SKU &#39;SKU-009&#39;." in page.get_data(as_text=True)
    db.session.expire_all()
    assert services.stock_of(s.p1, s.sh).on_hand == 7


def test_pages_check_permissions(web_login, stockroom):
    c = web_login("rep")
    assert c.get("/inventory/stock").status_code == 200
    assert c.get("/inventory/movements/new").status_code == 403
    assert c.get("/inventory/warehouses").status_code == 403
    assert c.get("/catalog/products/new").status_code == 403
    assert c.get("/catalog/products").status_code == 200
    assert c.get("/catalog/products/import").status_code == 403
    assert c.get("/inventory/stock/import").status_code == 403


def test_demo_data(app, runner):
    from sqlalchemy import func, select

    from plugins.catalog.models import Category, Product
    from plugins.inventory.models import Movement, Warehouse

    result = runner.invoke(["demo", "--scale", "0.2", "--seed", "1"])  # catalog first, then inventory
    assert result.exit_code == 0, result.output
    assert db.session.scalar(select(func.count()).select_from(Product)) == 20
    assert db.session.scalar(select(func.count()).select_from(Category)) == 8
    assert sorted(db.session.scalars(select(Warehouse.code))) == ["WH-GZ", "WH-SH"]
    receipts = db.session.scalar(select(func.count(func.distinct(Movement.product_id))).where(
        Movement.kind == "receipt"))
    assert receipts == 20
    assert db.session.scalar(select(func.count()).select_from(Movement).where(Movement.kind == "adjustment")) >= 3
    assert services.check_ledger() == []
    runner.invoke(["demo", "--scale", "0.2", "--seed", "1"])  # running it again adds nothing
    assert db.session.scalar(select(func.count()).select_from(Product)) == 20
    assert services.check_ledger() == []
