import pytest


@pytest.fixture
def dovetail_plugins():
    """crm alone: it depends on nothing but core (other plugins' tests cover combinations)."""
    return ["crm"]
