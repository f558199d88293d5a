"""A lab is a host of its own, on the real stack: a scenario's `run` step, run as root in its lab
while a second lab runs, sees only its own lab's processes and hostname, and its `pkill` and
`hostname` reach neither the machine nor the other lab."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import uuid
from pathlib import Path

import pytest
from coexist.base.retry import retry
from coexist.host.daemons import Daemon, Service
from coexist.host.testbed import HostPlan, Testbed
from coexist.images.built import build_images
from coexist.run.runner import run_scenario
from coexist.sandbox import processes
from coexist.scenario import model as scenario

pytestmark = pytest.mark.e2e


def _named(marker: str) -> set[int]:
    """Running processes, seen from the machine, whose argv[0] is `marker` (`exec -a`)."""
    found = set()
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            named = Path(f"/proc/{entry}/cmdline").read_bytes().startswith(marker.encode() + b"\0")
        except OSError:
            continue
        if named and processes.running(int(entry)):
            found.add(int(entry))
    return found


def _report(marker: str) -> str:
    # `[c]oexist-...` matches the marker but not the shell that carries the pattern (as admins write it)
    pattern = f"[{marker[0]}]{marker[1:]}"
    commands = [
        "hostname",
        "cat /proc/1/comm",
        f"setsid -f bash -c 'exec -a {marker} sleep 600' >/dev/null 2>&1",
        f"pgrep -f '{pattern}'",
        f"pkill -f '{pattern}'",
        f"for i in $(seq 100); do pgrep -f '{pattern}' >/dev/null || exit 0; sleep 0.1; done; exit 1",
        "pkill -x dockerd; echo $?",   # a common line in reports; this lab runs no Docker
        "nsenter -t 1 -u hostname",   # PID 1 is the lab's own init
        "sysctl -w kernel.printk='4 4 1 7'",   # the machine's kernel's: read-only in the lab
        "hostname renamed-by-a-report",
        "ps -e -o args=",
    ]
    quoted = ",\n  ".join('"' + c.replace("\\", "\\\\").replace('"', '\\"') + '"' for c in commands)
    return f"""
[scenario]
name = "a-report-that-signals"
summary = "a report's run step that looks around, signals by name and renames the host"

[host]
release = "trixie"
start_order = ["libvirt"]

[[step]]
do = "boot"

[[step]]
run = [
  {quoted}
]
"""


def test_a_run_step_sees_and_signals_only_its_own_lab(artifacts: Path, tmp_path: Path) -> None:
    marker = f"coexist-marker-{uuid.uuid4().hex[:8]}"
    images = build_images("trixie")
    machine_name, machine_printk = socket.gethostname(), Path("/proc/sys/kernel/printk").read_text()
    on_machine = subprocess.Popen(["bash", "-c", f"exec -a {marker} sleep 600"])
    other_plan = HostPlan(release="trixie", start_order=(Service.DOCKERD,))
    try:
        with Testbed(other_plan, images, name="other", artifacts=artifacts / "other") as other:
            other.boot()
            other.lab.succeed(f"setsid -f bash -c 'exec -a {marker} sleep 600' >/dev/null 2>&1")
            retry(lambda _: len(_named(marker)) == 2, timeout=10,
                  what="the machine's and the other lab's marked process")
            before = _named(marker)

            file = tmp_path / "a-report-that-signals.toml"
            file.write_text(_report(marker))
            verdict = run_scenario(scenario.load(file), artifacts=artifacts / "report", images=images)
            outputs = [(c.command, c.returncode, c.output.strip()) for c in verdict.step("admin").commands]
            print("\n".join(map(str, outputs)))
            hostname, init, started, listed, killed, gone, dockerd, entered, printk, renamed, ps = outputs

            assert hostname[1:] == (0, "lab-trixie"), hostname
            assert init[1:] == (0, "tini"), init   # the lab's own PID 1, not the machine's init
            assert started[1] == 0, started
            assert listed[1] == 0 and len(listed[2].split()) == 1, listed   # its own process only
            assert killed[1] == 0 and gone[1] == 0, (killed, gone)
            assert dockerd[2] == "1", dockerd   # pkill found no dockerd: the other lab's is not visible
            assert entered[1:] == (0, "lab-trixie"), entered
            assert printk[1] != 0, printk   # "permission denied": /proc/sys is read-only outside net
            assert renamed[1] == 0, renamed
            assert "pytest" not in ps[2] and marker not in ps[2], ps[2]   # nothing of the machine's

            assert _named(marker) == before, "the machine's and the other lab's marked processes live"
            assert on_machine.poll() is None
            assert other.lab.running(Daemon.DOCKERD) and other.lab.docker_ping(), \
                "the other lab's dockerd lives"
            assert other.lab.succeed("hostname").strip() == "other-trixie"
            assert socket.gethostname() == machine_name
            assert Path("/proc/sys/kernel/printk").read_text() == machine_printk
    finally:
        on_machine.send_signal(signal.SIGKILL)
        on_machine.wait()
