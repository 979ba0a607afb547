"""Hooks the crm plugin calls and other plugins implement.

Implement them with ``@hookimpl(optionalhook=True)`` so your plugin also starts when
crm is disabled (it never is when you depend on it, but the marker keeps pluggy's
check quiet when the spec is absent).
"""

from __future__ import annotations

from core import hookspec


@hookspec
def customer_merged(survivor_id: int, merged_id: int) -> None:
    """Customer ``merged_id`` is being merged into ``survivor_id``.

    Called inside the merge transaction, after crm moved its own rows (contacts,
    activities, purchase history, leads) and before the merged customer is deleted:
    move every row of yours that references ``merged_id`` to ``survivor_id`` (orders
    moves the customer's orders). Raise a :class:`core.errors.DovetailError` to refuse
    the merge; everything rolls back.
    """
