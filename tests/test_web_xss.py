"""Stored XSS: user-entered text never reaches a page unescaped.

Every user-entered text field of every entity (and the admin-edited config that pages show:
custom-field labels and help, workflow state, transition and input labels, guard messages,
customer tiers) is filled with a script payload and an attribute-breaking payload; then the
web UI is crawled from the dashboard as an admin whose display name is a payload too,
following the menu and every link on every page (detail pages, forms, filtered lists), in
English and in Chinese. No page may contain a payload raw; where a page shows a value, its
escaped form must be there (so the test cannot pass by not showing anything).
"""

from __future__ import annotations

import datetime as dt
import re
from html import unescape
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import yaml
from markupsafe import escape

SCRIPT = "<script>alert(1)</script>"
ATTR = '"><img src=x onerror=alert(1)>'
RAW = (SCRIPT, "<img src=x onerror=alert(1)>")
TIER = f"{SCRIPT}t%\"><b>"  # tiers have at most 40 characters


def v(tag: str) -> str:
    """A value holding both payloads, a tag naming the field, and a '%' (which used to make
    gettext-formatted data crash the page)."""
    return f"{SCRIPT}{tag}%{ATTR}"


def esc(text: str) -> str:
    return str(escape(text))


@pytest.fixture
def dovetail_plugins():
    return None  # every plugin


@pytest.fixture
def dovetail_settings():
    return {"crm": {"tiers": ["standard", TIER]}}


@pytest.fixture
def dovetail_config_dir(dovetail_config_dir):
    """Custom fields on customers, orders and products, and workflow labels, all payloads."""
    fields = {}
    for entity in ("customer", "order", "product"):
        fields[entity] = {
            "xss_text": {"type": "string", "label": {"en": v(f"{entity}-label"), "zh_CN": v(f"{entity}-label")},
                         "help": {"en": v(f"{entity}-help"), "zh_CN": v(f"{entity}-help")}},
            "xss_choice": {"type": "choice", "label": {"en": v(f"{entity}-clabel")},
                           "choices": [{"value": "a", "label": {"en": v(f"{entity}-choice")}}, "b"]},
        }
    (dovetail_config_dir / "custom_fields.yaml").write_text(
        yaml.safe_dump({"fields": fields}, allow_unicode=True), encoding="utf-8")
    for name in ("order", "lead", "return"):
        path = dovetail_config_dir / "workflows" / f"{name}.yaml"
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for key, state in data["states"].items():
            state["label"] = {"en": v(f"state-{key}"), "zh_CN": v(f"state-{key}")}
        for key, t in data["transitions"].items():
            t["label"] = {"en": v(f"tr-{key}"), "zh_CN": v(f"tr-{key}")}
            if t.get("guard"):
                t["guard_message"] = v(f"guard-{key}")
            for ikey, inp in (t.get("inputs") or {}).items():
                inp["label"] = {"en": v(f"input-{ikey}"), "zh_CN": v(f"input-{ikey}")}
        path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return dovetail_config_dir


def _ok(r, what):
    assert r.status_code in (200, 201), f"{what}: {r.status_code} {r.get_data(as_text=True)[:500]}"
    return r.json


@pytest.fixture
def data(app, make_team, make_user, api_client):
    """One record of every entity, every text field a payload; returns values shown on pages."""
    team = make_team(v("team"))
    user = make_user("xssadmin", "admin", team=team, display_name=v("display"))
    api = api_client(user)
    today = dt.date.today()

    cat = _ok(api.post("/api/v1/categories", json={"name": v("cat"), "description": v("catdesc")}),
              "category")
    prod = _ok(api.post("/api/v1/products", json={
        "sku": "XSS-1", "name": v("prod"), "category_id": cat["id"], "unit": "<b>u</b>", "price": "100.00",
        "cost": "40.00", "barcode": f"{SCRIPT}bc", "description": v("proddesc"),
        "custom": {"xss_text": v("product-value"), "xss_choice": "a"}}), "product")
    wh = _ok(api.post("/api/v1/warehouses", json={"code": "WH-X", "name": v("wh"), "address": v("whaddr")}),
             "warehouse")
    _ok(api.post("/api/v1/stock/movements", json={
        "kind": "receipt", "product_id": prod["id"], "warehouse_id": wh["id"], "quantity": 100,
        "reason": v("mvreason"), "reference": v("mvref")}), "movement")

    cust = _ok(api.post("/api/v1/customers", json={
        "name": v("cust"), "phone": "13800138000", "address": v("addr"), "region": v("region"),
        "tier": TIER, "tags": [f"{SCRIPT}tag", f"{ATTR}tag"], "source": v("src"),
        "notes": v("notes"), "external_code": v("ext"), "owner_id": user.id, "consent_marketing": True,
        "custom": {"xss_text": v("customer-value"), "xss_choice": "a"}}), "customer")
    _ok(api.post(f"/api/v1/customers/{cust['id']}/contacts", json={
        "name": v("contact"), "title": v("ctitle"), "phone": "13900139000", "notes": v("cnotes")}), "contact")
    _ok(api.post(f"/api/v1/customers/{cust['id']}/activities", json={
        "type": "call", "subject": v("subject"), "due_date": today.isoformat(), "outcome": v("outcome"),
        "next_step": v("nextstep")}), "activity")
    # a pool customer and a duplicate (same phone) for the pool and duplicates pages
    _ok(api.post("/api/v1/customers", json={"name": v("pooled"), "phone": "13700137000", "region": v("pregion"),
                                            "tags": [f"{SCRIPT}ptag"], "owner_id": None}), "pool customer")
    _ok(api.post("/api/v1/customers", json={"name": v("dup"), "phone": "13800138000", "owner_id": user.id}),
        "duplicate customer")

    lead = _ok(api.post("/api/v1/leads", json={
        "title": v("lead"), "contact_name": v("lcontact"), "source": v("lsrc"), "notes": v("lnotes"),
        "phone": "13600136000", "expected_amount": "0", "customer_id": cust["id"]}), "lead")
    _ok(api.post(f"/api/v1/leads/{lead['id']}/transitions", json={"transition": "contact",
                                                                  "comment": v("lcomment")}), "lead move")
    seg = _ok(api.post("/api/v1/segments", json={"name": v("seg"), "description": v("segdesc"),
                                                 "filters": {"region": [v("region")]}}), "segment")

    camp = _ok(api.post("/api/v1/campaigns", json={
        "name": v("camp"), "description": v("campdesc"), "starts_on": (today - dt.timedelta(days=5)).isoformat(),
        "ends_on": (today + dt.timedelta(days=5)).isoformat(), "budget": "1000.00", "segment_id": seg["id"],
        "status": "active"}), "campaign")
    promo = _ok(api.post("/api/v1/promotions", json={
        "name": v("promo"), "description": v("promodesc"), "kind": "percent", "percent": "10",
        "campaign_id": camp["id"], "customer_tags": [f"{SCRIPT}ctag"], "requires_coupon": True,
        "stackable": True}), "promotion")
    _ok(api.post("/api/v1/coupons", json={"promotion_id": promo["id"], "code": f"{SCRIPT}code"}),
        "coupon")

    order = _ok(api.post("/api/v1/orders", json={
        "customer_id": cust["id"], "lines": [{"product_id": prod["id"], "quantity": 2}],
        "notes": v("onotes"), "custom": {"xss_text": v("order-value"), "xss_choice": "a"}}), "order")
    oid = order["id"]
    for t, extra in (("confirm", {}), ("pay", {"inputs": {"method": "cash", "reference": v("payref")}}),
                     ("ship", {"inputs": {"carrier": v("carrier"), "tracking_no": f"{SCRIPT}trk"}})):
        _ok(api.post(f"/api/v1/orders/{oid}/transitions", json={"transition": t, "comment": v(f"c-{t}"),
                                                               **extra}), f"order {t}")
    full = _ok(api.get(f"/api/v1/orders/{oid}"), "order detail")
    ret = _ok(api.post("/api/v1/returns", json={
        "order_id": oid, "reason": v("rreason"), "lines": [{"order_line_id": full["lines"][0]["id"], "quantity": 1}]}),
        "return")
    draft = _ok(api.post("/api/v1/orders", json={
        "customer_id": cust["id"], "lines": [{"product_id": prod["id"], "quantity": 1}], "notes": v("dnotes")}),
        "draft order")
    _ok(api.post("/api/v1/performance/sellers", json={"user_id": user.id, "certificate_no": v("cert"),
                                                      "notes": v("snotes")}), "seller")
    _ok(api.put("/api/v1/performance/targets", json={"period": today.strftime("%Y-%m"), "rep_id": user.id,
                                                      "revenue": "1000", "notes": v("tnotes")}), "target")
    return {"user": user, "cat": cat, "prod": prod, "wh": wh, "cust": cust, "lead": lead, "order": oid,
            "draft": draft["id"], "promo": promo, "camp": camp, "seg": seg, "return": ret["id"]}


def _login(client, lang):
    client.get(f"/login?lang={lang}")
    r = client.post("/login", data={"username": "xssadmin", "password": "password123"})
    assert r.status_code == 302


HREF = re.compile(r'href="([^"]+)"')
FILTER_FORM = re.compile(r'<form method="get" class="filters">(.*?)</form>', re.S)
SKIP = ("/logout", "/static/", "/api/", "export", "audience.csv")


def _links(html: str) -> list[str]:
    out = []
    for raw in HREF.findall(html):
        url = unescape(raw)
        parts = urlsplit(url)
        if parts.scheme or parts.netloc or not parts.path.startswith("/"):
            continue
        query = [(k, val) for k, val in parse_qsl(parts.query) if k not in ("lang", "page")]
        if any(k == "format" for k, _ in query) or any(s in parts.path for s in SKIP):
            continue
        out.append(parts.path + ("?" + urlencode(sorted(query)) if query else ""))
    return out


def _assert_clean(url: str, r) -> str:
    html = r.get_data(as_text=True)
    assert r.status_code == 200, f"{url}: {r.status_code}"
    for raw in RAW:  # coupon codes are stored upper-case: compare case-insensitively
        assert raw not in html.lower(), f"{url} shows {raw!r} unescaped"
    assert "&amp;lt;" not in html, f"{url} escapes a value twice"
    return html


def crawl(client, start: list[str], limit: int = 400) -> dict[str, str]:
    """Every same-site page reachable from ``start``, plus each list page with every filter
    field set to a payload (reflected input)."""
    seen: dict[str, str] = {}
    todo = list(start)
    while todo:
        url = todo.pop(0)
        if url in seen:
            continue
        assert len(seen) < limit, "crawl did not end; a link keeps changing"
        html = _assert_clean(url, client.get(url))
        seen[url] = html
        todo.extend(u for u in _links(html) if u not in seen)
        form = FILTER_FORM.search(html)
        if form and "?" not in url:
            names = sorted(set(re.findall(r'name="([\w.]+)"', form.group(1))))
            todo.append(url + "?" + urlencode({n: v("reflected") for n in names}))
    return seen


EXPECTED = {
    # page: values that must be on it, escaped (the drop-downs of issue 7 first)
    "/catalog/products": ["cat", "prod", "product-label"],
    "/inventory/stock": ["wh"],
    "/inventory/movements": ["wh", "mvreason", "mvref"],
    "/inventory/warehouses": ["wh", "whaddr"],
    "/catalog/categories": ["cat", "catdesc"],
    "/crm/customers": ["cust", "region", TIER, "customer-label"],
    "/crm/leads": ["lead", "state-new", "state-contacted"],
    "/crm/segments": ["seg", "segdesc"],
    "/crm/pool": ["pooled", "pregion"],
    "/crm/duplicates": ["cust", "dup"],
    "/crm/tasks": ["cust", "subject"],
    "/orders": ["state-draft", "cust"],
    "/orders/returns": ["state-requested"],
    "/marketing/campaigns": ["camp"],
    "/marketing/promotions": ["promo", "camp"],
    "/admin/users": ["display", "team"],
    "/admin/custom-fields/": ["customer-label", "customer-help"],
    "/performance/sellers": ["cert", "snotes", "display"],
    "/performance/targets": ["tnotes", "display"],
}


def test_no_page_shows_a_payload_unescaped(app, client, data):
    _login(client, "en")
    pages = crawl(client, ["/"])
    d = data
    detail = {
        f"/crm/customers/{d['cust']['id']}": ["cust", "addr", "region", "src", "notes", "ext", "contact",
                                             "ctitle", "subject", "outcome", "nextstep", "customer-label",
                                             "customer-value", "lead", f"{SCRIPT}tag", f"{ATTR}tag"],
        f"/crm/leads/{d['lead']['id']}": ["lead", "lcontact", "lsrc", "lnotes", "state-contacted",
                                         "tr-qualify", "lcomment", "display"],
        f"/crm/segments/{d['seg']['id']}": ["seg", "segdesc", "cust"],
        f"/catalog/products/{d['prod']['id']}": ["prod", "cat", "proddesc", "product-label", "product-value",
                                                  "<b>u</b>", f"{SCRIPT}bc"],
        f"/orders/{d['order']}": ["cust", "prod", "onotes", "order-label", "order-value", "payref",
                                  "carrier", "c-confirm", "display", "tr-return", "input-method"],
        f"/orders/{d['draft']}": ["dnotes", "tr-confirm", "tr-cancel"],
        f"/marketing/campaigns/{d['camp']['id']}": ["camp", "campdesc", "promo", "seg"],
        f"/marketing/promotions/{d['promo']['id']}": ["promo", "promodesc", "camp", f"{SCRIPT}CODE".upper(),
                                                      f"{SCRIPT}ctag"],
        f"/orders/returns/{d['return']}": ["rreason", "prod"],
        "/workflows/lead": ["state-new", "tr-qualify"],
        "/workflows/order": ["state-draft", "tr-confirm"],
    }
    for url, tags in {**EXPECTED, **detail}.items():
        assert url in pages, f"the crawl did not reach {url}"
        for tag in tags:
            value = tag if "<" in tag or '"' in tag else v(tag)
            assert esc(value) in pages[url], f"{url} does not show {tag!r} (escaped)"
    # the filter drop-downs of issue 7 list the names as options, escaped
    for url, option in (("/catalog/products", v("cat")), ("/inventory/stock", "WH-X " + v("wh")),
                        ("/inventory/movements", "WH-X " + v("wh")), ("/crm/leads", v("state-new")),
                        ("/orders", v("state-draft")), ("/orders/returns", v("state-requested"))):
        assert f">{esc(option)}</option>" in pages[url], f"{url}: no escaped option {option!r}"
    # a guarded transition is a disabled button whose title is the guard message, escaped once
    assert f'disabled title="{esc(v("guard-qualify"))}"' in pages[f"/crm/leads/{d['lead']['id']}"]
    # the workflow diagram draws the state labels, escaped
    svg = pages["/workflows/order"].split("<svg", 1)[1].split("</svg>", 1)[0]
    assert esc(SCRIPT) + "state-draft" in svg

    # the same pages in Chinese (labels, filters and custom fields come from the zh_CN entries)
    from core.db import db

    # A fresh app context per request: in the test's own context Flask-Babel would keep the
    # locale it cached on g at the first request (English), and its open transaction.
    db.session.remove()
    with app.app_context():
        client.get("/?lang=zh_CN")
    for url in pages:
        with app.app_context():
            html = _assert_clean(url, client.get(url))
        if url == "/catalog/products":
            assert "分类" in html and f">{esc(v('cat'))}</option>" in html


def test_form_pages_with_errors_escape_what_was_typed(app, client, data):
    """Forms re-shown with errors (422) put the typed values back into inputs, escaped."""
    _login(client, "en")
    posts = {
        "/catalog/products/new": {"sku": "bad sku!", "name": v("typed"), "price": "x", "unit": v("typed")},
        "/catalog/categories": {"name": "", "description": v("typed")},
        "/crm/customers/new": {"name": v("typed"), "email": v("typed"), "phone": "x"},
        "/marketing/campaigns/new": {"name": v("typed"), "description": v("typed")},
        "/workflows/check": {"file": "lead.yaml", "text": f"entity: lead\nstates:\n  {v('typed')}: {{}}\n"},
    }
    for url, form in posts.items():
        r = client.post(url, data=form)
        html = r.get_data(as_text=True)
        assert r.status_code in (200, 422), f"{url}: {r.status_code}"
        for raw in RAW:
            assert raw not in html.lower(), f"{url} shows {raw!r} unescaped"
        assert esc(v("typed")) in html, f"{url} does not show the typed value again"
