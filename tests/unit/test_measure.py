"""Settling: a guest is measured until its outcome holds, and what came before is kept."""

from __future__ import annotations

from coexist.net.connectivity import Connectivity, Probe
from coexist.run.measure import STABLE_FOR, settle


def reach(dns: bool, ping: bool, tcp: bool) -> Connectivity:
    return Connectivity(Probe("DNS", "", dns, ""), Probe("ping", "", ping, ""), Probe("TCP", "", tcp, ""))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def run(outcomes: list[Connectivity], limit: float = 30.0):
    clock = Clock()
    seen = iter(outcomes)

    def measure() -> Connectivity:
        clock.now += 0.5          # a round of probes takes time
        return next(seen)

    return settle(None, limit=limit, clock=clock, measure=measure, sleep=clock.sleep)  # type: ignore[arg-type]


def test_a_transient_failure_after_a_reload_is_kept_apart_from_the_settled_outcome() -> None:
    online = reach(True, True, True)
    settled = run([reach(False, False, True), *[online] * 10])
    assert settled.stable and settled.final.all_ok
    assert settled.transient == ("at 0.0s DNS FAILS, ping FAILS, TCP ok",)
    assert settled.seconds >= STABLE_FOR


def test_a_stable_failure_settles_too() -> None:
    settled = run([reach(True, False, False)] * 10)
    assert settled.stable and settled.final.symptom and settled.transient == ()
    assert settled.rounds >= 2


def test_an_outcome_that_keeps_changing_is_not_settled() -> None:
    flapping = [reach(True, True, True), reach(True, False, False)] * 30
    settled = run(flapping, limit=10)
    assert not settled.stable and "NOT settled" in settled.describe()


def test_an_outcome_counts_only_once_the_firewall_stopped_changing() -> None:
    """A firewalld restart under load: the guest cut off for longer than STABLE_FOR while the
    daemons put their rules back one after the other; the rules' last change starts the wait."""
    clock = Clock()
    cut_off, online = reach(True, False, False), reach(True, True, True)
    rounds = iter([cut_off] * 6 + [online] * 20)
    rulesets = iter(["firewalld"] * 2 + ["firewalld docker"] * 2 + ["firewalld docker libvirt"] * 30)

    def measure() -> Connectivity:
        clock.now += 0.5
        return next(rounds)

    settled = settle(None, limit=30, clock=clock, measure=measure, sleep=clock.sleep,  # type: ignore[arg-type]
                     firewall=lambda: next(rulesets))
    assert settled.stable and settled.final.all_ok, settled.describe()
    blind = run([cut_off] * 6 + [online] * 20)   # without the firewall: the cut-off moment taken
    assert blind.stable and blind.final.symptom
