"""The core's plugin conformance suite, run for marketing."""

import pytest

from core.testing.conformance import PluginConformance


@pytest.fixture
def dovetail_plugins():
    return None  # disabling marketing is checked against every installed plugin that can load


class TestMarketingConformance(PluginConformance):
    plugin = "marketing"
