"""The one waiting helper: every wait in coexist goes through `retry`."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from coexist.base import interrupt

T = TypeVar("T")


class DeadlineExceeded(TimeoutError):
    """A condition did not become true before its deadline."""


def retry(
    attempt: Callable[[bool], T | None],
    *,
    timeout: float,
    what: str,
    interval: float = 0.2,
) -> T:
    """Call `attempt(last_try)` until it returns a result: anything truthy, or a number (0 too).
    None, False and empty values (b"", "", []) mean "not yet".

    The deadline is in seconds. On the last try `last_try` is True, so the attempt can log what it
    saw or raise a precise error; if it still returns nothing, DeadlineExceeded names `what`.
    """
    __tracebackhide__ = True
    deadline = time.monotonic() + timeout
    while True:
        interrupt.check()
        last_try = time.monotonic() + interval >= deadline
        result = attempt(last_try)
        if result or isinstance(result, int | float) and not isinstance(result, bool):
            return result
        if last_try:
            raise DeadlineExceeded(f"{what}: not true after {timeout:.0f}s")
        time.sleep(interval)
