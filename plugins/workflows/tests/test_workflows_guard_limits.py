"""Guards that would hang a worker (``9**9**9``, ``'a'*10**9``) are refused by ``workflow check``
where they stand, and fail the transition at evaluation instead of hanging; broken files
(empty, aliases) are refused with a located error."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from core.db import db
from core.state import dovetail

HEAD = """\
entity: ticket
states:
  open: {initial: true}
  review: {}
  done: {final: true}
transitions:
  submit: {from: open, to: review}
"""


@pytest.fixture
def dovetail_plugins():
    return ["workflows", "wftest"]


def test_check_reports_oversized_constants_at_their_line_and_column(runner, wf_dir, wf):
    path = wf_dir / "ticket.yaml"
    wf.write(path, HEAD + '  close: {from: review, to: done, guard: "ticket.amount < 9**9**9"}\n'
                          "  reopen:\n    from: review\n    to: open\n"
                          "    guard: ticket.amount > 0 and ticket.title != 'a' * 10**9\n")
    res = runner.invoke(["workflow", "check", str(path)])
    assert res.exit_code == 1
    f = str(path)
    hint = " (hint: guards compare values; keep constants small)"
    errors = [ln for ln in res.output.splitlines() if ": error: " in ln]
    assert errors == [
        f"{f}:8:59: error: guard: 9**9**9 is refused: exponent 387420489 is over the limit of 1000{hint}",
        f"{f}:12:50: error: guard: 'a' * 10**9 is refused: repeating 1 item(s) 1000000000 times is over "
        f"the limit of 10000{hint}",
    ]


def test_a_guard_over_the_limits_fails_the_transition_at_once(app, wf_dir, wf, make_user):
    from core.statemachine import available

    wf.write(wf_dir / "ticket.yaml",
             HEAD + '  close: {from: review, to: done, guard: "ticket.amount ** ticket.title_len > 0"}\n'
             .replace("ticket.title_len", "ticket.id"))
    model = dovetail(app).registry.workflow_entities["ticket"][0].model
    t = model(id=999_999, title="T", status="review", amount=Decimal("999999"), stamps=0)
    db.session.add(t)
    db.session.commit()
    boss = make_user("boss", role="admin")
    wf.apply()  # the file is read, checked and put in force before the clock starts
    started = time.monotonic()
    [close] = available("ticket", t, boss)
    assert time.monotonic() - started < 2
    assert close["allowed"] is False
    assert close["reason"] == ("guard 'ticket.amount ** ticket.id > 0' refused: exponent 999999 is over "
                               "the limit of 1000")


@pytest.mark.parametrize("text,expected", [
    ("", ":1:1: error: the workflow file is empty (hint: write entity, states and transitions, or delete "
         "the file to use the built-in workflow)"),
    ("- open\n- done\n", ":1:1: error: a workflow file must be a mapping with entity, states and "
                         "transitions, not a list"),
    (HEAD.replace("  review: {}\n", "  review: &r {}\n") + "  close: {from: *r, to: done}\n",
     ":8:17: error: YAML: alias '*r' is not allowed in config files (hint: write the value out in full)"),
])
def test_empty_misshapen_or_aliased_files_are_refused_where_it_is_wrong(runner, wf_dir, wf, text, expected):
    path = wf_dir / "ticket.yaml"
    wf.write(path, text)
    res = runner.invoke(["workflow", "check", str(path)])
    assert res.exit_code == 1
    assert [ln for ln in res.output.splitlines() if ": error: " in ln] == [f"{path}{expected}"]
