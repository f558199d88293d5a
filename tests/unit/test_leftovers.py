"""The guardian: when its run dies (SIGKILL too), what the run left goes within a second."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from coexist.base.retry import retry
from coexist.sandbox import cgroups, leftovers, processes

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="cgroups and /var/tmp/coexist need root")


def test_a_killed_runs_cgroup_processes_and_work_folder_are_swept_by_its_guardian() -> None:
    run = subprocess.Popen(["sleep", "60"])          # stands in for a coexist process
    owner = processes.owner_token(run.pid)
    lab = cgroups.RunCgroup(owner, "lab").create()
    daemon = subprocess.Popen(["sleep", "60"], preexec_fn=lambda: cgroups.join_self(lab.procs_files),
                              start_new_session=True)   # unmarked, as libvirt's dnsmasq
    work = leftovers.WORK_ROOT / f"{owner}-lab"
    (work / "upper").mkdir(parents=True)
    guardian = subprocess.Popen([sys.executable, "-c", "import sys; from coexist.sandbox.leftovers import watch; "
                                 "watch(sys.argv[1])", owner],
                                env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
    try:
        retry(lambda _: daemon.pid in lab.members(), timeout=5, what="the daemon in the lab's cgroup")
        assert guardian.poll() is None   # waiting while its run lives
        run.send_signal(signal.SIGKILL)
        run.wait()
        assert guardian.wait(timeout=10) == 0
        assert daemon.wait(timeout=5) == -signal.SIGKILL
        assert not any(d.exists() for d in lab.dirs)
        assert not work.exists()
    finally:
        for proc in (run, daemon, guardian):
            proc.kill()
            proc.wait()
        lab.kill(timeout=2)
        lab.remove()


def test_the_sweep_leaves_a_live_runs_cgroup_alone() -> None:
    mine = cgroups.RunCgroup(processes.owner_token(), "alive").create()
    try:
        leftovers.sweep()
        assert all(d.is_dir() for d in mine.dirs)
    finally:
        mine.remove()
