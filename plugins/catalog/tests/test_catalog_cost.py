"""Product costs are their own permission, ``catalog.product.read_cost``: a rep (who reads
products) sees no cost in the API, the web pages or an export; managers, owners and admins
do. Setting a cost needs the permission too (no blind overwrite, no guessing by import)."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest

from core.db import db
from plugins.catalog.cli import import_products
from plugins.catalog.models import Product

COST = "73.45"


@pytest.fixture
def product(app):
    p = Product(sku="SKU-COST", name="Night cream", price=Decimal("199.00"), cost=Decimal(COST))
    db.session.add(p)
    db.session.commit()
    return p


def test_the_api_leaves_cost_out_for_a_rep(api_client, product):
    rep = api_client(role="rep")
    one = rep.get(f"/api/v1/products/{product.id}")
    assert one.status_code == 200 and one.json["price"] == "199.00"
    assert "cost" not in one.json
    page = rep.get("/api/v1/products")
    assert page.status_code == 200 and page.json["items"]
    assert all("cost" not in item for item in page.json["items"])
    assert COST not in page.get_data(as_text=True)
    # sorting by cost would leak its order
    for sort in ("cost", "-cost"):
        r = rep.get(f"/api/v1/products?sort={sort}")
        assert r.status_code == 403 and "catalog.product.read_cost" in r.json["error"]["message"]


@pytest.mark.parametrize("role", ["manager", "owner", "admin"])
def test_the_api_shows_cost_to_managers_owners_and_admins(api_client, product, role):
    c = api_client(role=role)
    assert c.get(f"/api/v1/products/{product.id}").json["cost"] == COST
    r = c.get("/api/v1/products?sort=-cost")
    assert r.status_code == 200 and r.json["items"][0]["cost"] == COST


def test_setting_a_cost_needs_the_cost_permission(api_client, product):
    wh = api_client(role="warehouse")  # writes products, may not see costs
    body = {"sku": "NEW-1", "name": "New", "price": "10.00"}
    r = wh.post("/api/v1/products", json={**body, "cost": "4.00"})
    assert r.status_code == 403 and "catalog.product.read_cost" in r.json["error"]["message"]
    r = wh.post("/api/v1/products", json=body)
    assert r.status_code == 201 and "cost" not in r.json
    assert db.session.get(Product, r.json["id"]).cost == Decimal("0.00")
    assert wh.patch(f"/api/v1/products/{product.id}", json={"cost": "1.00"}).status_code == 403
    r = wh.patch(f"/api/v1/products/{product.id}", json={"name": "Night cream 2"})
    assert r.status_code == 200 and "cost" not in r.json
    db.session.expire_all()
    assert db.session.get(Product, product.id).cost == Decimal(COST)
    admin = api_client(role="admin")
    r = admin.post("/api/v1/products", json={**body, "sku": "NEW-2", "cost": "4.00"})
    assert r.status_code == 201 and r.json["cost"] == "4.00"


def test_openapi_documents_cost_as_an_optional_field(client):
    schemas = client.get("/api/v1/openapi.json").json["components"]["schemas"]
    out = schemas["ProductOut"]
    assert "cost" in out["properties"] and "cost" not in out.get("required", [])
    assert "catalog.product.read_cost" in out["properties"]["cost"]["description"]
    assert "absent" in out["properties"]["cost"]["description"]


def test_web_pages_leave_cost_out_for_a_rep(web_login, product):
    rep = web_login("rep")
    listing = rep.get("/catalog/products").get_data(as_text=True)
    assert "SKU-COST" in listing and COST not in listing and ">Cost<" not in listing
    detail = rep.get(f"/catalog/products/{product.id}").get_data(as_text=True)
    assert "Night cream" in detail and COST not in detail and ">Cost<" not in detail


def test_web_pages_show_cost_to_a_manager(web_login, product):
    mgr = web_login("manager")
    assert COST in mgr.get("/catalog/products").get_data(as_text=True)
    assert COST in mgr.get(f"/catalog/products/{product.id}").get_data(as_text=True)


def test_the_product_form_has_no_cost_field_without_the_permission(web_login, product):
    wh = web_login("warehouse")
    form = wh.get(f"/catalog/products/{product.id}/edit")
    assert form.status_code == 200
    page = form.get_data(as_text=True)
    assert 'name="cost"' not in page and COST not in page
    r = wh.post(f"/catalog/products/{product.id}/edit", data={
        "sku": "SKU-COST", "name": "Renamed", "category_id": "", "unit": "件", "price": "199.00",
        "active": "y", "cost": "0.01"})
    assert r.status_code == 302, r.get_data(as_text=True)
    db.session.expire_all()
    saved = db.session.get(Product, product.id)
    assert saved.name == "Renamed" and saved.cost == Decimal(COST)  # kept, not reset to 0


def test_the_product_form_edits_cost_with_the_permission(web_login, product):
    admin = web_login("admin")
    assert 'name="cost"' in admin.get(f"/catalog/products/{product.id}/edit").get_data(as_text=True)
    r = admin.post(f"/catalog/products/{product.id}/edit", data={
        "sku": "SKU-COST", "name": "Night cream", "category_id": "", "unit": "件", "price": "199.00",
        "active": "y", "cost": "80.00"})
    assert r.status_code == 302
    db.session.expire_all()
    assert db.session.get(Product, product.id).cost == Decimal("80.00")


def test_export_as_a_rep_has_no_cost_column(runner, make_user, product, tmp_path):
    make_user("rep_exp", role="rep")
    make_user("mgr_exp", role="manager")
    rows = list(csv.reader(io.StringIO(runner.invoke(["export", "products", "--as", "rep_exp"]).output)))
    assert "cost" not in rows[0] and COST not in {cell for row in rows for cell in row}
    assert ["SKU-COST", "Night cream"] == rows[1][:2]
    xlsx = tmp_path / "p.xlsx"
    assert runner.invoke(["export", "products", "--as", "rep_exp", "-o", str(xlsx)]).exit_code == 0
    from openpyxl import load_workbook

    cells = [c.value for row in load_workbook(xlsx).active.iter_rows() for c in row]
    assert "cost" not in cells and COST not in {str(v) for v in cells}
    for args in (["--as", "mgr_exp"], []):
        rows = list(csv.reader(io.StringIO(runner.invoke(["export", "products", *args]).output)))
        assert rows[1][rows[0].index("cost")] == COST


def test_import_cannot_set_or_probe_a_cost_without_the_permission(app, make_user, product, tmp_path):
    wh = make_user("wh_imp", role="warehouse")
    path = tmp_path / "p.csv"
    path.write_text("sku,name,price,cost\nSKU-COST,Night cream,199.00,73.45\nNEW-9,New,5.00,\n",
                    encoding="utf-8")
    counts, errors = import_products(path, user=wh)
    assert counts["rejected"] == 1 and counts["created"] == 1  # "unchanged" would reveal the cost
    assert errors[0].line == 2 and "catalog.product.read_cost" in errors[0].reason
