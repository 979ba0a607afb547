"""Products and categories through the REST API."""

from __future__ import annotations


def _product(api, **kw):
    body = {"sku": "NS-0001", "name": "蛋白粉", "price": "198.00", "cost": "80.50", **kw}
    return api.post("/api/v1/products", json=body)


def test_create_get_list_patch_delete(admin_api):
    cat = admin_api.post("/api/v1/categories", json={"name": "营养保健"})
    assert cat.status_code == 201, cat.json
    r = _product(admin_api, category_id=cat.json["id"], price="198.005")
    assert r.status_code == 201, r.json
    body = r.json
    assert body["price"] == "198.01"  # half-up to the fen
    assert body["cost"] == "80.50"
    assert body["category_name"] == "营养保健"
    assert body["unit"] == "件" and body["active"] is True and body["custom"] == {}
    pid = body["id"]

    assert admin_api.get(f"/api/v1/products/{pid}").json["sku"] == "NS-0001"
    r = admin_api.patch(f"/api/v1/products/{pid}", json={"price": 10, "active": False})
    assert r.status_code == 200 and r.json["price"] == "10.00" and r.json["active"] is False
    assert r.json["name"] == "蛋白粉"

    lst = admin_api.get("/api/v1/products?q=ns-00&active=false").json
    assert set(lst) == {"items", "page", "per_page", "total"}
    assert lst["total"] == 1 and lst["items"][0]["id"] == pid
    assert admin_api.get("/api/v1/products?active=true").json["total"] == 0

    assert admin_api.delete(f"/api/v1/products/{pid}").status_code == 204
    assert admin_api.get(f"/api/v1/products/{pid}").status_code == 404


def test_validation_errors_name_fields(admin_api):
    r = admin_api.post("/api/v1/products", json={"sku": "=bad sku", "price": "-1"})
    assert r.status_code == 422
    fields = r.json["error"]["fields"]
    assert "name" in fields and "sku" in fields and "price" in fields
    r = _product(admin_api, category_id=999)
    assert r.status_code == 422 and "category_id" in r.json["error"]["fields"]
    r = _product(admin_api, price="abc")
    assert r.status_code == 422 and r.json["error"]["fields"]["price"]
    r = _product(admin_api, custom={"colour": "red"})
    assert r.status_code == 422 and r.json["error"]["fields"]["custom"] == {"colour": ["Unknown field."]}


def test_sku_is_unique(admin_api):
    assert _product(admin_api).status_code == 201
    r = _product(admin_api, name="another")
    assert r.status_code == 409 and r.json["error"]["fields"]["sku"]
    other = _product(admin_api, sku="NS-0002").json["id"]
    r = admin_api.patch(f"/api/v1/products/{other}", json={"sku": "NS-0001"})
    assert r.status_code == 409


def test_list_search_filters_sorting_and_pagination(admin_api):
    parent = admin_api.post("/api/v1/categories", json={"name": "护肤"}).json["id"]
    child = admin_api.post("/api/v1/categories", json={"name": "面霜", "parent_id": parent}).json["id"]
    other = admin_api.post("/api/v1/categories", json={"name": "清洁"}).json["id"]
    for i in range(5):
        _product(admin_api, sku=f"SK-{i:04d}", name=f"面霜{i}", price=str(10 + i), category_id=child)
    _product(admin_api, sku="HC-0001", name="洗衣液", price="5", category_id=other)
    r = admin_api.get(f"/api/v1/products?category_id={parent}&sort=-price&per_page=2&page=2").json
    assert r["total"] == 5 and r["page"] == 2 and [p["sku"] for p in r["items"]] == ["SK-0002", "SK-0001"]
    assert admin_api.get("/api/v1/products?q=洗衣").json["total"] == 1
    assert admin_api.get("/api/v1/products?q=%25").json["total"] == 0  # a literal %, not a wildcard
    r = admin_api.get("/api/v1/products?sort=password")
    assert r.status_code == 422 and "sort" in r.json["error"]["fields"]
    r = admin_api.get("/api/v1/products?custom.colour=red")
    assert r.status_code == 422


def test_permissions(api_client, admin_api):
    pid = _product(admin_api).json["id"]
    rep = api_client(role="rep")
    assert rep.get("/api/v1/products").status_code == 200
    assert rep.get(f"/api/v1/products/{pid}").status_code == 200
    assert _product(rep, sku="X-1").status_code == 403
    assert rep.patch(f"/api/v1/products/{pid}", json={"price": "1"}).status_code == 403
    assert rep.delete(f"/api/v1/products/{pid}").status_code == 403
    assert rep.post("/api/v1/categories", json={"name": "x"}).status_code == 403
    finance = api_client(role="finance")
    assert finance.get("/api/v1/products").status_code == 403
    assert finance.client.get("/api/v1/products").status_code == 401
    warehouse = api_client(role="warehouse")
    assert warehouse.patch(f"/api/v1/products/{pid}", json={"price": "1"}).status_code == 200


def test_categories_rules(admin_api):
    a = admin_api.post("/api/v1/categories", json={"name": "A"}).json["id"]
    b = admin_api.post("/api/v1/categories", json={"name": "B", "parent_id": a}).json["id"]
    assert admin_api.post("/api/v1/categories", json={"name": "A"}).status_code == 409
    r = admin_api.patch(f"/api/v1/categories/{a}", json={"parent_id": b})
    assert r.status_code == 422 and r.json["error"]["fields"]["parent_id"] == ["Would create a cycle."]
    assert admin_api.delete(f"/api/v1/categories/{a}").status_code == 409  # has a subcategory
    _product(admin_api, category_id=b)
    assert admin_api.delete(f"/api/v1/categories/{b}").status_code == 409  # has a product
    lst = admin_api.get(f"/api/v1/categories?parent_id={a}").json
    assert lst["total"] == 1 and lst["items"][0]["name"] == "B"
