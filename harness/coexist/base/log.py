"""One nested line per action, so a failing run's log tells the story in order.

Lines go to the stdlib logger `coexist`: pytest captures them per test (`-o log_cli=true` shows
them live); the CLI and the benches print them on stderr (`to_stderr`). Commands the harness runs
on the lab host for itself are DEBUG; steps, results and the guest's commands are INFO.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

LOGGER = logging.getLogger("coexist")
LOGGER.setLevel(logging.DEBUG)
_depth = 0
_steps: list[str] = []   # the main thread's open steps, outermost first


def current() -> str | None:
    """The innermost step the main thread is in (what a Ctrl-C interrupts)."""
    return _steps[-1] if _steps else None


def info(message: str) -> None:
    """Log one line at the current nesting depth."""
    LOGGER.info("%s%s", "  " * _depth, message)


def debug(message: str) -> None:
    LOGGER.debug("%s%s", "  " * _depth, message)


class _Stderr(logging.StreamHandler[TextIO]):
    """Writes to whatever sys.stderr is at the time (pytest swaps and closes it per test; a handler
    holding the first one printed "--- Logging error --- I/O operation on closed file")."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


def to_stderr(level: int = logging.INFO) -> None:
    """Print the lines on stderr as they come, as they are (the CLI, the benches)."""
    if not any(getattr(h, "coexist", False) for h in LOGGER.handlers):
        handler = _Stderr()
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler.setLevel(level)
        handler.coexist = True  # type: ignore[attr-defined]
        LOGGER.addHandler(handler)
        LOGGER.propagate = False


@contextmanager
def step(message: str) -> Iterator[None]:
    """Log `message`, nest what happens inside, then log how long it took (or that it failed)."""
    global _depth
    info(f"- {message}")
    start = time.monotonic()
    _depth += 1
    main = threading.current_thread() is threading.main_thread()
    if main:
        _steps.append(message)
    try:
        yield
    except BaseException as error:
        _depth -= 1
        info(f"  ! {message}: failed after {time.monotonic() - start:.1f}s ({type(error).__name__})")
        raise
    finally:
        if main:
            _steps.pop()
    _depth -= 1
    info(f"  ({message}: {time.monotonic() - start:.1f}s)")
