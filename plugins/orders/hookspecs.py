"""Hooks the orders plugin calls and other plugins implement.

Implement them with ``@hookimpl(optionalhook=True)`` so your plugin also starts
when orders is disabled. Every hook runs inside the order's transaction: raise a
:class:`core.errors.DovetailError` (``Conflict`` for "stock short", "coupon used up")
to refuse, and the whole operation rolls back — no half order, no stray reservation.
"""

from __future__ import annotations

from typing import Any

from core import hookspec


@hookspec
def order_price(cart: Any) -> None:
    """Adjust a :class:`plugins.orders.pricing.Cart` before totals are computed.

    Called for ``POST /orders/quote`` (nothing is written) and when an order is created
    or its lines change. Add line discounts, order-level ``Adjustment``s, gift lines, and
    a ``Consideration`` for every promotion looked at (applied or not, and why).
    """


@hookspec
def order_priced(order: Any, cart: Any) -> None:
    """The order was saved (flushed, not yet committed) with this pricing: claim what it
    used (coupon uses) atomically.

    Called after creation and again each time a draft's lines or coupon change (the
    order then holds its new pricing; release what it no longer uses). Raise
    ``Conflict`` when a limited resource is exhausted (two orders racing for the last
    coupon use: one wins); the order is then not saved at all.
    """


@hookspec
def order_reserve(order: Any) -> None:
    """Reserve stock for every line of ``order`` (on confirm). Raise ``Conflict`` if short.

    Runs inside the transition (action ``orders.reserve_stock``); the order row is locked.
    """


@hookspec
def order_release(order: Any) -> None:
    """Release the reservations of ``order`` (on cancel of a confirmed order).

    Only called when an ``order_reserve`` implementation took part in confirming it.
    """


@hookspec
def order_issue(order: Any) -> None:
    """Issue the stock of ``order`` (on shipment): reservations become issues."""


@hookspec
def order_return_received(order: Any, lines: list[tuple[Any, int]]) -> None:
    """Returned goods arrived: ``lines`` are ``(order_line, quantity)`` to put back in stock.

    For a whole-order return (order workflow) every unit not yet returned; for an
    after-sales return request (return workflow) the request's lines. Only called when
    the goods left through ``order_issue``.
    """


@hookspec(firstresult=True)
def order_availability(product_ids: list[int]) -> Any:
    """Return ``{product_id: available_quantity}`` for display; None when not tracked."""
