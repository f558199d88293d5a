"""KVM or TCG: decided by booting the guest kernel under KVM for real, not by /dev/kvm existing."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, cast

from coexist.base import log
from coexist.base.retry import DeadlineExceeded, retry

if TYPE_CHECKING:
    from coexist.host.lab import Lab

Accel = Literal["kvm", "tcg"]
ACCELS = ("auto", "kvm", "tcg")   # what a run may ask for: auto probes (decide), kvm or tcg forces it
PROBE_MARK = "Run /init as init process"   # the kernel printed it: it booted to userspace
PROBE_TIMEOUT = 15.0
_CACHE = Path("/run/coexist/accel-probe.json")


def tcg_clock_args(cpuinfo: str | None = None) -> tuple[str, ...]:
    """The kernel arguments that give a TCG guest a steady clock: its TSC, at a known frequency.

    Under TCG the guest's TSC counts at the host's TSC rate, steadily, while the guest's timer
    ticks come late (the host runs the emulator between them). Left to itself the guest kernel
    calibrates the TSC against the PIT, which failed ("tsc: Unable to calibrate against PIT"), or
    its clocksource watchdog, comparing the TSC with those ticks (no HPET or ACPI PM timer with
    acpi=off), marked it unstable ("skew is too large": 512 ms of jiffies against 614-656 ms of
    TSC). Either way the guest keeps time in refined-jiffies (4 ms steps), where busybox's
    nslookup gives its A and AAAA queries one ID and drops the second answer: each lookup took
    5 s (how often, measured: bench/results/README.md, the TCG clock).
    tsc_early_khz= skips the calibration and tsc=reliable the watchdog.
    The host's "cpu MHz" is its TSC's rate only with a constant TSC and without APERF/MPERF (with
    them it is the current frequency): otherwise nothing is passed, and the log says so.
    """
    text = Path("/proc/cpuinfo").read_text() if cpuinfo is None else cpuinfo
    flags = set(next((line.split(":", 1)[1].split() for line in text.splitlines()
                      if line.startswith("flags")), []))
    mhz = next((line.split(":", 1)[1].strip() for line in text.splitlines()
                if line.startswith("cpu MHz")), None)
    if "constant_tsc" not in flags or "aperfmperf" in flags or mhz is None:
        log.info("guest clock: this host's 'cpu MHz' is not its TSC rate (no constant TSC, or "
                 "APERF/MPERF): the TCG guest calibrates its TSC itself and may keep time in jiffies")
        return ()
    return (f"tsc_early_khz={round(float(mhz) * 1000)}", "tsc=reliable")


@dataclass(frozen=True)
class AccelDecision:
    accel: Accel
    reason: str


def decide(lab: Lab, kernel: str, initrd: str, *, asked: str = "auto") -> AccelDecision:
    """Use KVM only if the guest kernel really boots under it here; remember the answer per boot.

    On some hosts /dev/kvm exists but cannot run a stock kernel (nested PVM flavours): the
    capabilities still advertise kvm. `asked` (one of ACCELS: a run's option, `coexist run
    --accel` or pytest's `--coexist-accel`) other than auto forces it, and so, without it, does
    COEXIST_ACCEL=tcg|kvm (each says so).
    """
    if asked != "auto":
        return AccelDecision(cast(Accel, asked), f"forced by the run's option ({asked})")
    forced = os.environ.get("COEXIST_ACCEL")
    if forced in ("kvm", "tcg"):
        return AccelDecision(cast(Accel, forced), f"forced by COEXIST_ACCEL={forced}")
    if forced:
        raise ValueError(f"COEXIST_ACCEL={forced!r}: allowed values are kvm and tcg")
    if not Path("/dev/kvm").exists():
        return AccelDecision("tcg", "no /dev/kvm on this machine")
    boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    key = f"{boot_id}:{kernel}"
    if _CACHE.exists():
        cached = json.loads(_CACHE.read_text())
        if cached.get("key") == key:
            return AccelDecision(cached["accel"], cached["reason"] + " (probed earlier this boot)")
    decision = _probe(lab, kernel, initrd)
    _CACHE.parent.mkdir(parents=True, exist_ok=True)
    staged = _CACHE.with_name(f".{_CACHE.name}.{os.getpid()}")   # parallel runs read it meanwhile
    staged.write_text(json.dumps({"key": key, **asdict(decision)}))
    staged.rename(_CACHE)
    return decision


def _probe(lab: Lab, kernel: str, initrd: str) -> AccelDecision:
    argv = ["qemu-system-x86_64", "-accel", "kvm", "-cpu", "host", "-M", "pc", "-m", "256",
            "-nodefaults", "-no-reboot", "-display", "none", "-serial", "stdio",
            "-kernel", kernel, "-initrd", initrd, "-append", "console=ttyS0 panic=-1"]
    console = lab.logdir / "kvm-probe-console.log"
    with log.step(f"probe: does the guest kernel boot under KVM? (up to {PROBE_TIMEOUT:.0f}s)"):
        with open(console, "w") as sink:
            qemu = lab.executor.spawn(argv, log=sink)
            try:
                booted = retry(lambda last: PROBE_MARK in console.read_text(errors="replace")
                               or qemu.poll() is not None and "exited", timeout=PROBE_TIMEOUT,
                               what="guest kernel reaches /init under KVM")
            except DeadlineExceeded:
                booted = "timeout"
            finally:
                qemu.kill()
                qemu.wait()
    output = console.read_text(errors="replace")
    if booted is True:
        decision = AccelDecision("kvm", "the guest kernel booted to /init under KVM")
    else:
        last = (output.strip().splitlines() or ["no console output"])[-1][:160]
        why = "qemu exited" if booted == "exited" else f"not within {PROBE_TIMEOUT:.0f}s"
        decision = AccelDecision(
            "tcg", f"/dev/kvm exists but the guest kernel did not reach /init under KVM ({why}; "
                   f"last console line: {last!r}): using TCG emulation")
    log.info(f"accelerator: {decision.accel}: {decision.reason}")
    return decision
