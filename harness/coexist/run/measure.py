"""Measuring after a step: guests' connectivity until it settles, Docker's workload from outside,
the host's facts from its firewall's answers (judged in coexist.report.results).

Connectivity after a change is not always immediate (after a `firewall-cmd --reload` on trixie the
guest's DNS fails for a moment, "No route to host"), so a guest is measured in rounds until its
outcome has not changed for STABLE_FOR seconds or the step's settle time passes. The settled
outcome is judged; earlier different outcomes are kept as a transient window.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any

from coexist.base import interrupt
from coexist.net.connectivity import Connectivity
from coexist.report.results import HostFacts, Settled
from coexist.scenario.expect import Expect
from coexist.scenario.keys import FACTS

if TYPE_CHECKING:
    from coexist.guest.guest import Guest
    from coexist.host.lab import Lab

# An outcome counts as settled once it held for twice the longest transient recorded so far
# (bench/results/README.md, "moved from comments"); raise it if a longer one is ever seen.
STABLE_FOR = 2.0    # seconds an outcome must hold to count as settled
ROUND_GAP = 0.5     # seconds between two rounds of probes


def _outcome(measured: Connectivity) -> tuple[bool, ...]:
    return tuple(probe.ok for probe in measured.probes)


def settle(guest: Guest, *, limit: float, clock: Callable[[], float] = time.monotonic,
           measure: Callable[[], Connectivity] | None = None,
           sleep: Callable[[float], None] = time.sleep,
           firewall: Callable[[], str] | None = None) -> Settled:
    """Measure in rounds until the outcome holds for STABLE_FOR seconds (at least two rounds) or
    `limit` seconds pass. With `firewall` (the host's ruleset, counters aside), it must not have
    changed meanwhile either: measured at four labs at once on this 2-core machine, a firewalld
    restart left the guest cut off for longer than STABLE_FOR while firewalld, Docker and libvirt
    were still putting their rules back, and that moment was taken for the outcome (the ruleset
    right after it was the same as when the guest was online)."""
    probe = measure or guest.connectivity
    start = clock()
    rounds: list[tuple[float, Connectivity, str]] = []
    stable = False
    while True:
        interrupt.check()
        ruleset = firewall() if firewall is not None else ""
        rounds.append((clock() - start, probe(), ruleset))
        same_since = rounds[-1][0]   # the first of the latest run of equal outcomes
        for at, seen, rules in reversed(rounds):
            if _outcome(seen) != _outcome(rounds[-1][1]) or rules != ruleset:
                break
            same_since = at
        if rounds[-1][0] - same_since >= STABLE_FOR:   # > 0: two rounds at least
            stable = True
            break
        if clock() - start + ROUND_GAP >= limit:
            break
        sleep(ROUND_GAP)
    final = rounds[-1][1]
    transient = tuple(f"at {at:.1f}s {seen.summary()}" for at, seen, _ in rounds
                      if _outcome(seen) != _outcome(final))
    return Settled(final, len(rounds), clock() - start, stable, transient)


def host_facts(lab: Lab, wanted: Mapping[str, Collection[str]]) -> HostFacts:
    """Every fact the host's firewall answers (coexist.scenario.keys.FACTS), each question on its
    own thread: the plain ones always, a table's items where some step's expectations name them."""
    firewall = lab.firewall
    jobs: dict[tuple[str, str], Callable[[], Any]] = {}
    for key in FACTS:
        if key.ask is not None:
            jobs[key.name, ""] = functools.partial(key.ask, firewall)
        elif key.ask_item is not None:
            jobs |= {(key.name, item): functools.partial(key.ask_item, firewall, item)
                     for item in wanted.get(key.name, ())}
    with interrupt.Pool(8, thread_name_prefix="facts") as pool:
        futures = {job: pool.submit(ask) for job, ask in jobs.items()}
        got = {job: future.result() for job, future in futures.items()}
    return {key.name: {item: got[key.name, item] for item in wanted.get(key.name, ())} if key.table
            else got[key.name, ""] for key in FACTS}


def wanted_facts(expects: list[Expect]) -> dict[str, set[str]]:
    """The table facts (rules, chains, nft tables, zones) any of `expects` names."""
    wanted: dict[str, set[str]] = {}
    for expect in expects:
        for key in FACTS:
            if key.table and key.name in expect.host:
                wanted.setdefault(key.name, set()).update(expect.host[key.name])
    return wanted
