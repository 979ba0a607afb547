"""Phone numbers: crm's names for the core's one phone normaliser (:mod:`core.fields`).

Mobiles, landlines with their area code, HK/MO/TW and foreign numbers are stored in
E.164 (``+8613812345678``); numbers without a country code belong to the app's
``PHONE_REGION`` (CN by default). Anything else is refused with :data:`PHONE_ERROR`.
"""

from __future__ import annotations

from core.fields import PHONE_ERROR, PhoneError, normalise_phone, phone_search_digits

__all__ = ["PHONE_ERROR", "PhoneError", "normalise_phone", "phone_search_digits"]
