"""Domain events: plain-data notifications delivered to every plugin's ``on_event``.

Delivery is synchronous inside the emitting transaction, so a raising receiver
rolls the change back; receivers must not swallow their own errors.
"""

from __future__ import annotations

from typing import Any

from flask import current_app

from core.audit import current_actor
from core.registry import Event


def emit(name: str, **payload: Any) -> Event:
    """Deliver ``name`` with ``payload`` to every enabled plugin."""
    actor_id, _ = current_actor()
    event = Event(name=name, payload=payload, actor_id=actor_id)
    current_app.extensions["dovetail"].pm.hook.on_event(event=event)
    return event
