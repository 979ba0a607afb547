"""Demo data: the campaign "双十一大促" with a 满减, a gold-tier percent off, a gift promotion
and a coupon batch, then orders placed through the orders service so the promotions,
coupon uses and the campaign's effectiveness have something to show."""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import select

from core import statemachine
from core.audit import acting_as
from core.db import db
from core.errors import DovetailError
from core.models import User, UserRole
from plugins.catalog.public import Product
from plugins.crm.public import Customer, Segment, save_segment
from plugins.marketing import services
from plugins.marketing.models import Campaign
from plugins.orders.public import create_order

CAMPAIGN = "双十一大促"


def _segment_id() -> int | None:
    seg = db.session.scalar(select(Segment).where(Segment.name == "双十一目标客户"))
    if seg is None:
        seg = save_segment({"name": "双十一目标客户", "description": "银卡及以上、同意营销联系的客户",
                            "filters": {"tier": ["silver", "gold", "vip"], "consent_marketing": True}}, None)
    return seg.id


def populate(scale: float, seed: int) -> None:
    if db.session.scalar(select(Campaign.id).where(Campaign.name == CAMPAIGN)):
        return
    rng = random.Random(seed + 7)
    products = db.session.execute(select(Product.id, Product.category_id, Product.price)
                                  .where(Product.active.is_(True)).order_by(Product.id)).all()
    if not products:
        return
    today = services.local_date(None)
    with acting_as(None, "demo"):
        camp = services.save_campaign(None, {
            "name": CAMPAIGN, "channel": "online", "starts_on": (today - timedelta(days=21)).isoformat(),
            "ends_on": (today + timedelta(days=9)).isoformat(), "budget": "50000.00",
            "segment_id": _segment_id(), "status": "active",
            "description": "全场满减、金卡会员折扣、买二赠一和优惠券"})
        services.save_promotion(None, {
            "campaign_id": camp.id, "name": "满300减30 满500减60 满1000减150", "kind": "tiered",
            "tiers": [{"threshold": "300", "discount": "30"}, {"threshold": "500", "discount": "60"},
                      {"threshold": "1000", "discount": "150"}], "priority": 10, "stackable": True})
        services.save_promotion(None, {
            "campaign_id": camp.id, "name": "金卡会员 95 折", "kind": "percent", "percent": "5",
            "customer_tiers": ["gold", "vip"], "priority": 20, "stackable": True})
        gift_product = min(products, key=lambda p: p.price)
        category = next((p.category_id for p in products if p.category_id and p.id != gift_product.id), None)
        services.save_promotion(None, {
            "campaign_id": camp.id, "name": "买二赠一（小样）", "kind": "gift", "buy_quantity": 2,
            "gift_product_id": gift_product.id, "gift_quantity": 1,
            "category_ids": [category] if category else [], "priority": 5, "stackable": True})
        coupon_promo = services.save_promotion(None, {
            "campaign_id": camp.id, "name": "双十一优惠券 满199减20", "kind": "amount", "amount": "20",
            "min_spend": "199", "requires_coupon": True, "priority": 1, "stackable": True})
        services.generate_coupons(coupon_promo, count=max(int(200 * scale), 5), prefix="D11",
                                  usage_limit=1, per_customer_limit=1, batch="double11")
        shared = services.generate_coupons(coupon_promo, code="DOUBLE11", usage_limit=max(int(500 * scale), 10),
                                           per_customer_limit=1, batch="double11-shared")[0]
        db.session.commit()

        admin = db.session.scalar(select(User).join(UserRole, UserRole.user_id == User.id)
                                  .where(UserRole.role == "admin").order_by(User.id))
        customers = db.session.scalars(select(Customer.id).order_by(Customer.id)).all()
        if admin is None or not customers:
            return
        for _i in range(max(int(150 * scale), 3)):
            lines = [{"product_id": p.id, "quantity": rng.choice([1, 1, 2, 3])}
                     for p in rng.sample(products, k=min(len(products), rng.choice([1, 2, 3])))]
            data = {"customer_id": rng.choice(customers), "lines": lines}
            if rng.random() < 0.3:
                data["coupon_code"] = shared.code
            try:
                order, _created = create_order(data, admin)
            except DovetailError:  # a customer's second use of the shared code, below minimum spend
                db.session.rollback()
                data.pop("coupon_code", None)
                order, _created = create_order(data, admin)
            # Most demo orders are paid: only paid/shipped/completed orders are revenue
            # (plugins.orders.revenue), so the campaign's effectiveness has sales to show.
            if rng.random() < 0.8:
                try:
                    for key, inputs in (("confirm", {}), ("pay", {"method": "cash"})):
                        statemachine.perform("order", order, key, admin, inputs=inputs)
                    db.session.commit()
                except DovetailError:  # e.g. not enough stock to confirm: the order stays a draft
                    db.session.rollback()
    db.session.commit()



