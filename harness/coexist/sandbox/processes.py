"""Process identity and leftover sweeping.

Every process coexist starts carries the environment marker COEXIST_OWNER=<pid>.<starttime> of the
run that started it (qemu, started by libvirt with a clean environment, carries it in its domain
name `coexist-<pid>.<starttime>...`), and lives in its lab's cgroup (coexist.sandbox.cgroups), which
catches what carries no mark (libvirt's dnsmasq, containers). A later run treats marked processes
and cgroups whose owner is gone as leftovers and ends them, together with everything sharing
their network or mount namespaces. Nothing without these marks is touched.
"""

from __future__ import annotations

import ctypes
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

OWNER_VAR = "COEXIST_OWNER"
_PR_SET_PDEATHSIG = 1
_ENDED = ("Z", "X")   # /proc/<pid>/stat states of a process that has exited: zombie, dead


def _stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat after the command name (state first), or None if `pid` is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def start_time(pid: int) -> str | None:
    """The kernel's start time of `pid` (clock ticks since boot), or None if it is gone."""
    fields = _stat(pid)
    return None if fields is None else fields[19]


def parent(pid: int) -> int:
    """The parent of `pid` (0 if it is gone)."""
    fields = _stat(pid)
    return 0 if fields is None else int(fields[1])


def children(pid: int) -> set[int]:
    """The processes whose parent is `pid`."""
    return {child for child in _pids() if parent(child) == pid}


def running(pid: int) -> bool:
    """Is `pid` still running? A zombie is not: it has let go of everything (memory, files,
    sockets, namespaces) and only waits for its parent to read its exit status (an orphan's
    parent, the machine's PID 1, may read it late)."""
    fields = _stat(pid)
    return fields is not None and fields[0] not in _ENDED


def owner_token(pid: int | None = None) -> str:
    """`<pid>.<starttime>`: names this run without being fooled by PID reuse."""
    pid = os.getpid() if pid is None else pid
    return f"{pid}.{start_time(pid)}"


def owner_alive(token: str) -> bool:
    """Is the run named by `token` still running? A zombie has ended (a guardian wakes the
    moment its run exits, often before the run's parent has read its exit status)."""
    pid, _, started = token.partition(".")
    fields = _stat(int(pid)) if pid.isdigit() else None   # one read: state and start time agree
    return fields is not None and fields[0] not in _ENDED and fields[19] == started


def die_with_parent() -> None:
    """preexec_fn: the kernel sends SIGKILL to this child when the thread that forked it exits."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _pids() -> Iterator[int]:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            yield int(entry)


# libvirt starts qemu with a clean environment: its domain name carries the owner instead.
_DOMAIN_OWNER = re.compile(rb"guest=coexist-(\d+\.\d+)")


def _owner_of(pid: int) -> str | None:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    for item in environ.split(b"\0"):
        if item.startswith(OWNER_VAR.encode() + b"="):
            return item.split(b"=", 1)[1].decode(errors="replace")
    if match := _DOMAIN_OWNER.search(cmdline):
        return match.group(1).decode()
    return None


def namespace(pid: int, kind: str) -> str | None:
    """The `kind` namespace ("net", "mnt", "pid", ...) `pid` lives in, as /proc/<pid>/ns names it
    (None if it is gone or not ours to look at)."""
    try:
        return os.readlink(f"/proc/{pid}/ns/{kind}")
    except OSError:
        return None


def netns_members(pid: int) -> set[int]:
    """Every process in the network namespace of `pid`, `pid` itself excluded."""
    inode = namespace(pid, "net")
    if inode is None or inode == namespace(os.getpid(), "net"):
        return set()
    return {p for p in _pids() if p != pid and namespace(p, "net") == inode}


def stale_owners() -> set[str]:
    """Owner tokens of marked processes whose run is gone."""
    return {o for pid in _pids() if (o := _owner_of(pid)) and not owner_alive(o)}


def leftovers(owners: set[str]) -> set[int]:
    """PIDs belonging to the given dead runs: marked, or sharing a network or mount namespace
    with a marked process (never the namespaces this process lives in: the machine's)."""
    if not owners:
        return set()
    marked = {pid for pid in _pids() if _owner_of(pid) in owners}
    kinds = ("net", "mnt")
    own = {namespace(os.getpid(), kind) for kind in kinds}
    namespaces = {ns for pid in marked for kind in kinds if (ns := namespace(pid, kind)) and ns not in own}
    found = set(marked)
    for pid in _pids():
        if any(namespace(pid, kind) in namespaces for kind in kinds):
            found.add(pid)
    found.discard(os.getpid())
    return found


def end(pids: set[int], *, grace: float = 3.0, gently: bool = True) -> None:
    """kill_all (not `gently`: SIGKILL alone, as a cgroup's kill), those inside a PID namespace
    below this one first, until their parents among `pids` have read their exits.

    A command nsenter forked into a lab's PID namespace has the nsenter, outside, as its parent.
    Killed together, the command's exit goes to the machine's PID 1, which may read it late
    (1.6-1.8 s here), and the lab's PID namespace lives until it does; killed first, its nsenter
    reads it at once."""
    machine = namespace(os.getpid(), "pid")
    inside = {pid for pid in pids if namespace(pid, "pid") not in (None, machine)}
    outside = pids - inside
    signals = (signal.SIGTERM, signal.SIGKILL) if gently else (signal.SIGKILL,)
    if inside:
        kill_all(inside, grace=grace, signals=signals)
        deadline = time.monotonic() + 1.0
        while any(_pending(pid, outside) for pid in inside) and time.monotonic() < deadline:
            time.sleep(0.01)
    kill_all(outside, grace=grace, signals=signals)


def _pending(pid: int, parents: set[int]) -> bool:
    """Is `pid` still running, or ended with its exit still to be read by one of `parents`?"""
    fields = _stat(pid)
    return fields is not None and (fields[0] not in _ENDED or int(fields[1]) in parents)


def kill_all(pids: set[int], *, grace: float = 3.0,
             signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGKILL)) -> None:
    """SIGTERM, a short grace period, then SIGKILL for whatever is still running."""
    for sig in signals:
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(running(p) for p in pids):
            time.sleep(0.1)
