"""Measuring after a step: guests' connectivity until it settles, Docker's workload from outside,
firewall facts from the tools' machine-readable output (judged in coexist.report.results).

Connectivity after a change is not always immediate (after a `firewall-cmd --reload` on trixie the
guest's DNS fails for a moment, "No route to host"), so a guest is measured in rounds until its
outcome has not changed for STABLE_FOR seconds or the step's settle time passes. The settled
outcome is judged; earlier different outcomes are kept as a transient window.
"""

from __future__ import annotations

import functools
import json
import shlex
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from coexist.base import interrupt
from coexist.host.firewall import chain_policy
from coexist.host.firewalld import Firewalld
from coexist.net.connectivity import Connectivity
from coexist.report.results import HostFacts, Settled
from coexist.scenario.expect import TABLE_KEYS, Expect

if TYPE_CHECKING:
    from coexist.guest.guest import Guest
    from coexist.host.lab import Lab

# Every transient recorded so far (~40 runs in bench/results' matrices, 2026-11-26 to 12-02) was
# over by the next round (<= 1.1 s after the first); 2 s of the same outcome is twice that.
STABLE_FOR = 2.0    # seconds an outcome must hold to count as settled
ROUND_GAP = 0.5     # seconds between two rounds of probes


def _outcome(measured: Connectivity) -> tuple[bool, ...]:
    return tuple(probe.ok for probe in measured.probes)


def settle(guest: Guest, *, limit: float, clock: Callable[[], float] = time.monotonic,
           measure: Callable[[], Connectivity] | None = None,
           sleep: Callable[[float], None] = time.sleep) -> Settled:
    """Measure in rounds until the outcome holds for STABLE_FOR seconds (at least two rounds) or
    `limit` seconds pass."""
    probe = measure or guest.connectivity
    start = clock()
    rounds: list[tuple[float, Connectivity]] = []
    stable = False
    while True:
        interrupt.check()
        rounds.append((clock() - start, probe()))
        same_since = rounds[-1][0]   # the first of the latest run of equal outcomes
        for at, seen in reversed(rounds):
            if _outcome(seen) != _outcome(rounds[-1][1]):
                break
            same_since = at
        if rounds[-1][0] - same_since >= STABLE_FOR:   # > 0: two rounds at least
            stable = True
            break
        if clock() - start + ROUND_GAP >= limit:
            break
        sleep(ROUND_GAP)
    final = rounds[-1][1]
    transient = tuple(f"at {at:.1f}s {seen.summary()}" for at, seen in rounds
                      if _outcome(seen) != _outcome(final))
    return Settled(final, len(rounds), clock() - start, stable, transient)


def host_facts(lab: Lab, wanted: dict[str, set[str]]) -> HostFacts:
    """The FORWARD policies and ip_forward, and the facts some step's expectations name."""

    def rule_present(spec: str) -> bool:
        words = shlex.split(spec)
        table = words[:2] if words[:1] == ["-t"] else []
        return lab.execute(["iptables", *table, "-C", *words[len(table):]]).returncode == 0

    def chain_present(spec: str) -> bool:
        table, chain = spec.split(None, 1)
        return lab.execute(["iptables", "-t", table, "-S", chain]).returncode == 0

    jobs: dict[str, Callable[[], Any]] = {
        "forward": lambda: chain_policy(lab.execute(["iptables", "-S", "FORWARD"]).output),
        "legacy": lambda: chain_policy(lab.execute(["iptables-legacy", "-S", "FORWARD"]).output),
        "nft": lambda: json.loads(lab.execute(["nft", "-j", "list", "tables"]).output or "{}"),
        "firewalld": Firewalld(lab).running,
        "ip_forward": lambda: lab.sysctl("net.ipv4.ip_forward"),
    }
    jobs |= {f"rule:{s}": functools.partial(rule_present, s) for s in wanted.get("iptables", ())}
    jobs |= {f"chain:{s}": functools.partial(chain_present, s) for s in wanted.get("chains", ())}
    with interrupt.Pool(8, thread_name_prefix="facts") as pool:
        futures = {name: pool.submit(job) for name, job in jobs.items()}
        got = {name: future.result() for name, future in futures.items()}
    tables = {f"{t['table']['family']} {t['table']['name']}" for t in got["nft"].get("nftables", [])
              if "table" in t}
    if got["firewalld"]:
        zone_of: dict[str, str] = {iface: lab.firewall.zone_of(iface) for iface in wanted.get("zone_of", ())}
        masquerade: dict[str, bool] = {zone: lab.firewall.masquerade(zone)
                                       for zone in wanted.get("masquerade", ())}
    else:
        zone_of = dict.fromkeys(wanted.get("zone_of", ()), "")
        masquerade = dict.fromkeys(wanted.get("masquerade", ()), False)
    return HostFacts(
        forward_policy=got["forward"], legacy_forward_policy=got["legacy"],
        ip_forward=got["ip_forward"] == "1",
        iptables={s: got[f"rule:{s}"] for s in wanted.get("iptables", ())},
        chains={s: got[f"chain:{s}"] for s in wanted.get("chains", ())},
        nft_tables={s: s in tables for s in wanted.get("nft_tables", ())},
        zone_of=zone_of, masquerade=masquerade)


def wanted_facts(expects: list[Expect]) -> dict[str, set[str]]:
    """The table facts (rules, chains, nft tables, zones) any of `expects` names."""
    wanted: dict[str, set[str]] = {}
    for expect in expects:
        for key in TABLE_KEYS:
            if key in expect.host and key != "checks":
                wanted.setdefault(key, set()).update(expect.host[key])
    return wanted
