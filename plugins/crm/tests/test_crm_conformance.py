"""The core's plugin conformance suite, run for crm."""

import pytest

from core.testing.conformance import PluginConformance


@pytest.fixture
def dovetail_plugins():
    return None  # disabling crm is checked against every installed plugin that can load


class TestCrmConformance(PluginConformance):
    plugin = "crm"
