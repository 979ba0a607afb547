"""The new-order form finds customers and products (issue 10): a search narrows the
drop-downs to matches in the user's scope, keeps a preselected customer, and never offers
another rep's customer."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

PASSWORD = "password123"


@pytest.fixture
def dovetail_plugins():
    return ["crm", "catalog", "orders"]


@pytest.fixture
def shop(app, make_user):
    from core.db import db
    from plugins.catalog.models import Product
    from plugins.crm.models import Customer

    rep, other = make_user("rep_a", "rep"), make_user("rep_b", "rep")
    rows = [Customer(name=name, phone=phone, phones=[phone], tier="standard", tags=[], owner_id=owner.id, custom={})
            for name, phone, owner in (("王小明", "13811112222", rep), ("李华", "13933334444", rep),
                                       ("王大锤", "13755556666", other))]
    products = [Product(sku=sku, name=name, unit="件", price=Decimal("10.00"), cost=Decimal("1.00"), active=True,
                        custom={}) for sku, name in (("SK-100", "精华液"), ("NS-200", "蛋白粉"))]
    db.session.add_all(rows + products)
    db.session.commit()
    ids = {c.name: c.id for c in rows} | {p.sku: p.id for p in products}
    db.session.remove()
    return ids


def _form(app, query: str) -> str:
    client = app.test_client()
    with app.app_context():
        assert client.post("/login", data={"username": "rep_a", "password": PASSWORD}).status_code == 302
    with app.app_context():
        r = client.get("/orders/new" + query)
    assert r.status_code == 200
    return r.get_data(as_text=True)


def _options(html: str, name: str) -> set[str]:
    select = re.search(rf'<select name="{name}"[^>]*>(.*?)</select>', html, re.S).group(1)
    return {v for v in re.findall(r'<option value="(\d+)"', select)}


def test_search_narrows_customers_in_scope(app, shop):
    everyone = _options(_form(app, ""), "customer_id")
    assert everyone == {str(shop["王小明"]), str(shop["李华"])}  # never rep_b's customer
    assert _options(_form(app, "?customer_q=王"), "customer_id") == {str(shop["王小明"])}
    assert _options(_form(app, "?customer_q=3333"), "customer_id") == {str(shop["李华"])}  # phone digits
    kept = _form(app, f"?customer_q=王&customer_id={shop['李华']}")
    assert _options(kept, "customer_id") == {str(shop["王小明"]), str(shop["李华"])}
    assert re.search(rf'<option value="{shop["李华"]}"\s*selected', kept)


def test_search_narrows_products(app, shop):
    assert _options(_form(app, "?product_q=ns-2"), "product_0") == {str(shop["NS-200"])}
    assert _options(_form(app, "?product_q=精华"), "product_0") == {str(shop["SK-100"])}
    assert _options(_form(app, "?product_q=%25"), "product_0") == set()  # a wildcard is text
