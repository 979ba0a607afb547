"""The core's plugin conformance suite, run for workflows."""

import pytest

from core.testing.conformance import PluginConformance


@pytest.fixture
def dovetail_extra_plugins():
    return {}  # the suite runs with the installed plugins only, not this folder's test plugin


class TestWorkflowsConformance(PluginConformance):
    plugin = "workflows"
