"""Turning firewall snapshots into reasons: which chain dropped the packets, what a fix changed."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from coexist.host.firewall import Snapshot, diff, forward_hooks, tables
from coexist.scenario.events import Event
from coexist.scenario.steps import ApplyFix, Boot, Measure, events_of

if TYPE_CHECKING:
    from coexist.host.guestnet import GuestNetwork
    from coexist.report.results import StepResult

_INTERFACE_ARG = re.compile(r"(?:^|\s)-[io] (?P<name>[\w.+-]+)")
_POLICY = re.compile(r"^:(?P<chain>\S+) (?P<policy>ACCEPT|DROP) \[(?P<packets>\d+):\d+\]$")


def policy_counters(iptables_save: str) -> dict[str, tuple[str, int]]:
    """`table/chain` -> (policy, packets) for built-in chains in `iptables-save -c` output."""
    counters: dict[str, tuple[str, int]] = {}
    table = ""
    for line in iptables_save.splitlines():
        if line.startswith("*"):
            table = line[1:]
        elif match := _POLICY.match(line):
            counters[f"{table}/{match['chain']}"] = (match["policy"], int(match["packets"]))
    return counters


_IPTABLES_VARIANTS = (("iptables", "iptables-save.txt"),
                      ("iptables-legacy", "iptables-legacy-save.txt"),
                      ("ip6tables", "ip6tables-save.txt"))


def dropped_by_policy(before: Snapshot, after: Snapshot, *, rebooted: bool = False) -> list[str]:
    """Built-in chains with a DROP policy whose counter grew between two snapshots, in
    iptables-nft, in iptables-legacy (whose tables nft cannot see) and in ip6tables. Across a
    reboot (`rebooted`) every counter started again from 0: all of `after`'s count is new."""
    grown = []
    for variant, name in _IPTABLES_VARIANTS:
        old = policy_counters(before.files.get(name, ""))
        new = policy_counters(after.files.get(name, ""))
        for chain, (policy, packets) in new.items():
            before_count = 0 if rebooted else old.get(chain, (policy, 0))[1]
            delta = packets - before_count if packets >= before_count else packets   # reset: a reboot
            if policy == "DROP" and delta > 0:
                grown.append(f"{variant} {chain} policy DROP counted {delta} packet(s) "
                             f"{'since the reboot' if rebooted else 'meanwhile'}")
    return grown


def legacy_forward(snapshot: Snapshot) -> str | None:
    """iptables-legacy's filter FORWARD, which nft's listing of forward hooks does not show."""
    counters = policy_counters(snapshot.files.get("iptables-legacy-save.txt", ""))
    if "filter/FORWARD" not in counters:
        return None
    return f"iptables-legacy filter FORWARD (policy {counters['filter/FORWARD'][0].lower()})"


def explain_steps(snapshots: list[Snapshot], results: list[StepResult],
                  networks: Mapping[str, GuestNetwork]) -> list[str]:
    """Reasons, step by step: who sees forwarded packets, which DROP policy counted lost
    packets while a step was measured, what a step changed in the firewall.

    `snapshots` are the baseline (daemons up, before the guests) and one per step, in order."""
    if len(snapshots) < 2:
        return []
    first = snapshots[1]
    hooks = ", ".join(f"{h.family} {h.table} {h.chain} (priority {h.priority}, policy {h.policy})"
                      for h in forward_hooks(first.nft))
    if legacy := legacy_forward(first):
        hooks = f"{hooks}, and outside nft: {legacy}" if hooks else legacy
    lines = [f"base chains on the forward hook: {hooks or 'none'}; a packet must be "
             "accepted by every one of them (a drop in any table is final)"]
    if any(s.final.symptom for s in results[0].guests.values()):
        lines.append("DNS is answered by libvirt's dnsmasq on the host itself (INPUT path), while "
                     "ping and TCP to the outside must be forwarded (FORWARD path)")
    for before, after, result in zip(snapshots, snapshots[1:], results, strict=False):
        step = result.step
        if not isinstance(step, Boot | Measure):
            changes = [line for line in diff(before, after).splitlines()
                       if line[:1] in "+-" and not line.startswith(("+++", "---"))]
            if changes:
                lines.append(f"[{step.id}] iptables changed ({len(changes)} line(s)):")
                lines += [f"  {line}" for line in changes[:15]]
                if len(changes) > 15:
                    lines.append(f"  ... {len(changes) - 15} more in the artifacts")
            old_tables, new_tables = set(tables(before.nft)), set(tables(after.nft))
            if old_tables != new_tables:
                lines.append(f"[{step.id}] nft tables added: {sorted(new_tables - old_tables) or 'none'}; "
                             f"removed: {sorted(old_tables - new_tables) or 'none'}")
        if result.online:
            continue
        drops = dropped_by_policy(before, after, rebooted=Event.HOST_REBOOT in events_of(step))
        lines += [f"[{step.id}] while the guests were probed: {d}" for d in drops] or [
            f"[{step.id}] no iptables DROP policy counted the lost packets: look at the nft "
            "ruleset in the artifacts (the drop is elsewhere, or the packets were never answered)"]
        if isinstance(step, ApplyFix):
            for name, settled in result.guests.items():
                if not settled.final.all_ok:
                    lines += [f"[{step.id}] guest {name}: {line}"
                              for line in fix_scope(step.fix.commands, networks[name].bridge)]
    for result in results:
        lines += [f"[{result.step.id}] {problem}" for problem in result.problems]
    return lines


def fix_scope(commands: tuple[str, ...], bridge: str) -> list[str]:
    """Why a fix can miss a guest: its rules name interfaces, and not the one the guest is on."""
    named = sorted({m["name"] for command in commands for m in _INTERFACE_ARG.finditer(command)})
    if not named or any(bridge == n or n.endswith("+") and bridge.startswith(n[:-1]) for n in named):
        return []
    return [f"the fix's rules name {', '.join(named)}; this guest's NIC is on {bridge}, which "
            "no rule of the fix names"]
