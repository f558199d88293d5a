from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from coexist.base.retry import retry
from coexist.sandbox import processes


def _spawn(argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Popen, and wait until the child's exec has finished: Popen returns when the close-on-exec
    pipe closes, a moment before the kernel sets up the new program's environment and arguments;
    until then /proc/<pid>/environ and cmdline read empty (seen in over half of immediate reads
    here, and once as a failed CI run)."""
    child = subprocess.Popen(argv, env=env)
    retry(lambda _: Path(f"/proc/{child.pid}/environ").read_bytes(), timeout=5,
          what=f"{argv[0]} (pid {child.pid}) has its environment")
    return child


def test_owner_token_of_this_process_is_alive() -> None:
    assert processes.owner_alive(processes.owner_token())


def test_a_finished_process_or_reused_pid_is_not_alive() -> None:
    child = subprocess.Popen(["true"])
    token = processes.owner_token(child.pid)
    child.wait()
    assert not processes.owner_alive(token)
    pid = os.getpid()
    assert not processes.owner_alive(f"{pid}.1")   # same PID, other start time
    assert not processes.owner_alive("garbage")


def test_no_leftovers_for_no_owners() -> None:
    assert processes.leftovers(set()) == set()


def test_a_dead_runs_marked_process_is_found_and_ended() -> None:
    dead = subprocess.Popen(["true"])
    token = processes.owner_token(dead.pid)
    dead.wait()
    orphan = _spawn(["sleep", "60"], env={**os.environ, processes.OWNER_VAR: token})
    try:
        assert token in processes.stale_owners()
        assert orphan.pid in processes.leftovers({token})
        processes.kill_all(processes.leftovers({token}), grace=2)
        assert orphan.wait(timeout=5) != 0
    finally:
        orphan.kill()
        orphan.wait()


def test_a_live_runs_processes_are_not_leftovers() -> None:
    mine = _spawn(["sleep", "60"], env={**os.environ, processes.OWNER_VAR: processes.owner_token()})
    try:
        assert processes.owner_token() not in processes.stale_owners()
    finally:
        mine.kill()
        mine.wait()


def test_a_dead_runs_qemu_is_recognised_by_its_domain_name() -> None:
    dead = subprocess.Popen(["true"])
    token = processes.owner_token(dead.pid)
    dead.wait()
    # A process that keeps its command line (`sh -c "sleep 60"` may exec sleep and lose it).
    qemu_like = _spawn([sys.executable, "-c", "import time; time.sleep(60)", "-name",
                        f"guest=coexist-{token}-x"],
                       env={k: v for k, v in os.environ.items() if k != processes.OWNER_VAR})
    try:
        assert token in processes.stale_owners()
        assert qemu_like.pid in processes.leftovers({token})
    finally:
        qemu_like.kill()
        qemu_like.wait()


def test_an_exited_process_its_parent_has_not_reaped_yet_is_not_alive() -> None:
    """A guardian wakes the moment its run exits, often before the parent reaps it (a zombie)."""
    child = subprocess.Popen(["sleep", "30"])
    token = processes.owner_token(child.pid)
    assert processes.owner_alive(token)
    os.kill(child.pid, 9)
    retry(lambda _: Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z",
          timeout=5, what="the child is a zombie")
    assert not processes.owner_alive(token)
    child.wait()


def test_killing_does_not_wait_for_a_parent_to_read_the_exit_status(monkeypatch: pytest.MonkeyPatch) -> None:
    """A killed process that stays a zombie (its parent, here this test, does not wait for it;
    on this machine an orphan's parent, PID 1, reads it 1.6-1.8 s late) counts as gone: kill_all
    does not sit out its grace period (the power cycle of a host-reboot waited 1.8 s for them)."""
    child = subprocess.Popen(["sleep", "30"])
    naps: list[float] = []
    nap = time.sleep
    monkeypatch.setattr(processes.time, "sleep", lambda seconds: (naps.append(seconds), nap(seconds)))
    try:
        processes.kill_all({child.pid}, grace=3)
        assert Path(f"/proc/{child.pid}/stat").exists(), "the zombie is still there, unread"
        assert not processes.running(child.pid)
        assert len(naps) < 10, f"kill_all waited {sum(naps):.1f}s for a zombie"
    finally:
        child.wait()
    assert not processes.running(child.pid)
