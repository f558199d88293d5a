"""Benchmark: where a coexist run spends its time, with figures and ratios from one run.

    sudo .venv/bin/python bench/speed.py [--release trixie] [--boots 3] [--seeds 3] [--matrix]
    sudo .venv/bin/python bench/speed.py --against REV [--seeds 5]

Prints, each against the code path it replaced where one exists, and says which of issue 9's
targets are met:

- firewalld questions: `firewall-cmd` (the path before) vs firewalld's D-Bus API (now);
- a firewall snapshot: with firewalld.txt written by five firewall-cmd calls (before) vs D-Bus;
- one round of guest probes in the symptom state: one after another vs at once (now);
- the first domain define of a lab: libvirt probing qemu (before) vs the kept capabilities;
- guest `virsh start` -> first SSH command on libvirt's stock `default` network, for a new
  client (a MAC dnsmasq has not seen) and a known one (a restart), with the boot's milestones
  read off the console and the bridge port (STP listening -> learning -> forwarding), and the
  same guest booted by qemu directly (no libvirt, no bridge) as the reference;
- the seed scenario as a whole process (`coexist run`), images cached, `--seeds` times: wall
  time, and the run's own phases and teardown from verdict.json;
- with --matrix: the seed x 3 releases x 2 libvirt backends x 2 start orders x 2 after-fix
  events (24 cells, 4 not applicable: bookworm's libvirt has no nftables backend) through
  `coexist matrix` with -n 1 and -n 2, against the 1329 s the same 24 cells took before.

With --against REV only the seed runs, --seeds times with this checkout and with REV's code (a
git worktree, this venv's dependencies), interleaved, and their ratio: whether a change of the
code's shape changed its speed. Written to speed-<release>-<date>-against-<REV>.json.

Writes everything to bench/results/speed-<release>-<date>.json. Absolute seconds depend on the
machine's load; the ratios (measured side by side in one run) are the figures to compare.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "harness"))

from coexist.base import log  # noqa: E402
from coexist.guest import accel  # noqa: E402
from coexist.guest.guest import Guest, accel_for  # noqa: E402
from coexist.guest.sshkeys import GuestKeys  # noqa: E402
from coexist.host import containers, firewall, qemucaps  # noqa: E402
from coexist.host.firewalld import Firewalld  # noqa: E402
from coexist.host.lab import Lab  # noqa: E402
from coexist.host.testbed import GUEST_IMAGE_DIR, Testbed  # noqa: E402
from coexist.images.built import build_images  # noqa: E402
from coexist.scenario.host import Host, parse_host  # noqa: E402

RESULTS = ROOT / "bench" / "results"
SEED = ROOT / "scenarios" / "seed-firewalld-direct.toml"
COEXIST = str(Path(sys.executable).with_name("coexist"))
MATRIX_BEFORE_S = 1329.0   # the 24-cell matrix in issue 9 (sequential runner, ~55 s a cell)
MATRIX_BEFORE_CELLS = 24

# The snapshot's firewalld part as it was (five firewall-cmd calls in one shell), for the ratio.
FIREWALLD_BEFORE = ("echo '# active zones'; firewall-cmd --get-active-zones; "
                    "echo '# zone of virbr0'; firewall-cmd --get-zone-of-interface=virbr0; "
                    "echo '# direct rules'; firewall-cmd --direct --get-all-rules; "
                    "echo '# permanent direct rules'; firewall-cmd --permanent --direct --get-all-rules; "
                    "echo '# masquerade in zone libvirt'; firewall-cmd --zone=libvirt --query-masquerade")


def timed(fn: Callable[[], Any], runs: int = 5) -> float:
    """The median seconds of `runs` calls."""
    samples = []
    for _ in range(runs):
        started = time.monotonic()
        fn()
        samples.append(time.monotonic() - started)
    return round(statistics.median(samples), 4)


def firewalld_figures(lab: Lab) -> dict[str, Any]:
    bus = Firewalld(lab)
    pairs = {
        "state": (lambda: lab.execute(["firewall-cmd", "--state"]), bus.running),
        "zone_of_virbr0": (lambda: lab.execute(["firewall-cmd", "--get-zone-of-interface=virbr0"]),
                           lambda: bus.zone_of("virbr0")),
        "masquerade_libvirt": (lambda: lab.execute(["firewall-cmd", "--zone=libvirt",
                                                    "--query-masquerade"]),
                               lambda: bus.masquerade("libvirt")),
    }
    figures: dict[str, Any] = {}
    for name, (before, now) in pairs.items():
        b, n = timed(before), timed(now)
        figures[name] = {"firewall_cmd_s": b, "dbus_s": n, "ratio": round(b / n, 1)}
    before = timed(lambda: lab.execute(FIREWALLD_BEFORE), 3)
    now = timed(bus.report, 3)
    figures["snapshot_firewalld_part"] = {"firewall_cmd_s": before, "dbus_s": now,
                                          "ratio": round(before / now, 1)}
    whole = timed(lambda: firewall.snapshot(lab, "bench"), 3)
    figures["snapshot_whole_s"] = whole
    figures["snapshot_whole_before_s"] = round(whole - now + before, 3)   # same captures + old part
    return figures


def probe_figures(guest: Guest) -> dict[str, Any]:
    """One round in the symptom state (DNS answers, ping and TCP wait for their timeout)."""
    endpoints = guest.lab.wan.endpoints
    commands = [f"nslookup {endpoints.name} {guest.network.dns}",
                f"ping -c1 -W1 {endpoints.ping_target}",
                f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 1 {endpoints.http_host} {endpoints.http_port}"]
    sequential = timed(lambda: [guest.execute(c) for c in commands], 3)
    concurrent = timed(guest.connectivity, 3)
    return {"sequential_s": sequential, "concurrent_s": concurrent,
            "ratio": round(sequential / concurrent, 2)}


class Milestones:
    """The console lines and the guest's bridge port states, timestamped as they appear."""

    def __init__(self, lab: Lab, guest: Guest) -> None:
        self.lab, self.guest = lab, guest
        self.seen: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> Milestones:
        self.started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        offset = 0
        ports: dict[str, str] = {}
        brif = self.lab.path("/sys/class/net/virbr0/brif")
        while not self._stop.is_set():
            now = time.monotonic() - self.started
            console = self.lab.path(self.guest.serial_log_path)
            if console.exists():
                text = console.read_text(errors="replace")
                if len(text) < offset:
                    offset = 0   # a restart emptied it
                for line in text[offset:].splitlines():
                    self.seen.append((now, line.strip()))
                offset = len(text)
            for state in brif.glob("*/state") if brif.is_dir() else []:
                value = state.read_text().strip()
                if ports.get(state.parent.name) != value:
                    ports[state.parent.name] = value
                    self.seen.append((now, f"port {state.parent.name} state {value}"))
            time.sleep(0.02)

    def first(self, needle: str, after: float = 0.0) -> float | None:
        return next((round(at, 2) for at, line in self.seen if needle in line and at >= after), None)

    def summary(self, start: float) -> dict[str, float | None]:
        """Seconds after `start` (the domain's start) of each milestone."""
        def rel(needle: str) -> float | None:
            at = self.first(needle, start)
            return None if at is None else round(at - start, 2)
        return {"port_learning": rel("state 2"), "port_forwarding": rel("state 3"),
                "kernel_first_line": rel("Linux version"), "init": rel("Run /init"),
                "lease": rel("udhcpc bound"),
                "ready_line": rel("COEXIST-GUEST-READY")}


def boot_figures(lab: Lab, images: Any, decision: accel.AccelDecision, boots: int) -> dict[str, Any]:
    new: list[dict[str, Any]] = []
    known: list[dict[str, Any]] = []
    for number in range(boots):
        keys = GuestKeys.generate(lab.workdir / f"bench-keys-{number}")
        guest = Guest(lab, images.guest, keys, name=f"coexist-{lab.owner}-bench{number}",
                      accel=decision.accel)
        with Milestones(lab, guest) as seen:
            entered = time.monotonic()
            with guest:
                new.append(_boot(guest, seen) | {"define_to_ssh_s": round(time.monotonic() - entered, 2)})
                guest.restart()
                known.append(_boot(guest, seen))
                log.info(f"boot {number + 1}/{boots}: new client {new[-1]}, known client {known[-1]}")
    return {"new_client": new, "known_client": known,
            "median_new_client_s": statistics.median(b["first_ssh"] for b in new),
            "median_known_client_s": statistics.median(b["first_ssh"] for b in known)}


def _boot(guest: Guest, seen: Milestones) -> dict[str, Any]:
    """The boot just done: its first SSH and its milestones, in seconds from the domain's start."""
    assert guest.boot_times is not None
    created = time.monotonic() - seen.started - guest.boot_times.first_ssh
    return {"first_ssh": round(guest.boot_times.first_ssh, 2), **seen.summary(created)}


def direct_ready(lab: Lab, images: Any, decision: accel.AccelDecision) -> float:
    """The guest booted by qemu directly (user networking: no bridge, no dnsmasq) to its ready line."""
    sys.path.insert(0, str(ROOT / "bench"))
    from guest_boot import direct_boot

    keys = GuestKeys.generate(lab.workdir / "bench-keys-direct")
    return round(direct_boot(lab, f"{GUEST_IMAGE_DIR}/{images.guest.kernel.name}",
                             f"{GUEST_IMAGE_DIR}/{images.guest.initrd.name}",
                             images.guest.cmdline(keys.kernel_args()), decision.accel), 2)


def define_figures(host: Host, images: Any) -> dict[str, Any]:
    """The first domain define of a lab without and with libvirt's kept qemu capabilities."""
    seconds = {}
    for case in ("probe", "kept"):
        with Testbed(host.plan(), images, name=f"bench-{case}") as bed:
            lab = bed.lab
            if case == "probe":
                for file in lab.path(qemucaps.INSIDE).glob("*.xml"):
                    file.unlink()
            bed.start(("libvirt",))
            keys = GuestKeys.generate(lab.workdir / "keys")
            guest = Guest(lab, images.guest, keys, name=f"coexist-{lab.owner}-define",
                          accel="tcg")
            from coexist.guest.domain import DomainSpec, domain_xml

            xml = domain_xml(DomainSpec(name=guest.name, kernel="/k", initrd="/i", cmdline="",
                                        serial_log=guest.serial_log_path, mac=guest.mac))
            started = time.monotonic()
            lab.libvirt().defineXML(xml).undefine()
            seconds[case] = round(time.monotonic() - started, 2)
    return {"first_define_probing_s": seconds["probe"], "first_define_kept_s": seconds["kept"],
            "saved_s": round(seconds["probe"] - seconds["kept"], 2)}


def seed_once(release: str, command: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """One `coexist run` of the seed as a whole process: its wall time, timings and steps."""
    with tempfile.TemporaryDirectory(prefix="coexist-bench-") as artifacts:
        started = time.monotonic()
        done = subprocess.run([*command, "run", str(SEED), "--release", release, "--artifacts", artifacts],
                              capture_output=True, text=True, env=env)
        wall = round(time.monotonic() - started, 1)
        verdicts = list(Path(artifacts).glob("*/verdict.json"))
        verdict = json.loads(verdicts[0].read_text()) if verdicts else {}
        return {"wall": wall} | {k: round(v, 1) for k, v in verdict.get("timings", {}).items()} | {
            "exit": done.returncode,
            # each step whole, and its guests' measurement until settled
            "each_step": {st["id"]: {"s": st["seconds"], "settle": {
                g: [v["seconds"], v["rounds"]] for g, v in st["guests"].items()}}
                for st in verdict.get("steps", [])}}


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    walls = [run.pop("wall") for run in runs]
    return {"wall_s": walls, "median_wall_s": statistics.median(walls), "runs": runs,
            "teardown_s": [r.get("teardown") for r in runs],
            "all_as_expected": all(r["exit"] == 0 for r in runs)}


def seed_figures(release: str, runs: int) -> dict[str, Any]:
    phases = []
    for number in range(runs):
        phases.append(seed_once(release, [COEXIST]))
        log.info(f"seed {number + 1}/{runs}: {phases[-1]}")
    return _summary(phases)


def seed_against(release: str, runs: int, revision: str) -> dict[str, Any]:
    """The seed with this checkout and with `revision`'s code, runs interleaved (this, that, this,
    ...) so that the machine's drift falls on both; the ratio of their medians (this / that)."""
    with tempfile.TemporaryDirectory(prefix="coexist-bench-rev-") as folder:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", folder, revision],
                       check=True, capture_output=True)
        try:
            # that revision's package: `coexist` under harness/ (a source layout) or, before it,
            # a top-level `harness`; this venv's dependencies serve both
            layout = Path(folder, "harness", "coexist").is_dir()
            env = os.environ | {"PYTHONPATH": str(Path(folder, "harness") if layout else Path(folder))}
            theirs = [sys.executable, "-m", "coexist.cli" if layout else "harness.cli"]
            ours, old = [], []
            for number in range(runs):
                ours.append(seed_once(release, [COEXIST]))
                old.append(seed_once(release, theirs, env))
                log.info(f"seed {number + 1}/{runs}: this {ours[-1]['wall']} s (exit {ours[-1]['exit']}), "
                         f"{revision} {old[-1]['wall']} s (exit {old[-1]['exit']})")
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", folder],
                           capture_output=True)
    this, that = _summary(ours), _summary(old)
    return {"this": this, revision: that,
            "ratio_this_over_that": round(this["median_wall_s"] / that["median_wall_s"], 3)}


def matrix_figures() -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for workers in (1, 2):
        with tempfile.TemporaryDirectory(prefix="coexist-bench-matrix-") as out:
            argv = [COEXIST, "matrix", str(SEED), "--release", "bookworm,trixie,forky",
                    "--libvirt-firewall-backend", "default,nftables",
                    "--start-order", "firewalld+dockerd+libvirt,dockerd+libvirt+firewalld",
                    "--after-fix", "firewalld-reload,dockerd-restart",
                    "--out", out, "-n", str(workers)]
            started = time.monotonic()
            done = subprocess.run(argv, capture_output=True, text=True)
            wall = round(time.monotonic() - started, 1)
            report = json.loads((Path(out) / "matrix.json").read_text()) \
                if (Path(out) / "matrix.json").exists() else {}
            rows = report.get("rows", [])
            figures[f"n{workers}"] = {
                "wall_s": wall, "exit": done.returncode, "cells": len(rows),
                "s_per_cell": round(wall / max(len(rows), 1), 1),
                "command": " ".join(argv[1:]).replace(out, "<out>"),
                "summary": report.get("summary"),
                "cell_s": sorted(r["seconds"] for r in rows),
                # what made the exit non-zero, cell by cell (kept: /tmp is not a record)
                "not_as_expected": [
                    {"label": r["label"], "error": r["error"],
                     "mismatches": {k: c["mismatch"] for k, c in r["cells"].items() if c["mismatch"]}}
                    for r in rows if r["error"] or any(c["mismatch"] for c in r["cells"].values())],
                "stderr_tail": done.stderr.strip().splitlines()[-5:]}
            log.info(f"matrix -n {workers}: {wall} s, exit {done.returncode}")
    before = MATRIX_BEFORE_S / MATRIX_BEFORE_CELLS
    for key in ("n1", "n2"):
        figures[key]["per_cell_ratio_vs_before"] = round(before / figures[key]["s_per_cell"], 2)
    figures["n2_over_n1"] = round(figures["n1"]["wall_s"] / figures["n2"]["wall_s"], 2)
    figures["before"] = {"cells": MATRIX_BEFORE_CELLS, "wall_s": MATRIX_BEFORE_S,
                         "s_per_cell": round(before, 1)}
    return figures


def main() -> int:
    log.to_stderr()
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--release", default="trixie")
    parser.add_argument("--boots", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--matrix", action="store_true")
    parser.add_argument("--against", metavar="REV", default=None,
                        help="only the seed, --seeds times with this checkout and with REV's code, "
                             "interleaved; their ratio")
    args = parser.parse_args()
    if args.against:
        result = {"command": "sudo .venv/bin/python bench/speed.py " + " ".join(sys.argv[1:]),
                  "date": time.strftime("%Y-%m-%d %H:%M"), "release": args.release,
                  "seed_against": seed_against(args.release, args.seeds, args.against)}
        out = RESULTS / f"speed-{args.release}-{time.strftime('%Y-%m-%d')}-against-{args.against}.json"
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result, indent=2))
        print(f"\nwritten to {out}")
        return 0
    images = build_images(args.release)
    host = parse_host({"release": args.release, "libvirt_firewall_backend": "nftables",
                       "start_order": ["firewalld", "dockerd", "libvirt"]})
    result: dict[str, Any] = {"command": "sudo .venv/bin/python bench/speed.py " + " ".join(sys.argv[1:]),
                              "date": time.strftime("%Y-%m-%d %H:%M"), "release": args.release}
    result["define"] = define_figures(host, images)
    with Testbed(host.plan(), images, name="bench") as bed:
        lab = bed.lab
        bed.start(host.start_order)
        containers.run_web(lab, name="coexist-web", published_port=8080)
        decision = accel_for(lab, images.guest)
        result["accel"] = decision.accel
        result["firewalld"] = firewalld_figures(lab)
        result["boot"] = boot_figures(lab, images, decision, args.boots)
        result["boot"]["direct_qemu_ready_s"] = direct_ready(lab, images, decision)
        keys = GuestKeys.generate(lab.workdir / "bench-keys-probe")
        with Guest(lab, images.guest, keys, name=f"coexist-{lab.owner}-probe", accel=decision.accel) as guest:
            result["probes"] = probe_figures(guest)
    result["seed"] = seed_figures(args.release, args.seeds)
    if args.matrix:
        result["matrix"] = matrix_figures()
    boot, seed = result["boot"], result["seed"]
    result["targets"] = {
        "guest start -> first SSH <= 5 s (new client)": boot["median_new_client_s"] <= 5,
        "guest start -> first SSH <= 5 s (known client: a restart)": boot["median_known_client_s"] <= 5,
        "seed as a whole process <= 15 s": seed["median_wall_s"] <= 15,
        "seed stretch <= 10 s": seed["median_wall_s"] <= 10,
        "teardown <= 1 s": all(t is not None and t <= 1 for t in seed["teardown_s"]),
    }
    out = RESULTS / f"speed-{args.release}-{time.strftime('%Y-%m-%d')}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"\nwritten to {out}")
    for target, met in result["targets"].items():
        print(f"  {'MET    ' if met else 'NOT MET'} {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
