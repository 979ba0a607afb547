"""User-started jobs (large imports and exports): inline without Redis and on RQ with a real
Redis (an in-process SimpleWorker in burst mode). An import job reports progress and the same
row errors as ``dovetail import``; only its requester (or an admin) sees a job; an export job's
file holds the rows the requester could export when asking, masked the same way."""

from __future__ import annotations

import csv
import io
import types
import uuid

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session
from werkzeug.datastructures import FileStorage

from core import jobs, userjobs
from core.db import db
from core.userjobs import DONE, QUEUED, UserJob
from plugins.crm import transfer

REDIS_URL = "redis://127.0.0.1:6379/14"

HEADER = "name,phone,email,tier\n"
ROWS = ("好客户,13800000001,a@example.cn,gold\n"
        ",13800000002,,\n"                    # no name
        "坏电话,12345,,\n"                     # bad phone
        "二号,13800000004,not-an-email,\n"    # bad email
        "三号,13800000005,,diamond\n"         # unknown tier
        "四号,13800000006,,\n")
BODY = HEADER + ROWS


@pytest.fixture
def dovetail_plugins():
    return ["crm", "catalog"]


@pytest.fixture
def no_redis(monkeypatch):
    monkeypatch.delenv("DOVETAIL_REDIS_URL", raising=False)


@pytest.fixture
def with_redis(monkeypatch):
    """The local Redis (a database number of its own) and a queue of its own, emptied afterwards."""
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.exceptions.ConnectionError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    name = f"dovetail-test-{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("DOVETAIL_REDIS_URL", REDIS_URL)
    monkeypatch.setenv("DOVETAIL_QUEUE", name)
    yield types.SimpleNamespace(client=client, queue=name)
    client.flushdb()  # the database number is this test module's own
    client.close()


@pytest.fixture
def people(make_team, make_user, api_client, admin_api):
    east, south = make_team("East"), make_team("South")
    users = {"manager1": make_user("manager1", "manager", team=east),
             "rep1": make_user("rep1", "rep", team=east), "rep3": make_user("rep3", "rep", team=south)}
    ns = types.SimpleNamespace(users=users, admin=admin_api)
    for name, user in users.items():
        setattr(ns, name, api_client(user))
    return ns


def _upload(client, body: str = BODY):
    return client.client.post("/api/v1/customers/import", data={"file": (io.BytesIO(body.encode()), "c.csv")},
                              headers={"Authorization": f"Bearer {client.token}"})


def _cli_errors(runner, tmp_path) -> list[dict]:
    """The row errors ``dovetail import customers --dry-run`` reports for :data:`BODY`."""
    src, out = tmp_path / "cli.csv", tmp_path / "errors.csv"
    src.write_text(BODY, encoding="utf-8")
    res = runner.invoke(["import", "customers", str(src), "--dry-run", "--errors", str(out)])
    assert res.exit_code == 2, res.output
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    return [{"line": int(r["line"]), "column": r["column"], "reason": r["reason"]} for r in rows]


def _latest_job() -> UserJob:
    job = db.session.scalars(select(UserJob).order_by(UserJob.id.desc())).first()
    db.session.rollback()
    return job


def _work(queue_name: str) -> None:
    import rq  # noqa: PLC0415 - optional dependency, present with the 'redis' extra

    queue = jobs.get_queue()
    assert queue is not None and queue.name == queue_name
    rq.SimpleWorker([queue], connection=queue.connection).work(burst=True, logging_level="WARNING")


def test_inline_import_job_reports_progress_and_the_cli_row_errors(no_redis, app, people, runner, tmp_path):
    expected = _cli_errors(runner, tmp_path)
    assert len(expected) == 4
    r = _upload(people.manager1)
    assert r.status_code == 200, r.json                      # inline: the finished result, as before jobs
    assert (r.json["rows"], r.json["created"], r.json["rejected"]) == (6, 2, 4)
    assert r.json["errors"] == expected
    job = _latest_job()
    r = people.manager1.get(f"/api/v1/jobs/{job.id}")
    assert r.status_code == 200, r.json
    assert r.json["status"] == DONE and r.json["kind"] == "crm.customers_import"
    assert r.json["progress"] == {"done": 6, "total": 6}
    assert r.json["errors"] == expected
    assert r.json["summary"].startswith("6 rows read: 2 created")
    assert (app.instance_path and job.errors_file)
    # nobody else sees it (as if it did not exist); an admin does
    for other in (people.rep1, people.rep3):
        assert other.get(f"/api/v1/jobs/{job.id}").status_code == 404
    assert people.admin.get(f"/api/v1/jobs/{job.id}").status_code == 200
    assert people.manager1.get("/api/v1/jobs/999999").status_code == 404
    assert people.manager1.get(f"/api/v1/jobs/{job.id}/file").status_code == 404  # an import makes no file


def test_progress_is_committed_batch_by_batch(no_redis, app, people, monkeypatch):
    """Another connection sees the rows done grow while the import runs (one commit per batch)."""
    monkeypatch.setattr(userjobs, "PROGRESS_EVERY", 2)
    seen: list[int] = []

    def after_commit(session):
        with Session(db.engine) as other:
            done = other.scalar(select(UserJob.rows_done).order_by(UserJob.id.desc()).limit(1))
        if done is not None and (not seen or seen[-1] != done):
            seen.append(done)

    good = HEADER + "".join(f"客户{i},1380000010{i},,\n" for i in range(6))
    event.listen(Session, "after_commit", after_commit)
    try:
        with app.test_request_context():
            job = userjobs.start_import("crm.customers_import", people.users["manager1"],
                                        FileStorage(io.BytesIO(good.encode()), "c.csv"),
                                        transfer.import_customers, user_args=("user", "default_owner"), batch=2)
    finally:
        event.remove(Session, "after_commit", after_commit)
    assert job.status == DONE and job.rows_done == 6
    assert seen[0] == 0 and 2 in seen and 4 in seen and seen[-1] == 6


def test_a_bad_upload_is_refused_and_leaves_no_job(no_redis, app, people):
    r = _upload(people.manager1, "")
    assert r.status_code == 422
    r = people.manager1.client.post("/api/v1/customers/import", data={"file": (io.BytesIO(b"x"), "c.pdf")},
                                    headers={"Authorization": f"Bearer {people.manager1.token}"})
    assert r.status_code == 422 and "file" in r.json["error"]["fields"]


def _customers(people) -> None:
    for client, name, phone in ((people.manager1, "东一", "13900000001"), (people.rep1, "东二", "13900000002"),
                                (people.rep3, "南一", "13900000003")):
        assert client.post("/api/v1/customers", json={"name": name, "phone": phone}).status_code == 201


def _file_rows(client, job_id: int) -> list[dict]:
    r = client.get(f"/api/v1/jobs/{job_id}/file")
    assert r.status_code == 200
    return list(csv.DictReader(io.StringIO(r.get_data(as_text=True).lstrip("\ufeff"))))


def test_inline_export_job_file_has_the_scoped_rows_only(no_redis, app, people):
    _customers(people)
    r = people.manager1.post("/api/v1/customers/export/jobs")
    assert r.status_code == 202, r.json
    job_id = r.json["id"]
    assert r.json["status"] == DONE and r.json["download"] is True
    assert r.json["progress"] == {"done": 2, "total": 2}
    assert sorted(row["name"] for row in _file_rows(people.manager1, job_id)) == ["东一", "东二"]
    assert people.rep3.get(f"/api/v1/jobs/{job_id}/file").status_code == 404
    assert people.rep3.get(f"/api/v1/jobs/{job_id}").status_code == 404
    assert people.rep3.post("/api/v1/customers/export/jobs").status_code == 403  # reps may not export
    r = people.admin.post("/api/v1/customers/export/jobs")
    assert sorted(row["name"] for row in _file_rows(people.admin, r.json["id"])) == ["东一", "东二", "南一"]


def test_rq_import_and_export_jobs_run_on_the_worker(with_redis, app, people, runner, tmp_path):
    expected = _cli_errors(runner, tmp_path)
    r = _upload(people.manager1)
    assert r.status_code == 202, r.json
    job_id = r.json["id"]
    assert r.json["status"] == QUEUED and r.json["progress"]["done"] == 0
    assert people.rep3.get(f"/api/v1/jobs/{job_id}").status_code == 404
    _customers(people)
    r = people.manager1.post("/api/v1/customers/export/jobs")
    assert r.status_code == 202 and r.json["status"] == QUEUED
    export_id = r.json["id"]
    # a customer added after the request is not in the export: the scope is the one at request time
    assert people.rep1.post("/api/v1/customers", json={"name": "东三", "phone": "13900000009"}).status_code == 201
    _work(with_redis.queue)
    r = people.manager1.get(f"/api/v1/jobs/{job_id}")
    assert r.status_code == 200 and r.json["status"] == DONE, r.json
    assert r.json["progress"] == {"done": 6, "total": 6}
    assert r.json["errors"] == expected
    assert r.json["result"]["created"] == 2
    assert sorted(row["name"] for row in _file_rows(people.manager1, export_id)) == ["东一", "东二"]
    assert people.rep1.get(f"/api/v1/jobs/{export_id}/file").status_code == 404


PRODUCTS = "sku,name,price\nP-1,甲,10\nP-2,乙,-3\nP-3,,5\n"


def _web_import(web):
    return web.post("/catalog/products/import", data={"file": (io.BytesIO(PRODUCTS.encode()), "p.csv")})


def test_inline_web_import_shows_the_result_at_once(no_redis, app, web_login):
    web = web_login("admin")
    r = _web_import(web)
    assert r.status_code == 200
    page = r.get_data(as_text=True)
    assert "<strong>1</strong>" in page and "<td>3</td>" in page and "<td>4</td>" in page  # lines 3 and 4 refused
    job = _latest_job()
    assert job.kind == "catalog.import_products" and job.status == DONE and job.rows_done == 3


def test_rq_web_import_goes_to_a_status_page_that_refreshes_until_done(with_redis, app, web_login, make_user):
    web = web_login("admin")
    r = _web_import(web)
    assert r.status_code == 302, r.get_data(as_text=True)[:300]
    job = _latest_job()
    assert r.headers["Location"].endswith(f"/jobs/{job.id}")
    r = web.get(f"/jobs/{job.id}")
    assert r.status_code == 200 and r.headers.get("Refresh") == "2" and "queued" in r.get_data(as_text=True)
    _work(with_redis.queue)
    db.session.rollback()  # the test client shares this test's app context (and session): end its read
    r = web.get(f"/jobs/{job.id}")
    page = r.get_data(as_text=True)
    assert r.status_code == 200 and "Refresh" not in r.headers and "done" in page
    assert "3 rows read: 1 created" in page and "<td>3</td>" in page
    make_user("other", "manager")
    assert web_login(username="other").get(f"/jobs/{job.id}").status_code == 404
