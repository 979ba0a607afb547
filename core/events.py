"""String events for integrations: plain-data notifications delivered to ``on_event``.

Only event types a plugin declared (``register_event_types``) may be emitted: an
undeclared name raises in tests and is logged as an error (and still delivered) in
production. Plugins react to each other through typed hooks, not through these.
Delivery is synchronous inside the emitting transaction, so a raising receiver
rolls the change back; receivers must not swallow their own errors.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import current_app

from core.audit import current_actor
from core.registry import Event
from core.state import dovetail

log = logging.getLogger("dovetail.events")

#: The one event type of every workflow transition (declared by the core); the entity,
#: record id and transition travel in the payload, never in the name.
TRANSITION_EVENT = "core.workflow.transitioned"


class UndeclaredEvent(RuntimeError):
    """An event type no enabled plugin declared with ``register_event_types`` (a bug)."""


def emit(name: str, **payload: Any) -> Event:
    """Deliver ``name`` with ``payload`` to every enabled plugin's ``on_event``."""
    dv = dovetail()
    if name not in dv.registry.event_types:
        msg = (f"event type '{name}' was emitted but no enabled plugin declares it "
               "(declare it with register_event_types)")
        if current_app.testing:
            raise UndeclaredEvent(msg)
        log.error(msg)
    actor_id, _ = current_actor()
    event = Event(name=name, payload=payload, actor_id=actor_id)
    dv.pm.hook.on_event(event=event)
    return event
