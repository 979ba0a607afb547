"""The core's plugin conformance suite for inventory."""

from core.testing.conformance import PluginConformance


class TestConformance(PluginConformance):
    plugin = "inventory"
