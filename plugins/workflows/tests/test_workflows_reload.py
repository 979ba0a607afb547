"""Reload without restart, refused files, state maps, the API, web pages, simulate and guard safety
(with a tiny ``ticket`` entity from a test plugin)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from core.db import db
from core.state import dovetail

TICKET = """\
entity: ticket
field: status
states:
  open: {label: {en: Open, zh_CN: 打开}, initial: true}
  review: {label: {en: In review}}
  done: {label: {en: Done}, final: true}
transitions:
  submit: {from: open, to: review, actions: [wftest.stamp]}
  close:
    from: review
    to: done
    permission: wftest.ticket.close
    guard: "ticket.amount > 0"
    guard_message: "the ticket has no amount"
"""

WITH_TRIAGE = TICKET.replace("  done: {label: {en: Done}, final: true}\n",
                             "  done: {label: {en: Done}, final: true}\n  triage: {}\n") + \
    "  triage_it: {from: open, to: triage}\n  untriage: {from: triage, to: open}\n"


@pytest.fixture
def dovetail_plugins():
    return ["workflows", "wftest"]


@pytest.fixture
def ticket_file(app, wf_dir, wf):
    """config/workflows/ticket.yaml, applied (in force)."""
    path = wf_dir / "ticket.yaml"
    wf.write(path, TICKET)
    wf.apply()
    return path


@pytest.fixture
def make_ticket(app):
    model = dovetail(app).registry.workflow_entities["ticket"][0].model

    def factory(status: str = "open", amount: str = "0") -> object:
        t = model(title="T", status=status, amount=Decimal(amount), stamps=0)
        db.session.add(t)
        db.session.commit()
        return t

    return factory


def test_file_in_force_and_changes_picked_up_at_request_time(app, admin_api, ticket_file, wf):
    from core.statemachine import machine_for

    r = admin_api.get("/api/v1/workflows/ticket")
    assert r.status_code == 200
    assert r.json["source"].endswith("ticket.yaml") and r.json["file_status"]["status"] == "active"
    assert [s["key"] for s in r.json["states"]] == ["open", "review", "done"]
    assert "open --> review: submit" in r.json["mermaid"]
    wf.write(ticket_file, WITH_TRIAGE)
    r = admin_api.get("/api/v1/workflows/ticket")  # an edited file changes nothing until applied
    assert [s["key"] for s in r.json["states"]] == ["open", "review", "done"]
    wf.apply()
    r = admin_api.get("/api/v1/workflows/ticket")
    assert [s["key"] for s in r.json["states"]] == ["open", "review", "done", "triage"]
    assert machine_for("ticket").transitions["triage_it"].target == "triage"


def test_refused_file_keeps_running_version_and_shows_errors(app, admin_api, api_client, ticket_file, wf):
    from core.statemachine import machine_for

    before = admin_api.get("/api/v1/workflows/ticket").json["version"]
    wf.write(ticket_file, TICKET.replace("to: done", "to: dnoe"))
    r = admin_api.post("/api/v1/workflows/reload")
    assert r.status_code == 200 and r.json["ok"] is False
    bad = next(f for f in r.json["files"] if f["name"] == "ticket")
    assert bad["status"] == "refused"
    assert [i["text"].split("ticket.yaml:")[1] for i in bad["issues"]] == [
        "6:3: error: state 'done' is unreachable from the initial state 'open' (hint: add a transition to it "
        "or remove it)",
        "11:9: error: unknown state 'dnoe' in 'to' (hint: did you mean 'done'? known states: done, open, review)"]
    assert machine_for("ticket").version == before
    listing = admin_api.get("/api/v1/workflows").json
    assert set(listing) == {"items", "page", "per_page", "total"}
    row = next(i for i in listing["items"] if i["name"] == "ticket" and i["status"] == "refused")
    assert "unknown state 'dnoe'" in row["issues"][1]["message"]
    assert admin_api.get("/api/v1/workflows?status=refused").json["total"] == 1
    rep = api_client(role="rep")
    assert rep.get("/api/v1/workflows").status_code == 200
    assert rep.post("/api/v1/workflows/reload").status_code == 403
    assert admin_api.get("/api/v1/workflows/nope").status_code == 404


def test_removed_state_refused_until_mapped_then_moved_with_audit(app, admin_api, ticket_file, wf, make_ticket,
                                                                  runner):
    from core.models import AuditEntry, TransitionLog
    from core.statemachine import machine_for

    wf.write(ticket_file, WITH_TRIAGE)
    admin_api.post("/api/v1/workflows/reload")
    t1, t2, t3 = make_ticket("triage"), make_ticket("triage"), make_ticket("open")
    without = TICKET  # drops 'triage'
    wf.write(ticket_file, without)
    res = runner.invoke(["workflow", "check", str(ticket_file)])
    assert res.exit_code == 1
    assert "error: 2 ticket record(s) are in state 'triage', which this file removes" in res.output
    r = admin_api.post("/api/v1/workflows/reload")
    assert r.json["ok"] is False
    assert "triage" in machine_for("ticket").states
    wf.write(ticket_file, without + "state_map: {triage: open}\n")
    res = runner.invoke(["workflow", "check", str(ticket_file)])
    assert res.exit_code == 0 and "on reload moves 2 record(s) from 'triage' to 'open'" in res.output
    res = runner.invoke(["workflow", "reload"])
    assert res.exit_code == 0, res.output
    assert "triage" not in machine_for("ticket").states
    db.session.expire_all()
    model = type(t1)
    assert [db.session.get(model, t.id).status for t in (t1, t2, t3)] == ["open", "open", "open"]
    entries = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "workflow_state_map")).all()
    assert sorted(int(e.entity_id) for e in entries) == sorted([t1.id, t2.id])
    assert all(e.before == {"status": "triage"} and e.after == {"status": "open"} for e in entries)
    logs = db.session.scalars(select(TransitionLog).where(TransitionLog.transition == "state_map")).all()
    assert sorted(lg.record_id for lg in logs) == sorted([t1.id, t2.id])


def test_failing_action_leaves_record_and_history_unchanged(app, ticket_file, wf, make_ticket, make_user):
    from core.errors import Conflict
    from core.statemachine import history, perform

    wf.write(ticket_file, TICKET.replace("actions: [wftest.stamp]", "actions: [wftest.stamp, wftest.explode]"))
    wf.apply()
    admin = make_user("boss", role="admin")
    t = make_ticket()
    with pytest.raises(Conflict, match="the test action refuses"):
        perform("ticket", t, "submit", admin)
    db.session.rollback()
    db.session.expire_all()
    t = db.session.get(type(t), t.id)
    assert (t.status, t.stamps, t.title) == ("open", 0, "T")
    assert history("ticket", t.id) == []


def test_transitions_follow_the_file_permission_and_guard(app, ticket_file, make_ticket, make_user):
    from core.errors import Conflict, PermissionDenied
    from core.statemachine import available, history, perform

    admin, rep = make_user("boss", role="admin"), make_user("r1", role="rep")
    t = make_ticket()
    assert perform("ticket", t, "submit", admin)["to"] == "review"
    db.session.commit()
    assert t.stamps == 1
    [close] = available("ticket", t, rep)
    assert close["allowed"] is False and close["reason"] == "requires the permission 'wftest.ticket.close'"
    with pytest.raises(PermissionDenied):
        perform("ticket", t, "close", rep)
    with pytest.raises(Conflict, match="the ticket has no amount"):
        perform("ticket", t, "close", admin)
    t.amount = Decimal("5.00")
    db.session.commit()
    perform("ticket", t, "close", admin)
    db.session.commit()
    assert [(h.from_state, h.to_state) for h in history("ticket", t.id)] == [("open", "review"),
                                                                             ("review", "done")]


def test_show_and_simulate(runner, ticket_file):
    res = runner.invoke(["workflow", "show", "ticket", "--format", "dot"])
    assert res.exit_code == 0
    assert '"open" -> "review" [label="submit"];' in res.output
    assert '"review" -> "done" [label="close"];' in res.output
    res = runner.invoke(["workflow", "simulate", "ticket", "--as", "rep", "--record",
                         '{"status": "open", "amount": 12.5}', "--steps", "submit,close"])
    assert res.exit_code == 1
    assert "submit: allowed (open -> review) [would run: wftest.stamp]" in res.output
    assert "close: refused (review -> done): requires the permission 'wftest.ticket.close'" in res.output
    res = runner.invoke(["workflow", "simulate", "ticket", "--as", "admin", "--record",
                         '{"status": "review", "amount": 0}', "--steps", "close"])
    assert "close: refused (review -> done): the ticket has no amount" in res.output
    res = runner.invoke(["workflow", "simulate", "ticket", "--as", "admin", "--record",
                         '{"ticket": {"status": "review", "amount": 3}}'])
    assert res.exit_code == 0 and "close: allowed (review -> done)" in res.output
    res = runner.invoke(["workflow", "simulate", "ticket", "--as", "ghost", "--record", "{}"])
    assert res.exit_code == 1 and "Unknown role 'ghost'" in res.output
    res = runner.invoke(["workflow", "simulate", "ticket", "--as", "admin", "--record", "{nope"])
    assert res.exit_code == 1 and "--record is not valid JSON" in res.output


def test_guards_see_read_only_values(app, make_ticket, make_user):
    from core.expressions import GuardError, ReadOnly, evaluate
    from core.statemachine import entity, guard_values
    from plugins.workflows.checker import check_text
    from plugins.workflows.store import known_from_app

    t = make_ticket(amount="7")
    user = make_user("g1", role="rep")
    values = guard_values(entity("ticket"), t, user)
    assert isinstance(values["ticket"], ReadOnly) and not isinstance(values["ticket"], type(t))
    with pytest.raises(AttributeError):
        values["ticket"].amount = Decimal("0")
    for expr in ("ticket.query", "user.role_grants", "user.set_password('x')", "ticket.__class__",
                 "user.roles.append('admin')", "ticket._data.clear()"):
        with pytest.raises(GuardError):
            evaluate(expr, values)
    assert evaluate("ticket.amount > 5 and user.has_role('rep')", values) is True
    base = ("entity: ticket\nstates:\n  open: {initial: true}\n  done: {final: true}\ntransitions:\n"
            "  close: {from: open, to: done, guard: \"%s\"}\n")
    for expr in ("ticket.query.delete()", "ticket._data.clear()", "[x for x in ticket.title]"):
        r = check_text(base % expr, "g.yaml", known_from_app())
        assert not r.ok, expr
    db.session.expire_all()
    assert db.session.get(type(t), t.id).amount == Decimal("7.00")
    assert user.role_names == ["rep"]


def test_web_pages(client, make_user, ticket_file, wf):
    make_user("boss", role="admin")
    r = client.post("/login", data={"username": "boss", "password": "password123"})
    assert r.status_code in (302, 303)
    page = client.get("/workflows/").get_data(as_text=True)
    assert "ticket" in page and "Reload files now" in page
    page = client.get("/workflows/ticket").get_data(as_text=True)
    assert "stateDiagram-v2" in page and "<svg" in page and 'data-edge="open-&gt;review"' in page
    r = client.post("/workflows/check", data={"text": TICKET.replace("to: done", "to: dnoe"),
                                              "file": "ticket.yaml"})
    assert "unknown state &#39;dnoe&#39; in &#39;to&#39;" in r.get_data(as_text=True)
    wf.write(ticket_file, TICKET.replace("to: done", "to: dnoe"))
    r = client.post("/workflows/reload", follow_redirects=True)
    assert "1 file(s) refused" in r.get_data(as_text=True)


def test_web_pages_need_permission(client, make_user, ticket_file):
    make_user("wh", role="warehouse")
    client.post("/login", data={"username": "wh", "password": "password123"})
    assert client.get("/workflows/").status_code == 403
    assert client.get("/workflows/check").status_code == 403


def test_deleting_the_file_brings_back_the_default_unless_records_would_be_stranded(
        app, admin_api, ticket_file, wf, make_ticket):
    from core.statemachine import machine_for

    wf.write(ticket_file, WITH_TRIAGE)
    admin_api.post("/api/v1/workflows/reload")
    t = make_ticket("triage")
    ticket_file.unlink()
    r = admin_api.post("/api/v1/workflows/reload").json
    row = next(f for f in r["files"] if f["name"] == "ticket")
    assert row["status"] == "refused" and "1 in 'triage'" in row["issues"][0]["message"]
    assert "triage" in machine_for("ticket").states
    t.status = "open"
    db.session.commit()
    r = admin_api.post("/api/v1/workflows/reload").json
    assert r["ok"] is True and next(f for f in r["files"] if f["name"] == "ticket")["status"] == "removed"
    assert machine_for("ticket").source == "built-in"


def test_check_warns_about_empty_states_the_file_drops(app, admin_api, ticket_file, wf, runner):
    wf.write(ticket_file, WITH_TRIAGE)
    admin_api.post("/api/v1/workflows/reload")
    wf.write(ticket_file, TICKET)
    res = runner.invoke(["workflow", "check", str(ticket_file)])
    assert res.exit_code == 0, res.output
    assert f"{ticket_file}:3:1: warning: removes state 'triage' of the version in force" in res.output
    assert "no record is in it" in res.output


def test_reload_is_a_config_apply(app, admin_api, ticket_file, wf, runner):
    from core import activation

    before = activation.in_force(app).version
    wf.write(ticket_file, TICKET.replace("to: done", "to: dnoe"))
    res = runner.invoke(["workflow", "reload"])
    assert res.exit_code == 1 and "unknown state 'dnoe'" in res.output
    assert activation.in_force(app).version == before
    wf.write(ticket_file, WITH_TRIAGE)
    r = admin_api.post("/api/v1/workflows/reload")
    assert r.json["ok"] is True and r.json["errors"] == []
    row = activation.in_force(app)
    assert row.version == before + 1 and row.applied_by == "admin" and row.note == "workflow reload"
    assert row.documents["workflows/ticket.yaml"] == WITH_TRIAGE
