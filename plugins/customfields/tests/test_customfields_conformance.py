"""The core's plugin conformance suite, run for customfields."""

import pytest

from core.testing.conformance import PluginConformance


@pytest.fixture
def dovetail_plugins():
    return None  # disabling customfields is checked against every installed plugin that can load


@pytest.fixture
def dovetail_extra_plugins():
    return {}


class TestCustomfieldsConformance(PluginConformance):
    plugin = "customfields"
