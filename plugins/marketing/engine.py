"""The promotion engine: pure functions over :class:`plugins.orders.pricing.Cart`.

No database, no Flask. :mod:`plugins.marketing.services` loads promotions, coupons and
the customer's segments into plain :class:`Rule`, :class:`CouponState` and
:class:`Context` objects and calls :func:`apply_promotions`, which appends line
discounts, :class:`~plugins.orders.pricing.Adjustment` rows, gift lines and one
:class:`~plugins.orders.pricing.Consideration` per promotion looked at.

The stacking rule (see README, "Stacking"):

1. Promotions are walked by ``priority`` (higher first), then by id.
2. A promotion that is not eligible (dates, coupon, customer, items, minimum spend,
   threshold) is recorded with the reason and skipped.
3. The first promotion that applies decides: if it is *exclusive*, nothing else applies
   ("not stackable with X"); if it is *stackable*, every later stackable promotion also
   applies, while a later exclusive one is refused ("not stackable with X").
4. Each promotion works on what earlier ones left: its base is the eligible lines'
   net amount (gross minus discounts so far); minimum spend and 满减 thresholds are
   measured on that base.
5. An order-level discount is allocated over the eligible lines in proportion to their
   net amounts, largest remainder to the fen, so the line discounts add up exactly;
   no line is discounted below zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_DOWN, Decimal

from flask_babel import LazyString, gettext

from core.db import quantize
from core.i18n import M_
from plugins.orders.public import Adjustment, Cart, CartLine, Consideration

ZERO = Decimal("0.00")
CENT = Decimal("0.01")
HUNDRED = Decimal("100")

KINDS = ("percent", "amount", "tiered", "gift")
SCOPES = ("order", "lines")


@dataclass(frozen=True)
class Tier:
    """满减 step: spend at least ``threshold`` on eligible items, save ``discount``."""

    threshold: Decimal
    discount: Decimal


@dataclass(frozen=True)
class GiftProduct:
    """The product given away by a gift promotion (plain data from the catalogue)."""

    product_id: int
    sku: str
    name: str
    category_id: int | None
    unit_price: Decimal
    available: bool = True


@dataclass(frozen=True)
class Rule:
    """One promotion as plain data.

    ``kind``: ``percent`` (``percent`` off), ``amount`` (``amount`` off the eligible
    subtotal, or per unit with ``scope="lines"``), ``tiered`` (满减 ``tiers``, best tier
    reached applies) or ``gift`` (buy ``buy_quantity`` eligible units, get
    ``gift_quantity`` of ``gift`` free; with ``gift_repeat`` once per full multiple).
    ``product_ids``/``category_ids`` select the eligible lines (both empty: every line).
    ``unavailable`` is a reason the promotion cannot apply at all (paused, campaign ended).
    """

    id: int | None
    name: str
    kind: str
    scope: str = "order"
    percent: Decimal = ZERO
    amount: Decimal = ZERO
    tiers: tuple[Tier, ...] = ()
    buy_quantity: int = 0
    gift: GiftProduct | None = None
    gift_quantity: int = 1
    gift_repeat: bool = False
    product_ids: frozenset[int] = frozenset()
    category_ids: frozenset[int] = frozenset()
    customer_tiers: tuple[str, ...] = ()
    customer_tags: tuple[str, ...] = ()
    segment_id: int | None = None
    segment_name: str = ""
    starts_on: date | None = None
    ends_on: date | None = None
    min_spend: Decimal = ZERO
    stackable: bool = True
    priority: int = 0
    requires_coupon: bool = False
    campaign_id: int | None = None
    unavailable: str = ""


@dataclass(frozen=True)
class CouponState:
    """The coupon code given with the cart, as found in the database.

    ``promotion_id`` None: no coupon has that code. ``customer_uses``: redemptions by
    this cart's customer still in force (cancelled orders gave theirs back).
    """

    code: str
    promotion_id: int | None
    active: bool = True
    usage_limit: int | None = None
    used: int = 0
    per_customer_limit: int | None = None
    customer_uses: int = 0


@dataclass(frozen=True)
class Context:
    """What eligibility needs besides the cart: the local date, segments, the coupon."""

    today: date
    segments: frozenset[int] = frozenset()
    coupon: CouponState | None = None


def normalise_code(code: str | None) -> str:
    """Coupon codes are case-insensitive: stored and compared upper-case, trimmed."""
    return (code or "").strip().upper()


def money(value: Decimal) -> str:
    return f"{quantize(value):.2f}"


def short(value: Decimal) -> str:
    """An amount as a shopper reads it in a promotion's name: ``300`` for 300.00, ``0.5`` kept as ``0.50``."""
    q = quantize(value)
    return f"{q:.0f}" if q == q.to_integral_value() else f"{q:.2f}"


def _words(keys: tuple[str, ...]) -> LazyString:
    """Tier or tag keys as a page shows them: each translated when shown ("gold" → 金卡)."""
    return LazyString(lambda: " / ".join(gettext(k) for k in keys))


def _spend_more(missing: Decimal, threshold: Decimal, discount: Decimal) -> str:
    """"spend 0.18 more to reach 300.00 and save 30.00" (English, the API's text); pages in
    Chinese show "再买 0.18 元享满300减30"."""
    return M_("spend %(missing)s more to reach %(threshold)s and save %(discount)s",
              shown={"missing": money(missing), "threshold": short(threshold), "discount": short(discount)},
              missing=money(missing), threshold=money(threshold), discount=money(discount))


# ---------------------------------------------------------------------------
# Allocation
# ---------------------------------------------------------------------------


def allocate(amount: Decimal, weights: list[Decimal]) -> list[Decimal]:
    """Split ``amount`` over ``weights`` proportionally, to the fen, summing exactly.

    Each share is rounded down to the fen, then the remaining fen go to the largest
    remainders (ties: the earlier weight). ``amount`` must not exceed ``sum(weights)``;
    no share then exceeds its weight.
    """
    amount = quantize(amount)
    total = sum(weights, ZERO)
    if amount <= 0 or total <= 0:
        return [ZERO for _ in weights]
    exact = [amount * w / total for w in weights]
    shares = [e.quantize(CENT, rounding=ROUND_DOWN) for e in exact]
    left = int(((amount - sum(shares, ZERO)) / CENT).to_integral_value())
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - shares[i]), i))
    for i in order[:left]:
        shares[i] += CENT
    return shares


# ---------------------------------------------------------------------------
# Eligibility
# ---------------------------------------------------------------------------


def _eligible_lines(rule: Rule, cart: Cart) -> list[int]:
    out = []
    for i, ln in enumerate(cart.lines):
        if ln.is_gift or ln.quantity <= 0:
            continue
        if not rule.product_ids and not rule.category_ids:
            out.append(i)
        elif ln.product_id in rule.product_ids or (
                ln.category_id is not None and ln.category_id in rule.category_ids):
            out.append(i)
    return out


def _net(line: CartLine) -> Decimal:
    return max(quantize(line.gross - line.line_discount), ZERO)


def _dates_reason(rule: Rule, today: date) -> str:
    start, end = rule.starts_on, rule.ends_on
    if (start and today < start) or (end and today > end):
        if start and end:
            return M_("outside dates (%(start)s to %(end)s)", start=start.isoformat(), end=end.isoformat())
        if start:
            return M_("outside dates (starts %(start)s)", start=start.isoformat())
        return M_("outside dates (ended %(end)s)", end=end.isoformat())
    return ""


def _coupon_reason(rule: Rule, cart: Cart, ctx: Context) -> str:
    coupon = ctx.coupon
    if coupon is None or coupon.promotion_id != rule.id:
        return M_("requires a coupon code")
    if not coupon.active:
        return M_("coupon %(code)s is disabled", code=coupon.code)
    if coupon.usage_limit is not None and coupon.used >= coupon.usage_limit:
        return M_("coupon %(code)s has been used up", code=coupon.code)
    if (coupon.per_customer_limit is not None and cart.customer.get("id") is not None
            and coupon.customer_uses >= coupon.per_customer_limit):
        if coupon.per_customer_limit == 1:
            return M_("coupon %(code)s already used by this customer (limit 1 time per customer)",
                      code=coupon.code)
        return M_("coupon %(code)s already used by this customer (limit %(limit)s times per customer)",
                  code=coupon.code, limit=coupon.per_customer_limit)
    return ""


def _customer_reason(rule: Rule, cart: Cart, ctx: Context) -> str:
    customer = cart.customer or {}
    if rule.customer_tiers:
        tier = str(customer.get("tier") or "").lower()
        if tier not in {t.lower() for t in rule.customer_tiers}:
            return M_("customer tier %(tiers)s required", tiers=" or ".join(rule.customer_tiers),
                      shown={"tiers": _words(rule.customer_tiers)})
    if rule.customer_tags:
        tags = {str(t).lower() for t in (customer.get("tags") or [])}
        if not tags & {t.lower() for t in rule.customer_tags}:
            return M_("customer tag %(tags)s required", tags=" or ".join(rule.customer_tags),
                      shown={"tags": _words(rule.customer_tags)})
    if rule.segment_id is not None and rule.segment_id not in ctx.segments:
        return M_("customer not in segment %(segment)s", segment=rule.segment_name or rule.segment_id)
    return ""


def ineligible_reason(rule: Rule, cart: Cart, ctx: Context) -> str:
    """Why ``rule`` cannot apply to this cart before amounts are looked at ('' if it can)."""
    if rule.unavailable:
        return rule.unavailable
    reason = _dates_reason(rule, ctx.today)
    if reason:
        return reason
    if rule.requires_coupon:
        reason = _coupon_reason(rule, cart, ctx)
        if reason:
            return reason
    reason = _customer_reason(rule, cart, ctx)
    if reason:
        return reason
    if not _eligible_lines(rule, cart):
        return M_("no eligible items in the cart")
    return ""


# ---------------------------------------------------------------------------
# Applying one promotion
# ---------------------------------------------------------------------------


@dataclass
class Outcome:
    applied: bool
    reason: str
    amount: Decimal = ZERO


def _discount_lines(rule: Rule, cart: Cart, shares: list[tuple[int, Decimal]], coupon: str | None) -> Decimal:
    total = ZERO
    for i, share in shares:
        if share <= 0:
            continue
        cart.lines[i].line_discount = quantize(cart.lines[i].line_discount + share)
        cart.adjustments.append(Adjustment(promotion_id=rule.id, code=f"marketing.{rule.kind}",
                                           label=rule.name, amount=share, line_index=i,
                                           coupon_code=coupon, campaign_id=rule.campaign_id))
        total += share
    return quantize(total)


def _order_discount(rule: Rule, cart: Cart, idx: list[int], amount: Decimal, coupon: str | None) -> Decimal:
    nets = [_net(cart.lines[i]) for i in idx]
    amount = min(quantize(amount), sum(nets, ZERO))
    return _discount_lines(rule, cart, list(zip(idx, allocate(amount, nets), strict=True)), coupon)


def _apply(rule: Rule, cart: Cart, coupon: str | None) -> Outcome:
    idx = _eligible_lines(rule, cart)
    base = quantize(sum((_net(cart.lines[i]) for i in idx), ZERO))
    if rule.min_spend and base < rule.min_spend:
        return Outcome(False, M_("spend %(missing)s more (minimum %(minimum)s on eligible items)",
                                 missing=money(rule.min_spend - base), minimum=money(rule.min_spend)))
    if rule.kind == "gift":
        return _apply_gift(rule, cart, idx, coupon)
    if base <= 0:
        return Outcome(False, M_("nothing left to discount"))
    if rule.kind == "percent":
        rate = rule.percent / HUNDRED
        if rule.scope == "lines":
            shares = [(i, min(quantize(_net(cart.lines[i]) * rate), _net(cart.lines[i]))) for i in idx]
            amount = _discount_lines(rule, cart, shares, coupon)
        else:
            amount = _order_discount(rule, cart, idx, quantize(base * rate), coupon)
        return Outcome(amount > 0, M_("%(percent)s%% off %(base)s", percent=f"{rule.percent.normalize():f}",
                                      base=money(base)) if amount > 0
                       else M_("discount rounds to zero"), amount)
    if rule.kind == "amount":
        if rule.scope == "lines":
            shares = [(i, min(quantize(rule.amount * cart.lines[i].quantity), _net(cart.lines[i])))
                      for i in idx]
            amount = _discount_lines(rule, cart, shares, coupon)
            return Outcome(amount > 0, M_("%(amount)s off each eligible unit", amount=money(rule.amount)), amount)
        amount = _order_discount(rule, cart, idx, rule.amount, coupon)
        return Outcome(True, M_("%(amount)s off %(base)s", amount=money(amount), base=money(base)), amount)
    if rule.kind == "tiered":
        return _apply_tiered(rule, cart, idx, base, coupon)
    return Outcome(False, f"unknown promotion kind '{rule.kind}'")


def _apply_tiered(rule: Rule, cart: Cart, idx: list[int], base: Decimal, coupon: str | None) -> Outcome:
    tiers = sorted(rule.tiers, key=lambda t: t.threshold)
    if not tiers:
        return Outcome(False, M_("no tiers defined"))
    reached = [t for t in tiers if base >= t.threshold]
    if not reached:
        first = tiers[0]
        return Outcome(False, _spend_more(first.threshold - base, first.threshold, first.discount))
    best = max(reached, key=lambda t: (t.discount, t.threshold))
    amount = _order_discount(rule, cart, idx, best.discount, coupon)
    reason = M_("spent %(spent)s of %(threshold)s: save %(saved)s", spent=money(base),
                threshold=money(best.threshold), saved=money(amount))
    better = [t for t in tiers if t.threshold > base and t.discount > best.discount]
    if better:
        nxt = better[0]
        more = _spend_more(nxt.threshold - base, nxt.threshold, nxt.discount)
        reason = M_("%(applied)s; %(next)s", shown={"applied": reason.translated(), "next": more.translated()},
                    applied=str(reason), next=str(more))
    return Outcome(True, reason, amount)


def _apply_gift(rule: Rule, cart: Cart, idx: list[int], coupon: str | None) -> Outcome:
    gift = rule.gift
    if gift is None or not gift.available:
        return Outcome(False, M_("gift product %(sku)s is not available", sku=gift.sku) if gift
                       else M_("no gift product set"))
    bought = sum(cart.lines[i].quantity for i in idx)
    need = max(rule.buy_quantity, 1)
    if bought < need:
        return Outcome(False, M_("buy %(more)s more to get %(gift)s free", more=need - bought, gift=gift.name))
    times = bought // need if rule.gift_repeat else 1
    qty = rule.gift_quantity * times
    line = CartLine(product_id=gift.product_id, sku=gift.sku, name=gift.name,
                    category_id=gift.category_id, quantity=qty, unit_price=quantize(gift.unit_price),
                    is_gift=True, promotion_id=rule.id)
    line.line_discount = line.gross
    cart.lines.append(line)
    value = line.gross
    cart.adjustments.append(Adjustment(promotion_id=rule.id, code="marketing.gift",
                                       label=rule.name, amount=value, line_index=len(cart.lines) - 1,
                                       coupon_code=coupon, campaign_id=rule.campaign_id))
    return Outcome(True, M_("bought %(bought)s: %(qty)s × %(gift)s free (worth %(value)s)", bought=bought, qty=qty,
                            gift=gift.name, value=money(value)), value)


# ---------------------------------------------------------------------------
# The whole cart
# ---------------------------------------------------------------------------


def sort_key(rule: Rule) -> tuple[int, int]:
    return (-rule.priority, rule.id if rule.id is not None else 0)


def apply_promotions(cart: Cart, rules: list[Rule], ctx: Context) -> Cart:
    """Apply ``rules`` to ``cart`` in place (see the module docstring); returns the cart."""
    code = normalise_code(cart.coupon_code) or None
    if code and (ctx.coupon is None or ctx.coupon.promotion_id is None):
        cart.considered.append(Consideration(None, f"Coupon {code}", False,
                                             M_("coupon %(code)s does not exist", code=code)))
    first: Rule | None = None
    for rule in sorted(rules, key=sort_key):
        reason = ineligible_reason(rule, cart, ctx)
        if not reason and first is not None and (not first.stackable or not rule.stackable):
            reason = M_("not stackable with %(name)s", name=first.name)
        if reason:
            cart.considered.append(Consideration(rule.id, rule.name, False, reason))
            continue
        coupon = ctx.coupon.code if rule.requires_coupon and ctx.coupon else None
        outcome = _apply(rule, cart, coupon)
        cart.considered.append(Consideration(rule.id, rule.name, outcome.applied, outcome.reason,
                                             outcome.amount if outcome.applied else ZERO))
        if outcome.applied and first is None:
            first = rule
    return cart


def applied_coupon(cart: Cart) -> str | None:
    """The coupon code a priced cart actually uses (None when it did not apply)."""
    for adj in cart.adjustments:
        if adj.coupon_code:
            return adj.coupon_code
    return None


def coupon_reason(cart: Cart, coupon: CouponState | None) -> str:
    """Why the cart's coupon did not apply ('' when it did or none was given)."""
    code = normalise_code(cart.coupon_code)
    if not code:
        return ""
    if coupon is None or coupon.promotion_id is None:
        return f"coupon {code} does not exist"
    if applied_coupon(cart) == coupon.code:
        return ""
    for c in cart.considered:
        if c.promotion_id == coupon.promotion_id and not c.applied:
            return c.reason
    return f"coupon {code} does not apply"
