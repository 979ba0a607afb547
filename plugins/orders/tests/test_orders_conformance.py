"""The core's plugin conformance suite for orders."""

from core.testing.conformance import PluginConformance


class TestConformance(PluginConformance):
    plugin = "orders"


def test_returns_answer_what_the_document_says(app):
    """The demo company has no return requests; with one (on an order of the demo rep the
    probe uses), the return routes are reached and match the document as admin and rep."""
    from sqlalchemy import select

    from core.cli_commands import populate_demo
    from core.db import db, utcnow
    from core.models import User
    from core.testing.conformance import contract_problems, contract_users
    from plugins.orders.models import Order

    populate_demo(app, 0.01, 7)
    tokens = contract_users(app)
    rep = next(u for u in db.session.scalars(select(User).order_by(User.id)) if "rep" in u.role_names)
    order = db.session.scalar(select(Order).where(Order.status == "shipped").order_by(Order.id))
    order.owner_id, order.shipped_at = rep.id, utcnow()
    db.session.commit()
    client, headers = app.test_client(), {"Authorization": f"Bearer {tokens['admin']}"}
    line = client.get(f"/api/v1/orders/{order.id}", headers=headers).get_json()["lines"][0]
    r = client.post("/api/v1/returns", headers=headers, json={
        "order_id": order.id, "reason": "破损", "lines": [{"order_line_id": line["id"], "quantity": 1}]})
    assert r.status_code == 201, r.get_json()
    assert client.post(f"/api/v1/returns/{r.get_json()['id']}/transitions", headers=headers,
                       json={"transition": "approve"}).status_code == 200
    problems, stats = contract_problems(app, ["orders"], demo=False)
    assert not problems, "\n".join(problems)
    for who in ("admin", "rep"):
        assert not [t for t in stats[who]["unreached"] if "/returns" in t], stats[who]
