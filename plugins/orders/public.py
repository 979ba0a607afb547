"""The orders plugin's public API: everything other plugins may import from orders.

Other plugins import only this module (``from plugins.orders.public import Order``), at
module top, and only when they declare ``orders`` in ``depends`` or ``optional``; the
import-linter contracts in ``pyproject.toml`` enforce it. Anything not listed here is
internal and may change without notice. Plugins that only react to orders (inventory,
marketing's coupon bookkeeping) should prefer the hooks in ``plugins/orders/hookspecs.py``.
"""

from __future__ import annotations

from plugins.orders.models import Order, OrderAdjustment, OrderLine
from plugins.orders.pricing import Adjustment, Cart, CartLine, Consideration
from plugins.orders.revenue import REVENUE_DEFINITION, is_revenue, net_revenue, refunds_subquery
from plugins.orders.services import company_tz, create_order, day_start, settings, to_local, unit_net

__all__ = ["REVENUE_DEFINITION", "Adjustment", "Cart", "CartLine", "Consideration", "Order", "OrderAdjustment",
           "OrderLine", "company_tz", "create_order", "day_start", "is_revenue", "net_revenue", "refunds_subquery",
           "settings", "to_local", "unit_net"]
