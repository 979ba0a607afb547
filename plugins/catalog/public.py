"""The catalog plugin's public API: everything other plugins may import from catalog.

Other plugins import only this module (``from plugins.catalog.public import Product``), at
module top, and only when they declare ``catalog`` in ``depends`` or ``optional``; the
import-linter contracts in ``pyproject.toml`` enforce it. Anything not listed here is
internal and may change without notice.
"""

from __future__ import annotations

from plugins.catalog.models import Category, Product
from plugins.catalog.services import can_read_cost
from plugins.catalog.web import run_upload

__all__ = ["Category", "Product", "can_read_cost", "run_upload"]
