"""Every page in Chinese (issue 10, acceptance 3): an admin and a rep crawl every menu page
and the detail and form pages linked from them with demo data, in zh_CN, and no page may
show an English message id of the catalogue, nor an English workflow or custom-field label.

Also: every form control has a label, and the customer page links to a new order for that
customer.
"""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import yaml
from babel.messages.pofile import read_po

REPO = Path(__file__).resolve().parent.parent
POT = REPO / "core" / "translations" / "messages.pot"

# Words that stay as they are in Chinese text: brand and product names, units, formats.
KEEP = {"Dovetail", "Dovetail API", "OpenAPI", "CSV", "XLSX", "SKU", "API", "ID", "HMAC", "JSON", "YAML",
        "English", "WeChat", "Alipay", "SVG", "RFM"}
MIN_LETTERS = 4

PASSWORD = "password123"


@pytest.fixture
def dovetail_plugins():
    return None  # every plugin


@pytest.fixture
def dovetail_config_dir(dovetail_config_dir):
    """The project's config plus custom fields with Chinese labels (a choice among them)."""
    fields = {
        "customer": {
            "wechat_id": {"type": "string", "label": {"en": "WeChat handle", "zh_CN": "微信号"},
                          "help": {"en": "Letters and digits", "zh_CN": "字母和数字"}},
            "channel": {"type": "choice", "label": {"en": "Sales channel", "zh_CN": "销售渠道"},
                        "choices": [{"value": "store", "label": {"en": "Retail store", "zh_CN": "门店"}},
                                    {"value": "online", "label": {"en": "Online shop", "zh_CN": "网店"}}]},
        },
        "order": {"gift_wrap": {"type": "boolean", "label": {"en": "Gift wrapping", "zh_CN": "礼品包装"}}},
        "product": {"origin": {"type": "string", "label": {"en": "Country of origin", "zh_CN": "产地"}}},
    }
    (dovetail_config_dir / "custom_fields.yaml").write_text(
        yaml.safe_dump({"fields": fields}, allow_unicode=True), encoding="utf-8")
    return dovetail_config_dir


def _english_texts(config_dir: Path) -> set[str]:
    """Catalogue msgids, workflow labels and custom-field labels in English."""
    texts: set[str] = set()
    with POT.open("rb") as fh:
        for msg in read_po(fh):
            ids = msg.id if isinstance(msg.id, tuple) else (msg.id,)
            for mid in ids:
                # the longest literal piece between placeholders: "Order %(no)s saved." -> "saved."
                pieces = re.split(r"%\(\w+\)[sdf]|%[sdf]|\{\w*\}", mid)
                texts.add(max(pieces, key=len).strip())
    for path in (config_dir / "workflows").glob("*.yaml"):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        texts.update(data.get("states") or {})  # a state's key shown instead of its label
        for part in ("states", "transitions"):
            for item in (data.get(part) or {}).values():
                texts.add((item.get("label") or {}).get("en", ""))
                for inp in (item.get("inputs") or {}).values():
                    texts.add((inp.get("label") or {}).get("en", ""))
    data = yaml.safe_load((config_dir / "custom_fields.yaml").read_text(encoding="utf-8"))
    for entity in (data.get("fields") or {}).values():
        for spec in entity.values():
            texts.add(spec["label"]["en"])
            for choice in spec.get("choices", ()):
                if isinstance(choice, dict):
                    texts.add(choice["label"]["en"])
    return {t for t in texts if len(re.findall(r"[A-Za-z]", t)) >= MIN_LETTERS and t not in KEEP}


# Source text and data (YAML, JSON, codes, column names) and what a page marks
# translate="no" (plugin manifests, as their authors wrote them) are not prose to translate.
NOT_TEXT = re.compile(r"<(pre|code)\b.*?</\1>|<(\w+)\b[^>]*\btranslate=\"no\"[^>]*>.*?</\2>", re.S)
TAG = re.compile(r"<(script|style)\b.*?</\1>|<[^>]+>", re.S)
ATTR_TEXT = re.compile(r'\b(?:title|placeholder|aria-label|alt)="([^"]*)"')


def visible_text(html: str) -> str:
    """What a reader sees: text between tags plus titles, placeholders and aria-labels
    (option values and URLs are not text)."""
    body = html.split("<body", 1)[-1]
    title = re.search(r"<title>(.*?)</title>", html, re.S)
    body = NOT_TEXT.sub("\n", body)
    parts = [title.group(1) if title else "", TAG.sub("\n", body), *ATTR_TEXT.findall(body)]
    return unescape("\n".join(parts))


# a whole word, not part of an identifier: "Name" is not in "Username" nor "write" in "crm.lead.write"
WORD_START, WORD_END = r"(?<![A-Za-z0-9_.])", r"(?![A-Za-z0-9_])"


def untranslated(text: str, english: set[str]) -> list[str]:
    found = []
    for msg in english:
        if re.search(WORD_START + re.escape(msg) + WORD_END, text):
            found.append(msg)
    return sorted(found)


HREF = re.compile(r'href="([^"]+)"')
SKIP = ("/logout", "/static/", "/api/", "export", ".csv", ".xlsx")


def _links(html: str) -> list[str]:
    out = []
    for raw in HREF.findall(html):
        parts = urlsplit(unescape(raw))
        if parts.scheme or parts.netloc or not parts.path.startswith("/"):
            continue
        if any(s in parts.path for s in SKIP):
            continue
        query = [(k, val) for k, val in parse_qsl(parts.query) if k not in ("lang", "page", "format")]
        out.append(parts.path + ("?" + urlencode(sorted(query)) if query else ""))
    return out


def _detail_key(url: str) -> str:
    """Pages that differ only by record id count once (one customer page is enough)."""
    path, _, query = url.partition("?")
    return re.sub(r"/\d+", "/<id>", path) + ("?" + re.sub(r"=[^&]*", "=", query) if query else "")


@pytest.fixture
def demo(app):
    from sqlalchemy import select

    from core.auth import create_user, hash_password
    from core.cli_commands import populate_demo
    from core.db import db
    from core.models import User

    populate_demo(app, 0.02, 7)
    create_user("i18nadmin", PASSWORD, ["admin"], display_name="管理员")
    for name in ("rep1", "manager1"):
        user = db.session.scalar(select(User).where(User.username == name))
        user.password_hash = hash_password(PASSWORD)
    db.session.commit()
    db.session.remove()
    return {"admin": "i18nadmin", "rep": "rep1", "manager": "manager1"}


def _crawl_zh(app, client, username: str, limit: int = 600) -> dict[str, str]:
    """Sign in in zh_CN and fetch every page reachable from the dashboard (one per kind of
    detail page). A fresh app context per request: Flask-Babel caches the locale on ``g``."""
    with app.app_context():
        client.get("/login?lang=zh_CN")
    with app.app_context():
        r = client.post("/login", data={"username": username, "password": PASSWORD})
        assert r.status_code == 302, r.get_data(as_text=True)[:300]
    seen: dict[str, str] = {}
    kinds: set[str] = set()
    todo = ["/"]
    while todo:
        url = todo.pop(0)
        if url in seen or _detail_key(url) in kinds:
            continue
        assert len(seen) < limit, "crawl did not end"
        with app.app_context():
            r = client.get(url)
        if r.status_code in (302, 403):  # a link the user may not follow
            continue
        assert r.status_code == 200, f"{username} {url}: {r.status_code}"
        if not r.mimetype == "text/html":
            continue
        html = r.get_data(as_text=True)
        seen[url] = html
        kinds.add(_detail_key(url))
        todo.extend(u for u in _links(html) if u not in seen)
    return seen


@pytest.mark.parametrize("who", ["admin", "manager", "rep"])
def test_every_page_is_chinese(app, client, demo, dovetail_config_dir, who):
    """Every menu page, the dashboard, every report the user may run and the order and
    customer detail pages, as each kind of user."""
    english = _english_texts(dovetail_config_dir)
    assert len(english) > 300, "the catalogue template was not read"
    pages = _crawl_zh(app, client, demo[who])
    # every menu entry was visited
    menu = re.findall(r'<nav class="menu">(.*?)</nav>', pages["/"], re.S)[0]
    for link in _links(menu):
        assert link in pages, f"{who}: menu page {link} not crawled"
    assert len(pages) > (25 if who == "admin" else 12), sorted(pages)
    kinds = {_detail_key(u) for u in pages}
    assert {"/orders/<id>", "/crm/customers/<id>"} <= kinds, sorted(kinds)
    if who != "rep":  # reps have no report permission
        assert len([u for u in pages if u.startswith("/reports/")]) >= 10, sorted(pages)
    problems = _problems(pages, english)
    assert not problems, "English on zh_CN pages:\n" + "\n".join(f"{u}: {b}" for u, b in sorted(problems.items()))


def _problems(pages: dict[str, str], english: set[str]) -> dict[str, list[str]]:
    return {url: [_context(visible_text(html), m) for m in bad] for url, html in pages.items()
            if (bad := untranslated(visible_text(html), english))}


def _context(text: str, msg: str) -> str:
    i = re.search(WORD_START + re.escape(msg) + WORD_END, text).start()
    return " ".join(text[max(0, i - 30):i + len(msg) + 30].split())


def test_the_check_finds_english(app, client, demo, dovetail_config_dir):
    """The crawl's check itself: an English page is reported, a Chinese one is not."""
    english = _english_texts(dovetail_config_dir)
    with app.app_context():
        client.get("/login?lang=en")
    with app.app_context():
        client.post("/login", data={"username": demo["admin"], "password": PASSWORD})
    with app.app_context():
        en = client.get("/orders").get_data(as_text=True)
    assert {"Orders", "Draft"} <= set(untranslated(visible_text(en), english))
    assert untranslated("订单 草稿 Dovetail crm.lead.write", english) == []


CONTROL = re.compile(r"<(input|select|textarea)\b([^>]*)>", re.S)


def test_every_form_control_has_a_label(app, client, demo):
    pages = _crawl_zh(app, client, demo["admin"])
    missing = []
    for url, html in pages.items():
        labelled = set(re.findall(r'<label[^>]*\bfor="([^"]+)"', html))
        # controls wrapped in a <label>…</label> count as labelled
        wrapped = " ".join(re.findall(r"<label\b.*?</label>", html, re.S))
        for tag, attrs in CONTROL.findall(html):
            if re.search(r'type="(hidden|submit|button)"', attrs):
                continue
            cid = re.search(r'\bid="([^"]+)"', attrs)
            if re.search(r'aria-label="[^"]+"', attrs) or (cid and cid.group(1) in labelled):
                continue
            if f"<{tag}{attrs}>" in wrapped:
                continue
            missing.append(f"{url}: <{tag}{attrs[:80]}>")
    assert not missing, "form controls without a label:\n" + "\n".join(sorted(set(missing)))


def test_customer_page_offers_a_new_order_for_the_customer(app, client, demo):
    pages = _crawl_zh(app, client, demo["rep"])
    url = next(u for u in pages if re.fullmatch(r"/crm/customers/\d+", u))
    cid = url.rsplit("/", 1)[1]
    assert f'href="/orders/new?customer_id={cid}"' in pages[url]
    with app.app_context():
        form = client.get(f"/orders/new?customer_id={cid}").get_data(as_text=True)
    assert re.search(rf'<option[^>]*value="{cid}"[^>]*selected|<option selected[^>]*value="{cid}"', form)


def test_phone_layout_rules_exist():
    """A 390 px wide screen: the menu scrolls sideways and list tables scroll in their own box
    (the rules live in one media query of dovetail.css; no inline styles under the CSP)."""
    css = (REPO / "core" / "web" / "static" / "dovetail.css").read_text(encoding="utf-8")
    m = re.search(r"@media \(max-width: (\d+)px\) \{(.*?)\n\}", css, re.S)
    assert m and int(m.group(1)) >= 390
    rules = m.group(2)
    assert re.search(r"nav\.menu \{[^}]*overflow-x:auto", rules)
    assert re.search(r"table\.list \{[^}]*display:block;[^}]*overflow-x:auto", rules)
    assert re.search(r"header\.top \{[^}]*flex-wrap:wrap", rules)


def test_disabled_transition_buttons_say_why_in_chinese(app, client, demo):
    """A rep may not record a payment: the disabled button's tooltip says why, translated and
    escaped once; the API keeps the English reason."""
    from sqlalchemy import select

    from core.db import db
    from core.models import User
    from plugins.orders.models import Order

    with app.app_context():
        rep = db.session.scalar(select(User).where(User.username == demo["rep"]))
        order = db.session.scalar(select(Order).where(Order.owner_id == rep.id, Order.status == "confirmed")
                                  .order_by(Order.id))
        assert order is not None, "the demo data has a confirmed order of rep1"
        oid = order.id
    pages = {}
    for lang in ("zh_CN", "en"):
        c = app.test_client()
        with app.app_context():
            c.get(f"/login?lang={lang}")
        with app.app_context():
            c.post("/login", data={"username": demo["rep"], "password": PASSWORD})
        with app.app_context():
            pages[lang] = c.get(f"/orders/{oid}").get_data(as_text=True)
    zh = re.findall(r'<button type="submit" disabled title="([^"]*)">', pages["zh_CN"])
    assert "需要权限“orders.order.pay”" in zh, zh
    en = re.findall(r'<button type="submit" disabled title="([^"]*)">', pages["en"])
    assert "requires the permission &#39;orders.order.pay&#39;" in en, en


def test_history_rows_show_labels(app, demo):
    """The order's history names the transition and states by their zh_CN labels."""
    from sqlalchemy import select

    from core import statemachine
    from core.db import db
    from core.models import User
    from plugins.orders.models import Order

    with app.test_request_context("/"):
        rep = db.session.scalar(select(User).where(User.username == demo["rep"]))
        order = next(o for o in db.session.scalars(select(Order).where(
            Order.owner_id == rep.id, Order.status == "draft").order_by(Order.id)) if o.lines)
        statemachine.perform("order", order, "confirm", rep)
        db.session.commit()
        oid = order.id
        db.session.remove()
    client = app.test_client()
    with app.app_context():
        client.get("/login?lang=zh_CN")
    with app.app_context():
        client.post("/login", data={"username": demo["rep"], "password": PASSWORD})
    with app.app_context():
        page = client.get(f"/orders/{oid}").get_data(as_text=True)
    assert "<td>确认</td><td>草稿</td><td>已确认</td><td>rep1</td>" in page


def _zh_client(app, username: str):
    c = app.test_client()
    with app.app_context():
        c.get("/login?lang=zh_CN")
    with app.app_context():
        r = c.post("/login", data={"username": username, "password": PASSWORD})
        assert r.status_code == 302
    return c


def test_draft_order_page_says_why_a_promotion_did_not_apply(app, admin_api):
    """A 满300减30 promotion and a draft of 299.82: the order page names the promotion and says
    "再买 0.18 元享满300减30" (to the fen); the API keeps the English reason. The pay button's
    method is a drop-down of the workflow's methods with Chinese labels, the values stored as they are."""
    from decimal import Decimal

    from core.auth import create_user
    from core.db import db
    from plugins.catalog.models import Product
    from plugins.crm.models import Customer

    with app.app_context():
        p = Product(sku="I18N-1", name="面霜", unit="件", price=Decimal("299.82"), cost=Decimal("100.00"),
                    active=True, custom={})
        c = Customer(name="李四", phone="13800000001", phones=["13800000001"], region="华东", tier="standard",
                     tags=[], custom={})
        db.session.add_all([p, c])
        db.session.commit()
        pid, cid = p.id, c.id
        create_user("i18nboss", PASSWORD, ["admin"], display_name="老板")
        db.session.commit()
    r = admin_api.post("/api/v1/promotions", json={"name": "满300减30", "kind": "tiered",
                                                   "tiers": [{"threshold": "300", "discount": "30"}]})
    assert r.status_code == 201, r.json
    r = admin_api.post("/api/v1/orders", json={"customer_id": cid, "lines": [{"product_id": pid, "quantity": 1}]})
    assert r.status_code == 201, r.json
    oid = r.json["id"]
    quote = admin_api.post("/api/v1/orders/quote", json={"customer_id": cid,
                                                         "lines": [{"product_id": pid, "quantity": 1}]}).json
    reasons = {x["label"]: x["reason"] for x in quote["considered"]}
    assert reasons["满300减30"] == "spend 0.18 more to reach 300.00 and save 30.00"
    client = _zh_client(app, "i18nboss")
    with app.app_context():
        page = client.get(f"/orders/{oid}").get_data(as_text=True)
    assert re.search(r"<td>满300减30</td><td>否</td><td>再买 0.18 元享满300减30</td>", page), page
    # once confirmed, the pay form offers the configured methods by their Chinese labels
    with app.app_context():  # confirmed (stock handling is not what this test is about)
        from plugins.orders.models import Order
        db.session.get(Order, oid).status = "confirmed"
        db.session.commit()
    with app.app_context():
        page = client.get(f"/orders/{oid}").get_data(as_text=True)
    select = re.search(r'<select name="input.method"[^>]*>(.*?)</select>', page, re.S)
    assert select, page
    options = dict(re.findall(r'<option value="([^"]*)">([^<]*)</option>', select.group(1)))
    assert options == {"cash": "现金", "bank_transfer": "银行转账", "wechat_pay": "微信支付", "alipay": "支付宝",
                       "card": "银行卡", "other": "其他"}
    assert "marketing." not in page  # promotions by their names, never by their engine codes
