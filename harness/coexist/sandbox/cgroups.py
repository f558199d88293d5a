"""One cgroup per lab, in every hierarchy the machine mounts: the run's processes, killed as a whole.

The lab's holder joins it before it makes the lab's cgroup namespace, and every command entered
into the lab joins it too, so everything the lab's daemons start (containers, libvirt's qemu and
dnsmasq, which carry no mark of the run) lives in it or below it, wherever the daemons put their
own cgroups. Ending a lab is one `cgroup.kill`; a dead run's cgroup is found again by its name,
`coexist-<owner>-<lab>`, and its owner token says whether the run that made it is gone.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from coexist.sandbox import processes

PREFIX = "coexist-"
# coexist-<pid>.<starttime>-<lab name>
_NAME = re.compile(r"^coexist-(\d+\.\d+)-[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class Hierarchy:
    """A mounted cgroup hierarchy and where this process sits in it."""

    mount: Path
    version: int   # 1 or 2
    own: str       # this process's cgroup path in it, e.g. /process_api/abc

    @property
    def here(self) -> Path:
        return self.mount / self.own.lstrip("/")


def hierarchies() -> list[Hierarchy]:
    """The machine's cgroup hierarchies (v1 controllers, named v1, the unified v2 one)."""
    own: dict[str, str] = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _id, controllers, path = line.split(":", 2)
        own[controllers] = path
    known = {line.split()[0] for line in Path("/proc/cgroups").read_text().splitlines()
             if not line.startswith("#")}
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        fields, (fstype, _source, options) = left.split(), right.split()[:3]
        if fstype not in ("cgroup", "cgroup2") or fields[3] != "/":
            continue
        if fstype == "cgroup2":
            key = ""
        else:
            names = [o for o in options.split(",") if o in known or o.startswith("name=")]
            key = ",".join(names)
        if key in own:
            found.append(Hierarchy(Path(fields[4]), 2 if fstype == "cgroup2" else 1, own[key]))
    return found


class RunCgroup:
    """`coexist-<owner>-<name>` below this process's own cgroup in every hierarchy."""

    def __init__(self, owner: str, name: str) -> None:
        self.name = f"{PREFIX}{owner}-{name}"
        self.owner = owner
        self.dirs = [h.here / self.name for h in hierarchies()]
        # what a forked child writes `0` into to join (see join_self): computed before any fork
        self.procs_files = [str(d / "cgroup.procs") for d in self.dirs]

    def create(self) -> RunCgroup:
        for directory in self.dirs:
            directory.mkdir(exist_ok=True)
            if (directory / "cpuset.cpus").exists():   # v1 cpuset: empty until given its parent's
                for knob in ("cpuset.cpus", "cpuset.mems"):
                    (directory / knob).write_text((directory.parent / knob).read_text())
        return self

    def kill(self, *, timeout: float = 10.0) -> None:
        """Every process in it or below it, SIGKILLed at once; returns once they are gone."""
        kill_tree(self.dirs, timeout=timeout)

    def members(self) -> set[int]:
        return members(self.dirs)

    def remove(self) -> None:
        remove_tree(self.dirs)


def join_self(procs_files: list[str]) -> None:
    """For preexec_fn: move the calling (forked) process into a cgroup; plain syscalls only."""
    for name in procs_files:
        fd = os.open(name, os.O_WRONLY)
        try:
            os.write(fd, b"0")
        finally:
            os.close(fd)


def _walk(top: Path) -> Iterator[Path]:
    """`top` and every cgroup below it, each before its parent. Cgroups come and go meanwhile
    (dockerd removes a container's as the container stops; a matrix cell with a dockerd restart
    met one that way): one gone before it is read is skipped, where `Path.rglob` raised
    FileNotFoundError."""
    for directory, _subdirs, _files in os.walk(top, topdown=False):
        yield Path(directory)


def members(dirs: list[Path]) -> set[int]:
    found: set[int] = set()
    for top in dirs:
        for directory in _walk(top):
            try:
                found.update(int(p) for p in (directory / "cgroup.procs").read_text().split())
            except OSError:
                pass
    found.discard(os.getpid())
    return found


def kill_tree(dirs: list[Path], *, timeout: float = 10.0) -> None:
    for top in dirs:
        if (top / "cgroup.kill").exists():
            try:
                (top / "cgroup.kill").write_text("1")
            except OSError:
                pass
    deadline = time.monotonic() + timeout
    while (pids := members(dirs)) and time.monotonic() < deadline:
        for pid in pids:   # v1-only members (none expected: v2 holds every process), and races
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)


def remove_tree(dirs: list[Path]) -> None:
    for top in dirs:
        for directory in _walk(top):
            try:
                directory.rmdir()
            except OSError:
                pass


def by_name() -> dict[str, list[Path]]:
    """Every run cgroup there is, by name, in every hierarchy (searched a few levels deep)."""
    found: dict[str, list[Path]] = {}
    for hierarchy in hierarchies():
        for directory in _search(hierarchy.mount, depth=4):
            if _NAME.match(directory.name):
                found.setdefault(directory.name, []).append(directory)
    return found


def of_owner(owner: str) -> list[Path]:
    """The cgroups of run `owner`, in every hierarchy."""
    return [d for name, dirs in by_name().items() if name.startswith(f"{PREFIX}{owner}-") for d in dirs]


def stale() -> dict[str, list[Path]]:
    """Run cgroups whose owner is gone, by name."""
    return {name: dirs for name, dirs in by_name().items() if not processes.owner_alive(_owner(name))}


def _owner(name: str) -> str:
    match = _NAME.match(name)
    assert match is not None, name
    return match.group(1)


def _search(top: Path, depth: int) -> Iterator[Path]:
    try:
        children = [p for p in top.iterdir() if p.is_dir()]
    except OSError:
        return
    for child in children:
        if child.name.startswith(PREFIX):
            yield child
        elif depth > 1:
            yield from _search(child, depth - 1)
