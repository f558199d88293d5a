"""Commands of a scenario that reach outside its lab.

A lab is a host of its own (its network, files, processes, hostname and IPC), but its commands run
as root in the machine's kernel: what lives only in the kernel is shared (docs/design.md, "What a lab
isolates, and what it cannot"). `coexist check` warns about the commands that reach it; the run
goes on, as a user may mean it. Not warned: `nsenter` and `unshare` (the lab sees only its own
processes, so `nsenter --target 1` enters the lab's own init: tests/e2e/test_lab_is_a_host.py),
`mount` of anything but a device (the lab's mount namespace is its own), and anything under
/proc/sys/net (the lab's own network namespace).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator

from coexist.scenario.model import Scenario
from coexist.scenario.steps import Admin, ApplyFix, RevertFix

_SEPARATORS = {";", "&&", "||", "|", "&", "\n", "(", ")", "{", "}"}
_WRAPPERS = {"sudo", "env", "exec", "nohup", "command", "time"}
_MODULES = "loads or unloads a kernel module: the kernel and its modules are the machine's"
_SYSCTL = ("sets a kernel setting outside net.*: it is the machine's kernel's (read-only in the lab, "
           "so it fails there; on the machine it would change every host's)")
_CLOCK = "sets the clock: there is one, the machine's"
_DEVICE = "mounts a device: /dev is the machine's, and so are its disks"


def _commands(line: str) -> Iterator[list[str]]:
    """The simple commands of a shell line, each as its words (wrappers and VAR=value skipped)."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|(){}")
    lexer.whitespace_split = True
    try:
        words = list(lexer)
    except ValueError:   # unbalanced quotes: as plain words
        words = line.split()
    current: list[str] = []
    for word in [*words, ";"]:
        if word in _SEPARATORS or set(word) <= set(";&|"):
            while current and (current[0] in _WRAPPERS or "=" in current[0].split("/")[0]
                               and not current[0].startswith("-")):
                current.pop(0)
            if current:
                yield current
            current = []
        else:
            current.append(word)


def why(line: str) -> str | None:
    """Why the shell line `line` reaches outside the lab, or None."""
    if ">" in line:
        for target in line.split(">")[1:]:
            path = target.lstrip(">& ").split(maxsplit=1)[:1]
            if path and path[0].startswith("/proc/sys/") and not path[0].startswith("/proc/sys/net/"):
                return _SYSCTL
    for words in _commands(line):
        program, args = words[0].rsplit("/", 1)[-1], words[1:]
        if program in ("modprobe", "insmod", "rmmod"):
            return _MODULES
        if program == "sysctl":
            keys = [a.split("=", 1)[0] for a in args if "=" in a and not a.startswith("-")]
            if any(not key.startswith("net.") for key in keys) or {"-p", "--load", "--system"} & set(args):
                return _SYSCTL
        if program == "date" and ({"-s"} & set(args) or any(a.startswith("--set") for a in args)):
            return _CLOCK
        if program == "hwclock" and {"-w", "--systohc", "--set", "-s", "--hctosys"} & set(args):
            return _CLOCK
        if program == "mount" and any(a.startswith("/dev/") and a != "/dev/shm" for a in args):
            return _DEVICE
    return None


def warnings(scenario: Scenario) -> list[str]:
    """One line per command of the scenario's steps and fixes that reaches outside its lab."""
    found = []
    for step in scenario.steps:
        match step:
            case Admin(commands=commands):
                where = f"step {step.id!r} run"
            case ApplyFix(fix=fix):
                commands, where = fix.commands, f"step {step.id!r} fix {fix.name}"
            case RevertFix(fix=fix):
                commands, where = fix.revert, f"step {step.id!r} revert {fix.name}"
            case _:
                continue
        found += [f"{where}: `{command}`: {reason}" for command in commands
                  if (reason := why(command)) is not None]
    return found
