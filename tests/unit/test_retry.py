from __future__ import annotations

import pytest
from coexist.base.retry import DeadlineExceeded, retry


def test_returns_the_first_truthy_result() -> None:
    calls = []

    def attempt(last_try: bool) -> str | None:
        calls.append(last_try)
        return "up" if len(calls) == 3 else None

    assert retry(attempt, timeout=5, what="thing", interval=0.01) == "up"
    assert calls == [False, False, False]


def test_last_try_is_announced_then_the_deadline_names_what() -> None:
    seen = []

    def attempt(last_try: bool) -> bool:
        seen.append(last_try)
        return False

    with pytest.raises(DeadlineExceeded, match="the daemon answers: not true after"):
        retry(attempt, timeout=0.1, what="the daemon answers", interval=0.02)
    assert seen[-1] is True and seen.count(True) == 1


def test_an_attempt_may_raise_its_own_precise_error() -> None:
    def attempt(last_try: bool) -> bool:
        raise ValueError("daemon exited")

    with pytest.raises(ValueError, match="daemon exited"):
        retry(attempt, timeout=1, what="x")


def test_an_empty_value_is_not_yet_a_result_but_zero_is() -> None:
    answers = iter([b"", "", [], b"COEXIST_OWNER=1"])
    assert retry(lambda _: next(answers), timeout=5, what="environ", interval=0.01) == b"COEXIST_OWNER=1"
    assert retry(lambda _: 0, timeout=1, what="zero", interval=0.01) == 0
