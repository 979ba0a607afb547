"""Guard expressions: power, repetition, shifts and text formatting are capped, so a guard
can never hang a worker; ``check`` reports constant sub-expressions over the caps."""

from __future__ import annotations

import time

import pytest

from core.expressions import MAX_EXPONENT, GuardError, check, evaluate

NAMES = {"order": ("total", "title", "lines"), "user": None}


@pytest.mark.parametrize("source,offset,words", [
    ("9**9**9", 0, "9**9**9 is refused: exponent 387420489 is over the limit of 1000"),
    ("order.total > 'a'*10**9", 14, "'a'*10**9 is refused: repeating 1 item(s) 1000000000 times"),
    ("order.lines == [0] * 100000", 15, "[0] * 100000 is refused: repeating 1 item(s) 100000 times"),
    ("order.total ** 5000 > 1", 0, "order.total ** 5000 is refused: exponent 5000 is over the limit"),
    ("order.total < 1 << 10**6", 14, "1 << 10**6 is refused: 1 << 1000000 has more than 4096 bits"),
    ("order.title == '%0999999999d' % 1", 15, "is refused: text formatting with % is not allowed"),
    ("order.total > 10**1000 * 10**1000", 14, "is refused: a product of more than 4096 bits"),
    ("order.title == 'ab' * 3000 + 'cd' * 3000", 15, "is refused: joining 6000 and 6000 item(s)"),
])
def test_check_reports_constant_subexpressions_over_the_caps(source, offset, words):
    problems = check(source, NAMES)
    assert len(problems) == 1, problems
    assert problems[0][0] == offset and words in problems[0][1], problems


@pytest.mark.parametrize("source", [
    "order.total >= 5000", "order.total * 1000000000 > 2**64", "order.title == 'ab' * 10",
    "2**10 > order.total", "order.total ** 2 > 10", "1/0 == order.total", "user.has_role('manager')",
])
def test_ordinary_guards_pass_the_check(source):
    assert check(source, NAMES) == []


@pytest.mark.parametrize("source,values,words", [
    ("9**9**9", {}, "exponent 387420489 is over the limit of 1000"),
    ("999999**999999 > 1", {}, "exponent 999999 is over the limit of 1000"),
    ("n ** n > 1", {"n": 3_999_999}, "exponent 3999999 is over the limit of 1000"),
    ("n ** 900 > 1", {"n": 10**6}, "has more than 4096 bits"),
    ("t * n == ''", {"t": "a", "n": 10**9}, "repeating 1 item(s) 1000000000 times"),
    ("t % 1 == ''", {"t": "%0200000d"}, "text formatting with % is not allowed in guards"),
    ("1 << n > 0", {"n": 10**6}, "has more than 4096 bits"),
])
def test_evaluation_refuses_at_once_instead_of_hanging(source, values, words):
    started = time.monotonic()
    with pytest.raises(GuardError) as info:
        evaluate(source, values)
    assert time.monotonic() - started < 1
    assert str(info.value).startswith(f"guard '{source}' refused: ") and words in str(info.value)


def test_the_caps_leave_ordinary_arithmetic_alone():
    from decimal import Decimal

    assert evaluate("total * 3 >= 5000 and total ** 2 > 0", {"total": Decimal("2000.00")}) is True
    assert evaluate(f"2 ** {MAX_EXPONENT} > 0", {}) is True
    assert evaluate("'ab' * 3 == 'ababab'", {}) is True


def test_an_overlong_or_unreadable_guard_is_reported_not_raised():
    assert check("1 + " * 400 + "1", NAMES)[0][1] == "guard is 1601 characters long; the limit is 1000"
    with pytest.raises(GuardError, match="the limit is 1000"):
        evaluate("1 + " * 400 + "1", {})
    with pytest.raises(GuardError, match="could not be evaluated: maximum recursion depth"):
        evaluate("-" * 990 + "1", {})
