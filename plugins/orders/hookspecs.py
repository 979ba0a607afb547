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


# ---------------------------------------------------------------------------
# Order lifecycle reactions (called by orders; implement with optionalhook=True)
# ---------------------------------------------------------------------------


@hookspec
def order_created(order: Any, imported: bool) -> None:
    """A new order was saved (flushed, inside its transaction, not yet committed).

    ``order`` is the :class:`plugins.orders.models.Order` with its lines and adjustments
    (``id``, ``number``, ``customer_id``, ``owner_id``, ``status``, ``total``,
    ``discount_total``, ``currency``, ``placed_at``, ``lines``); read it, do not change it.
    ``imported`` is True for historical orders loaded by ``dovetail import orders`` (they
    may already be paid, completed or returned) when the plugin does not implement
    :func:`orders_imported`. Return nothing; raising rolls the creation back.
    """


@hookspec
def orders_imported(orders: list[Any]) -> None:
    """A batch of historical orders (up to 500) was saved by ``dovetail import orders``.

    Called once per batch, inside the batch's transaction. ``orders`` are read-only records
    with the saved values (:class:`plugins.orders.importer.ImportedOrder`: the attributes
    :func:`order_created` documents, ``lines`` and an empty ``adjustments``) rather than
    loaded :class:`~plugins.orders.models.Order` objects. Record what you keep per order in bulk (one statement per
    batch, not per order). A plugin implementing this hook is not called with
    ``order_created`` for imported orders; one that implements only ``order_created`` gets one
    call per order with ``imported=True``. Raising rolls the batch back.
    """


@hookspec
def order_status_changed(order: Any, from_state: str, to_state: str, transition: str,
                         marks: tuple[str, ...]) -> None:
    """The order workflow moved ``order`` from ``from_state`` to ``to_state``.

    Called inside the transition's transaction, after its actions ran and the order's
    timestamps were set. ``transition`` is the key in the workflow file and ``marks``
    what it means (``cancelled``, ``confirmed``, ``paid``, ``shipped``, ``completed``,
    ``returned``, declared as ``marks:`` in the file): react to marks, never to the
    transition's or state's name, which admins may rename. Return nothing; raising
    refuses the transition and rolls it back.
    """


@hookspec
def order_returned(order: Any, lines: list[tuple[Any, int]], returned_amount: Any,
                   return_request: Any) -> None:
    """Goods of ``order`` came back: ``lines`` are ``(order_line, quantity)`` of this return.

    ``returned_amount`` (``Decimal``) is what those units cost the customer after order
    discounts; ``return_request`` is the after-sales request (return workflow) or None for a
    whole-order return. Called once per return, inside its transaction, after the lines'
    ``returned_quantity`` were raised. Return nothing.
    """


@hookspec
def order_deleted(order: Any) -> None:
    """A draft ``order`` is about to be deleted (inside the deleting transaction).

    Give back whatever it held (coupon uses). Return nothing; raising keeps the order.
    """
