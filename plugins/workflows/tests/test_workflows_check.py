"""``dovetail workflow check``: every mistake located to the character, shipped files valid everywhere."""

from __future__ import annotations

import pytest

TEN_MISTAKES = """\
entity: ticket
field: status
states:
  open: {initial: true}
  review: {label: {en: Review}}
  done: {final: true}
transitions:
  submit:
    from: open
    to: review
    actions: [wftest.stamp, wftest.nope]
  escalate:
    from: open
    to: escalated
  close:
    from: review
    to: done
    permission: wftest.ticket.shut
    roles: [financier]
    guard: "ticket.amont > 0"
  reopen:
    from: done
    to: open
    colour: red
  approve:
    from: review
    to: done
    guard: "ticket.amount >"
    actions: [wftest.only_tasks]
  submit:
    from: open
    to: done
"""


@pytest.fixture
def dovetail_plugins():
    return ["workflows", "wftest"]


def test_ten_mistakes_reported_each_at_its_line_and_column(runner, wf_dir, wf):
    path = wf_dir / "ticket.yaml"
    wf.write(path, TEN_MISTAKES)
    res = runner.invoke(["workflow", "check", str(path)])
    assert res.exit_code == 1
    f = str(path)
    expected = [
        f"{f}:11:29: error: unknown action 'wftest.nope'",
        f"{f}:14:9: error: unknown state 'escalated' in 'to'",
        f"{f}:18:17: error: unknown permission 'wftest.ticket.shut' (hint: did you mean 'wftest.ticket.close'?",
        f"{f}:19:13: error: unknown role 'financier' (hint: did you mean 'finance'?",
        f"{f}:20:13: error: guard: unknown name 'ticket.amont'",
        f"{f}:22:11: error: transition 'reopen' leaves final state 'done'",
        f"{f}:24:5: error: unknown key 'colour' in transition 'reopen'",
        f"{f}:28:27: error: guard: syntax error: the expression ends too early, after '>'",
        f"{f}:29:15: error: action 'wftest.only_tasks' is only for task, not 'ticket'",
        f"{f}:30:3: error: duplicate key 'submit' (first defined at line 8",
    ]
    lines = [ln for ln in res.output.splitlines() if ": error: " in ln]
    assert len(lines) == 10, res.output
    for want, got in zip(expected, lines, strict=True):
        assert got.startswith(want), (want, got)
    assert "did you mean 'ticket.amount'?" in lines[4]
    assert "10 error(s) in 1 file(s)" in res.output


def test_structure_mistakes_states_and_inputs(app, wf):
    from plugins.workflows.checker import check_text
    from plugins.workflows.store import known_from_app

    text = """\
entity: ticket
states:
  open: {initial: true}
  review: {initial: true}
  done: {final: true}
  limbo: {}
  stuck: {}
transitions:
  submit: {from: open, to: review, comment_required: maybe}
  finish:
    from: review
    to: done
    inputs:
      note: {type: blob, max_length: -1, pattern: "([a-z"}
      code: {choices: []}
    approvals: {role: auditor, count: 0}
  wait: {from: open, to: stuck}
"""
    r = check_text(text, "t.yaml", known_from_app())
    got = [(i.line, i.column, i.severity, i.message.split(" (hint")[0]) for i in r.issues]
    assert got == [
        (4, 21, "error", "several initial states (open, review)"),
        (6, 3, "error", "state 'limbo' is unreachable from the initial state 'open'"),
        (7, 3, "warning", "state 'stuck' has no way out and is not final"),
        (9, 54, "error", "comment_required must be true or false, got 'maybe'"),
        (14, 20, "error", "unknown input type 'blob'"),
        (14, 38, "error", "max_length must be a positive whole number, got -1"),
        (14, 51, "error", "pattern is not a valid regular expression: unterminated character set at "
                          "position 1"),
        (15, 23, "error", "choices must be a non-empty list"),
        (16, 23, "error", "unknown role 'auditor'"),
        (16, 39, "error", "approvals count must be a whole number of at least 1, got 0"),
    ]
    assert not r.ok and r.machine is None


def test_no_initial_state_unknown_entity_and_syntax_error(app):
    from plugins.workflows.checker import check_text
    from plugins.workflows.store import known_from_app

    known = known_from_app()
    r = check_text("entity: tiket\nstates:\n  a: {}\ntransitions: {}\n", "x.yaml", known)
    assert [str(i).split(" (hint")[0] for i in r.issues] == [
        "x.yaml:1:9: error: unknown entity 'tiket'",
        "x.yaml:2:1: error: no initial state",
    ]
    assert "did you mean 'ticket'?" in r.issues[0].message
    r = check_text("entity: ticket\nstates:\n  open: {initial: true\ntransitions: {}\n", "y.yaml", known)
    assert len(r.issues) == 1 and r.issues[0].message.startswith("YAML syntax")
    assert (r.issues[0].line, r.issues[0].column) == (4, 12)


def test_guard_offsets_in_plain_and_block_scalars(app):
    from plugins.workflows.checker import check_text
    from plugins.workflows.store import known_from_app

    base = ("entity: ticket\nstates:\n  open: {initial: true}\n  done: {final: true}\ntransitions:\n"
            "  close:\n    from: open\n    to: done\n")
    r = check_text(base + "    guard: ticket.amount > 0 and nobody.x\n", "g.yaml", known_from_app())
    assert [(i.line, i.column) for i in r.errors] == [(9, 34)]
    assert "unknown name 'nobody'" in r.errors[0].message
    r = check_text(base + "    guard: |\n      user.has_role('x') and ticket.__class__\n", "g.yaml",
                   known_from_app())
    assert [(i.line, i.column) for i in r.errors] == [(10, 30)]
    assert "'__class__' is not allowed" in r.errors[0].message


def test_disabled_plugin_files_are_skipped_with_a_notice(runner, wf_dir):
    """The project's order/return files name entities of disabled plugins: a notice, not an error."""
    assert (wf_dir / "order.yaml").exists()
    res = runner.invoke(["workflow", "check"])
    assert res.exit_code == 0, res.output
    assert "notice: " in res.output and "entity 'order' belongs to plugin 'orders', which is disabled" \
        in res.output


def test_action_and_permission_of_a_disabled_plugin_are_errors(app):
    from plugins.workflows.checker import check_text
    from plugins.workflows.store import known_from_app

    text = ("entity: ticket\nstates:\n  open: {initial: true}\n  done: {final: true}\ntransitions:\n"
            "  close: {from: open, to: done, actions: [inventory.reserve], permission: orders.order.pay}\n")
    r = check_text(text, "d.yaml", known_from_app())
    msgs = [i.message for i in r.errors]
    assert msgs[0].startswith("action 'inventory.reserve' belongs to plugin 'inventory', which is disabled")
    assert msgs[1].startswith("permission 'orders.order.pay' belongs to plugin 'orders', which is disabled")


def test_check_api_returns_every_issue(api_client, admin_api):
    r = admin_api.post("/api/v1/workflows/check", json={"text": TEN_MISTAKES, "file": "ticket.yaml"})
    assert r.status_code == 200
    assert r.json["ok"] is False and len(r.json["issues"]) == 10
    assert r.json["issues"][0]["line"] == 11 and r.json["issues"][0]["column"] == 29
    rep = api_client(role="rep")
    assert rep.post("/api/v1/workflows/check", json={"text": TEN_MISTAKES}).status_code == 403
    r = admin_api.post("/api/v1/workflows/check", json={"file": "x.yaml"})
    assert r.status_code == 422 and "text" in r.json["error"]["fields"]


@pytest.mark.parametrize("shipped, default", [
    ("order.yaml", "plugins/orders/workflows/order.yaml"),
    ("return.yaml", "plugins/orders/workflows/return.yaml"),
    ("lead.yaml", "plugins/crm/workflows/lead.yaml")])
def test_shipped_files_start_as_the_plugins_defaults(shipped, default):
    """The files in config/workflows/ ship identical to the built-in defaults (an admin then edits them)."""
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[3]
    ours = yaml.safe_load((root / "config" / "workflows" / shipped).read_text(encoding="utf-8"))
    theirs = yaml.safe_load((root / default).read_text(encoding="utf-8"))
    assert ours == theirs
