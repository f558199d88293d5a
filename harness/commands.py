"""Running commands with errors that carry the command, exit code and output."""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


class CommandFailed(RuntimeError):
    """A command exited with an unexpected code."""

    def __init__(self, where: str, argv: Sequence[str] | str, returncode: int, output: str) -> None:
        self.argv = argv
        self.returncode = returncode
        self.output = output
        shown = argv if isinstance(argv, str) else shlex.join(argv)
        tail = output.strip()[-2000:]
        super().__init__(f"{where}: `{shown}` exited {returncode}\n{tail}")


@dataclass(frozen=True)
class Result:
    returncode: int
    output: str


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
