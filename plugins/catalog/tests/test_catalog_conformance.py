"""The core's plugin conformance suite for catalog."""

from core.testing.conformance import PluginConformance


class TestConformance(PluginConformance):
    plugin = "catalog"
