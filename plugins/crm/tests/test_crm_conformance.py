"""The core's plugin conformance suite, run for crm."""

import pytest

from core.testing.conformance import PluginConformance


@pytest.fixture
def dovetail_plugins():
    return None  # disabling crm is checked against every installed plugin that can load


class TestCrmConformance(PluginConformance):
    plugin = "crm"


def test_a_lead_transition_answers_what_the_document_says(admin_api):
    """POST /leads/{id}/transitions sends the lead and the transition's result, both documented."""
    from core.testing.conformance import body_problems, closed_schemas

    lead = admin_api.post("/api/v1/leads", json={"title": "年会礼品", "contact_name": "赵六"}).json
    r = admin_api.post(f"/api/v1/leads/{lead['id']}/transitions", json={"transition": "contact"})
    assert r.status_code == 200 and r.json["result"] == {"status": "done", "from": "new", "to": "contacted"}
    doc = closed_schemas(admin_api.get("/api/v1/openapi.json").json)
    schema = doc["paths"]["/api/v1/leads/{lead_id}/transitions"]["post"]["responses"]["200"]["content"][
        "application/json"]["schema"]
    assert body_problems(doc, schema, r.json) == []
