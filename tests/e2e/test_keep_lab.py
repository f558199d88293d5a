"""`--coexist-keep-lab`: a failed test's lab and guest stay up until Ctrl-C; `coexist shell` enters both; then
they go like any other lab."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from coexist.sandbox import cgroups, processes
from coexist.sandbox.leftovers import WORK_ROOT

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
FAILING = '''
import pytest

@pytest.mark.coexist(start_order=["libvirt"])
def test_fails_on_purpose(coexist_lab, coexist_guest):
    coexist_guest.succeed("nslookup example.test 192.168.122.1")
    assert False, "on purpose: keep the lab"
'''


def coexist(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "coexist.cli", *argv], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)


def test_a_failed_tests_lab_is_kept_entered_and_then_torn_down(tmp_path: Path) -> None:
    (tmp_path / "test_mine.py").write_text(FAILING)
    inner = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-s", "--coexist-keep-lab",
                              "--coexist-artifacts", str(tmp_path / "artifacts"), str(tmp_path / "test_mine.py")],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
                             start_new_session=True)
    owner = processes.owner_token(inner.pid)
    seen = []
    try:
        assert inner.stdout is not None
        for line in inner.stdout:
            seen.append(line)
            if "press Ctrl-C to tear them down" in line:
                break
        kept = re.search(r"coexist: kept lab (\S+) of the failed test", "".join(seen))
        assert kept, "".join(seen[-40:])
        listing = coexist("shell")
        assert listing.returncode == 0 and kept.group(1) in listing.stdout, listing.stderr
        on_host = coexist("shell", kept.group(1), "--", "ip -br link show virbr0")
        assert on_host.returncode == 0 and "virbr0" in on_host.stdout, on_host.stdout + on_host.stderr
        # the shell is in the lab's own PID and UTS namespaces too: its init, its hostname
        who = coexist("shell", kept.group(1), "--", "cat /proc/1/comm; hostname")
        assert who.stdout.split() == ["tini", "lab-trixie"], who.stdout + who.stderr
        if shutil.which("ssh"):
            in_guest = coexist("shell", "--guest", kept.group(1), "--", "cat /proc/cmdline")
            assert in_guest.returncode == 0 and "coexist" in in_guest.stdout, in_guest.stderr
    finally:
        os.killpg(inner.pid, signal.SIGINT)
        rest, _ = inner.communicate(timeout=120)
    assert inner.returncode == 1, "".join(seen) + rest   # the inner test failed, as it should
    assert "on purpose: keep the lab" in "".join(seen) + rest
    assert not cgroups.of_owner(owner)
    assert not list(WORK_ROOT.glob(f"{owner}-*"))
