"""Issue 7, API items: malformed input is a 4xx (never a 500) on SQLite and PostgreSQL,
authentication and permission come before validation, the documented error shape is the
one sent, a database that is down is a 503, reports answer 403 without the permission."""

from __future__ import annotations

import re

import pytest
import yaml
from sqlalchemy import exc as sa_exc

MAX_INT = 2**31 - 1  # PostgreSQL integer


@pytest.fixture
def dovetail_plugins():
    return None  # every plugin: the OpenAPI document covers the whole API


@pytest.fixture
def dovetail_config_dir(dovetail_config_dir):
    """The project's roles plus 'nobody', a role with no permission at all, and
    'report_reader', who may open the reports pages but no sales report."""
    path = dovetail_config_dir / "roles.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["roles"]["nobody"] = {"permissions": [], "scope": "own"}
    data["roles"]["report_reader"] = {"permissions": ["core.report.read"], "scope": "own"}
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return dovetail_config_dir


def _error(r, status, code=None):
    assert r.status_code == status, (r.status_code, r.get_data(as_text=True)[:500])
    body = r.get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "fields"}, body
    if code:
        assert body["error"]["code"] == code
    return body["error"]


def _raw(api, method, url, text):
    return api.client.open(url, method=method, data=text, content_type="application/json",
                           headers={"Authorization": f"Bearer {api.token}"})


# ---------------------------------------------------------------------------
# Ids and integers out of range
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("url", [
    "/api/v1/orders/2147483648", "/api/v1/orders/9223372036854775808",
    "/api/v1/customers/99999999999999999999999", "/api/v1/products/2147483648",
    "/api/v1/orders/0", "/api/v1/leads/2147483648/transitions",
])
def test_ids_beyond_the_database_range_in_urls_are_404(admin_api, url):
    _error(admin_api.get(url), 404, "not_found")


@pytest.mark.parametrize("query", [
    "customer_id=2147483648", "owner_id=9223372036854775808", "page=9223372036854775808",
    "page=2147483648", "per_page=100000000000000000000", "customer_id=0",
])
def test_integer_filters_beyond_the_range_are_422(admin_api, query):
    err = _error(admin_api.get(f"/api/v1/orders?{query}"), 422, "validation_error")
    assert set(err["fields"]) == {query.split("=")[0]}


@pytest.mark.parametrize("body, field", [
    ({"customer_id": 2**63, "lines": [{"product_id": 1, "quantity": 1}]}, "customer_id"),
    ({"customer_id": MAX_INT + 1, "lines": [{"product_id": 1, "quantity": 1}]}, "customer_id"),
    ({"customer_id": 1, "lines": [{"product_id": 2**64, "quantity": 1}]}, "lines"),
    ({"customer_id": 1, "lines": [{"product_id": 1, "quantity": 2**63}]}, "lines"),
    ({"customer_id": 1, "owner_id": -(2**63) - 1, "lines": [{"product_id": 1, "quantity": 1}]},
     "owner_id"),
])
def test_integers_beyond_the_range_in_bodies_are_422(admin_api, body, field):
    err = _error(admin_api.post("/api/v1/orders", json=body), 422, "validation_error")
    assert field in err["fields"]


def test_ids_in_lists_and_other_plugins_are_range_checked(admin_api):
    r = admin_api.post("/api/v1/customers/merge", json={"survivor_id": 1, "merged_ids": [2**40]})
    assert "merged_ids" in _error(r, 422)["fields"]
    r = admin_api.post("/api/v1/stock/movements", json={
        "kind": "receipt", "product_id": 2**31, "warehouse_id": 1, "quantity": 1})
    assert "product_id" in _error(r, 422)["fields"]
    r = admin_api.get("/api/v1/stock?warehouse_id=2147483648")
    assert "warehouse_id" in _error(r, 422)["fields"]


def test_the_documented_bounds_are_the_enforced_ones(app, client):
    doc = client.get("/api/v1/openapi.json").get_json()
    param = next(p for p in doc["paths"]["/api/v1/orders/{order_id}"]["parameters"]
                 if p["name"] == "order_id")
    assert param["schema"] == {"type": "integer", "minimum": 1, "maximum": MAX_INT}
    line = doc["components"]["schemas"]["OrderLineIn"]["properties"]["product_id"]
    assert (line["minimum"], line["maximum"]) == (1, MAX_INT)


# ---------------------------------------------------------------------------
# Malformed JSON and text
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [33, 1000, 100_000])
def test_deeply_nested_json_is_400(admin_api, depth):
    text = '{"name": "x", "custom": ' + "[" * depth + "]" * depth + "}"
    err = _error(_raw(admin_api, "POST", "/api/v1/customers", text), 400, "bad_request")
    assert "nested too deeply" in err["message"]


def test_reasonable_nesting_still_works(admin_api):
    r = admin_api.post("/api/v1/segments", json={"name": "s", "filters": {"tier": ["gold"]}})
    assert r.status_code == 201, r.get_json()


@pytest.mark.parametrize("text", ['"\\ud800"', '"a\\udfffb"', '"\\u0000"', '"a\\u0000b"'])
def test_invalid_text_in_a_body_is_422_naming_the_field(admin_api, text):
    body = '{"name": ' + text + ', "phone": "13800138000"}'
    err = _error(_raw(admin_api, "POST", "/api/v1/customers", body), 422, "validation_error")
    assert list(err["fields"]) == ["name"]
    assert re.search("NUL|surrogate", err["fields"]["name"][0])


def test_invalid_text_deep_in_a_body_and_in_keys(admin_api):
    body = '{"name": "s", "filters": {"tier": ["gold", "\\ud83d"]}}'
    err = _error(_raw(admin_api, "POST", "/api/v1/segments", body), 422)
    assert err["fields"] == {"filters": {"tier": {"1": [
        "Must be valid Unicode text (a lone surrogate such as \\ud800 is not)."]}}}
    err = _error(_raw(admin_api, "POST", "/api/v1/segments", '{"na\\u0000me": "s"}'), 422)
    assert err["fields"] == {"_schema": ["Field name: Must not contain NUL characters."]}


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_numbers_are_400(admin_api, number):
    body = '{"customer_id": 1, "lines": [{"product_id": 1, "quantity": ' + number + "}]}"
    _error(_raw(admin_api, "POST", "/api/v1/orders", body), 400, "bad_request")


def test_nul_in_a_query_or_path_is_never_a_server_error(admin_api):
    for url in ("/api/v1/customers?q=%00", "/api/v1/leads?q=a%00b", "/api/v1/products?q=%00",
                "/api/v1/audit?entity=%00", "/api/v1/custom-fields/customer/%00"):
        r = admin_api.get(url)
        assert r.status_code < 500, (url, r.get_json())
    _error(admin_api.get("/api/v1/custom-fields/customer/a%00b"), 422)


def test_customer_names_with_nul_are_refused_on_update_too(admin_api):
    c = admin_api.post("/api/v1/customers", json={"name": "张三"}).get_json()
    r = admin_api.patch(f"/api/v1/customers/{c['id']}", json={"name": "a\x00b"})
    assert _error(r, 422)["fields"] == {"name": ["Must not contain NUL characters."]}


# ---------------------------------------------------------------------------
# Safety nets in the error handler
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("exc, status, code", [
    (sa_exc.IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed")), 409, "conflict"),
    (sa_exc.DataError("SELECT", {}, Exception("integer out of range")), 422, "validation_error"),
    (sa_exc.OperationalError("SELECT 1", {}, Exception("connection refused")), 503,
     "service_unavailable"),
    (sa_exc.InterfaceError("SELECT 1", {}, Exception("connection already closed")), 503,
     "service_unavailable"),
    (sa_exc.TimeoutError("QueuePool limit reached"), 503, "service_unavailable"),
])
def test_database_errors_map_to_4xx_and_503(app, exc, status, code):
    from core.api import handle_error

    with app.test_request_context("/api/v1/customers", method="POST"):
        resp, got = handle_error(exc)
    assert got == status and resp.get_json()["error"]["code"] == code
    if status == 503:
        assert resp.headers["Retry-After"]


@pytest.mark.parametrize("url", ["postgresql+psycopg://postgres@127.0.0.1:1/x?connect_timeout=2",
                                 "sqlite:////nonexistent-dovetail-dir/x.db"])
def test_api_answers_503_when_the_database_is_down(dovetail_config_dir, tmp_path, url):
    from core.app import create_app

    down = create_app(dovetail_config_dir, plugins=["crm"], testing=True, config={
        "database_url": url, "secret_key": "t",
        "security": {"argon2_time_cost": 1, "argon2_memory_kib": 64}})
    down.instance_path = str(tmp_path / "instance")
    client = down.test_client()
    r = client.get("/api/v1/customers", headers={"Authorization": "Bearer dvt_whatever"})
    err = _error(r, 503, "service_unavailable")
    assert "database" in err["message"].lower()
    r = client.post("/api/v1/auth/token", json={"username": "a", "password": "b"})
    _error(r, 503, "service_unavailable")


# ---------------------------------------------------------------------------
# Authenticate and authorise before reading input
# ---------------------------------------------------------------------------

PUBLIC = {("post", "/api/v1/auth/token")}


def _operations(client, methods):
    doc = client.get("/api/v1/openapi.json").get_json()
    for path, item in doc["paths"].items():
        for method in methods:
            if method in item and (method, path) not in PUBLIC:
                yield method, path


def _url(path):
    return re.sub(r"\{(\w+)\}", lambda m: "customer" if m.group(1) == "entity" else
                  ("x" if m.group(1) in ("key", "name") else "1"), path)


def _view(app, method, path):
    flask_path = re.sub(r"\{(\w+)\}", r"<\1>", path)
    for rule in app.url_map.iter_rules():
        if re.sub(r"<(?:\w+:)?(\w+)>", r"<\1>", rule.rule) == flask_path and \
                method.upper() in rule.methods:
            fn = app.view_functions[rule.endpoint]
            return getattr(fn.view_class, method)
    raise AssertionError(f"no route for {method} {path}")


def test_every_write_operation_answers_401_to_anonymous_before_validating(app, client):
    ops = list(_operations(client, ("post", "patch", "put")))
    assert len(ops) >= 40
    for method, path in ops:
        for kw in ({"json": {}}, {"data": b"", "content_type": "application/json"}, {}):
            r = client.open(_url(path), method=method.upper(), **kw)
            err = _error(r, 401, "unauthorized")
            assert err["fields"] == {}, (method, path)


def test_every_write_operation_answers_403_without_the_permission_before_validating(
        app, client, api_client):
    nobody = api_client(role="nobody")
    rep = api_client(role="rep")
    from core.auth import has_permission

    checked = 0
    for method, path in _operations(client, ("post", "patch", "put")):
        perm = getattr(_view(app, method, path), "__dovetail_permission__", None)
        assert perm, f"{method.upper()} {path} does not declare its permission (@permission_required)"
        for who in (nobody, rep):
            if has_permission(who.user, perm):
                continue
            r = who._call(method.upper(), _url(path), json={})
            err = _error(r, 403, "forbidden")
            assert perm in err["message"] and err["fields"] == {}, (method, path)
            checked += 1
    assert checked >= 40


def test_read_operations_with_arguments_check_the_permission_first(app, client, api_client):
    nobody = api_client(role="nobody")
    doc = client.get("/api/v1/openapi.json").get_json()
    checked = 0
    for method, path in _operations(client, ("get",)):
        params = doc["paths"][path][method].get("parameters", [])
        if not any(p.get("in") == "query" for p in params):
            continue
        r = nobody.get(_url(path) + "?page=0&per_page=-1&sort=nope&date_from=x")
        assert r.status_code == 403, (path, r.get_json())
        _error(r, 403, "forbidden")
        checked += 1
    assert checked >= 20


def test_the_token_endpoint_stays_open(client):
    err = _error(client.post("/api/v1/auth/token", json={}), 422, "validation_error")
    assert set(err["fields"]) == {"username", "password"}


# ---------------------------------------------------------------------------
# The documented error shape is the one sent
# ---------------------------------------------------------------------------


def test_openapi_documents_the_real_error_shape(app, client):
    doc = client.get("/api/v1/openapi.json").get_json()
    schemas = doc["components"]["schemas"]
    assert schemas["Error"]["required"] == ["error"]
    detail = schemas["ErrorDetail"]
    assert set(detail["properties"]) == {"code", "message", "fields"}
    assert set(detail["required"]) == {"code", "message", "fields"}
    assert doc["components"]["responses"]["DEFAULT_ERROR"]["content"]["application/json"][
        "schema"] == {"$ref": "#/components/schemas/Error"}
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in ("get", "post", "patch", "put", "delete"):
                assert "default" in op["responses"], (method, path)
                ok = [s for s in op["responses"] if s.startswith("2")]
                assert ok, f"{method.upper()} {path} documents no success response"
    orders = doc["paths"]["/api/v1/orders"]["post"]["responses"]
    assert {"200", "201", "409", "422"} <= set(orders)
    assert orders["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/OrderOut"}
    quote = doc["paths"]["/api/v1/orders/quote"]["post"]["responses"]["200"]
    assert quote["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/QuoteOut"}
    tr = doc["paths"]["/api/v1/orders/{order_id}/transitions"]
    assert "200" in tr["get"]["responses"] and "200" in tr["post"]["responses"]


def test_error_bodies_match_the_documented_schema(app, client, admin_api):
    from openapi_spec_validator import validate

    doc = client.get("/api/v1/openapi.json").get_json()
    validate(doc)
    detail = doc["components"]["schemas"]["ErrorDetail"]
    for r in (client.get("/api/v1/customers"), admin_api.get("/api/v1/customers/2147483647"),
              admin_api.post("/api/v1/customers", json={})):
        body = r.get_json()
        assert set(body["error"]) == set(detail["properties"])
        assert isinstance(body["error"]["fields"], dict)


# ---------------------------------------------------------------------------
# Reports: 403 on the API and the web page alike
# ---------------------------------------------------------------------------


def test_reports_without_permission_are_403_on_api_and_web(app, client, api_client, make_user):
    rep = make_user("rep_r", "rep", password="a-long-password")
    api = api_client(rep)
    _error(api.get("/api/v1/reports/orders.sales_by_day"), 403, "forbidden")
    _error(api.get("/api/v1/reports"), 403, "forbidden")
    _error(api.get("/api/v1/reports/no.such_report"), 403, "forbidden")
    client.post("/login", data={"username": "rep_r", "password": "a-long-password"})
    assert client.get("/reports/orders.sales_by_day").status_code == 403
    assert client.get("/reports").status_code == 403


def test_a_report_outside_ones_permissions_is_403_not_404(app, client, api_client, make_user):
    """A user who may read reports, but not one whose permission their role lacks."""
    reader = make_user("reader_r", "report_reader", password="a-long-password")
    api = api_client(reader)
    err = _error(api.get("/api/v1/reports/orders.sales_by_day"), 403, "forbidden")
    assert "orders.report.read" in err["message"]
    _error(api.get("/api/v1/reports/no.such_report"), 404, "not_found")
    assert "orders.sales_by_day" not in [r["key"] for r in api.get("/api/v1/reports").get_json()]
    client.post("/login", data={"username": "reader_r", "password": "a-long-password"})
    assert client.get("/reports/orders.sales_by_day").status_code == 403
    assert client.get("/reports/no.such_report").status_code == 404
