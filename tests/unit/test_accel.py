"""The TCG guest's clock argument, from recorded /proc/cpuinfo text."""

import pytest
from coexist.guest.accel import tcg_clock_args

VM = """processor\t: 0
cpu MHz\t\t: 2596.136
flags\t\t: fpu tsc msr constant_tsc nonstop_tsc tsc_known_freq hypervisor
"""


def test_a_constant_tsc_gives_the_guest_its_frequency() -> None:
    assert tcg_clock_args(VM) == ("tsc_early_khz=2596136", "tsc=reliable")


def test_aperfmperf_makes_cpu_mhz_the_current_frequency_so_nothing_is_passed() -> None:
    assert tcg_clock_args(VM.replace("hypervisor", "hypervisor aperfmperf")) == ()


def test_no_constant_tsc_or_no_cpu_mhz_passes_nothing() -> None:
    assert tcg_clock_args(VM.replace(" constant_tsc", "")) == ()
    assert tcg_clock_args("flags\t\t: constant_tsc\n") == ()


@pytest.mark.parametrize("asked", ["kvm", "tcg"])
def test_a_runs_option_forces_the_accelerator_before_the_environment_and_the_probe(
        asked: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from coexist.guest import accel

    monkeypatch.setenv("COEXIST_ACCEL", "kvm" if asked == "tcg" else "tcg")
    decision = accel.decide(None, "vmlinux", "initrd", asked=asked)  # type: ignore[arg-type]  # no probe
    assert decision == accel.AccelDecision(asked, f"forced by the run's option ({asked})")  # type: ignore[arg-type]
