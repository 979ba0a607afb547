"""Pure promotion-engine tests (no database): worked examples checked to the fen."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest

from plugins.marketing.engine import (
    Context,
    CouponState,
    GiftProduct,
    Rule,
    Tier,
    allocate,
    applied_coupon,
    apply_promotions,
    coupon_reason,
    normalise_code,
)
from plugins.orders.pricing import Cart, CartLine

TODAY = date(2026, 11, 11)
GOLD = {"id": 7, "tier": "gold", "tags": ["vip", "wechat"], "region": "上海", "owner_id": 1}
PLAIN = {"id": 8, "tier": "standard", "tags": [], "region": "北京", "owner_id": 1}


def line(pid, price, qty, cat=None, sku=None):
    return CartLine(product_id=pid, sku=sku or f"SKU{pid}", name=f"Product {pid}", category_id=cat,
                    quantity=qty, unit_price=D(price))


def cart(*lines, customer=GOLD, coupon=None):
    return Cart(customer=dict(customer), lines=list(lines), coupon_code=coupon)


def run(c, *rules, today=TODAY, segments=(), coupon=None):
    apply_promotions(c, list(rules), Context(today=today, segments=frozenset(segments), coupon=coupon))
    return c.totals()


def why(c, rule_id):
    return next(x for x in c.considered if x.promotion_id == rule_id)


MANJIAN = Rule(id=1, name="满300减30 满500减60", kind="tiered",
               tiers=(Tier(D("300"), D("30")), Tier(D("500"), D("60"))))


# ---------------------------------------------------------------------------
# Allocation
# ---------------------------------------------------------------------------


def test_allocate_adds_up_to_the_fen_largest_remainder():
    # 10.00 over three equal lines: 3.33 each leaves 0.01 for the first (ties: earliest)
    assert allocate(D("10.00"), [D("1"), D("1"), D("1")]) == [D("3.34"), D("3.33"), D("3.33")]
    shares = allocate(D("60.00"), [D("199.00"), D("99.90"), D("233.33")])
    assert sum(shares) == D("60.00")
    assert shares == [D("22.43"), D("11.26"), D("26.31")]  # remainders .00391 .00205 .00404


def test_allocate_never_exceeds_a_weight():
    shares = allocate(D("0.05"), [D("0.01"), D("0.01"), D("0.03")])
    assert shares == [D("0.01"), D("0.01"), D("0.03")]
    assert allocate(D("0"), [D("5")]) == [D("0.00")]


# ---------------------------------------------------------------------------
# 满减 tiers
# ---------------------------------------------------------------------------


def test_manjian_below_first_tier_says_how_much_more():
    c = cart(line(1, "120.00", 2))  # 240.00
    t = run(c, MANJIAN)
    assert t == {"subtotal": D("240.00"), "discount_total": D("0.00"), "total": D("240.00")}
    assert not why(c, 1).applied
    assert why(c, 1).reason == "spend 60.00 more to reach 300.00 and save 30.00"


def test_manjian_first_tier_exactly_at_threshold():
    c = cart(line(1, "100.00", 3))  # 300.00
    t = run(c, MANJIAN)
    assert t == {"subtotal": D("300.00"), "discount_total": D("30.00"), "total": D("270.00")}
    assert why(c, 1).applied and why(c, 1).amount == D("30.00")
    assert "spend 200.00 more to reach 500.00 and save 60.00" in why(c, 1).reason


def test_manjian_best_tier_applies_and_is_allocated_to_lines():
    # 199.00 + 2 × 149.95 = 498.90 → still tier 1 (30); + 33.33 = 532.23 → tier 2 (60)
    c = cart(line(1, "199.00", 1), line(2, "149.95", 2), line(3, "33.33", 1))
    t = run(c, MANJIAN)
    assert t == {"subtotal": D("532.23"), "discount_total": D("60.00"), "total": D("472.23")}
    discounts = [ln.line_discount for ln in c.lines]
    assert sum(discounts) == D("60.00")
    assert discounts == [D("22.43"), D("33.81"), D("3.76")]
    assert [a.line_index for a in c.adjustments] == [0, 1, 2]
    assert all(a.code == "marketing.tiered" for a in c.adjustments)


def test_manjian_on_eligible_category_only():
    rule = Rule(id=1, name="美妆满300减30", kind="tiered", tiers=(Tier(D("300"), D("30")),),
                category_ids=frozenset({5}))
    c = cart(line(1, "250.00", 1, cat=5), line(2, "500.00", 1, cat=6))
    t = run(c, rule)
    assert why(c, 1).reason == "spend 50.00 more to reach 300.00 and save 30.00"
    assert t["total"] == D("750.00")
    c = cart(line(1, "250.00", 1, cat=5), line(3, "60.00", 1, cat=5), line(2, "500.00", 1, cat=6))
    t = run(c, rule)
    assert t == {"subtotal": D("810.00"), "discount_total": D("30.00"), "total": D("780.00")}
    assert c.lines[2].line_discount == D("0.00")  # the other category's line is untouched


# ---------------------------------------------------------------------------
# Percent and amount off
# ---------------------------------------------------------------------------


def test_percent_off_whole_order_rounds_half_up_once():
    rule = Rule(id=2, name="金卡会员 9 折", kind="percent", percent=D("10"), customer_tiers=("gold",))
    c = cart(line(1, "33.35", 1), line(2, "10.00", 1))  # 43.35 × 10% = 4.335 → 4.34
    t = run(c, rule)
    assert t == {"subtotal": D("43.35"), "discount_total": D("4.34"), "total": D("39.01")}


def test_percent_off_per_line_rounds_each_line():
    rule = Rule(id=2, name="9 折", kind="percent", percent=D("10"), scope="lines")
    c = cart(line(1, "33.35", 1), line(2, "10.05", 1))  # 3.335 → 3.34; 1.005 → 1.01
    t = run(c, rule)
    assert [ln.line_discount for ln in c.lines] == [D("3.34"), D("1.01")]
    assert t["total"] == D("39.05")


def test_tier_requirement_reason():
    rule = Rule(id=2, name="金卡会员 9 折", kind="percent", percent=D("10"), customer_tiers=("gold",))
    c = cart(line(1, "100.00", 1), customer=PLAIN)
    t = run(c, rule)
    assert t["discount_total"] == D("0.00")
    assert why(c, 2).reason == "customer tier gold required"


def test_tag_and_segment_requirements():
    tag_rule = Rule(id=3, name="VIP", kind="amount", amount=D("5"), customer_tags=("VIP",))
    seg_rule = Rule(id=4, name="老客户", kind="amount", amount=D("7"), segment_id=9, segment_name="复购客户")
    c = cart(line(1, "100.00", 1), customer=PLAIN)
    run(c, tag_rule, seg_rule)
    assert why(c, 3).reason == "customer tag VIP required"
    assert why(c, 4).reason == "customer not in segment 复购客户"
    c = cart(line(1, "100.00", 1))
    t = run(c, tag_rule, seg_rule, segments={9})
    assert t["total"] == D("88.00")


def test_amount_off_never_makes_a_total_negative():
    rule = Rule(id=5, name="立减 50", kind="amount", amount=D("50"))
    c = cart(line(1, "19.90", 2))  # 39.80
    t = run(c, rule)
    assert t == {"subtotal": D("39.80"), "discount_total": D("39.80"), "total": D("0.00")}
    assert all(ln.line_total >= 0 for ln in c.lines)


def test_amount_off_per_unit_on_matching_lines():
    rule = Rule(id=5, name="指定商品每件减 20", kind="amount", amount=D("20"), scope="lines",
                product_ids=frozenset({1}))
    c = cart(line(1, "99.00", 3), line(2, "15.00", 1))
    t = run(c, rule)
    assert t == {"subtotal": D("312.00"), "discount_total": D("60.00"), "total": D("252.00")}


def test_minimum_spend():
    rule = Rule(id=6, name="满 200 立减 15", kind="amount", amount=D("15"), min_spend=D("200"))
    c = cart(line(1, "150.00", 1))
    run(c, rule)
    assert why(c, 6).reason == "spend 50.00 more (minimum 200.00 on eligible items)"


def test_dates_are_inclusive():
    rule = Rule(id=7, name="双十一", kind="amount", amount=D("10"), starts_on=date(2026, 11, 1),
                ends_on=date(2026, 11, 11))
    for today, applies in ((date(2026, 11, 1), True), (date(2026, 11, 11), True),
                           (date(2026, 10, 31), False), (date(2026, 11, 12), False)):
        c = cart(line(1, "100.00", 1))
        run(c, rule, today=today)
        assert why(c, 7).applied is applies, today
    c = cart(line(1, "100.00", 1))
    run(c, rule, today=date(2026, 11, 12))
    assert why(c, 7).reason == "outside dates (2026-11-01 to 2026-11-11)"


def test_no_eligible_items_and_unavailable():
    rule = Rule(id=8, name="指定商品", kind="amount", amount=D("10"), product_ids=frozenset({99}))
    paused = Rule(id=9, name="暂停", kind="amount", amount=D("10"), unavailable="campaign 618 is paused")
    c = cart(line(1, "100.00", 1))
    t = run(c, rule, paused)
    assert why(c, 8).reason == "no eligible items in the cart"
    assert why(c, 9).reason == "campaign 618 is paused"
    assert t["total"] == D("100.00")


# ---------------------------------------------------------------------------
# Gifts
# ---------------------------------------------------------------------------

MASK = GiftProduct(product_id=50, sku="GIFT-MASK", name="面膜", category_id=None, unit_price=D("39.00"))


def test_gift_line_is_free_and_does_not_change_totals():
    rule = Rule(id=10, name="买 2 送面膜", kind="gift", buy_quantity=2, gift=MASK, gift_quantity=1,
                product_ids=frozenset({1}))
    c = cart(line(1, "128.00", 2), line(2, "10.00", 1))
    t = run(c, rule)
    assert t == {"subtotal": D("266.00"), "discount_total": D("0.00"), "total": D("266.00")}
    gift = c.lines[-1]
    assert (gift.is_gift, gift.product_id, gift.quantity, gift.promotion_id) == (True, 50, 1, 10)
    assert (gift.unit_price, gift.line_discount, gift.line_total) == (D("39.00"), D("39.00"), D("0.00"))
    assert why(c, 10).amount == D("39.00")
    adj = c.adjustments[-1]
    assert (adj.code, adj.line_index, adj.amount) == ("marketing.gift", 2, D("39.00"))


def test_gift_needs_enough_units_and_repeats_when_asked():
    rule = Rule(id=10, name="买 2 送 1", kind="gift", buy_quantity=2, gift=MASK, gift_quantity=1,
                gift_repeat=True)
    c = cart(line(1, "128.00", 1))
    run(c, rule)
    assert why(c, 10).reason == "buy 1 more to get 面膜 free"
    assert not any(ln.is_gift for ln in c.lines)
    c = cart(line(1, "128.00", 5))
    run(c, rule)
    assert c.lines[-1].quantity == 2  # two full multiples of 2


def test_inactive_gift_product_is_not_given():
    gone = GiftProduct(50, "GIFT-MASK", "面膜", None, D("39.00"), available=False)
    rule = Rule(id=10, name="送面膜", kind="gift", buy_quantity=1, gift=gone)
    c = cart(line(1, "128.00", 1))
    run(c, rule)
    assert why(c, 10).reason == "gift product GIFT-MASK is not available"


def test_gift_lines_are_not_discounted_by_later_promotions():
    gift = Rule(id=10, name="送面膜", kind="gift", buy_quantity=1, gift=MASK, priority=5)
    pct = Rule(id=11, name="9 折", kind="percent", percent=D("10"))
    c = cart(line(1, "100.00", 1))
    t = run(c, gift, pct)
    assert t == {"subtotal": D("100.00"), "discount_total": D("10.00"), "total": D("90.00")}
    assert c.lines[1].line_discount == D("39.00")  # the gift's own, nothing added


# ---------------------------------------------------------------------------
# Stacking and priority (the README's worked example)
# ---------------------------------------------------------------------------


def test_readme_worked_example_stackable_in_priority_order():
    # Cart 2 × 199.00 + 1 × 158.00 = 556.00, gold customer.
    # priority 20 gold 95 折 (stackable): 556.00 × 5% = 27.80 → base now 528.20
    # priority 10 满300减30/满500减60 (stackable): 528.20 ≥ 500 → 60.00
    # priority 5  全场 8 折 (exclusive): refused, not stackable with the 95 折
    gold = Rule(id=21, name="金卡 95 折", kind="percent", percent=D("5"), customer_tiers=("gold",), priority=20)
    manjian = Rule(id=22, name="满减", kind="tiered", priority=10,
                   tiers=(Tier(D("300"), D("30")), Tier(D("500"), D("60"))))
    big = Rule(id=23, name="全场 8 折", kind="percent", percent=D("20"), stackable=False, priority=5)
    c = cart(line(1, "199.00", 2), line(2, "158.00", 1))
    t = run(c, big, manjian, gold)
    assert t == {"subtotal": D("556.00"), "discount_total": D("87.80"), "total": D("468.20")}
    assert [x.promotion_id for x in c.considered] == [21, 22, 23]
    assert why(c, 21).amount == D("27.80") and why(c, 22).amount == D("60.00")
    assert why(c, 23).reason == "not stackable with 金卡 95 折"
    assert sum(ln.line_discount for ln in c.lines) == D("87.80")


def test_exclusive_first_blocks_the_rest():
    big = Rule(id=23, name="全场 8 折", kind="percent", percent=D("20"), stackable=False, priority=50)
    manjian = Rule(id=22, name="满减", kind="tiered", priority=10, tiers=(Tier(D("300"), D("30")),))
    c = cart(line(1, "199.00", 2), line(2, "158.00", 1))
    t = run(c, big, manjian)
    assert t == {"subtotal": D("556.00"), "discount_total": D("111.20"), "total": D("444.80")}
    assert why(c, 22).reason == "not stackable with 全场 8 折"


def test_threshold_measured_after_earlier_discounts():
    # 320.00 − 10% = 288.00 < 300: the 满减 no longer reaches its tier
    pct = Rule(id=1, name="9 折", kind="percent", percent=D("10"), priority=10)
    manjian = Rule(id=2, name="满300减30", kind="tiered", tiers=(Tier(D("300"), D("30")),))
    c = cart(line(1, "320.00", 1))
    t = run(c, pct, manjian)
    assert t["total"] == D("288.00")
    assert why(c, 2).reason == "spend 12.00 more to reach 300.00 and save 30.00"


def test_ineligible_exclusive_does_not_block():
    big = Rule(id=1, name="金卡专享 7 折", kind="percent", percent=D("30"), stackable=False, priority=99,
               customer_tiers=("gold",))
    small = Rule(id=2, name="立减 10", kind="amount", amount=D("10"))
    c = cart(line(1, "100.00", 1), customer=PLAIN)
    t = run(c, big, small)
    assert t["total"] == D("90.00")
    assert why(c, 1).reason == "customer tier gold required"


def test_same_priority_is_ordered_by_id():
    a = Rule(id=5, name="A", kind="amount", amount=D("1"))
    b = Rule(id=3, name="B", kind="amount", amount=D("2"))
    c = cart(line(1, "10.00", 1))
    run(c, a, b)
    assert [x.promotion_id for x in c.considered] == [3, 5]


# ---------------------------------------------------------------------------
# Coupons
# ---------------------------------------------------------------------------

SPRING = Rule(id=30, name="春季券 减20", kind="amount", amount=D("20"), requires_coupon=True,
              min_spend=D("100"))


def test_coupon_applies_case_insensitively():
    assert normalise_code("  spring20 ") == "SPRING20"
    c = cart(line(1, "150.00", 1), coupon="spring20")
    state = CouponState("SPRING20", promotion_id=30, usage_limit=10, used=3)
    t = run(c, SPRING, coupon=state)
    assert t["total"] == D("130.00")
    assert applied_coupon(c) == "SPRING20"
    assert all(a.coupon_code == "SPRING20" for a in c.adjustments)


def test_coupon_promotion_without_code():
    c = cart(line(1, "150.00", 1))
    run(c, SPRING)
    assert why(c, 30).reason == "requires a coupon code"
    assert applied_coupon(c) is None


def test_coupon_used_up_and_per_customer():
    c = cart(line(1, "150.00", 1), coupon="SPRING20")
    used_up = CouponState("SPRING20", 30, usage_limit=5, used=5)
    t = run(c, SPRING, coupon=used_up)
    assert t["total"] == D("150.00")
    assert why(c, 30).reason == "coupon SPRING20 has been used up"
    assert coupon_reason(c, used_up) == "coupon SPRING20 has been used up"
    c = cart(line(1, "150.00", 1), coupon="SPRING20")
    mine = CouponState("SPRING20", 30, usage_limit=None, used=40, per_customer_limit=1, customer_uses=1)
    run(c, SPRING, coupon=mine)
    assert why(c, 30).reason == "coupon SPRING20 already used by this customer (limit 1 time per customer)"


def test_unknown_and_disabled_coupon():
    c = cart(line(1, "150.00", 1), coupon="NOPE")
    missing = CouponState("NOPE", None)
    run(c, SPRING, coupon=missing)
    assert c.considered[0].reason == "coupon NOPE does not exist"
    assert coupon_reason(c, missing) == "coupon NOPE does not exist"
    c = cart(line(1, "150.00", 1), coupon="SPRING20")
    run(c, SPRING, coupon=CouponState("SPRING20", 30, active=False))
    assert why(c, 30).reason == "coupon SPRING20 is disabled"


def test_coupon_below_minimum_spend_reason():
    c = cart(line(1, "80.00", 1), coupon="SPRING20")
    state = CouponState("SPRING20", 30)
    run(c, SPRING, coupon=state)
    assert coupon_reason(c, state) == "spend 20.00 more (minimum 100.00 on eligible items)"


def test_coupon_stacks_after_manjian():
    # 2 × 260.00 = 520.00 → 满减 60 → 460.00 ≥ 100 → coupon 20 → 440.00
    c = cart(line(1, "260.00", 2), coupon="SPRING20")
    t = run(c, MANJIAN, SPRING, coupon=CouponState("SPRING20", 30))
    assert t == {"subtotal": D("520.00"), "discount_total": D("80.00"), "total": D("440.00")}
    assert [a.coupon_code for a in c.adjustments] == [None, "SPRING20"]


@pytest.mark.parametrize("pct,total", [("33.33", "66.67"), ("100", "0.00"), ("0.5", "99.50")])
def test_percent_edges(pct, total):
    c = cart(line(1, "100.00", 1))
    t = run(c, Rule(id=1, name="p", kind="percent", percent=D(pct)))
    assert t["total"] == D(total)
