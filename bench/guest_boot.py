"""Benchmark: `virsh start` -> first SSH command for the coexist guest, in a real lab.

    sudo .venv/bin/python bench/guest_boot.py [--runs 5] [--release trixie]

Boots the guest `--runs` times as a libvirt domain on the stock NAT network (no Docker, no
firewalld: only libvirt), and as many times by qemu directly with user networking in the same lab
(no libvirt, no bridge) as a reference measured under the same load. Prints medians and writes
them, with the ratio libvirt/direct (stable where absolute seconds are noisy), to
bench/results/guest-boot-<release>-<accel>.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "harness"))

from coexist.base import log
from coexist.base.retry import retry
from coexist.guest import accel
from coexist.guest.guest import READY_LINE, Guest
from coexist.guest.sshkeys import GuestKeys
from coexist.host.lab import Lab
from coexist.host.testbed import GUEST_IMAGE_DIR, Testbed
from coexist.images.built import build_images
from coexist.scenario.host import parse_host

RESULTS = Path(__file__).resolve().parent / "results"


def direct_boot(lab: Lab, kernel: str, initrd: str, cmdline: str, accel_: str) -> float:
    """qemu started by hand in the lab, user networking: start -> ready line."""
    console = lab.logdir / "direct-console.log"
    cpu = "host" if accel_ == "kvm" else "max"
    argv = ["qemu-system-x86_64", "-accel", accel_, "-cpu", cpu, "-M", "pc", "-m", "256",
            "-nodefaults", "-no-user-config", "-no-reboot", "-display", "none",
            "-serial", "stdio", "-kernel", kernel, "-initrd", initrd, "-append", cmdline,
            "-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0"]
    with open(console, "w") as sink:
        started = time.monotonic()
        qemu = lab.executor.spawn(argv, log=sink)
        try:
            return retry(lambda last: READY_LINE in console.read_text(errors="replace")
                         and time.monotonic() - started, timeout=120, what="direct boot ready",
                         interval=0.05)
        finally:
            qemu.kill()
            qemu.wait()


def main() -> int:
    log.to_stderr()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--release", default="trixie")
    args = parser.parse_args()
    images = build_images(args.release)
    host = parse_host({"release": args.release, "start_order": ["libvirt"]})
    samples: dict[str, list[float]] = {"ready_line": [], "lease": [], "first_ssh": [],
                                       "direct_ready_line": []}
    with Testbed(host.plan(), images, name="bench") as bed:
        lab = bed.lab
        bed.start(host.start_order)
        kernel = f"{GUEST_IMAGE_DIR}/{images.guest.kernel.name}"
        initrd = f"{GUEST_IMAGE_DIR}/{images.guest.initrd.name}"
        decision = accel.decide(lab, kernel, initrd)
        keys = GuestKeys.generate(lab.workdir / "keys")
        for run in range(args.runs):
            with log.step(f"run {run + 1}/{args.runs}"):
                with Guest(lab, images.guest, keys, name=f"coexist-{lab.owner}-bench",
                           accel=decision.accel) as guest:
                    assert guest.boot_times is not None
                    samples["ready_line"].append(guest.boot_times.ready_line)
                    samples["lease"].append(guest.boot_times.lease)
                    samples["first_ssh"].append(guest.boot_times.first_ssh)
                samples["direct_ready_line"].append(direct_boot(
                    lab, kernel, initrd, images.guest.cmdline(keys.kernel_args()),
                    decision.accel))
    medians = {name: round(statistics.median(values), 2) for name, values in samples.items()}
    result = {
        "what": "virsh start -> guest milestones (s), medians; direct = qemu without libvirt",
        "release": args.release, "accel": decision.accel, "accel_reason": decision.reason,
        "kernel": images.guest.kernel_version, "runs": args.runs, "medians": medians,
        "ratio_first_ssh_libvirt_over_direct_ready": round(
            medians["first_ssh"] / medians["direct_ready_line"], 2),
        "samples": {k: [round(v, 2) for v in vs] for k, vs in samples.items()},
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"guest-boot-{args.release}-{decision.accel}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["medians"], indent=2))
    print(f"ratio first SSH (libvirt) / ready line (direct qemu): "
          f"{result['ratio_first_ssh_libvirt_over_direct_ready']}  -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
