"""Customer tiers are shown by their labels (issue 10): the default tiers from the catalogue,
others from ``settings.crm.tier_labels`` in the reader's language; the stored value and the
API keep the tier's key."""

from __future__ import annotations

import re

import pytest

PASSWORD = "password123"


@pytest.fixture
def dovetail_plugins():
    return ["crm"]


@pytest.fixture
def dovetail_settings():
    return {"crm": {"tiers": ["standard", "gold", "diamond"],
                    "tier_labels": {"diamond": {"en": "Diamond", "zh_CN": "钻石"}}}}


def _page(app, lang: str, url: str) -> str:
    client = app.test_client()
    with app.app_context():
        client.get(f"/login?lang={lang}")
    with app.app_context():
        assert client.post("/login", data={"username": "boss", "password": PASSWORD}).status_code == 302
    with app.app_context():
        return client.get(url).get_data(as_text=True)


def test_tiers_show_their_labels(app, make_user):
    from core.db import db
    from plugins.crm.models import Customer

    make_user("boss", "admin")
    gold = Customer(name="金先生", tier="gold", tags=[], phones=[], custom={})
    diamond = Customer(name="钻女士", tier="diamond", tags=[], phones=[], custom={})
    db.session.add_all([gold, diamond])
    db.session.commit()
    gold_id, diamond_id = gold.id, diamond.id
    db.session.remove()  # no transaction left open while the pages are fetched (SQLite)
    zh = _page(app, "zh_CN", f"/crm/customers/{gold_id}")
    assert '<small class="muted">金卡</small>' in zh
    assert '<small class="muted">钻石</small>' in _page(app, "zh_CN", f"/crm/customers/{diamond_id}")
    assert '<small class="muted">Diamond</small>' in _page(app, "en", f"/crm/customers/{diamond_id}")
    listing = _page(app, "zh_CN", "/crm/customers")
    assert re.search(r'<option value="diamond"[^>]*>钻石</option>', listing)
    assert "<td>金卡</td>" in listing and "<td>gold</td>" not in listing
    assert db.session.get(Customer, gold_id).tier == "gold"


def test_tier_labels_are_checked(tmp_path):
    from marshmallow import ValidationError

    from plugins.crm.plugin import CrmSettings

    with pytest.raises(ValidationError):
        CrmSettings().load({"tier_labels": {"gold": "金卡"}})
    loaded = CrmSettings().load({"tier_labels": {"gold": {"zh_CN": "金卡"}}})
    assert loaded["tier_labels"] == {"gold": {"zh_CN": "金卡"}}
