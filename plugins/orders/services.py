"""Order domain logic: pricing, numbering, idempotent creation, draft edits, workflow
actions, domain events and the crm merge. Internal to orders: other plugins use
:mod:`plugins.orders.public`, which re-exports what they may call.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value

from core import audit, custom
from core.auth import scope_of
from core.db import db, quantize, utcnow
from core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from core.events import emit
from core.models import User
from core.scope import can_read_entity, get_for
from core.state import dovetail
from core.statemachine import machine_for
from plugins.catalog.public import Product
from plugins.crm.public import Customer
from plugins.crm.public import customer_snapshot as crm_customer_snapshot
from plugins.orders.models import (
    ZERO,
    Order,
    OrderAdjustment,
    OrderLine,
    OrderSequence,
    Payment,
    ReturnLine,
    ReturnRequest,
    Shipment,
)
from plugins.orders.pricing import Cart, CartLine

log = logging.getLogger("dovetail.plugins.orders")

#: What an order-workflow transition may mean (``marks:`` in the workflow file), each with the
#: timestamp column set the first time a transition carrying it happens. Behaviour keys on
#: these marks, never on transition or state names, which admins may rename.
MARKS = {"confirmed": "confirmed_at", "paid": "paid_at", "shipped": "shipped_at",
         "completed": "completed_at", "cancelled": "cancelled_at", "returned": "returned_at"}
MARK_HELP = {"confirmed": "confirms the order", "paid": "records its payment",
             "shipped": "ships it", "completed": "completes it",
             "cancelled": "cancels it (coupon uses and reservations are given back)",
             "returned": "takes it back (not counted as sales)"}
#: the string event types orders emits for integrations (webhooks, logs).
EVENT_CREATED, EVENT_STATUS_CHANGED = "orders.order.created", "orders.order.status_changed"
EVENT_RETURNED, EVENT_DELETED = "orders.order.returned", "orders.order.deleted"
MAX_LINES = 500
MAX_QUANTITY = 100_000


def settings() -> Mapping[str, Any]:
    """This plugin's validated settings (``return_window_days``, ``currency``)."""
    return dovetail().settings("orders")


def company_tz() -> ZoneInfo:
    """The company's time zone (``timezone`` in dovetail.yaml): days, months and number years."""
    try:
        return ZoneInfo(dovetail().config.timezone)
    except Exception:  # noqa: BLE001 - an unknown zone name falls back to UTC
        return ZoneInfo("UTC")


def to_local(value: datetime | None) -> datetime | None:
    """A stored (naive UTC) time as naive local time of the company."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC).astimezone(company_tz()).replace(tzinfo=None)


def to_utc(value: datetime) -> datetime:
    """A naive local time of the company as naive UTC (how times are stored)."""
    return value.replace(tzinfo=company_tz()).astimezone(UTC).replace(tzinfo=None)


def day_start(day: date) -> datetime:
    """Local midnight of ``day`` in UTC: ``placed_at >= day_start(d1)``, ``< day_start(d2 + 1)``."""
    return to_utc(datetime.combine(day, time.min))


def _hook() -> Any:
    return dovetail().pm.hook


def _has_impl(name: str) -> bool:
    caller = getattr(_hook(), name, None)
    return bool(caller and caller.get_hookimpls())


# ---------------------------------------------------------------------------
# Numbers
# ---------------------------------------------------------------------------


def allocate_number(prefix: str = "SO", year: int | None = None) -> str:
    """The next ``SO-<year>-<6 digits>``; the sequence row stays locked until commit."""
    year = year or to_local(utcnow()).year
    for _attempt in range(3):
        seq = OrderSequence.__table__.c
        last = db.session.execute(update(OrderSequence.__table__).where(seq.prefix == prefix, seq.year == year)
                                  .values(last=seq.last + 1).returning(seq.last)).scalar()
        if last is not None:
            return f"{prefix}-{year}-{last:06d}"
        try:
            with db.session.begin_nested():
                db.session.add(OrderSequence(prefix=prefix, year=year, last=1))
            return f"{prefix}-{year}-{1:06d}"
        except IntegrityError:  # another writer created the row first: use it
            continue
    raise Conflict("Could not allocate an order number; please retry.")


# ---------------------------------------------------------------------------
# Input checks
# ---------------------------------------------------------------------------


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def parse_lines(raw: Any) -> list[tuple[int, int]]:
    """``[{"product_id", "quantity"}]`` → ``[(product_id, quantity)]`` or a field error."""
    if not isinstance(raw, list) or not raw:
        raise ValidationError("An order needs at least one line.",
                              fields={"lines": ["At least one line is required."]})
    if len(raw) > MAX_LINES:
        raise ValidationError(f"An order has at most {MAX_LINES} lines.",
                              fields={"lines": [f"At most {MAX_LINES} lines."]})
    errors: dict[str, Any] = {}
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping):
            errors[str(i)] = {"_schema": ["Each line is an object with product_id and quantity."]}
            continue
        line_err: dict[str, list[str]] = {}
        pid, qty = _int(item.get("product_id")), _int(item.get("quantity"))
        unknown = set(item) - {"product_id", "quantity"}
        for key in sorted(unknown):
            line_err[key] = ["Unknown field."]
        if pid is None or pid < 1:
            line_err["product_id"] = ["A product id (integer) is required."]
        if qty is None:
            line_err["quantity"] = ["A whole quantity is required."]
        elif qty < 1 or qty > MAX_QUANTITY:
            line_err["quantity"] = [f"Must be between 1 and {MAX_QUANTITY}."]
        if line_err:
            errors[str(i)] = line_err
        else:
            out.append((pid, qty))
    if errors:
        raise ValidationError("Some order lines are invalid.", fields={"lines": errors})
    return out


def _customer_model() -> Any:
    return Customer


def resolve_customer(customer_id: Any, user: User) -> Any:
    """The customer, if ``user`` may see it (crm scope); else a field error."""
    cid = _int(customer_id)
    if cid is None:
        raise ValidationError("customer_id is required.",
                              fields={"customer_id": ["A customer id (integer) is required."]})
    try:
        return get_for(_customer_model(), cid, None, user)
    except NotFound:
        raise ValidationError(f"No customer with id {cid} that you may see.",
                              fields={"customer_id": [f"No customer with id {cid}."]}) from None


def customer_snapshot(customer: Any) -> dict[str, Any]:
    if customer is None:
        return {"id": None, "tier": None, "tags": [], "region": None, "owner_id": None}
    return dict(crm_customer_snapshot(customer))


def resolve_owner(owner_id: Any, user: User) -> int:
    """Default owner is the current user; a rep creates only for themselves."""
    if owner_id in (None, "", user.id):
        return user.id
    oid = _int(owner_id)
    if oid is None:
        raise ValidationError("owner_id must be a user id.", fields={"owner_id": ["Not a user id."]})
    if oid == user.id:
        return oid
    scope = scope_of(user)
    if scope == "own":
        raise PermissionDenied("You may create and keep orders only for yourself.")
    owner = db.session.get(User, oid)
    if owner is None or not owner.active:
        raise ValidationError(f"No active user with id {oid}.", fields={"owner_id": ["Unknown user."]})
    if scope == "team" and owner.team_id != user.team_id:
        raise ValidationError("The owner must be a member of your team.",
                              fields={"owner_id": ["Not in your team."]})
    return oid


# ---------------------------------------------------------------------------
# Pricing
# ---------------------------------------------------------------------------


def _products(ids: Sequence[int]) -> dict[int, Any]:
    rows = db.session.scalars(select(Product).where(Product.id.in_(set(ids)))).all()
    return {p.id: p for p in rows}


def build_cart(lines: list[tuple[int, int]], customer: Any, coupon_code: str | None = None,
               currency: str | None = None, at: datetime | None = None,
               products: Mapping[int, Any] | None = None) -> Cart:
    """A cart with unit prices copied from the products now (inactive products refused);
    ``products`` (id → product) when the caller already loaded them."""
    if products is None:
        products = _products([pid for pid, _q in lines])
    errors: dict[str, Any] = {}
    cart_lines = []
    for i, (pid, qty) in enumerate(lines):
        p = products.get(pid)
        if p is None:
            errors[str(i)] = {"product_id": [f"No product with id {pid}."]}
            continue
        if not p.active:
            errors[str(i)] = {"product_id": [f"Product {p.sku} is not sold any more (inactive)."]}
            continue
        cart_lines.append(CartLine(product_id=p.id, sku=p.sku, name=p.name, category_id=p.category_id,
                                   quantity=qty, unit_price=quantize(p.price)))
    if errors:
        raise ValidationError("Some order lines are invalid.", fields={"lines": errors})
    return Cart(customer=customer_snapshot(customer), lines=cart_lines,
                currency=currency or settings().get("currency", "CNY"),
                coupon_code=(coupon_code or None), at=at or utcnow())


def price_cart(cart: Cart) -> dict[str, Decimal]:
    """Let pricing plugins adjust ``cart`` (``order_price``), then total it to the fen."""
    _hook().order_price(cart=cart)
    for ln in cart.lines:
        ln.line_discount = quantize(ln.line_discount)
        if ln.line_discount < 0 or ln.line_discount > ln.gross:
            raise Conflict(f"A pricing plugin set an impossible discount {ln.line_discount} on "
                           f"{ln.sku} (gross {ln.gross}).")
    return cart.totals()


def cart_dict(cart: Cart, totals: Mapping[str, Decimal]) -> dict[str, Any]:
    return {
        "currency": cart.currency, "coupon_code": cart.coupon_code,
        "lines": [{"product_id": ln.product_id, "sku": ln.sku, "name": ln.name,
                   "category_id": ln.category_id, "quantity": ln.quantity,
                   "unit_price": str(ln.unit_price), "line_discount": str(ln.line_discount),
                   "line_total": str(ln.line_total), "is_gift": ln.is_gift,
                   "promotion_id": ln.promotion_id} for ln in cart.lines],
        "adjustments": [{"promotion_id": a.promotion_id, "campaign_id": a.campaign_id, "code": a.code,
                         "label": a.label, "amount": str(quantize(a.amount)), "line_index": a.line_index,
                         "coupon_code": a.coupon_code} for a in cart.adjustments],
        "considered": [{"promotion_id": c.promotion_id, "label": c.label, "applied": c.applied,
                        "reason": c.reason, "amount": str(quantize(c.amount))} for c in cart.considered],
        **{k: str(v) for k, v in totals.items()},
    }


def quote(data: Mapping[str, Any], user: User) -> dict[str, Any]:
    """Price a cart without writing anything (promotions considered included)."""
    lines = parse_lines(data.get("lines"))
    customer = resolve_customer(data["customer_id"], user) if data.get("customer_id") is not None else None
    cart = build_cart(lines, customer, _coupon(data.get("coupon_code")), data.get("currency"))
    totals = price_cart(cart)
    out = cart_dict(cart, totals)
    avail = _hook().order_availability(product_ids=[ln.product_id for ln in cart.lines])
    if avail is not None:
        for ln in out["lines"]:
            ln["available"] = avail.get(ln["product_id"])
    return out


def _coupon(raw: Any) -> str | None:
    if raw in (None, ""):
        return None
    if not isinstance(raw, str) or len(raw.strip()) > 64:
        raise ValidationError("Invalid coupon code.", fields={"coupon_code": ["At most 64 characters."]})
    return raw.strip()


def _costs(product_ids: set[int], known: Mapping[int, Any] | None = None) -> dict[int, Decimal]:
    """Unit cost per product: from ``known`` (the products pricing loaded), one SELECT for
    the rest (a gift product a promotion added)."""
    known = known or {}
    costs: dict[int, Decimal] = {pid: known[pid].cost for pid in product_ids if pid in known}
    rest = product_ids - set(costs)
    if rest:
        costs.update(db.session.execute(select(Product.id, Product.cost).where(Product.id.in_(rest))).all())
    return costs


def _line_rows(cart: Cart, products: Mapping[int, Any] | None = None) -> list[dict[str, Any]]:
    costs = _costs({ln.product_id for ln in cart.lines}, products)
    return [dict(position=i, product_id=ln.product_id, sku=ln.sku, name=ln.name, category_id=ln.category_id,
                 quantity=ln.quantity, unit_price=quantize(ln.unit_price),
                 unit_cost=quantize(costs.get(ln.product_id) or ZERO), line_discount=ln.line_discount,
                 line_total=ln.line_total, is_gift=ln.is_gift, promotion_id=ln.promotion_id)
            for i, ln in enumerate(cart.lines)]


def _adjustment_rows(cart: Cart) -> list[dict[str, Any]]:
    return [dict(promotion_id=a.promotion_id, campaign_id=a.campaign_id, code=(a.code or "")[:64],
                 label=(a.label or "")[:200], amount=quantize(a.amount), line_index=a.line_index,
                 coupon_code=a.coupon_code) for a in cart.adjustments]


def _set_totals(order: Order, cart: Cart, totals: Mapping[str, Decimal]) -> None:
    order.subtotal, order.discount_total, order.total = (totals["subtotal"], totals["discount_total"],
                                                         totals["total"])
    order.coupon_code = cart.coupon_code
    order.currency = cart.currency


def _apply_cart(order: Order, cart: Cart, totals: Mapping[str, Decimal]) -> None:
    """Replace a saved order's lines and adjustments with the cart's (a draft edit)."""
    order.lines.clear()
    order.adjustments.clear()
    db.session.flush()
    for row in _line_rows(cart):
        order.lines.append(OrderLine(**row))
    for row in _adjustment_rows(cart):
        order.adjustments.append(OrderAdjustment(**row))
    _set_totals(order, cart, totals)


def _insert_cart(order: Order, cart: Cart, products: Mapping[int, Any]) -> None:
    """Write a new (just inserted) order's lines and adjustments, each in one multi-row INSERT,
    and hand the order its collections as loaded (a new order has no payments or shipments),
    so reading them later in this transaction costs no query."""
    now = utcnow()
    stamp = {"order_id": order.id, "created_at": now, "updated_at": now}
    lines: list[OrderLine] = []
    if cart.lines:
        lines = list(db.session.scalars(insert(OrderLine).returning(OrderLine),
                                        [{**row, **stamp} for row in _line_rows(cart, products)]))
    adjustments: list[OrderAdjustment] = []
    rows = _adjustment_rows(cart)
    if rows:
        adjustments = list(db.session.scalars(insert(OrderAdjustment).returning(OrderAdjustment),
                                              [{**row, **stamp} for row in rows]))
    set_committed_value(order, "lines", sorted(lines, key=lambda ln: ln.position))
    set_committed_value(order, "adjustments", sorted(adjustments, key=lambda a: a.id))
    set_committed_value(order, "payments", [])
    set_committed_value(order, "shipments", [])
    for obj in (*lines, *adjustments):
        set_committed_value(obj, "order", order)


# ---------------------------------------------------------------------------
# Create / update / delete
# ---------------------------------------------------------------------------


def body_hash(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str, separators=(",", ":"))
                          .encode()).hexdigest()


def _by_key(user_id: int, key: str) -> Order | None:
    return db.session.scalar(select(Order).where(Order.created_by_id == user_id,
                                                 Order.idempotency_key == key))


def _replay(existing: Order, digest: str, key: str) -> Order:
    if existing.idempotency_hash != digest:
        raise Conflict(f"Idempotency-Key '{key}' was already used for order {existing.number} "
                       "with a different request body; use a new key for a new order.",
                       fields={"Idempotency-Key": ["Already used with another body."]})
    return existing


def create_order(data: Mapping[str, Any], user: User, *, idempotency_key: str | None = None,
                 before_commit: Callable[[Order], Any] | None = None) -> tuple[Order, bool]:
    """Create a draft order; returns ``(order, created)``. Commits.

    With ``idempotency_key`` the same key and body returns the first order
    (``created`` False); the same key with another body is a 409. ``before_commit(order)``
    runs on a new order just before the commit, in the same transaction: the API builds
    its response there from the objects it has, instead of reloading them after the commit.
    """
    key = (idempotency_key or "").strip() or None
    if key is not None and len(key) > 128:
        raise ValidationError("Idempotency-Key is at most 128 characters.",
                              fields={"Idempotency-Key": ["At most 128 characters."]})
    digest = body_hash(data)
    user_id = user.id
    if key:
        existing = _by_key(user_id, key)
        if existing is not None:
            return _replay(existing, digest, key), False
    allowed = {"customer_id", "lines", "coupon_code", "custom", "owner_id", "notes", "currency"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ValidationError("Unknown fields.", fields={k: ["Unknown field."] for k in unknown})
    lines = parse_lines(data.get("lines"))
    customer = resolve_customer(data.get("customer_id"), user)
    owner_id = resolve_owner(data.get("owner_id"), user)
    currency = data.get("currency") or settings().get("currency", "CNY")
    if not isinstance(currency, str) or len(currency) != 3 or not currency.isalpha():
        raise ValidationError("Currency is a 3-letter code.", fields={"currency": ["Use a code like CNY."]})
    values = custom.validate("order", data.get("custom"), user)
    notes = data.get("notes")
    if notes is not None and (not isinstance(notes, str) or len(notes) > 4000):
        raise ValidationError("Notes are text of at most 4000 characters.",
                              fields={"notes": ["At most 4000 characters."]})
    products = _products([pid for pid, _q in lines])
    cart = build_cart(lines, customer, _coupon(data.get("coupon_code")), currency.upper(), products=products)
    totals = price_cart(cart)
    now = utcnow()
    try:
        order = Order(number=allocate_number("SO", to_local(now).year), customer_id=customer.id, owner_id=owner_id,
                      status=_initial_state(), placed_at=now, idempotency_key=key,
                      idempotency_hash=digest if key else None, custom=values, notes=notes,
                      created_by_id=user_id)
        _set_totals(order, cart, totals)
        db.session.add(order)
        db.session.flush()  # the unique (creator, key) check happens here
    except IntegrityError:
        db.session.rollback()
        existing = _by_key(user_id, key) if key else None
        if existing is None:
            raise Conflict("The order could not be saved because of a concurrent change; retry.") from None
        return _replay(existing, digest, key), False
    _insert_cart(order, cart, products)
    _hook().order_priced(order=order, cart=cart)
    announce_created(order)
    if before_commit is not None:
        before_commit(order)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        existing = _by_key(user_id, key) if key else None
        if existing is None:
            raise
        return _replay(existing, digest, key), False
    return order, True


def _initial_state() -> str:
    try:
        return machine_for("order").initial
    except StopIteration:
        return "draft"


def draft_state() -> str:
    """The initial state of the order workflow in force (where orders may still be edited)."""
    return _initial_state()


def _require_draft(order: Order, doing: str) -> None:
    initial = _initial_state()
    if order.status != initial:
        raise Conflict(f"Order {order.number} is {order.status}; only a {initial} order can be {doing}.")


def update_order(order: Order, data: Mapping[str, Any], user: User) -> Order:
    """Change a draft's lines, coupon, custom values or notes; re-prices. Caller commits."""
    allowed = {"lines", "coupon_code", "custom", "notes"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ValidationError("Only lines, coupon_code, custom and notes can be changed.",
                              fields={k: ["Cannot be changed."] for k in unknown})
    _require_draft(order, "changed")
    if "custom" in data:
        order.custom = custom.validate("order", data.get("custom"), user, existing=order.custom,
                                       partial=True)
    if "notes" in data:
        notes = data["notes"]
        if notes is not None and (not isinstance(notes, str) or len(notes) > 4000):
            raise ValidationError("Notes are text of at most 4000 characters.",
                                  fields={"notes": ["At most 4000 characters."]})
        order.notes = notes
    if "lines" in data or "coupon_code" in data:
        if "lines" in data:
            lines = parse_lines(data["lines"])
        else:
            lines = [(ln.product_id, ln.quantity) for ln in order.lines if not ln.is_gift]
        coupon = _coupon(data["coupon_code"]) if "coupon_code" in data else order.coupon_code
        customer = db.session.get(_customer_model(), order.customer_id)
        cart = build_cart(lines, customer, coupon, order.currency)
        totals = price_cart(cart)
        _apply_cart(order, cart, totals)
        db.session.flush()
        _hook().order_priced(order=order, cart=cart)
    return order


def delete_order(order: Order) -> None:
    """Delete a draft (nothing was reserved, paid or shipped). Caller commits."""
    _require_draft(order, "deleted")
    if db.session.scalar(select(func.count()).select_from(ReturnRequest)
                         .where(ReturnRequest.order_id == order.id)):
        raise Conflict(f"Order {order.number} has returns and cannot be deleted.")
    _hook().order_deleted(order=order)  # marketing gives the coupon use back
    emit(EVENT_DELETED, **event_payload(order))
    db.session.delete(order)


def announce_created(order: Order, *, imported: bool = False) -> None:
    """Tell other plugins (``order_created``) and integrations that ``order`` was saved."""
    db.session.flush()
    _hook().order_created(order=order, imported=imported)
    emit(EVENT_CREATED, **event_payload(order), **({"imported": True} if imported else {}))


def _machine() -> Any:
    return machine_for("order")


def non_sales_states() -> frozenset[str]:
    """Order statuses that are not sales: the initial (draft) state and the states reached by
    transitions marked ``cancelled`` or ``returned`` in the workflow in force."""
    machine = _machine()
    return frozenset({machine.initial}) | machine.states_marked("cancelled", "returned")


def returnable_states() -> frozenset[str]:
    """Statuses an after-sales return may start from: reached by ``shipped``/``completed`` marks."""
    return _machine().states_marked("shipped", "completed")


# ---------------------------------------------------------------------------
# Events and guard context
# ---------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def event_payload(order: Order, lines: list[tuple[OrderLine, int]] | None = None) -> dict[str, Any]:
    """The payload of the ``orders.order.*`` integration events (plain data)."""
    if lines is None:
        lines = [(ln, ln.quantity) for ln in order.lines]
    promo = sorted({a.promotion_id for a in order.adjustments if a.promotion_id is not None}
                   | {ln.promotion_id for ln in order.lines if ln.promotion_id is not None})
    return {
        "order_id": order.id, "number": order.number, "customer_id": order.customer_id,
        "owner_id": order.owner_id, "status": order.status, "total": str(order.total),
        "discount_total": str(order.discount_total), "currency": order.currency,
        "placed_at": _iso(order.placed_at),
        "lines": [{"product_id": ln.product_id, "sku": ln.sku, "quantity": qty,
                   "line_total": str(ln.line_total if qty == ln.quantity
                                     else quantize(ln.line_total * qty / ln.quantity))}
                  for ln, qty in lines],
        "promotion_ids": promo,
    }


ORDER_CONTEXT = ("id", "number", "status", "total", "subtotal", "discount_total", "currency",
                 "placed_at", "confirmed_at", "paid_at", "shipped_at", "completed_at", "cancelled_at",
                 "customer_id", "owner_id", "line_count", "quantity", "return_window_days",
                 "coupon_code", "paid_amount", "refunded_amount", "custom")
RETURN_CONTEXT = ("id", "number", "status", "order_id", "refund_amount", "quantity", "line_count",
                  "requested_at")


def _order_values(order: Order) -> dict[str, Any]:
    paid, refunded = money_in_out(order)
    return {
        "id": order.id, "number": order.number, "status": order.status, "total": order.total,
        "subtotal": order.subtotal, "discount_total": order.discount_total, "currency": order.currency,
        "placed_at": order.placed_at, "confirmed_at": order.confirmed_at, "paid_at": order.paid_at,
        "shipped_at": order.shipped_at, "completed_at": order.completed_at,
        "cancelled_at": order.cancelled_at, "customer_id": order.customer_id, "owner_id": order.owner_id,
        "line_count": len([ln for ln in order.lines if not ln.is_gift]),
        "quantity": sum(ln.quantity for ln in order.lines),
        "return_window_days": int(settings().get("return_window_days", 30)),
        "coupon_code": order.coupon_code, "paid_amount": paid, "refunded_amount": refunded,
        "custom": dict(order.custom or {}),
    }


def order_context(order: Order) -> dict[str, Any]:
    """Plain read-only values for workflow guards (``order.total``, ``order.shipped_at`` …)."""
    return {"order": _order_values(order)}


def return_context(req: ReturnRequest) -> dict[str, Any]:
    return {"return": {"id": req.id, "number": req.number, "status": req.status,
                       "order_id": req.order_id, "refund_amount": req.refund_amount,
                       "quantity": sum(rl.quantity for rl in req.lines), "line_count": len(req.lines),
                       "requested_at": req.requested_at},
            "order": _order_values(req.order)}


def money_in_out(order: Order) -> tuple[Decimal, Decimal]:
    paid = sum((p.amount for p in order.payments if p.kind == "payment"), ZERO)
    refunded = sum((p.amount for p in order.payments if p.kind == "refund"), ZERO)
    return quantize(paid), quantize(refunded)


def refundable_amount(order: Order) -> Decimal:
    paid, refunded = money_in_out(order)
    return quantize(max(paid - refunded, ZERO))


def after_transition(order: Order, transition: str, from_state: str, to_state: str,
                     marks: Sequence[str]) -> None:
    """Stamp the order's times by the transition's marks, then announce the change
    (``order_status_changed`` for plugins, ``orders.order.status_changed`` for integrations)."""
    for mark in marks:
        col = MARKS.get(mark)
        if col and getattr(order, col) is None:
            setattr(order, col, utcnow())
    db.session.flush()
    _hook().order_status_changed(order=order, from_state=from_state, to_state=to_state,
                                 transition=transition, marks=tuple(marks))
    emit(EVENT_STATUS_CHANGED, **event_payload(order), from_status=from_state, transition=transition,
         marks=list(marks))


# ---------------------------------------------------------------------------
# Workflow actions (``orders.*``); each runs inside the transition's transaction
# ---------------------------------------------------------------------------


def _order_of(record: Any) -> Order:
    return record if isinstance(record, Order) else record.order


def action_reserve(record: Any, ctx: Any) -> None:
    order = _order_of(record)
    _hook().order_reserve(order=order)
    if _has_impl("order_reserve"):
        order.stock_state = "reserved"


def action_release(record: Any, ctx: Any) -> None:
    order = _order_of(record)
    if order.stock_state == "reserved":
        _hook().order_release(order=order)
        order.stock_state = "released"


def action_issue(record: Any, ctx: Any) -> None:
    order = _order_of(record)
    _hook().order_issue(order=order)
    if _has_impl("order_issue"):
        order.stock_state = "issued"


def unit_net(line: OrderLine, order: Order) -> Decimal:
    """What one unit of ``line`` actually cost the customer (order discounts spread)."""
    if line.is_gift or not line.quantity:
        return ZERO
    lines_total = sum((ln.line_total for ln in order.lines if not ln.is_gift), ZERO)
    factor = (order.total / lines_total) if lines_total else Decimal(0)
    return line.line_total / line.quantity * factor


def action_receive_return(record: Any, ctx: Any) -> None:
    """Goods came back: mark returned quantities and hand them to ``order_return_received``."""
    order = _order_of(record)
    if isinstance(record, ReturnRequest):
        pairs = [(rl.order_line, rl.quantity) for rl in record.lines]
        for ln, qty in pairs:
            if ln.returned_quantity + qty > ln.quantity:
                raise Conflict(f"Cannot receive {qty} × {ln.sku} for {record.number}: only "
                               f"{ln.quantity - ln.returned_quantity} of {ln.quantity} are not yet returned.")
        record.received_at = utcnow()
    else:
        pairs = [(ln, ln.quantity - ln.returned_quantity) for ln in order.lines
                 if ln.quantity > ln.returned_quantity]
    if not pairs:
        raise Conflict(f"Nothing left to return on order {order.number}.")
    for ln, qty in pairs:
        ln.returned_quantity += qty
    if order.stock_state == "issued":
        _hook().order_return_received(order=order, lines=pairs)
    db.session.flush()
    amount = quantize(sum((unit_net(ln, order) * q for ln, q in pairs), ZERO))
    request = record if isinstance(record, ReturnRequest) else None
    _hook().order_returned(order=order, lines=pairs, returned_amount=amount, return_request=request)
    emit(EVENT_RETURNED, **event_payload(order, pairs), return_id=request.id if request else None,
         returned_amount=str(amount))


def action_record_payment(record: Any, ctx: Any) -> None:
    order = _order_of(record)
    paid, refunded = money_in_out(order)
    outstanding = quantize(order.total - paid)
    if outstanding <= 0:
        raise Conflict(f"Order {order.number} is already paid in full.")
    amount = ctx.inputs.get("amount")
    if amount is not None:
        amount = quantize(amount)
        if amount != outstanding:
            raise ValidationError(f"The payment must cover the outstanding {outstanding} {order.currency} "
                                  f"of order {order.number}.",
                                  fields={"amount": [f"Must be {outstanding}."]})
    db.session.add(Payment(order=order, kind="payment", amount=outstanding,
                           method=str(ctx.inputs.get("method") or "other"),
                           reference=ctx.inputs.get("reference"), paid_at=utcnow(),
                           created_by_id=getattr(ctx.user, "id", None)))


def action_record_shipment(record: Any, ctx: Any) -> None:
    order = _order_of(record)
    carrier, tracking = ctx.inputs.get("carrier"), ctx.inputs.get("tracking_no")
    if not carrier or not tracking:
        raise ValidationError(f"Shipping order {order.number} needs a carrier and a tracking number.",
                              fields={k: ["Required for this transition."] for k, v in
                                      (("carrier", carrier), ("tracking_no", tracking)) if not v})
    db.session.add(Shipment(order=order, carrier=str(carrier), tracking_no=str(tracking),
                            shipped_at=utcnow(), created_by_id=getattr(ctx.user, "id", None)))


def action_record_refund(record: Any, ctx: Any) -> None:
    """Refund what the customer paid for the returned goods (nothing when never paid)."""
    order = _order_of(record)
    available = refundable_amount(order)
    if isinstance(record, ReturnRequest):
        wanted = quantize(sum((rl.amount for rl in record.lines), ZERO))
    else:
        wanted = available
    amount = min(wanted, available)
    if isinstance(record, ReturnRequest):
        record.refund_amount = amount
        record.refunded_at = utcnow()
    if amount > 0:
        db.session.add(Payment(order=order, kind="refund", amount=amount,
                               method=str(ctx.inputs.get("method") or "other"),
                               return_id=record.id if isinstance(record, ReturnRequest) else None,
                               paid_at=utcnow(), created_by_id=getattr(ctx.user, "id", None)))


# ---------------------------------------------------------------------------
# Returns (after-sales, partial)
# ---------------------------------------------------------------------------



def create_return(data: Mapping[str, Any], user: User) -> ReturnRequest:
    """Request the return of some lines of a shipped order within the window. Caller commits."""
    unknown = sorted(set(data) - {"order_id", "lines", "reason"})
    if unknown:
        raise ValidationError("Unknown fields.", fields={k: ["Unknown field."] for k in unknown})
    oid = _int(data.get("order_id"))
    if oid is None:
        raise ValidationError("order_id is required.", fields={"order_id": ["Required."]})
    try:
        order = get_for(Order, oid, "orders.order.read", user)
    except NotFound:
        raise ValidationError(f"No order with id {oid}.", fields={"order_id": [f"No order with id {oid}."]}) \
            from None
    if order.status not in returnable_states() or order.shipped_at is None:
        raise Conflict(f"Order {order.number} is {order.status}; only shipped or completed orders "
                       "can be returned.")
    window = int(settings().get("return_window_days", 30))
    if (utcnow() - order.shipped_at).days > window:
        raise Conflict(f"The {window}-day return window of order {order.number} has closed "
                       f"(shipped {order.shipped_at:%Y-%m-%d}).")
    reason = data.get("reason") or ""
    if not isinstance(reason, str) or len(reason) > 2000:
        raise ValidationError("Reason is text of at most 2000 characters.", fields={"reason": ["Too long."]})
    raw = data.get("lines")
    if not isinstance(raw, list) or not raw:
        raise ValidationError("A return needs at least one line.", fields={"lines": ["At least one line."]})
    by_id = {ln.id: ln for ln in order.lines}
    pending = dict(db.session.execute(
        select(ReturnLine.order_line_id, func.sum(ReturnLine.quantity)).join(ReturnRequest)
        .where(ReturnRequest.order_id == order.id, ReturnRequest.status.in_(("requested", "approved")))
        .group_by(ReturnLine.order_line_id)).all())
    errors: dict[str, Any] = {}
    req = ReturnRequest(number=allocate_number("RT"), order=order, status=_initial_return_state(),
                        reason=reason, requested_at=utcnow(), created_by_id=user.id)
    seen: set[int] = set()
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping):
            errors[str(i)] = {"_schema": ["Each line is an object with order_line_id and quantity."]}
            continue
        lid, qty = _int(item.get("order_line_id")), _int(item.get("quantity"))
        ln = by_id.get(lid) if lid is not None else None
        if ln is None:
            errors[str(i)] = {"order_line_id": [f"Order {order.number} has no line {lid}."]}
            continue
        if lid in seen:
            errors[str(i)] = {"order_line_id": ["Listed twice."]}
            continue
        seen.add(lid)
        left = ln.quantity - ln.returned_quantity - int(pending.get(lid) or 0)
        if qty is None or qty < 1:
            errors[str(i)] = {"quantity": ["A whole quantity of at least 1 is required."]}
        elif qty > left:
            errors[str(i)] = {"quantity": [f"At most {left} of {ln.sku} can still be returned."]}
        else:
            req.lines.append(ReturnLine(order_line_id=ln.id, order_line=ln, quantity=qty,
                                        amount=quantize(unit_net(ln, order) * qty)))
    if errors:
        raise ValidationError("Some return lines are invalid.", fields={"lines": errors})
    req.refund_amount = quantize(sum((rl.amount for rl in req.lines), ZERO))
    db.session.add(req)
    db.session.flush()
    return req


def _initial_return_state() -> str:
    try:
        return machine_for("return").initial
    except StopIteration:
        return "requested"


# ---------------------------------------------------------------------------
# crm merge
# ---------------------------------------------------------------------------


def move_orders(survivor_id: int, merged_id: int) -> int:
    """Move every order of customer ``merged_id`` to ``survivor_id``; one audit entry each."""
    ids = db.session.scalars(select(Order.id).where(Order.customer_id == merged_id)).all()
    if not ids:
        return 0
    db.session.execute(update(Order).where(Order.id.in_(ids)).values(customer_id=survivor_id)
                       .execution_options(synchronize_session="fetch"))
    for oid in ids:
        audit.record(db.session, "update", "orders_order", oid, before={"customer_id": merged_id},
                     after={"customer_id": survivor_id}, note="customer merged")
    return len(ids)


def can_read_customer_names(user: User) -> bool:
    """Whether ``user`` may see customers' personal fields (crm declares the right; core.scope checks it)."""
    return can_read_entity("crm.customer", user)
