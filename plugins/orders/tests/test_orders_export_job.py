"""``POST /api/v1/orders/export/jobs``: the export as a user job (inline without Redis) whose
file holds only the orders the requester could export when asking, masked the same way."""

from __future__ import annotations

import io

import pytest
from openpyxl import load_workbook


@pytest.fixture
def no_redis(monkeypatch):
    monkeypatch.delenv("DOVETAIL_REDIS_URL", raising=False)


def _create(api, customer, product, **extra):
    body = {"customer_id": customer.id, "lines": [{"product_id": product.id, "quantity": 2}], **extra}
    r = api.post("/api/v1/orders", json=body)
    assert r.status_code == 201, r.json
    return r.json


def test_export_job_file_has_the_scoped_orders_only(no_redis, api_client, make_user, make_team, make_customer,
                                                     make_product, admin_api):
    team = make_team("North")
    mgr = make_user("mgr", role="manager", team=team)
    p = make_product("1.00")
    _create(admin_api, make_customer(phone="13900001111"), p)                     # outside the team
    _create(admin_api, make_customer(mgr, phone="13900002222"), p, owner_id=mgr.id)
    mine = api_client(mgr)
    r = mine.post("/api/v1/orders/export/jobs")
    assert r.status_code == 202, r.json
    assert r.json["status"] == "done" and r.json["progress"] == {"done": 1, "total": 1} and r.json["download"]
    f = mine.get(f"/api/v1/jobs/{r.json['id']}/file")
    assert f.status_code == 200
    lines = f.data.decode("utf-8-sig").splitlines()
    assert len(lines) == 2 and "13900002222" in lines[1] and "13900001111" not in f.data.decode("utf-8-sig")
    # the same rows as the direct export
    assert f.data.decode("utf-8-sig").splitlines() == mine.get("/api/v1/orders/export").data.decode(
        "utf-8-sig").splitlines()
    assert admin_api.get(f"/api/v1/jobs/{r.json['id']}").status_code == 200          # an admin sees it
    rep = api_client(make_user("rep7", role="rep", team=team))
    assert rep.get(f"/api/v1/jobs/{r.json['id']}/file").status_code == 404
    assert rep.post("/api/v1/orders/export/jobs").status_code == 403
    x = admin_api.post("/api/v1/orders/export/jobs?format=xlsx")
    ws = load_workbook(io.BytesIO(admin_api.get(f"/api/v1/jobs/{x.json['id']}/file").data), read_only=True)
    assert len(list(ws.worksheets[0].iter_rows(values_only=True))) == 3
