"""One nested line per action, so a failing run's log tells the story in order."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

_depth = 0


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
    try:
        yield
    except BaseException as error:
        _depth -= 1
        info(f"  ! {message}: failed after {time.monotonic() - start:.1f}s ({type(error).__name__})")
        raise
    _depth -= 1
    info(f"  ({message}: {time.monotonic() - start:.1f}s)")
