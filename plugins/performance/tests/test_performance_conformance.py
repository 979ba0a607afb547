"""The core's plugin conformance suite for performance (with its dependencies, and among all)."""

from core.testing.conformance import PluginConformance


class TestConformance(PluginConformance):
    plugin = "performance"


class TestConformanceAmongAll(PluginConformance):
    plugin = "performance"
    enabled = "all"


def test_statements_answer_what_the_document_says(app):
    """The demo company has no commission statements; with last month's generated, the
    statement routes are reached and match the document as admin and rep."""
    from core.cli_commands import populate_demo
    from core.testing.conformance import contract_problems, contract_users
    from plugins.performance.periods import add_months, current_month

    populate_demo(app, 0.01, 7)
    tokens = contract_users(app)
    client, headers = app.test_client(), {"Authorization": f"Bearer {tokens['admin']}"}
    last_month = add_months(current_month().start, -1).strftime("%Y-%m")
    r = client.post("/api/v1/performance/statements/generate", headers=headers, json={"period": last_month})
    assert r.status_code == 200 and r.get_json()["generated"], r.get_json()
    problems, stats = contract_problems(app, ["performance"], demo=False)
    assert not problems, "\n".join(problems)
    assert not [t for t in stats["admin"]["unreached"] if "/statements" in t], stats["admin"]
