"""The core's plugin conformance suite for orders."""

from core.testing.conformance import PluginConformance


class TestConformance(PluginConformance):
    plugin = "orders"
