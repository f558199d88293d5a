"""Reading a lab host's firewall: iptables listings, nftables JSON, firewalld queries, snapshots."""

from __future__ import annotations

import difflib
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.lab import Lab


def chain_policy(rules: str, chain: str = "FORWARD") -> str | None:
    """A built-in chain's policy in `iptables -S` output (None: the chain is not listed)."""
    for line in rules.splitlines():
        fields = line.split()
        if fields[:2] == ["-P", chain] and len(fields) == 3:
            return fields[2]
    return None


@dataclass(frozen=True)
class ForwardHook:
    """A base chain on the forward hook: who can decide a forwarded packet's fate."""

    family: str
    table: str
    chain: str
    priority: int
    policy: str


def forward_hooks(ruleset: dict[str, Any]) -> list[ForwardHook]:
    """Base chains hooked at forward in `nft -j list ruleset`, in the order the kernel runs them."""
    hooks = []
    for item in ruleset.get("nftables", []):
        chain = item.get("chain")
        if chain and chain.get("hook") == "forward" and chain.get("family") in ("ip", "inet"):
            prio = chain.get("prio", 0)
            hooks.append(ForwardHook(chain["family"], chain["table"], chain["name"],
                                     prio if isinstance(prio, int) else 0,
                                     chain.get("policy", "accept")))
    return sorted(hooks, key=lambda hook: hook.priority)


def tables(ruleset: dict[str, Any]) -> list[str]:
    """`family name` of each table in `nft -j list ruleset`."""
    return [f"{t['table']['family']} {t['table']['name']}"
            for t in ruleset.get("nftables", []) if "table" in t]


class HostFirewall:
    """Questions about a lab host's firewall, answered from the tools' own output."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab

    def forward_policy(self) -> str | None:
        return chain_policy(self.lab.succeed(["iptables", "-S", "FORWARD"]))

    def nft_ruleset(self) -> dict[str, Any]:
        return json.loads(self.lab.succeed(["nft", "-j", "list", "ruleset"]))  # type: ignore[no-any-return]

    def nft_tables(self) -> list[str]:
        return tables(self.nft_ruleset())

    def forward_hooks(self) -> list[ForwardHook]:
        return forward_hooks(self.nft_ruleset())

    def zone_of(self, interface: str) -> str:
        """firewalld's zone for `interface` ('' when none)."""
        result = self.lab.execute(["firewall-cmd", f"--get-zone-of-interface={interface}"])
        return result.output.strip() if result.returncode == 0 else ""

    def masquerade(self, zone: str) -> bool:
        result = self.lab.execute(["firewall-cmd", f"--zone={zone}", "--query-masquerade"])
        return result.output.strip() == "yes"


@dataclass(frozen=True)
class Snapshot:
    """The lab's firewall state at one phase of a scenario."""

    phase: str
    files: dict[str, str]
    nft: dict[str, Any]

    def save(self, folder: Path) -> Path:
        target = folder / self.phase
        target.mkdir(parents=True, exist_ok=True)
        for name, text in self.files.items():
            (target / name).write_text(text)
        return target

    def forward_hooks(self) -> list[ForwardHook]:
        return forward_hooks(self.nft)


# Ask the bus whether firewalld owns its name: firewall-cmd 2.5 (forky) waits ~10 s for a
# firewalld that is not running when a system bus is up.
FIREWALLD_UP = ("dbus-send --system --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus "
                "org.freedesktop.DBus.NameHasOwner string:org.fedoraproject.FirewallD1 2>/dev/null "
                "| grep -q 'boolean true'")

_CAPTURE = {
    # stderr apart: iptables-nft's warning about legacy tables would land inside the rules
    "iptables-save.txt": "iptables-save -c 2>/dev/null",
    "iptables-legacy-save.txt": "iptables-legacy-save -c 2>/dev/null || true",
    "ip6tables-save.txt": "ip6tables-save -c 2>/dev/null",
    "forward-listing.txt": "iptables -L FORWARD -n -v --line-numbers",
    "nft-ruleset.txt": "nft -a list ruleset",
    "nft-ruleset.json": "nft -j list ruleset",
    "ip-addr.txt": "ip -br addr; ip route; cat /proc/sys/net/ipv4/ip_forward",
    "firewalld.txt": f"if {FIREWALLD_UP}; then "
                     "echo '# active zones'; firewall-cmd --get-active-zones; "
                     "echo '# zone of virbr0'; firewall-cmd --get-zone-of-interface=virbr0; "
                     "echo '# direct rules'; firewall-cmd --direct --get-all-rules; "
                     "echo '# permanent direct rules'; firewall-cmd --permanent --direct --get-all-rules; "
                     "echo '# masquerade in zone libvirt'; firewall-cmd --zone=libvirt --query-masquerade; "
                     "echo '# backend'; grep -i '^FirewallBackend' /etc/firewalld/firewalld.conf; "
                     "else echo 'firewalld not running'; fi",
}


def snapshot(lab: Lab, phase: str) -> Snapshot:
    """Every capture at once, each on its own thread (the tools do not wait for one another)."""
    with ThreadPoolExecutor(len(_CAPTURE), thread_name_prefix="snapshot") as pool:
        outputs = pool.map(lambda command: lab.execute(command).output, _CAPTURE.values())
        files = dict(zip(_CAPTURE, outputs, strict=True))
    try:
        nft = json.loads(files["nft-ruleset.json"] or "{}")
    except json.JSONDecodeError:
        nft = {}
    return Snapshot(phase, files, nft)


def diff(before: Snapshot, after: Snapshot, name: str = "iptables-save.txt") -> str:
    """A unified diff of one captured file between two phases (packet counters ignored)."""

    def lines(snap: Snapshot) -> list[str]:
        return [_without_counters(line) for line in snap.files.get(name, "").splitlines()
                if not line.startswith("#")]   # iptables-save's dated header and footer

    return "\n".join(difflib.unified_diff(lines(before), lines(after), f"{before.phase}/{name}",
                                          f"{after.phase}/{name}", lineterm="", n=0))


def _without_counters(line: str) -> str:
    if line.startswith("[") and "] " in line:
        return line.split("] ", 1)[1]
    if line.startswith(":") and " [" in line:
        return line.split(" [", 1)[0]
    return line
