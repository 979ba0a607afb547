"""The one place this plugin reads other plugins (orders, catalog).

Everything performance needs from them is imported here, from their public modules
(``plugins.catalog.public``, ``plugins.orders.public``), so a change of their public API is
a change of this file only.
"""

from __future__ import annotations

from plugins.catalog.public import Category, Product
from plugins.orders.public import (
    Order,
    OrderLine,
    company_tz,
    day_start,
    is_revenue,
    net_revenue,
    refunds_subquery,
    to_local,
    unit_net,
)
from plugins.orders.public import settings as orders_settings

__all__ = ["Category", "Order", "OrderLine", "Product", "company_tz", "day_start", "is_revenue", "net_revenue",
           "orders_settings", "refunds_subquery", "to_local", "unit_net"]
