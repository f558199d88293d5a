"""SIGINT, SIGTERM and SIGHUP as a clean stop: the first one ends the run where it is, teardown runs
in order, and coexist says so in one line; another one during teardown is noted, never skips it.

`install()` is for programs (the CLI): the first signal raises `Interrupted` in the main thread,
wherever it is. Teardown code runs under `shielded()`, where a signal is only recorded (and raised
once the shielded block is done), so a signal arriving while a lab is being torn down can never cut
that teardown short. Waiting loops ask `stopping()` so that threads other than the main one stop
too (see coexist.base.retry).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from types import FrameType, TracebackType
from typing import Any, TypeVar

from coexist.base import log

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_signals: list[int] = []
_during: list[str] = []     # the step the first signal arrived in
_raised: list[bool] = []    # Interrupted was raised (once per run)
_shield = threading.local()
_installed_in: list[int] = []   # the pid that installed the handler
T = TypeVar("T")


class Interrupted(KeyboardInterrupt):
    """The run was stopped by a signal: a KeyboardInterrupt, so that no `except Exception` in
    between swallows it and pytest (scenario items, `coexist matrix`) ends its session on it."""

    def __init__(self, signum: int, during: str) -> None:
        self.signum = signum
        self.signame = signal.Signals(signum).name
        self.during = during
        super().__init__(f"interrupted ({self.signame}) during {during}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def install() -> None:
    """Handle SIGINT, SIGTERM and SIGHUP in this process (call from the main thread)."""
    for box in (_signals, _during, _raised, _installed_in):
        box.clear()
    _installed_in.append(os.getpid())
    for sig in SIGNALS:
        signal.signal(sig, _handler)


def _handler(signum: int, _frame: FrameType | None) -> None:
    if _installed_in and os.getpid() != _installed_in[0]:
        # a child between fork and exec (preexec_fn, after-fork hooks run Python code) got the
        # signal sent to the whole group: the run's own process handles it and tears this child
        # down with the lab; raising here would only print "Exception ignored ... Traceback"
        return
    _signals.append(signum)
    if len(_signals) == 1:
        _during.append(log.current() or "start-up")
    elif len(_signals) == 2:
        log.info(f"coexist: {signal.Signals(signum).name} again: finishing the teardown faster")
    if not _raised and not getattr(_shield, "depth", 0):
        raise _raising()


def _first() -> Interrupted:
    return Interrupted(_signals[0], _during[0])


def _raising() -> Interrupted:
    _raised.append(True)
    return _first()


def stopping() -> bool:
    """Has a signal asked this run to stop?"""
    return bool(_signals)


def check() -> None:
    """For waiting loops: stop once a signal asked to. The main thread has it raised by the
    handler; other threads (probes, settling) raise it here, so that none keeps a teardown
    waiting."""
    if _signals and threading.current_thread() is not threading.main_thread():
        raise _first()


def hurry() -> bool:
    """A second signal came. Nothing waits on it: the teardown after the first signal is already
    the quick one (the lab's cgroup killed as one, the guests not undefined one by one)."""
    return len(_signals) > 1


def received() -> Interrupted | None:
    """The first signal, as the exception it raised (or would have raised)."""
    return _first() if _signals else None


@contextmanager
def shielded() -> Iterator[None]:
    """Run a teardown to its end: a signal arriving inside is recorded, and raised afterwards."""
    _shield.depth = getattr(_shield, "depth", 0) + 1
    try:
        yield
    finally:
        _shield.depth -= 1
    if _signals and not _raised and not _shield.depth \
            and threading.current_thread() is threading.main_thread():
        raise _raising()


class Pool(ThreadPoolExecutor):
    """A ThreadPoolExecutor whose threads have all ended when its `with` block is left, even on a
    signal, and whose tasks log nested under the step that submitted them.

    - `submit` holds a signal until the new thread is counted, then raises it: a signal raised in
      `Thread.start` (which waits for the new thread to run) left that thread running and
      uncounted, so the pool's shutdown did not wait for it.
    - Leaving the block joins every thread under `shielded()`: a signal arriving while the main
      thread waits in `join` raised out of it and left the threads running, so their lines (a
      probe's "failed (Interrupted)") came after coexist's closing line. The threads stop soon
      once a signal came (`check()` in every waiting loop); tasks not yet started are cancelled
      when the block ends with an exception."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        depth = log.depth()
        with shielded():
            return super().submit(_nested, depth, fn, *args, **kwargs)

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        with shielded():
            self.shutdown(wait=True, cancel_futures=kind is not None)


def _nested(depth: int, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    with log.nested_at(depth):
        return fn(*args, **kwargs)
