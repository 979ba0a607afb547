"""Marketing domain logic; the public API other plugins may import.

* :func:`price_cart` – apply promotions to a :class:`plugins.orders.pricing.Cart`
  (the ``order_price`` hook);
* :func:`settle_order_coupons` – claim the coupon an order uses, atomically (``order_priced``);
* :func:`claim_coupon` / :func:`release_order_coupons` – count and give back coupon uses;
* :func:`effectiveness` – the numbers of one campaign; :func:`audience_query` – its
  consenting target customers.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from marshmallow import ValidationError as MarshmallowError
from sqlalchemy import and_, func, or_, select, update

from core.db import db, quantize, utcnow
from core.errors import Conflict, NotFound, ValidationError
from core.i18n import N_, MessageId
from core.scope import restrict, select_for
from core.state import dovetail
from plugins.catalog.public import Category, Product
from plugins.crm.public import Customer, Segment, segment_customer_ids
from plugins.marketing import engine
from plugins.marketing.engine import CouponState, Rule, normalise_code
from plugins.marketing.models import CAMPAIGN_STATUSES, CHANNELS, Campaign, Coupon, CouponRedemption, Promotion
from plugins.marketing.schemas import PromotionIn, tiers_from_text
from plugins.orders.public import Order, OrderAdjustment, is_revenue, net_revenue, refunds_subquery

ZERO = Decimal("0.00")
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read out over the phone


def settings() -> Mapping[str, Any]:
    return dovetail().settings("marketing")


def company_tz() -> ZoneInfo:
    return ZoneInfo(dovetail().config.timezone)


def local_date(at: datetime | None) -> date:
    """The company-local calendar date of ``at`` (naive datetimes are UTC)."""
    at = at or utcnow()
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(company_tz()).date()


def utc_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """Naive-UTC [from, to) covering the local days ``start``..``end`` inclusive."""
    tz = company_tz()
    lo = datetime.combine(start, time.min, tz).astimezone(UTC).replace(tzinfo=None)
    hi = datetime.combine(end + timedelta(days=1), time.min, tz).astimezone(UTC).replace(tzinfo=None)
    return lo, hi


# ---------------------------------------------------------------------------
# Input checking (API and web forms share it)
# ---------------------------------------------------------------------------


def _money(value: Any, field: str, errors: dict[str, list[str]], *, positive: bool = False) -> Decimal | None:
    try:
        if isinstance(value, float):
            raise InvalidOperation
        d = Decimal(str(value).strip())
        if not d.is_finite():
            raise InvalidOperation
    except (InvalidOperation, ValueError):
        errors[field] = ["Enter an amount such as 30 or 29.90."]
        return None
    if d < 0 or (positive and d == 0):
        errors[field] = ["Must be greater than 0." if positive else "Must not be negative."]
        return None
    if d != d.quantize(Decimal("0.01")):
        errors[field] = ["At most 2 decimal places."]
        return None
    if d >= Decimal("1000000000000"):
        errors[field] = ["Too large."]
        return None
    return quantize(d)








def _date(raw: Any, field: str, errors: dict[str, list[str]]) -> date | None:
    if raw in (None, ""):
        return None
    if isinstance(raw, date):
        return raw
    try:
        return date.fromisoformat(str(raw))
    except ValueError:
        errors[field] = ["A date like 2026-11-11."]
        return None


def _int(raw: Any, field: str, errors: dict[str, list[str]], *, minimum: int = 0,
         allow_none: bool = False) -> int | None:
    if raw in (None, "") and allow_none:
        return None
    if isinstance(raw, bool):
        errors[field] = ["A whole number."]
        return None
    try:
        value = int(str(raw).strip())
    except ValueError:
        errors[field] = ["A whole number."]
        return None
    if value < minimum:
        errors[field] = [f"At least {minimum}."]
        return None
    if value > 10_000_000:
        errors[field] = ["Too large."]
        return None
    return value


def _check_unknown(data: Mapping[str, Any], allowed: Iterable[str]) -> None:
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise ValidationError("Unknown fields.", fields={k: ["Unknown field."] for k in unknown})


CAMPAIGN_FIELDS = ("name", "channel", "starts_on", "ends_on", "budget", "segment_id", "status", "description")


def save_campaign(campaign: Campaign | None, data: Mapping[str, Any]) -> Campaign:
    """Create (``campaign`` None) or change a campaign from plain input; the caller commits."""
    _check_unknown(data, CAMPAIGN_FIELDS)
    errors: dict[str, list[str]] = {}
    if campaign is None:
        for key in ("name", "starts_on", "ends_on"):
            if data.get(key) in (None, ""):
                errors[key] = ["Required."]
    values = _campaign_values(data, errors)
    start = values.get("starts_on", campaign.starts_on if campaign else None)
    end = values.get("ends_on", campaign.ends_on if campaign else None)
    if start and end and end < start and "ends_on" not in errors:
        errors["ends_on"] = ["The end date is before the start date."]
    if errors:
        raise ValidationError("Invalid campaign.", fields=errors)
    if campaign is None:
        campaign = Campaign(channel="online", status="draft", budget=ZERO)
        db.session.add(campaign)
    for key, value in values.items():
        setattr(campaign, key, value)
    db.session.flush()
    return campaign


def _campaign_values(data: Mapping[str, Any], errors: dict[str, list[str]]) -> dict[str, Any]:
    """The given campaign fields checked and converted; problems go to ``errors`` by field."""
    values: dict[str, Any] = {}
    if "name" in data and data["name"] not in (None, ""):
        name = str(data["name"]).strip()
        if not name or len(name) > 120:
            errors["name"] = ["1 to 120 characters."]
        values["name"] = name
    if "channel" in data:
        if data["channel"] not in CHANNELS:
            errors["channel"] = [f"One of: {', '.join(CHANNELS)}."]
        values["channel"] = data["channel"]
    for key in ("starts_on", "ends_on"):
        if key in data and data[key] not in (None, ""):
            values[key] = _date(data[key], key, errors)
    if "budget" in data:
        values["budget"] = _money(data["budget"] if data["budget"] is not None else "0", "budget", errors)
    if "segment_id" in data:
        values["segment_id"] = _int(data["segment_id"], "segment_id", errors, minimum=1, allow_none=True)
        if values["segment_id"] is not None and "segment_id" not in errors:
            if segment_name(values["segment_id"]) is None:
                errors["segment_id"] = [f"No segment with id {values['segment_id']}."]
    if "status" in data:
        if data["status"] not in CAMPAIGN_STATUSES:
            errors["status"] = [f"One of: {', '.join(CAMPAIGN_STATUSES)}."]
        values["status"] = data["status"]
    if "description" in data:
        desc = data["description"]
        if desc is not None and (not isinstance(desc, str) or len(desc) > 4000):
            errors["description"] = ["Text of at most 4000 characters."]
        values["description"] = desc
    return values


def delete_campaign(campaign: Campaign) -> None:
    """Delete a campaign no order used (otherwise end it); its promotions go with it."""
    if _campaign_used(campaign.id):
        raise Conflict(f"Campaign '{campaign.name}' has orders; set its status to ended instead.")
    for promo in list(campaign.promotions):
        delete_promotion(promo)
    db.session.delete(campaign)


def _promotion_values(promo: Promotion) -> dict[str, Any]:
    """A stored promotion as :class:`PromotionIn` input (what a change is merged into)."""
    return {key: getattr(promo, key) for key in PromotionIn().load_fields}


def _load_promotion(promo: Promotion | None, data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` loaded by the one promotion schema; a change is checked on the whole promotion
    as it will be (every rule across fields), and only its own fields are returned."""
    try:
        if isinstance(data.get("tiers"), str):  # Python callers may write tiers as the form does: "300:30, 500:60"
            data = {**data, "tiers": tiers_from_text(data["tiers"])}
        if promo is None:
            return PromotionIn().load(data)
        loaded = PromotionIn().load({**_promotion_values(promo), **data})
    except MarshmallowError as err:
        raise ValidationError("Invalid promotion.", fields=err.messages_dict) from None
    return {key: value for key, value in loaded.items() if key in data}


def _missing_references(values: Mapping[str, Any]) -> dict[str, list[str]]:
    """The ids a promotion names that do not exist (campaign, products, categories, segment)."""
    problems: dict[str, list[str]] = {}
    if values.get("campaign_id") and db.session.get(Campaign, values["campaign_id"]) is None:
        problems["campaign_id"] = [f"No campaign with id {values['campaign_id']}."]
    if values.get("gift_product_id") and db.session.get(Product, values["gift_product_id"]) is None:
        problems["gift_product_id"] = [f"No product with id {values['gift_product_id']}."]
    for key, model, noun in (("product_ids", Product, "product"), ("category_ids", Category, "category")):
        ids = values.get(key) or []
        found = set(db.session.scalars(select(model.id).where(model.id.in_(ids)))) if ids else set()
        missing = [i for i in ids if i not in found]
        if missing:
            problems[key] = [f"No {noun} with id {', '.join(map(str, missing))}."]
    if values.get("segment_id") and segment_name(values["segment_id"]) is None:
        problems["segment_id"] = [f"No segment with id {values['segment_id']}."]
    return problems


def save_promotion(promo: Promotion | None, data: Mapping[str, Any]) -> Promotion:
    """Create (``promo`` None) or change a promotion; the caller commits.

    ``data`` is what :class:`~plugins.marketing.schemas.PromotionIn` (or ``PromotionPatch``)
    loaded, or plain input from Python callers: it goes through that schema, which holds every
    rule (loading loaded values again changes nothing). Here only the database is asked:
    whether the ids it names exist.
    """
    values = _load_promotion(promo, data)
    problems = _missing_references(values)
    if problems:
        raise ValidationError("Invalid promotion.", fields=problems)
    if promo is None:
        promo = Promotion(scope="order", percent=ZERO, amount=ZERO, tiers=[], buy_quantity=0, gift_quantity=1,
                          gift_repeat=False, product_ids=[], category_ids=[], customer_tiers=[],
                          customer_tags=[], min_spend=ZERO, stackable=True, priority=0,
                          requires_coupon=False, active=True)
        db.session.add(promo)
    for key, value in values.items():
        setattr(promo, key, value)
    db.session.flush()
    return promo


def delete_promotion(promo: Promotion) -> None:
    """Delete a promotion no order used (otherwise deactivate it)."""
    used = db.session.scalar(select(func.count()).select_from(OrderAdjustment)
                             .where(OrderAdjustment.promotion_id == promo.id))
    if used:
        raise Conflict(f"Promotion '{promo.name}' was used by {used} order adjustment(s); "
                       "deactivate it instead.")
    db.session.delete(promo)


# ---------------------------------------------------------------------------
# Segments (crm)
# ---------------------------------------------------------------------------


def segment_name(segment_id: int) -> str | None:
    seg = db.session.get(Segment, segment_id)
    return seg.name if seg is not None else None


def segment_ids_query(segment_id: int) -> Any:
    """The crm segment's customer ids as a select (crm's public API)."""
    return segment_customer_ids(segment_id)


def customer_segments(customer_id: int | None, segment_ids: Iterable[int]) -> frozenset[int]:
    """Which of ``segment_ids`` the customer belongs to (a deleted segment: none)."""
    if customer_id is None:
        return frozenset()
    out = set()
    for sid in set(segment_ids):
        try:
            sub = segment_ids_query(sid).subquery()
        except NotFound:
            continue
        col = list(sub.c)[0]
        if db.session.scalar(select(col).where(col == customer_id).limit(1)) is not None:
            out.add(sid)
    return frozenset(out)


# ---------------------------------------------------------------------------
# Pricing (order_price)
# ---------------------------------------------------------------------------


def _category_closure(ids: Iterable[int], parents: Mapping[int, int | None]) -> frozenset[int]:
    """The categories and every category below them."""
    wanted = set(ids)
    if not wanted:
        return frozenset()
    children: dict[int, list[int]] = {}
    for cid, parent in parents.items():
        if parent is not None:
            children.setdefault(parent, []).append(cid)
    out, stack = set(), list(wanted)
    while stack:
        c = stack.pop()
        if c in out:
            continue
        out.add(c)
        stack.extend(children.get(c, []))
    return frozenset(out)


def _window(promo: Promotion) -> tuple[date | None, date | None]:
    start, end = promo.starts_on, promo.ends_on
    camp = promo.campaign
    if camp is not None:
        start = max(d for d in (start, camp.starts_on) if d is not None) if (start or camp.starts_on) else None
        end = min(d for d in (end, camp.ends_on) if d is not None) if (end or camp.ends_on) else None
    return start, end


def _unavailable(promo: Promotion) -> str:
    if not promo.active:
        return f"promotion {promo.name} is inactive"
    camp = promo.campaign
    if camp is not None and camp.status != "active":
        return f"campaign {camp.name} is {camp.status}"
    return ""


def to_rule(promo: Promotion, parents: Mapping[int, int | None], gifts: Mapping[int, Any],
            segment_names: Mapping[int, str]) -> Rule:
    """A promotion row as the engine's plain :class:`Rule`."""
    start, end = _window(promo)
    gift = None
    if promo.gift_product_id:
        p = gifts.get(promo.gift_product_id)
        if p is not None:
            gift = engine.GiftProduct(p.id, p.sku, p.name, p.category_id, quantize(p.price), bool(p.active))
    return Rule(
        id=promo.id, name=promo.name, kind=promo.kind, scope=promo.scope or "order",
        percent=Decimal(promo.percent or 0), amount=quantize(promo.amount or 0),
        tiers=tuple(engine.Tier(quantize(t["threshold"]), quantize(t["discount"])) for t in promo.tiers or []),
        buy_quantity=promo.buy_quantity or 0, gift=gift, gift_quantity=promo.gift_quantity or 1,
        gift_repeat=bool(promo.gift_repeat), product_ids=frozenset(promo.product_ids or []),
        category_ids=_category_closure(promo.category_ids or [], parents),
        customer_tiers=tuple(promo.customer_tiers or ()), customer_tags=tuple(promo.customer_tags or ()),
        segment_id=promo.segment_id, segment_name=segment_names.get(promo.segment_id or 0, ""),
        starts_on=start, ends_on=end, min_spend=quantize(promo.min_spend or 0),
        stackable=bool(promo.stackable), priority=promo.priority or 0,
        requires_coupon=bool(promo.requires_coupon), campaign_id=promo.campaign_id,
        unavailable=_unavailable(promo))


def coupon_state(code: str, customer_id: int | None, exclude_order_id: int | None = None) -> CouponState:
    coupon = db.session.scalar(select(Coupon).where(Coupon.code == code))
    if coupon is None:
        return CouponState(code=code, promotion_id=None)
    uses = 0
    if customer_id is not None:
        stmt = select(func.count()).select_from(CouponRedemption).where(
            CouponRedemption.coupon_id == coupon.id, CouponRedemption.customer_id == customer_id,
            CouponRedemption.released_at.is_(None), CouponRedemption.order_id.in_(select(Order.id)))
        if exclude_order_id is not None:
            stmt = stmt.where(CouponRedemption.order_id != exclude_order_id)
        uses = db.session.scalar(stmt) or 0
    # uses held by deleted orders are given back on the next claim: do not count them here
    orphans = db.session.scalar(select(func.count()).select_from(CouponRedemption).where(
        CouponRedemption.coupon_id == coupon.id, CouponRedemption.released_at.is_(None),
        CouponRedemption.order_id.not_in(select(Order.id)))) or 0
    used = coupon.used - orphans
    if exclude_order_id is not None and db.session.scalar(select(CouponRedemption.id).where(
            CouponRedemption.coupon_id == coupon.id, CouponRedemption.order_id == exclude_order_id,
            CouponRedemption.released_at.is_(None))):
        used -= 1  # this order already holds one use: re-pricing it must not count it twice
    return CouponState(code=code, promotion_id=coupon.promotion_id, active=coupon.active,
                       usage_limit=coupon.usage_limit, used=used,
                       per_customer_limit=coupon.per_customer_limit, customer_uses=uses)


def load_rules(coupon: CouponState | None, customer_id: int | None) -> tuple[list[Rule], frozenset[int]]:
    """Promotions to consider: active ones (standalone, or in an active or paused campaign)
    plus the promotion of the coupon given; and the customer's segments among theirs."""
    stmt = (select(Promotion).outerjoin(Campaign, Promotion.campaign_id == Campaign.id)
            .where(Promotion.active.is_(True),
                   or_(Promotion.campaign_id.is_(None), Campaign.status.in_(("active", "paused")))))
    promos = {p.id: p for p in db.session.scalars(stmt)}
    if coupon is not None and coupon.promotion_id is not None and coupon.promotion_id not in promos:
        extra = db.session.get(Promotion, coupon.promotion_id)
        if extra is not None:
            promos[extra.id] = extra
    if not promos:
        return [], frozenset()
    parents: dict[int, int | None] = {}
    if any(p.category_ids for p in promos.values()):
        parents = dict(db.session.execute(select(Category.id, Category.parent_id)).all())
    gift_ids = {p.gift_product_id for p in promos.values() if p.gift_product_id}
    gifts = {p.id: p for p in db.session.scalars(select(Product).where(Product.id.in_(gift_ids)))} if gift_ids else {}
    seg_ids = {p.segment_id for p in promos.values() if p.segment_id}
    names = {sid: segment_name(sid) or f"#{sid}" for sid in seg_ids}
    rules = [to_rule(p, parents, gifts, names) for p in promos.values()]
    return rules, customer_segments(customer_id, seg_ids)


def _repriced_order_id(cart: Any, code: str) -> int | None:
    """The order this cart re-prices, if any: ``cart.order_id`` when orders sets it, else a
    loaded order of the same customer holding a use of ``code`` (an edited draft).

    Only the shown pricing depends on it: the use itself is always claimed atomically in
    :func:`settle_order_coupons`, so a wrong guess can never grant an extra use.
    """
    explicit = getattr(cart, "order_id", None)
    if explicit is not None:
        return int(explicit)
    customer_id = (cart.customer or {}).get("id")
    for obj in list(db.session.identity_map.values()):
        if isinstance(obj, Order) and obj.id is not None and obj.customer_id == customer_id \
                and normalise_code(obj.coupon_code) == code:
            return obj.id
    return None


def price_cart(cart: Any) -> Any:
    """Apply the promotions in force to ``cart`` (the ``order_price`` hook). Writes nothing.

    A cart being re-priced for an existing order may carry ``order_id``; that order's
    own coupon use then does not count against the coupon's limits.
    """
    customer_id = (cart.customer or {}).get("id")
    code = normalise_code(cart.coupon_code)
    if code:
        cart.coupon_code = code
    coupon = coupon_state(code, customer_id, _repriced_order_id(cart, code)) if code else None
    rules, segments = load_rules(coupon, customer_id)
    ctx = engine.Context(today=local_date(cart.at), segments=segments, coupon=coupon)
    engine.apply_promotions(cart, rules, ctx)
    return cart


# ---------------------------------------------------------------------------
# Coupons: generation, atomic claim, release
# ---------------------------------------------------------------------------


def _random_code(prefix: str, length: int) -> str:
    return prefix + "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))


def generate_coupons(promotion: Promotion, *, count: int = 1, code: str | None = None, prefix: str = "",
                     length: int | None = None, usage_limit: int | None = 1,
                     per_customer_limit: int | None = 1, batch: str | None = None) -> list[Coupon]:
    """Create one coupon with ``code`` or ``count`` random codes ``PREFIX`` + letters/digits.

    Codes are stored upper-case; a taken code is a 409. The caller commits.
    """
    if not promotion.requires_coupon:
        raise ValidationError(f"Promotion '{promotion.name}' applies without a code; set requires_coupon "
                              "first.", fields={"promotion_id": ["Does not use coupon codes."]})
    length = length or int(settings().get("coupon_code_length", 8))
    batch = batch or utcnow().strftime("%Y%m%d%H%M%S")
    made: list[Coupon] = []
    if code:
        code = normalise_code(code)
        if db.session.scalar(select(Coupon.id).where(Coupon.code == code)):
            raise Conflict(f"Coupon code {code} already exists.", fields={"code": ["Taken."]})
        made.append(Coupon(promotion_id=promotion.id, code=code, usage_limit=usage_limit,
                           per_customer_limit=per_customer_limit, used=0, active=True, batch=batch))
    else:
        prefix = normalise_code(prefix)
        taken: set[str] = set()
        while len(made) < count:
            want = [_random_code(prefix, length) for _ in range(min(count - len(made), 500))]
            exists = set(db.session.scalars(select(Coupon.code).where(Coupon.code.in_(want))))
            for c in want:
                if c in exists or c in taken:
                    continue
                taken.add(c)
                made.append(Coupon(promotion_id=promotion.id, code=c, usage_limit=usage_limit,
                                   per_customer_limit=per_customer_limit, used=0, active=True, batch=batch))
    db.session.add_all(made)
    db.session.flush()
    return made


def update_coupon(coupon: Coupon, data: Mapping[str, Any]) -> Coupon:
    """Enable/disable a coupon or change its limits; a total limit never below its uses."""
    if "usage_limit" in data and data["usage_limit"] is not None and data["usage_limit"] < coupon.used:
        raise ValidationError(f"Coupon {coupon.code} was already used {coupon.used} time(s).",
                              fields={"usage_limit": [f"At least {coupon.used} (the uses so far)."]})
    for key in ("active", "usage_limit", "per_customer_limit"):
        if key in data:
            setattr(coupon, key, data[key])
    db.session.flush()
    return coupon


def claim_coupon(code: str, order_id: int, customer_id: int | None) -> CouponRedemption:
    """Count one use of ``code`` for ``order_id``, atomically; the caller commits.

    ``UPDATE … SET used = used + 1 WHERE used < usage_limit`` takes the coupon's row
    lock (PostgreSQL; SQLite writers are serialised), and the per-customer count is
    read under that same lock, so two orders racing for the last use: one wins, the
    other gets ``Conflict("Coupon X has been used up.")``. Runs in a savepoint: a
    refusal leaves the counter untouched.
    """
    code = normalise_code(code)
    coupon = db.session.scalar(select(Coupon).where(Coupon.code == code))
    if coupon is None:
        raise ValidationError(f"Coupon {code} does not exist.", fields={"coupon_code": ["Unknown coupon code."]})
    try:
        return _claim(coupon, code, order_id, customer_id)
    except Conflict:
        if not release_orphans(coupon.id):
            raise
    return _claim(coupon, code, order_id, customer_id)


def release_orphans(coupon_id: int) -> int:
    """Give back uses held by orders that no longer exist (a deleted draft); returns how many."""
    rows = db.session.scalars(select(CouponRedemption).where(
        CouponRedemption.coupon_id == coupon_id, CouponRedemption.released_at.is_(None),
        CouponRedemption.order_id.not_in(select(Order.id)))).all()
    return sum(1 for red in rows if _release(red, "order deleted"))


def _claim(coupon: Coupon, code: str, order_id: int, customer_id: int | None) -> CouponRedemption:
    with db.session.begin_nested():
        result = db.session.execute(
            update(Coupon).where(Coupon.id == coupon.id, Coupon.active.is_(True),
                                 or_(Coupon.usage_limit.is_(None), Coupon.used < Coupon.usage_limit))
            .values(used=Coupon.used + 1).execution_options(synchronize_session=False))
        if result.rowcount != 1:
            if not coupon.active:
                raise Conflict(f"Coupon {code} is disabled.", fields={"coupon_code": ["Disabled."]})
            raise Conflict(f"Coupon {code} has been used up.", fields={"coupon_code": ["Used up."]})
        if coupon.per_customer_limit is not None and customer_id is not None:
            uses = db.session.scalar(select(func.count()).select_from(CouponRedemption).where(
                CouponRedemption.coupon_id == coupon.id, CouponRedemption.customer_id == customer_id,
                CouponRedemption.released_at.is_(None), CouponRedemption.order_id != order_id,
                CouponRedemption.order_id.in_(select(Order.id)))) or 0
            if uses >= coupon.per_customer_limit:
                raise Conflict(f"Coupon {code} has been used up for this customer (limit "
                               f"{coupon.per_customer_limit} per customer).",
                               fields={"coupon_code": ["Used up for this customer."]})
        red = CouponRedemption(coupon_id=coupon.id, order_id=order_id, customer_id=customer_id)
        db.session.add(red)
        db.session.flush()
    db.session.expire(coupon)
    return red


def release_order_coupons(order_id: int, reason: str) -> int:
    """Give back the coupon uses held by ``order_id`` (cancelled, deleted, re-priced)."""
    rows = db.session.scalars(select(CouponRedemption).where(
        CouponRedemption.order_id == order_id, CouponRedemption.released_at.is_(None))).all()
    return sum(1 for red in rows if _release(red, reason))


def _release(red: CouponRedemption, reason: str) -> bool:
    """Release one redemption once: the conditional UPDATE makes a concurrent second release
    (two claims cleaning the same orphan) a no-op instead of a double decrement."""
    done = db.session.execute(
        update(CouponRedemption).where(CouponRedemption.id == red.id, CouponRedemption.released_at.is_(None))
        .values(released_at=utcnow(), release_reason=reason[:40]).execution_options(synchronize_session=False))
    if done.rowcount == 1:
        db.session.execute(update(Coupon).where(Coupon.id == red.coupon_id, Coupon.used > 0)
                           .values(used=Coupon.used - 1).execution_options(synchronize_session=False))
    db.session.expire(red)
    coupon = db.session.get(Coupon, red.coupon_id)
    if coupon is not None:
        db.session.expire(coupon)
    return done.rowcount == 1


def settle_order_coupons(order: Any, cart: Any) -> None:
    """``order_priced``: make the order hold exactly the coupon its pricing used.

    A coupon that was asked for but did not apply refuses the order: 409 when it is used
    up, 422 with the reason otherwise (the quote shows the same reason beforehand).
    """
    requested = normalise_code(cart.coupon_code)
    used = engine.applied_coupon(cart)
    if requested and used != requested:
        state = coupon_state(requested, order.customer_id, order.id)
        reason = engine.coupon_reason(cart, state)
        if "used up" in reason or "already used" in reason:
            raise Conflict(f"Coupon {requested} has been used up.", fields={"coupon_code": [reason]})
        raise ValidationError(f"Coupon {requested} cannot be used: {reason}.", fields={"coupon_code": [reason]})
    held = db.session.scalars(select(CouponRedemption).where(
        CouponRedemption.order_id == order.id, CouponRedemption.released_at.is_(None))).all()
    keep = False
    for red in held:
        if used and red.coupon.code == used and not keep:
            keep = True
        else:
            _release(red, "order re-priced")
    if used and not keep:
        claim_coupon(used, order.id, order.customer_id)


def order_status_changed(order: Any, marks: Sequence[str]) -> None:
    """Give coupon uses back when a transition marked ``cancelled`` happens (whatever the
    workflow file calls it: ``cancel``, ``void`` …)."""
    if "cancelled" in marks:
        release_order_coupons(order.id, "order cancelled")


def customer_merged(survivor_id: int, merged_id: int) -> None:
    """Per-customer coupon limits follow a merge: the merged customer's uses move over."""
    db.session.execute(update(CouponRedemption).where(CouponRedemption.customer_id == merged_id)
                       .values(customer_id=survivor_id).execution_options(synchronize_session=False))


# ---------------------------------------------------------------------------
# Effectiveness
# ---------------------------------------------------------------------------


def _campaign_used(campaign_id: int) -> bool:
    return bool(db.session.scalar(select(OrderAdjustment.id).where(
        OrderAdjustment.campaign_id == campaign_id).limit(1)))


def effectiveness(campaign: Campaign, user: Any) -> dict[str, Any]:
    """Orders, revenue, discount and gifts given, customers reached and the average order
    value of orders promoted by ``campaign`` against the other orders placed in the
    campaign's dates (company time zone). Orders and revenue follow the orders plugin's one
    definition of revenue (:mod:`plugins.orders.revenue`: paid, shipped or completed orders,
    total minus refunds), as the sales reports do; rows are limited to what ``user`` may see
    of orders."""
    lo, hi = utc_bounds(campaign.starts_on, campaign.ends_on)
    promoted_ids = select(OrderAdjustment.order_id).where(OrderAdjustment.campaign_id == campaign.id)
    refunds = refunds_subquery()
    base = (select(Order.id, Order.customer_id, Order.placed_at,
                   net_revenue(Order.total, refunds.c.refunded).label("total"))
            .outerjoin(refunds, refunds.c.order_id == Order.id).where(is_revenue(Order)))
    base = restrict(base, Order, user)
    sub = base.subquery()

    def agg(where: Any) -> tuple[int, Decimal, int]:
        row = db.session.execute(select(func.count(sub.c.id), func.coalesce(func.sum(sub.c.total), 0),
                                        func.count(func.distinct(sub.c.customer_id))).where(where)).one()
        return int(row[0] or 0), quantize(row[1] or 0), int(row[2] or 0)

    p_orders, p_revenue, p_customers = agg(sub.c.id.in_(promoted_ids))
    o_orders, o_revenue, o_customers = agg(and_(sub.c.id.not_in(promoted_ids), sub.c.placed_at >= lo,
                                                sub.c.placed_at < hi))
    adj = db.session.execute(
        select(OrderAdjustment.code, func.coalesce(func.sum(OrderAdjustment.amount), 0))
        .where(OrderAdjustment.campaign_id == campaign.id, OrderAdjustment.order_id.in_(select(sub.c.id)))
        .group_by(OrderAdjustment.code)).all()
    gift_value = quantize(sum((Decimal(a) for c, a in adj if c == "marketing.gift"), ZERO))
    discount = quantize(sum((Decimal(a) for c, a in adj if c != "marketing.gift"), ZERO))
    aov_p = quantize(p_revenue / p_orders) if p_orders else ZERO
    aov_o = quantize(o_revenue / o_orders) if o_orders else ZERO
    uplift = (quantize((aov_p - aov_o) / aov_o * 100) if aov_o else None)
    daily = db.session.execute(
        select(sub.c.placed_at, sub.c.total).where(sub.c.id.in_(promoted_ids))).all()
    per_day: dict[str, Decimal] = {}
    for placed_at, total in daily:
        key = local_date(placed_at).isoformat()
        per_day[key] = per_day.get(key, ZERO) + Decimal(total)
    spend = quantize(discount + gift_value)
    return {
        "campaign_id": campaign.id, "name": campaign.name, "starts_on": campaign.starts_on.isoformat(),
        "ends_on": campaign.ends_on.isoformat(),
        "currency": dovetail().config.currency,
        "orders": p_orders, "revenue": str(p_revenue), "discount_given": str(discount),
        "gift_value": str(gift_value), "customers_reached": p_customers,
        "average_order_value": str(aov_p), "other_orders": o_orders, "other_revenue": str(o_revenue),
        "other_customers": o_customers, "other_average_order_value": str(aov_o),
        "aov_uplift_percent": str(uplift) if uplift is not None else None,
        "budget": str(quantize(campaign.budget or 0)), "budget_used": str(spend),
        "budget_used_percent": str(quantize(spend / campaign.budget * 100)) if campaign.budget else None,
        "revenue_by_day": [{"day": k, "revenue": str(quantize(v))} for k, v in sorted(per_day.items())],
    }


def campaign_report(params: Mapping[str, Any], user: Any) -> tuple[list[str], list[list[Any]]]:
    """Report ``marketing.campaign_effectiveness``: one row per campaign (``status`` filter)."""
    stmt = select(Campaign).order_by(Campaign.starts_on.desc(), Campaign.id.desc())
    status = params.get("status")
    if status:
        if status not in CAMPAIGN_STATUSES:
            raise ValidationError("Unknown campaign status.",
                                  fields={"status": [f"One of: {', '.join(CAMPAIGN_STATUSES)}."]})
        stmt = stmt.where(Campaign.status == status)
    # message ids: the report page shows them translated, the API and downloads as they are
    columns = [N_("Campaign"), N_("Revenue"), N_("Orders"), N_("Discount given"), N_("Gift value"),
               N_("Customers reached"), N_("Average order value"), N_("Other orders' average value"),
               N_("Starts"), N_("Ends"), N_("Status")]
    rows = []
    for c in db.session.scalars(stmt.limit(500)):
        e = effectiveness(c, user)
        rows.append([c.name, Decimal(e["revenue"]), e["orders"], Decimal(e["discount_given"]),
                     Decimal(e["gift_value"]), e["customers_reached"], Decimal(e["average_order_value"]),
                     Decimal(e["other_average_order_value"]), c.starts_on, c.ends_on, MessageId(c.status)])
    return columns, rows


# ---------------------------------------------------------------------------
# Targeted lists
# ---------------------------------------------------------------------------


def audience_query(campaign: Campaign, user: Any, q: str | None = None) -> Any:
    """Customers of the campaign's segment who consented to marketing contact, within
    ``user``'s customer scope (``user`` None: all, for the CLI). No segment: an error."""
    if campaign.segment_id is None:
        raise ValidationError(f"Campaign '{campaign.name}' has no target segment; set segment_id first.",
                              fields={"segment_id": ["Required for a target list."]})
    if segment_name(campaign.segment_id) is None:
        raise NotFound(f"The target segment {campaign.segment_id} of campaign '{campaign.name}' no longer exists.")
    ids = segment_ids_query(campaign.segment_id)
    base = select(Customer) if user is None else select_for(Customer, "crm.customer.read", user)
    stmt = base.where(
        Customer.id.in_(ids), Customer.consent_marketing.is_(True))
    if q:
        stmt = stmt.where(or_(Customer.region.icontains(q, autoescape=True),
                              Customer.tier == q))
    return stmt.order_by(Customer.id)
