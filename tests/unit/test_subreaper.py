"""A lab daemon runs under a subreaper: what it daemonizes is its subreaper's to reap (as systemd
reaps on a real host; this machine's PID 1 reaps an orphan 1.6-1.8 s late), and it still dies
with the run."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from coexist.base.retry import retry
from coexist.sandbox import namespaces, processes

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="a network namespace needs root")


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _children(pid: int) -> set[int]:
    """The children of a single-threaded `pid`, adopted ones included."""
    return set(map(int, Path(f"/proc/{pid}/task/{pid}/children").read_text().split()))


@pytest.fixture
def executor() -> Iterator[namespaces.Executor]:
    holder = namespaces.Holder("subreaper-test", mount=False, owner=processes.owner_token())
    yield namespaces.Executor(holder, mount=False, where="subreaper-test")
    holder.stop()


def test_what_a_daemon_daemonizes_is_adopted_by_its_subreaper_not_pid_1(
        executor: namespaces.Executor, tmp_path: Path) -> None:
    # the daemon forks a child that forks `sleep 60` and exits (as libvirtd daemonizes qemu)
    daemon = executor.spawn(["sh", "-c", 'sh -c "exec sleep 60 &"; exec sleep 60'],
                            log=(tmp_path / "daemon.log").open("w"), subreaper=True)
    orphans: set[int] = set()

    def adopted(_: bool) -> bool:
        orphans.update(p for p in _children(daemon.pid) if _cmdline(p) == b"sleep\x0060\x00")
        return len(orphans) == 2   # the daemon (exec'd into sleep) and the one it left behind

    def one_left(_: bool) -> bool:   # the daemon follows its subreaper (once the signal lands)
        return sum(processes.running(p) for p in orphans) == 1

    try:
        retry(adopted, timeout=10, what="the daemon and its orphan, both the subreaper's children")
        assert b"tini" in _cmdline(daemon.pid)
        daemon.kill()   # SIGKILL to the subreaper: the daemon has its parent-death signal
        daemon.wait()
        retry(one_left, timeout=10, what="the daemon gone with its subreaper, its orphan left")
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
        for pid in orphans:
            if processes.running(pid):
                os.kill(pid, signal.SIGKILL)
