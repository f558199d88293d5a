"""Turning firewall snapshots into reasons: which chain dropped the packets, what a fix changed."""

from __future__ import annotations

import re

from harness.connectivity import Connectivity
from harness.firewall import Snapshot, diff, forward_hooks, tables

_INTERFACE_ARG = re.compile(r"(?:^|\s)-[io] (?P<name>[\w.-]+)")
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


def dropped_by_policy(before: Snapshot, after: Snapshot) -> list[str]:
    """Built-in chains with a DROP policy whose counter grew between two snapshots, in
    iptables-nft, in iptables-legacy (whose tables nft cannot see) and in ip6tables."""
    grown = []
    for variant, name in _IPTABLES_VARIANTS:
        old = policy_counters(before.files.get(name, ""))
        new = policy_counters(after.files.get(name, ""))
        for chain, (policy, packets) in new.items():
            delta = packets - old.get(chain, (policy, 0))[1]
            if policy == "DROP" and delta > 0:
                grown.append(f"{variant} {chain} policy DROP counted {delta} packet(s) meanwhile")
    return grown


def legacy_forward(snapshot: Snapshot) -> str | None:
    """iptables-legacy's filter FORWARD, which nft's listing of forward hooks does not show."""
    counters = policy_counters(snapshot.files.get("iptables-legacy-save.txt", ""))
    if "filter/FORWARD" not in counters:
        return None
    return f"iptables-legacy filter FORWARD (policy {counters['filter/FORWARD'][0].lower()})"


def explain(baseline: Snapshot, symptom: Snapshot, measured: Connectivity,
            after_fix: Snapshot | None = None, after_probed: Snapshot | None = None,
            measured_after: Connectivity | None = None) -> list[str]:
    lines = []
    hooks = ", ".join(f"{h.family} {h.table} {h.chain} (priority {h.priority}, policy {h.policy})"
                      for h in forward_hooks(symptom.nft))
    if legacy := legacy_forward(symptom):
        hooks = f"{hooks}, and outside nft: {legacy}" if hooks else legacy
    lines.append(f"base chains on the forward hook: {hooks or 'none'}; a packet must be "
                 "accepted by every one of them (a drop in any table is final)")
    if measured.symptom:
        lines.append("DNS is answered by libvirt's dnsmasq on the host itself (INPUT path), while "
                     "ping and TCP to the outside must be forwarded (FORWARD path)")
    drops = dropped_by_policy(baseline, symptom)
    if drops:
        lines += [f"while the guest probed: {d}" for d in drops]
    elif not measured.all_ok:
        lines.append("no iptables DROP policy counted the lost packets: look at the nft ruleset "
                     "in the artifacts (the drop is elsewhere, or the packets were never answered)")
    if after_fix is not None:
        changes = [line for line in diff(symptom, after_fix).splitlines()
                   if line[:1] in "+-" and not line.startswith(("+++", "---"))]
        if changes:
            lines.append(f"the fix changed iptables ({len(changes)} line(s)):")
            lines += [f"  {line}" for line in changes[:15]]
            if len(changes) > 15:
                lines.append(f"  ... {len(changes) - 15} more in the artifacts")
        if measured_after is not None and not measured_after.all_ok and after_probed is not None:
            drops = dropped_by_policy(after_fix, after_probed)
            lines += [f"after the fix, while the guest probed: {d}" for d in drops] or [
                "after the fix no iptables DROP policy counted the lost packets"]
        before_tables = set(tables(symptom.nft))
        after_tables = set(tables(after_fix.nft))
        if before_tables != after_tables:
            lines.append(f"nft tables added: {sorted(after_tables - before_tables) or 'none'}; "
                         f"removed: {sorted(before_tables - after_tables) or 'none'}")
    return lines



def fix_scope(commands: tuple[str, ...], bridge: str) -> list[str]:
    """Why a fix can miss a guest: its rules name interfaces, and not the one the guest is on."""
    named = sorted({m["name"] for command in commands for m in _INTERFACE_ARG.finditer(command)})
    if not named or bridge in named:
        return []
    return [f"the fix's rules name {', '.join(named)}; this guest's NIC is on {bridge}, which "
            "no rule of the fix names"]
