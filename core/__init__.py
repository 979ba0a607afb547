"""Dovetail core: users, permissions, storage, configuration and the hook specifications.

Plugins write ``from core import hookimpl`` and return small data objects from
:mod:`core.registry`; the core collects and validates them once at start-up.
"""

import pluggy

__version__ = "0.1.0"

PROJECT = "dovetail"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

__all__ = ["hookimpl", "hookspec", "PROJECT", "__version__"]
