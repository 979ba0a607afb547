"""``dovetail()``: the typed per-app state, instead of reading ``app.extensions`` by hand."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Flask, current_app

if TYPE_CHECKING:
    from core.app import Dovetail

EXTENSION = "dovetail"


def dovetail(app: Flask | None = None) -> Dovetail:
    """The :class:`core.app.Dovetail` (config, plugin manager, registry) of ``app``.

    Without ``app``, the current app's (an application context is needed).
    """
    return (app or current_app).extensions[EXTENSION]
