"""What a transition means is its ``marks``, not its name: an admin who renames the order
workflow's ``cancel`` to ``void`` (and ``cancelled`` to ``voided``) keeps every cancel
behaviour — stock released, coupon use given back, ``cancelled_at`` stamped, not counted
as a purchase. An unknown mark is a located error."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.db import db

ALL = ["crm", "catalog", "inventory", "orders", "marketing", "customfields", "workflows"]


@pytest.fixture
def dovetail_plugins():
    return ALL


def _voided(text: str) -> str:
    assert "\n  cancel:\n" in text and "to: cancelled" in text
    text = text.replace("\n  cancel:\n", "\n  void:\n", 1)
    text = text.replace("  cancelled: {label: {en: Cancelled, zh_CN: 已取消}, final: true}",
                        "  voided: {label: {en: Voided, zh_CN: 已作废}, final: true}", 1)
    return text.replace("to: cancelled", "to: voided", 1)


@pytest.fixture
def dovetail_config_dir(dovetail_config_dir):
    path = dovetail_config_dir / "workflows" / "order.yaml"
    path.write_text(_voided(path.read_text(encoding="utf-8")), encoding="utf-8")
    return dovetail_config_dir


def test_void_renamed_from_cancel_keeps_every_cancel_behaviour(app, admin_api, make_customer, make_product,
                                                               wf):
    from core.statemachine import machine_for
    from plugins.crm.models import Customer
    from plugins.inventory import services as inv
    from plugins.inventory.models import StockLevel, Warehouse
    from plugins.marketing import services as mkt
    from plugins.marketing.models import Coupon
    from plugins.orders.models import Order

    machine = machine_for("order")
    assert "void" in machine.transitions and "cancel" not in machine.transitions
    assert machine.transitions["void"].marks == ("cancelled",)

    customer, product = make_customer(), make_product("100.00")
    wh = Warehouse(code="WH-M", name="主仓")
    db.session.add(wh)
    db.session.flush()
    inv.receive(product.id, wh.id, 5)
    promo = mkt.save_promotion(None, {"name": "减10", "kind": "amount", "amount": "10",
                                      "requires_coupon": True})
    coupon = mkt.generate_coupons(promo, code="VOID10", usage_limit=5)[0]
    db.session.commit()

    r = admin_api.post("/api/v1/orders", json={"customer_id": customer.id, "coupon_code": "VOID10",
                                               "lines": [{"product_id": product.id, "quantity": 2}]})
    assert r.status_code == 201, r.json
    oid = r.json["id"]
    assert wf.go(admin_api, oid, "confirm").status_code == 200

    def stock():
        row = db.session.scalar(select(StockLevel).where(StockLevel.product_id == product.id))
        db.session.refresh(row)
        return row.on_hand, row.reserved

    assert stock() == (5, 2)
    assert db.session.get(Coupon, coupon.id).used == 1
    assert db.session.get(Customer, customer.id).order_count == 1

    r = wf.go(admin_api, oid, "void")
    assert r.status_code == 200, r.json
    db.session.expire_all()
    assert stock() == (5, 0)                                   # reservation released
    assert db.session.get(Coupon, coupon.id).used == 0        # coupon use given back
    order = db.session.get(Order, oid)
    assert (order.status, order.cancelled_at is not None) == ("voided", True)
    assert db.session.get(Customer, customer.id).order_count == 0   # not a purchase any more


def test_unknown_mark_is_a_located_error(app, runner, wf_dir, wf):
    path = wf_dir / "order.yaml"
    text = path.read_text(encoding="utf-8").replace("marks: [paid]", "marks: [payed]", 1)
    wf.write(path, text)
    res = runner.invoke(["workflow", "check", str(path)])
    assert res.exit_code != 0
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if "marks: [payed]" in ln)
    assert f"order.yaml:{line}:" in res.output
    assert "unknown mark 'payed' for entity 'order'" in res.output
    assert "cancelled" in res.output  # the hint lists the marks orders knows
