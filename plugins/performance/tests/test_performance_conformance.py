"""The core's plugin conformance suite for performance (with its dependencies, and among all)."""

from core.testing.conformance import PluginConformance


class TestConformance(PluginConformance):
    plugin = "performance"


class TestConformanceAmongAll(PluginConformance):
    plugin = "performance"
    enabled = "all"
