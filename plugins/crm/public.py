"""The crm plugin's public API: everything other plugins may import from crm.

Other plugins import only this module (``from plugins.crm.public import Customer``), at
module top, and only when they declare ``crm`` in ``depends`` or ``optional``; the
import-linter contracts in ``pyproject.toml`` enforce it. Anything not listed here is
internal and may change without notice.
"""

from __future__ import annotations

from plugins.crm.models import Customer, Lead, Segment
from plugins.crm.phone import normalise_phone
from plugins.crm.services import customer_snapshot, save_segment, segment_customer_ids

__all__ = ["Customer", "Lead", "Segment", "customer_snapshot", "normalise_phone", "save_segment",
           "segment_customer_ids"]
