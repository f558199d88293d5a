"""Interrupted, killed and concurrent, for real: `coexist run` of the seed scenario in its own process
group, a signal delivered to the whole group at three moments, then nothing of that run may remain
(process, mount, namespace, cgroup, work folder) and the root network namespace must be byte-identical
to what it was before the run. Two runs of one scenario started at the same moment both pass.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from coexist.images.built import build_images
from coexist.sandbox import cgroups, processes
from coexist.sandbox.leftovers import WORK_ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.serial]
ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "scenarios" / "seed-firewalld-direct.toml"
# the log line that marks each moment (coexist.base.log's step lines, every one of them with -v)
MOMENTS = {
    "daemons-starting": "- start dockerd",
    "guest-booting": "- boot guest",
    "after-fix": "host# firewall-cmd --reload",
}
CLEAN_WITHIN = 5.0      # seconds after the run's end (SIGKILL: after the signal) for every trace to go
RUN_TIMEOUT = 300.0


# -- what the machine looks like ----------------------------------------------------------------
def root_netns(image_root: Path) -> dict[str, str]:
    """The root network namespace as its own tools print it. Firewall tools come from the host
    image (the machine has none), run chrooted in a private mount namespace, still in the root
    network namespace: they only read."""
    firewall = {
        "nft": "nft list ruleset",
        "iptables-nft": "iptables-nft-save", "iptables-legacy": "iptables-legacy-save",
        "ip6tables-nft": "ip6tables-nft-save", "ip6tables-legacy": "ip6tables-legacy-save",
    }
    state = {}
    for name, command in firewall.items():
        script = f"mount -t proc proc {image_root}/proc && exec chroot {image_root} {command}"
        result = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                                capture_output=True, text=True, timeout=30)
        # the *-save tools print a timestamp comment line
        state[name] = re.sub(r"(?m)^# (Generated|Completed) .*$", "", result.stdout) + result.stderr
    for name, argv in {"links": ["ip", "-d", "link", "show"], "addresses": ["ip", "addr", "show"],
                       "routes": ["ip", "route", "show", "table", "all"],
                       "routes6": ["ip", "-6", "route", "show", "table", "all"],
                       "rules": ["ip", "rule", "show"], "rules6": ["ip", "-6", "rule", "show"],
                       "netns": ["ip", "netns", "list"]}.items():
        state[name] = subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout
    state["sysctl"] = "\n".join(f"{path}={value}" for path, value in sorted(_net_sysctls().items()))
    return state


VOLATILE_SYSCTLS = re.compile(r"nf_conntrack_count$|/neigh/.*/(base_reachable_time|retrans_time)")


def _net_sysctls() -> dict[str, str]:
    values = {}
    for path in Path("/proc/sys/net").rglob("*"):
        if path.is_file() and not VOLATILE_SYSCTLS.search(str(path)):
            try:
                values[str(path)] = path.read_text().strip()
            except OSError:
                pass
    return values


@dataclass
class Machine:
    """What exists on the machine before a run: namespaces, mounts, processes."""

    namespaces: set[str] = field(default_factory=set)
    mounts: set[str] = field(default_factory=set)

    @classmethod
    def now(cls) -> Machine:
        seen = cls()
        for pid in _live_pids():
            for kind in ("net", "mnt", "cgroup", "pid", "uts", "ipc"):
                try:
                    seen.namespaces.add(os.readlink(f"/proc/{pid}/ns/{kind}"))
                except OSError:
                    pass
        seen.mounts = {line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()}
        return seen


def _live_pids() -> Iterator[int]:
    """Processes that have not exited (a zombie has ended: only its parent has yet to read its status)."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if stat.rsplit(")", 1)[1].split()[0] != "Z":
                yield int(entry)


def remains(owner: str, before: Machine) -> list[str]:
    """Everything of run `owner` still there, one line each."""
    found = []
    now = Machine.now()
    for pid in _live_pids():
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            cgroup = Path(f"/proc/{pid}/cgroup").read_text()
        except OSError:
            continue
        if (f"{processes.OWNER_VAR}={owner}".encode() in environ.split(b"\0")
                or f"coexist-{owner}".encode() in cmdline or f"coexist-{owner}-" in cgroup):
            shown = cmdline.replace(b"\0", b" ").decode(errors="replace")[:100]
            found.append(f"process {pid}: {shown}")
    found += [f"namespace {ns}" for ns in sorted(now.namespaces - before.namespaces)]
    found += [f"mount {m}" for m in sorted(now.mounts - before.mounts)]
    found += [f"cgroup {d}" for d in cgroups.of_owner(owner)]
    found += [f"work folder {f}" for f in WORK_ROOT.glob(f"{owner}-*")] if WORK_ROOT.is_dir() else []
    return found


# -- a run in its own process group -------------------------------------------------------------
class CoexistRun:
    def __init__(self, artifacts: Path) -> None:
        self.artifacts = artifacts
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "coexist.cli", "run", "-v", str(SEED), "--artifacts", str(artifacts)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
            cwd=ROOT)
        self.owner = processes.owner_token(self.proc.pid)

    def wait_for(self, marker: str) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)
            if marker in line:
                return
        raise AssertionError(f"the run ended before {marker!r}:\n{''.join(self.lines[-30:])}")

    def finish(self, timeout: float = RUN_TIMEOUT) -> tuple[int, str, str]:
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            # a run that never ends fails the test, and goes: its guardian sweeps the lab (two
            # runs that hung on a lost Ctrl-C stayed, with their labs' daemons, for hours)
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.communicate()
            raise
        return self.proc.returncode, out, "".join(self.lines) + err


@pytest.fixture(scope="module")
def image_root() -> Path:
    return build_images("trixie").host.root


@pytest.mark.parametrize("moment", list(MOMENTS))
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL],
                         ids=lambda s: signal.Signals(s).name)
def test_a_signal_mid_run_leaves_nothing(signum: int, moment: str, artifacts: Path,
                                         image_root: Path) -> None:
    before, netns = Machine.now(), root_netns(image_root)
    run = CoexistRun(artifacts)
    run.wait_for(MOMENTS[moment])
    signalled = time.monotonic()
    os.killpg(run.proc.pid, signum)
    code, _out, err = run.finish()
    ended = time.monotonic()
    deadline = (signalled if signum == signal.SIGKILL else ended) + CLEAN_WITHIN
    while (left := remains(run.owner, before)) and time.monotonic() < deadline:
        time.sleep(0.1)
    clean = time.monotonic()
    print(f"{signal.Signals(signum).name} at {moment}: exit {code} after {ended - signalled:.1f}s, "
          f"nothing left {clean - signalled:.1f}s after the signal")
    assert left == [], "\n".join(left)
    assert root_netns(image_root) == netns
    if signum == signal.SIGKILL:
        assert code == -signal.SIGKILL
        return
    assert code == 128 + signum, err[-3000:]
    last = err.strip().splitlines()[-1]
    name = signal.Signals(signum).name
    match = re.fullmatch(rf"coexist: interrupted \({name}\) during (.+); cleaned up; "
                         rf"partial artifacts: (\S+)", last)
    assert match, err[-3000:]
    folder = Path(match.group(2))
    assert folder.parent == artifacts.resolve() and folder.is_dir()
    assert "Traceback" not in err


def test_a_second_ctrl_c_during_teardown_still_tears_down(artifacts: Path, image_root: Path) -> None:
    before, netns = Machine.now(), root_netns(image_root)
    run = CoexistRun(artifacts)
    run.wait_for(MOMENTS["after-fix"])
    os.killpg(run.proc.pid, signal.SIGINT)
    run.wait_for("(Interrupted)")   # unwinding has begun: the teardown comes next
    os.killpg(run.proc.pid, signal.SIGINT)
    code, _out, err = run.finish()
    assert code == 130, err[-3000:]
    assert "coexist: SIGINT again: finishing the teardown faster" in err
    assert err.strip().splitlines()[-1].startswith("coexist: interrupted (SIGINT) during "), err[-3000:]
    assert remains(run.owner, before) == []
    assert root_netns(image_root) == netns


def test_two_runs_of_one_scenario_at_the_same_moment_both_pass(artifacts: Path, image_root: Path) -> None:
    before, netns = Machine.now(), root_netns(image_root)
    runs = [CoexistRun(artifacts) for _ in range(2)]
    results = [run.finish() for run in runs]
    for code, out, err in results:
        assert code == 0, err[-3000:] + out[-3000:]
    folders = [re.search(r"artifacts: (\S+)", out).group(1) for _, out, _ in results]  # type: ignore[union-attr]
    assert len(set(folders)) == 2
    for folder in folders:
        assert Path(folder).parent == artifacts.resolve()
        assert "As expected by the scenario." in (Path(folder) / "verdict.txt").read_text()
    for run in runs:
        assert remains(run.owner, before) == []
    assert root_netns(image_root) == netns
