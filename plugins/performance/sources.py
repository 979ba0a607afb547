"""The one place this plugin reads other plugins (orders, catalog).

Everything performance needs from them is imported here, so a change of their public
API is a change of this file only. Items not (yet) listed in the orders plugin's
declared public API (``plugins.orders.services`` docstring) are marked; see the README
("What we need from other plugins").
"""

from __future__ import annotations

from plugins.catalog.models import Category, Product
from plugins.orders.models import Order, OrderLine
from plugins.orders.services import (  # not in orders' declared public API: see README
    company_tz,
    day_start,
    to_local,
    unit_net,
)
from plugins.orders.services import settings as orders_settings

__all__ = ["Category", "Order", "OrderLine", "Product", "company_tz", "day_start", "orders_settings",
           "to_local", "unit_net"]
