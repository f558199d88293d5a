"""What a run that died leaves behind, and who ends it.

A run's processes live in its labs' cgroups (coexist.sandbox.cgroups) and carry its owner token
(coexist.sandbox.processes); its work folder is WORK_ROOT/<owner>-<lab>. `sweep()` ends all of it for every
run that is gone, and touches nothing whose owner is alive or that carries no mark. Each run also
starts a guardian (`guard`): a small process in a session of its own that waits for the run's
process to end, however it ends (SIGKILL too), sweeps that run's leftovers and exits, so a killed
run is cleaned up within a second instead of at the next run.
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

from coexist.base import log
from coexist.sandbox import cgroups, processes

WORK_ROOT = Path("/var/tmp/coexist")
_guarded: set[int] = set()   # the processes a guardian already watches


def sweep(only: str | None = None) -> None:
    """End the processes and remove the cgroups and work folders of dead runs (or of `only`)."""
    stale_cgroups = {name: dirs for name, dirs in cgroups.stale().items()
                     if only is None or name.startswith(f"{cgroups.PREFIX}{only}-")}
    stale = {owner for owner in processes.stale_owners() if only is None or owner == only}
    if stale_cgroups or stale:
        with log.step(f"sweep leftovers of dead runs {sorted(stale_cgroups) + sorted(stale)}"):
            for dirs in stale_cgroups.values():
                processes.end(cgroups.members(dirs), gently=False)   # a lab's own processes first
                cgroups.kill_tree(dirs)
                cgroups.remove_tree(dirs)
            processes.end(processes.leftovers(stale))
    if WORK_ROOT.is_dir():
        for folder in WORK_ROOT.iterdir():
            owner = folder.name.split("-", 1)[0]
            if (only is None or owner == only) and not processes.owner_alive(owner):
                shutil.rmtree(folder, ignore_errors=True)


def guard(owner: str) -> None:
    """Start this process's guardian (once per process)."""
    if os.getpid() in _guarded:
        return
    package_parent = Path(__file__).resolve().parent.parent
    subprocess.Popen(
        [sys.executable, "-c", "import sys; from coexist.sandbox.leftovers import watch; watch(sys.argv[1])",
         owner],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True, close_fds=True,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(package_parent)},
    )
    _guarded.add(os.getpid())


def watch(owner: str) -> None:
    """The guardian: wait for `owner`'s process to end, then sweep what it left."""
    pid = int(owner.split(".", 1)[0])
    try:
        fd: int | None = os.pidfd_open(pid)
    except ProcessLookupError:
        fd = None
    except OSError:   # a kernel before 5.3: look every half second instead
        while processes.owner_alive(owner):
            time.sleep(0.5)
        fd = None
    if fd is not None and processes.owner_alive(owner):
        select.select([fd], [], [])   # readable once the process has ended
    sweep(only=owner)
