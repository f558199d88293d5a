"""One nested line per action, so a failing run's log tells the story in order.

Lines go to the stdlib logger `coexist`: pytest captures them per test (`-o log_cli=true` shows
them live); the CLI and the benches print them on stderr (`to_stderr`). Commands the harness runs
on the lab host for itself are DEBUG; steps, results and the guest's commands are INFO.

Nesting is per thread: a thread's lines are indented by the steps it is in, counted from where it
started (`nested_at`: coexist.base.interrupt.Pool starts each task at the depth of the step that
submitted it, so a probe's lines sit under "measure after ...", not at the left margin and not
inside whatever step another thread happens to be in).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from types import TracebackType
from typing import TextIO

LOGGER = logging.getLogger("coexist")
LOGGER.setLevel(logging.DEBUG)


class _Nesting(threading.local):
    """One thread's place in the story: the depth it started at and the steps it is in."""

    def __init__(self) -> None:
        self.base = 0
        self.steps: list[Step] = []   # outermost first


_nesting = _Nesting()


def depth() -> int:
    """How deep this thread's next line is indented."""
    return _nesting.base + len(_nesting.steps)


def current() -> str | None:
    """The innermost step this thread is in. The signal handler runs in the main thread, so there
    it is the step a Ctrl-C interrupts."""
    return _nesting.steps[-1].message if _nesting.steps else None


def nested_at(base: int) -> _NestedAt:
    """Log this thread's lines from `base` on, as if inside the steps of the thread that handed it
    the work (a pool's thread runs one task after another: each starts from its submitter's depth)."""
    return _NestedAt(base)


class _NestedAt:
    """A plain object, like Step: nothing of it can run late, in another thread."""

    def __init__(self, base: int) -> None:
        self.base = base
        self._saved: tuple[int, list[Step]] = (0, [])

    def __enter__(self) -> None:
        self._saved = _nesting.base, _nesting.steps
        _nesting.base, _nesting.steps = self.base, []

    def __exit__(self, *_exc: object) -> None:
        _nesting.base, _nesting.steps = self._saved


_shown: list[int | None] = [None]   # the deepest nesting logged at INFO (None: every depth)


def show_depth(deepest: int | None) -> None:
    """Log lines nested deeper than `deepest` at DEBUG: a terminal shows the outline (the CLI: 2,
    `-q` 0), `-v` (a DEBUG handler) everything; None: every line at INFO (the default)."""
    _shown[0] = deepest


class showing:   # a plain object, not a generator, like Step (see there)
    """`with showing(deepest):` show_depth(deepest) for a while (a command's run), then as it was."""

    def __init__(self, deepest: int | None) -> None:
        self.deepest, self.before = deepest, _shown[0]

    def __enter__(self) -> None:
        show_depth(self.deepest)

    def __exit__(self, *_exc: object) -> None:
        show_depth(self.before)


def info(message: str, *, always: bool = False) -> None:
    """Log one line at this thread's nesting depth (at DEBUG if deeper than show_depth's, unless
    `always`: a failure is shown at any depth)."""
    deepest, nested = _shown[0], depth()
    level = logging.INFO if always or deepest is None or nested <= deepest else logging.DEBUG
    if level == logging.INFO:
        _say_open_steps()
    LOGGER.log(level, "%s%s", "  " * nested, message)


def _say_open_steps() -> None:
    """Before a line is shown inside them, the steps this thread is in that have not said
    themselves yet do (outermost first)."""
    for open_step in _nesting.steps:
        if not open_step.said:
            open_step.said = True
            LOGGER.info("%s- %s", "  " * open_step.depth, open_step.message)


def debug(message: str) -> None:
    LOGGER.debug("%s%s", "  " * depth(), message)


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
    """Print the lines on stderr as they come, as they are (the CLI, the benches); called again,
    only the level changes."""
    for existing in LOGGER.handlers:
        if getattr(existing, "coexist", False):
            existing.setLevel(level)
            return
    handler = _Stderr()
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.setLevel(level)
    handler.coexist = True  # type: ignore[attr-defined]
    LOGGER.addHandler(handler)
    LOGGER.propagate = False


class Step:
    """`with step(message):` logs `message`, nests what happens inside, then logs how long it took
    or that it failed.

    In an outline (show_depth), a step says itself when the first line inside it is shown, or
    when a shown step starts inside it; a step inside which nothing is shown says itself once,
    when it ends, with its time (`- message (0.4s)`: one line, not an opening and a closing).

    A plain object, not a generator: a signal's exception can be raised in any `__enter__` just
    before it returns, and then `with` never calls `__exit__`. A generator left like that was
    closed whenever its last reference went (when the exception was dropped, after coexist's
    closing line, or by the garbage collector in any thread) and logged "failed (GeneratorExit)"
    then, out of order. A step never exited logs nothing more; the enclosing step's exit drops it
    from the nesting."""

    def __init__(self, message: str) -> None:
        self.message = message
        self._start = 0.0
        self._steps: list[Step] = []
        self._index = 0
        self.depth = 0
        self.said = False   # its opening line shown

    def __enter__(self) -> None:
        self.depth = depth()
        deepest = _shown[0]
        if deepest is None:   # every line shown: say it now
            self.said = True
            LOGGER.info("%s- %s", "  " * self.depth, self.message)
        else:
            LOGGER.debug("%s- %s", "  " * self.depth, self.message)
            if self.depth <= deepest:   # a shown step: the steps it is in say themselves now
                _say_open_steps()
        self._start = time.monotonic()
        self._steps = _nesting.steps
        self._index = len(self._steps)
        self._steps.append(self)

    def __exit__(self, kind: type[BaseException] | None, _error: BaseException | None,
                 _tb: TracebackType | None) -> None:
        steps, index = self._steps, self._index
        if kind is GeneratorExit:
            # a generator that yielded inside this step is being closed: by its consumer, or late
            # (garbage, interpreter shutdown), after the failure that left it was told by the
            # steps it went through. Neither is this step failing: say nothing.
            if steps[-1:] == [self]:
                steps.pop()
            return
        if index < len(steps) and steps[index] is self:
            del steps[index:]   # this step, and any entered inside it that never got to exit
        seconds = time.monotonic() - self._start
        if kind is None and not self.said:
            info(f"- {self.message} ({seconds:.1f}s)")
        elif kind is None:
            info(f"  ({self.message}: {seconds:.1f}s)")
        else:
            info(f"  ! {self.message}: failed after {seconds:.1f}s ({kind.__name__})", always=True)


def step(message: str) -> Step:
    """Log `message`, nest what happens inside, then log how long it took (or that it failed)."""
    return Step(message)
