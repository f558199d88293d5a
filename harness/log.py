"""One nested line per action, so a failing run's log tells the story in order."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

_depth = 0
_steps: list[str] = []   # the main thread's open steps, outermost first


def current() -> str | None:
    """The innermost step the main thread is in (what a Ctrl-C interrupts)."""
    return _steps[-1] if _steps else None


def info(message: str) -> None:
    """Log one line at the current nesting depth."""
    print(f"{'  ' * _depth}{message}", file=sys.stderr, flush=True)


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
