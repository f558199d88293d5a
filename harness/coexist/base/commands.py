"""Commands: one result type, one verb set for the lab host and the guest, and the errors.

`Verbs` gives whatever can `execute` a command (the lab host, a guest) the same four verbs:
`succeed`, `fail`, `wait_until_succeeds`, `wait_until_fails`. A verb whose expectation does not
hold raises ExpectationFailed, an AssertionError: pytest shows it at the test's line.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple, Protocol

from coexist.base import log
from coexist.base.retry import retry


class CommandFailed(RuntimeError):
    """A command exited with an unexpected code."""

    def __init__(self, where: str, argv: Sequence[str] | str, returncode: int, output: str) -> None:
        self.argv = argv
        self.returncode = returncode
        self.output = output
        shown = argv if isinstance(argv, str) else shlex.join(argv)
        tail = output.strip()[-2000:]
        super().__init__(f"{where}: `{shown}` exited {returncode}\n{tail}")


class Result(NamedTuple):
    """What a command did: its exit code and its output (stdout and stderr merged)."""

    returncode: int
    output: str


class ExpectationFailed(AssertionError):
    """A command did not do what the test said it would."""

    def __init__(self, where: str, command: Sequence[str] | str, expected: str, result: Result) -> None:
        self.command, self.returncode, self.output = command, result.returncode, result.output
        shown = command if isinstance(command, str) else shlex.join(command)
        super().__init__(f"{where}: `{shown}` {expected}, but exited {result.returncode}:\n"
                         f"{result.output.strip()[-2000:]}")


Command = Sequence[str] | str   # an argv, or a line for /bin/sh


class Machine(Protocol):
    """What the lower layers ask of a machine (the lab host, or a test's stand-in): run a command,
    see a file of it. Firewall reading, firewalld, daemons and fix checks take this, never the lab."""

    @property
    def where(self) -> str: ...

    def execute(self, command: Command, *, timeout: float | None = None) -> Result: ...

    def succeed(self, command: Command, *, timeout: float | None = None) -> str: ...

    def path(self, inside: str) -> Path:
        """A path inside the machine as seen from the one running coexist."""
        ...


class Verbs:
    """succeed / fail / wait_until_succeeds / wait_until_fails, over the subclass's `execute`."""

    where = "host"
    timeout = 30.0   # seconds a command may take, unless a verb is told otherwise
    quiet = False    # True: its commands are logged at DEBUG (the harness's own, on the lab host)

    def execute(self, command: Command, *, timeout: float | None = None) -> Result:
        """Run `command`; asserts nothing."""
        raise NotImplementedError

    def _run(self, command: Command, timeout: float | None) -> Result:
        result = self.execute(command, timeout=timeout)
        shown = command if isinstance(command, str) else shlex.join(command)
        (log.debug if self.quiet else log.info)(f"{self.where}$ {shown}  -> {result.returncode}")
        return result

    def succeed(self, command: Command, *, timeout: float | None = None) -> str:
        """Run `command`; its output, or ExpectationFailed unless it exits 0."""
        __tracebackhide__ = True
        result = self._run(command, timeout)
        if result.returncode != 0:
            raise ExpectationFailed(self.where, command, "should succeed", result)
        return result.output

    def fail(self, command: Command, *, timeout: float | None = None) -> str:
        """Run `command`; its output, or ExpectationFailed if it exits 0."""
        __tracebackhide__ = True
        result = self._run(command, timeout)
        if result.returncode == 0:
            raise ExpectationFailed(self.where, command, "should fail", result)
        return result.output

    def wait_until_succeeds(self, command: Command, *, timeout: float = 30) -> str:
        """Retry `command` until it exits 0 (its output) or `timeout` seconds have passed."""
        __tracebackhide__ = True
        return self._wait(command, timeout, want_success=True)

    def wait_until_fails(self, command: Command, *, timeout: float = 30) -> str:
        """Retry `command` until it exits non-zero (its output) or `timeout` seconds have passed."""
        __tracebackhide__ = True
        return self._wait(command, timeout, want_success=False)

    def _wait(self, command: Command, timeout: float, *, want_success: bool) -> str:
        __tracebackhide__ = True

        def attempt(last_try: bool) -> tuple[str] | None:
            result = self.execute(command, timeout=timeout)
            if (result.returncode == 0) == want_success:
                return (result.output,)   # a result even when the command printed nothing
            if last_try:
                verb = "succeed" if want_success else "fail"
                raise ExpectationFailed(self.where, command, f"should {verb} within {timeout}s", result)
            return None

        shown = command if isinstance(command, str) else shlex.join(command)
        return retry(attempt, timeout=timeout, what=f"{self.where}: {shown}", interval=0.5)[0]


def run(
    argv: Sequence[str],
    *,
    check: bool = True,
    timeout: float = 600,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    where: str = "machine",
) -> Result:
    """Run `argv`, stdout and stderr merged; raise CommandFailed on a non-zero exit if `check`."""
    __tracebackhide__ = True
    proc = subprocess.run(
        list(argv),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        timeout=timeout,
        env=None if env is None else dict(env),
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
    )
    if check and proc.returncode != 0:
        raise CommandFailed(where, argv, proc.returncode, proc.stdout)
    return Result(proc.returncode, proc.stdout)
