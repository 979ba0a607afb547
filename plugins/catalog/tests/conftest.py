import pytest


@pytest.fixture
def dovetail_plugins():
    """Catalog alone: it depends on nothing but core."""
    return ["catalog"]
