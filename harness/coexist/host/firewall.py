"""Reading a lab host's firewall: iptables listings, nftables JSON, firewalld queries, snapshots;
the questions the scenarios' host facts ask (coexist.scenario.keys)."""

from __future__ import annotations

import collections
import difflib
import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from coexist.base import interrupt
from coexist.base.commands import Machine
from coexist.host.firewalld import Firewalld, FirewalldUnavailable


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


class FirewallHost(Machine, Protocol):
    """What the firewall's questions ask of a host: commands, files, and its own sysctls."""

    def sysctl(self, key: str, value: str | None = None) -> str | None: ...


class HostFirewall:
    """Questions about a lab host's forwarding and firewall, answered from the tools' own output.

    Only questions, each with the command a person would type to look (nothing created, no
    module loaded that the answer does not need): a command that fails is an answer too
    (no policy listed, no such rule), never an error in the middle of a measurement."""

    def __init__(self, lab: FirewallHost) -> None:
        self.lab = lab

    def forward_policy(self) -> str | None:
        """iptables' (nft) filter FORWARD policy (None: iptables lists none)."""
        return chain_policy(self.lab.execute(["iptables", "-S", "FORWARD"]).output)

    def forward6_policy(self) -> str | None:
        """ip6tables' (nft) filter FORWARD policy (None: ip6tables lists none)."""
        return chain_policy(self.lab.execute(["ip6tables", "-S", "FORWARD"]).output)

    def ipv6_forwarding(self) -> bool:
        """Does the host forward IPv6 (net.ipv6.conf.all.forwarding is 1)?"""
        return self.lab.sysctl("net.ipv6.conf.all.forwarding") == "1"

    def has_rule6(self, spec: str) -> bool:
        """`ip6tables [-t table] -C CHAIN rule...` finds the rule."""
        return self._has("ip6tables", spec)

    def legacy_forward_policy(self) -> str | None:
        """iptables-legacy's filter FORWARD policy (None: there is no legacy filter table). Asked
        only where the table exists: `iptables-legacy -S` would create it, and from then on every
        iptables command warns that legacy tables are present, as it would not on the real host."""
        if "filter" not in self.legacy_tables():
            return None
        return chain_policy(self.lab.execute(["iptables-legacy", "-S", "FORWARD"]).output)

    def legacy_tables(self, family: str = "ip") -> list[str]:
        """The iptables-legacy (`ip`) or ip6tables-legacy (`ip6`) tables that exist, as the
        kernel lists them (reading them creates none)."""
        listed = self.lab.execute(["cat", f"/proc/net/{family}_tables_names"])
        return listed.output.split() if listed.returncode == 0 else []

    def ip_forward(self) -> bool:
        """Does the host forward IPv4 (net.ipv4.ip_forward is 1)?"""
        return self.lab.sysctl("net.ipv4.ip_forward") == "1"

    def has_rule(self, spec: str) -> bool:
        """`iptables [-t table] -C CHAIN rule...` finds the rule (`spec` as a user writes it)."""
        return self._has("iptables", spec)

    def _has(self, tool: str, spec: str) -> bool:
        table, chain, rule = _rule_spec(spec)
        return self.lab.execute([tool, *table, "-C", chain, *rule]).returncode == 0

    def rule_positions(self, spec: str) -> list[int]:
        """Where the rule `spec` ("[-t table] CHAIN rule...", as `iptables -S` prints it) stands
        in its chain, 1 being the top, once per copy ([]: absent), from `iptables -S CHAIN`."""
        table, chain, rule = _rule_spec(spec)
        listed = self.lab.execute(["iptables", *table, "-S", chain])
        if listed.returncode != 0:   # no such chain or table: no copy
            return []
        rules = [shlex.split(line)[2:] for line in listed.output.splitlines()
                 if line.startswith(f"-A {chain} ")]
        return [index for index, found in enumerate(rules, 1) if found == rule]

    def rule_position(self, spec: str) -> int:
        """The rule's place in its chain, 1 = the top (its first copy; 0: absent)."""
        return next(iter(self.rule_positions(spec)), 0)

    def rule_count(self, spec: str) -> int:
        """How many copies of the rule its chain has (a fix applied twice may add a second)."""
        return len(self.rule_positions(spec))

    def has_chain(self, spec: str) -> bool:
        """The chain exists (`spec`: "table CHAIN", e.g. "filter DOCKER-USER")."""
        table, chain = spec.split(None, 1)
        return self.lab.execute(["iptables", "-t", table, "-S", chain]).returncode == 0

    def nft_ruleset(self) -> dict[str, Any]:
        return json.loads(self.lab.succeed(["nft", "-j", "list", "ruleset"]))  # type: ignore[no-any-return]

    def nft_tables(self) -> list[str]:
        """`family name` of each nft table (`nft -j list tables`)."""
        return tables(json.loads(self.lab.execute(["nft", "-j", "list", "tables"]).output or "{}"))

    def has_nft_table(self, spec: str) -> bool:
        """The nft table exists (`spec`: "family name", e.g. "ip libvirt_network")."""
        return spec in self.nft_tables()

    def forward_hooks(self) -> list[ForwardHook]:
        return forward_hooks(self.nft_ruleset())

    def zone_of(self, interface: str) -> str:
        """firewalld's zone for `interface` ('' when none, or firewalld not running: then it is
        not asked at all, so no question on the bus can start it)."""
        firewalld = Firewalld(self.lab)
        try:
            return firewalld.zone_of(interface) if firewalld.running() else ""
        except FirewalldUnavailable:
            return ""

    def masquerade(self, zone: str) -> bool:
        """Is masquerading on in `zone` (False: off, no such zone, or firewalld not running)?"""
        firewalld = Firewalld(self.lab)
        try:
            return firewalld.masquerade(zone) if firewalld.running() else False
        except FirewalldUnavailable:
            return False


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


_CAPTURE = {
    # stderr apart: iptables-nft's warning about legacy tables would land inside the rules
    "iptables-save.txt": "iptables-save -c 2>/dev/null",
    "iptables-legacy-save.txt": "iptables-legacy-save -c 2>/dev/null || true",
    "ip6tables-save.txt": "ip6tables-save -c 2>/dev/null",
    "forward-listing.txt": "iptables -L FORWARD -n -v --line-numbers",
    "nft-ruleset.txt": "nft -a list ruleset",
    "nft-ruleset.json": "nft -j list ruleset",
    "ip-addr.txt": "ip -br addr; ip route; ip -6 route; ip -6 neigh; grep -H . /proc/sys/net/ipv4/ip_forward "
                   "/proc/sys/net/ipv6/conf/all/forwarding",
}


def snapshot(lab: Machine, phase: str) -> Snapshot:
    """Every capture at once, each on its own thread (the tools do not wait for one another), and
    firewalld's zones, direct rules and masquerade from its D-Bus API."""
    with interrupt.Pool(len(_CAPTURE) + 1, thread_name_prefix="snapshot") as pool:
        firewalld = pool.submit(_firewalld_report, lab)
        outputs = pool.map(lambda command: lab.execute(command).output, _CAPTURE.values())
        files = dict(zip(_CAPTURE, outputs, strict=True))
        files["firewalld.txt"] = firewalld.result()
    try:
        nft = json.loads(files["nft-ruleset.json"] or "{}")
    except json.JSONDecodeError:
        nft = {}
    return Snapshot(phase, files, nft)


def _firewalld_report(lab: Machine) -> str:
    try:
        return Firewalld(lab).report()
    except FirewalldUnavailable as error:   # e.g. firewalld stopping while the snapshot is taken
        return f"firewalld did not answer: {error}\n"


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


_HANDLE = re.compile(r"\s*# handle \d+( progname \S+)?$")   # nft -a; a table's owner after it
_NFT_COUNTER = re.compile(r"counter packets \d+ bytes \d+")


def _rule_spec(spec: str) -> tuple[list[str], str, list[str]]:
    """"[-t table] CHAIN rule..." as a user writes it: the table's arguments, the chain, the rule."""
    words = shlex.split(spec)
    table = words[:2] if words[:1] == ["-t"] else []
    return table, words[len(table)], words[len(table) + 1:]


def added_rules(before: Snapshot, after: Snapshot) -> list[str]:
    """The ruleset lines `after` has more of than `before` (counted, not ordered: a reload that
    moves rules adds nothing), from nft's listing (iptables-nft's rules too) and iptables-legacy's.
    Empty: the step between them added no rule, e.g. a fix applied a second time."""

    def counted(snap: Snapshot) -> collections.Counter[str]:
        nft = (_NFT_COUNTER.sub("counter", _HANDLE.sub("", line)).strip()
               for line in snap.files.get("nft-ruleset.txt", "").splitlines())
        saved = snap.files.get("iptables-legacy-save.txt", "").splitlines()
        legacy = (f"iptables-legacy {rule}" for line in saved
                  if (rule := _without_counters(line)).startswith("-A "))
        return collections.Counter(line for line in (*nft, *legacy) if is_rule(line))

    return sorted((counted(after) - counted(before)).elements())


def ruleset_now(lab: Machine) -> str:
    """nft's listing of the whole ruleset (iptables-nft's rules too), counters aside: equal while
    no rule, chain, set or policy changed. A read: it creates nothing."""
    return _NFT_COUNTER.sub("counter", lab.execute("nft list ruleset").output)


def differences(before: Snapshot, after: Snapshot) -> list[str]:
    """What differs between two firewall states, order aside: ruleset lines (`+` more in `after`,
    `-` fewer), base chains' policies, the forwarding sysctls, firewalld's zones and direct
    rules, and which iptables-legacy tables exist (one made stays in the namespace). Empty: the
    same firewall (a revert that reverted; a warm lab's reset that reset)."""
    changed = [f"+ {line}" for line in added_rules(before, after)]
    changed += [f"- {line}" for line in added_rules(after, before)]

    def state(snap: Snapshot) -> collections.Counter[str]:
        policies = (f"nft: {line.strip()}" for line in snap.files.get("nft-ruleset.txt", "").splitlines()
                    if line.strip().startswith("type ") and "policy" in line)
        sysctls = (f"sysctl: {line.rsplit('/proc/sys/', 1)[-1]}" for line in
                   snap.files.get("ip-addr.txt", "").splitlines() if "/proc/sys/" in line)
        zones = (f"firewalld: {' '.join(sorted(line.split()))}"
                 for line in snap.files.get("firewalld.txt", "").splitlines() if line.strip())
        legacy = (f"iptables-legacy table {line[1:]}" for line in
                  snap.files.get("iptables-legacy-save.txt", "").splitlines() if line.startswith("*"))
        return collections.Counter((*policies, *sysctls, *zones, *legacy))

    changed += [f"+ {line}" for line in sorted((state(after) - state(before)).elements())]
    changed += [f"- {line}" for line in sorted((state(before) - state(after)).elements())]
    return changed


def docker_rules(before: Snapshot, after: Snapshot) -> tuple[str, str] | None:
    """What happened to Docker's rules (iptables-nft's, in its DOCKER* chains and the jumps to
    them) between two snapshots, from nft's JSON, with a reason: `lost` (some are missing),
    `re-made` (all there, but rules inside Docker's chains have new nft handles: removed and
    added again, as after a flush of iptables that Docker repaired), `kept` (Docker's chains
    untouched; Docker itself inserts its jumps from FORWARD again at a firewalld reload, so
    those may be new). None: Docker had no such rules before."""

    def rules(snap: Snapshot) -> dict[tuple[str, str], list[int]]:
        found: dict[tuple[str, str], list[int]] = {}
        for item in snap.nft.get("nftables", []):
            rule = item.get("rule")
            if rule is None or rule.get("family") not in ("ip", "ip6"):
                continue
            expr = json.dumps([e for e in rule.get("expr", []) if "counter" not in e], sort_keys=True)
            if rule["chain"].startswith("DOCKER") or '"DOCKER' in expr:
                key = (rule["chain"], f"{rule['family']} {rule['table']} {expr}")
                found.setdefault(key, []).append(rule.get("handle", -1))
        return found

    old, new = rules(before), rules(after)
    if not old:
        return None
    total = sum(map(len, old.values()))
    missing = sum(max(len(handles) - len(new.get(key, [])), 0) for key, handles in old.items())
    if missing:
        return "lost", f"{missing} of Docker's {total} rules missing"
    inside = [key for key in old if key[0].startswith("DOCKER")]
    remade = sum(1 for key in inside if sorted(new[key]) != sorted(old[key]))
    if remade:
        return "re-made", (f"{remade} of the {len(inside)} rules in Docker's chains removed and added "
                           "again (new nft handles): iptables flushed, Docker repaired it")
    return "kept", f"Docker's chains untouched ({len(inside)} rules, the same nft handles)"


def is_rule(line: str) -> bool:
    """A line of a listing that is a rule or a declaration (not a closing brace, and not a base
    chain's `type ... policy ...;`, which a policy change alters without adding anything)."""
    return bool(line) and line != "}" and not line.startswith("type ")
