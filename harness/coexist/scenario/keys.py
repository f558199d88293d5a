"""The expectation keys a step's `expect` table may use: one record each, with its type and
allowed values, what it means, where its value is measured, what the scenario must have for it
to be measured, and how the verdict words it.

Validation (coexist.scenario.expect), measuring the host's facts (coexist.run.measure), judging
and the verdict (coexist.report) loop over these records: a new key that the host's firewall
answers is one record here (and its question in coexist.host.firewall if it is a new one).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from coexist.host.firewall import HostFirewall
from coexist.net.connectivity import Connectivity

STATES = ("online", "symptom", "offline", "partial")
POLICIES = ("ACCEPT", "DROP")


class Source(Enum):
    """Where a key's value is measured."""

    GUEST = "a guest's connectivity once it settled, per guest"
    WORKLOAD = "Docker's workload, probed from outside the host"
    FIREWALL = "a question to the host's firewall (coexist.host.firewall.HostFirewall)"
    STEP = "what the step itself did: its commands, its fix's checks"


class Need(Enum):
    """What a scenario must have for a key to be measured at all; the value: the error otherwise."""

    PUBLISHED_PORT = "given, but the scenario publishes no port ([workload] published_port)"
    ISOLATION = "given, but the scenario probes no Docker isolation ([workload] isolated_networks = true)"
    IPV6 = "given, but no guest network has IPv6 (host.ipv6 = true)"
    FIX_STEP = "only on a fix step (the fix's host checks)"
    REVERT_STEP = "only on a revert step (the rulesets compared with those before the fix)"
    PROBE = "given, but [workload] probes does not name it"
    FIREWALLD_EVENT = "only on a step with a firewalld-reload or firewalld-restart event"
    UPGRADE_STEP = "only on an upgrade step"


@dataclass(frozen=True)
class Key:
    name: str
    source: Source
    type: type                                 # bool, int or str: of the value, or a table's items
    meaning: str
    allowed: tuple[str, ...] | None = None     # a string's allowed values (None: any)
    example: str = ""                          # a table key's example item ("": a plain value)
    words: tuple[str, str] = ("ok", "FAILS")   # a boolean in the verdict's words: true, false
    needs: Need | None = None
    title: str = ""                            # how the verdict's host line names it ("": not there)
    hidden: tuple[Any, ...] = (None,)          # values the verdict's host line leaves out
    read: Callable[[Connectivity], bool | str | None] | None = None   # GUEST: its value
    ask: Callable[[HostFirewall], Any] | None = None                  # FIREWALL: a plain value
    ask_item: Callable[[HostFirewall, str], Any] | None = None        # FIREWALL: a table's item

    @property
    def table(self) -> bool:
        """A table of items (`{ item = value }`), each judged on its own."""
        return bool(self.example)

    def word(self, value: Any) -> str:
        """A measured or expected value in words."""
        if isinstance(value, bool):
            return self.words[0 if value else 1]
        return "none" if value in ("", None) else str(value)


def _v6(what: str) -> Callable[[Connectivity], bool | None]:
    def read(measured: Connectivity) -> bool | None:
        return next((p.ok for p in measured.ipv6 if p.what.lower() == what), None)
    return read


YES_NO = ("yes", "no")

# in the order error messages list them and the verdict shows them; the firewall's facts in the
# order verdict.json's "facts" has them
KEYS: dict[str, Key] = {key.name: key for key in (
    Key("state", Source.GUEST, str, "online (DNS, ping, TCP work) | symptom (DNS works, ping and TCP "
        "fail) | offline (nothing works) | partial", allowed=STATES, read=lambda c: c.state),
    Key("symptom", Source.GUEST, bool, "the reported symptom: DNS works, ping and TCP to the outside "
        "fail", words=YES_NO, read=lambda c: c.symptom),
    Key("online", Source.GUEST, bool, "every probe works (IPv6 ones too where the network has IPv6)",
        words=YES_NO, read=lambda c: c.all_ok),
    Key("dns", Source.GUEST, bool, "the guest resolves example.test through its network's resolver",
        read=lambda c: c.dns.ok),
    Key("ping", Source.GUEST, bool, "ping 198.51.100.1 (forwarded) answers", read=lambda c: c.ping.ok),
    Key("tcp", Source.GUEST, bool, "HTTP to 198.51.100.1 (forwarded) answers", read=lambda c: c.tcp.ok),
    Key("ipv6", Source.GUEST, bool, "ping6 and TCP6 to 2001:db8:feed::1 both work", words=YES_NO,
        needs=Need.IPV6, read=lambda c: c.ipv6_ok),
    Key("ping6", Source.GUEST, bool, "ping6 2001:db8:feed::1 answers", needs=Need.IPV6, read=_v6("ping6")),
    Key("tcp6", Source.GUEST, bool, "HTTP over IPv6 to 2001:db8:feed::1 answers", needs=Need.IPV6,
        read=_v6("tcp6")),
    Key("published_port", Source.WORKLOAD, bool, "the container's published port answers from outside",
        words=("reachable", "UNREACHABLE"), needs=Need.PUBLISHED_PORT, title="published port"),
    Key("docker_isolation", Source.WORKLOAD, bool, "a container on one Docker network cannot reach "
        "another's", words=("kept", "BROKEN"), needs=Need.ISOLATION, title="Docker isolation"),
    Key("container_egress", Source.WORKLOAD, bool, "containers reach the outside (HTTP to 198.51.100.1), "
        "on docker0 and on a user-defined network", words=("works", "BROKEN"), needs=Need.PROBE,
        title="container egress"),
    Key("guests_closed", Source.WORKLOAD, bool, "a new connection from the outside to a guest's listening "
        "port (22) is refused or dropped, every guest", words=("closed", "OPEN"), needs=Need.PROBE,
        title="guests from outside"),
    Key("containers_closed", Source.WORKLOAD, bool, "no guest opens the isolated server's unpublished "
        "port by the container's address", words=("closed", "OPEN"), needs=Need.PROBE,
        title="containers from the guests"),
    Key("forward_policy", Source.FIREWALL, str, "iptables (nft) filter FORWARD policy", allowed=POLICIES,
        title="FORWARD policy", hidden=(), ask=HostFirewall.forward_policy),
    Key("legacy_forward_policy", Source.FIREWALL, str, "iptables-legacy filter FORWARD policy",
        allowed=POLICIES, title="legacy FORWARD policy", hidden=(None, "ACCEPT"),
        ask=HostFirewall.legacy_forward_policy),
    Key("ip_forward", Source.FIREWALL, bool, "net.ipv4.ip_forward is 1", words=("1", "0"),
        title="ip_forward", ask=HostFirewall.ip_forward),
    Key("forward6_policy", Source.FIREWALL, str, "ip6tables (nft) filter FORWARD policy", allowed=POLICIES,
        title="IPv6 FORWARD policy", hidden=(None, "ACCEPT"), ask=HostFirewall.forward6_policy),
    Key("ipv6_forwarding", Source.FIREWALL, bool, "net.ipv6.conf.all.forwarding is 1", words=("1", "0"),
        title="IPv6 forwarding", hidden=(None, False), ask=HostFirewall.ipv6_forwarding),
    Key("commands", Source.STEP, bool, "every command of the step exited 0 (default: expected)",
        words=("all exit 0", "one FAILED")),
    Key("iptables", Source.FIREWALL, bool, "`iptables -C <rule>` finds the rule (key: `[-t table] "
        "CHAIN rule...`)", example='"FORWARD -i virbr0 -j ACCEPT" = true', words=YES_NO,
        title="iptables", ask_item=HostFirewall.has_rule),
    Key("ip6tables", Source.FIREWALL, bool, "`ip6tables -C <rule>` finds the rule (key: `[-t table] "
        "CHAIN rule...`)", example='"FORWARD -i virbr0 -j ACCEPT" = true', words=YES_NO,
        title="ip6tables", ask_item=HostFirewall.has_rule6),
    Key("rule_position", Source.FIREWALL, int, "where the rule stands in its chain, 1 = the top, 0 = "
        "absent (key: `[-t table] CHAIN rule...` as `iptables -S` prints it)",
        example='"FORWARD -i virbr0 -j ACCEPT" = 1', title="rule_position",
        ask_item=HostFirewall.rule_position),
    Key("rule_count", Source.FIREWALL, int, "how many copies of the rule its chain holds (key: as for "
        "rule_position)", example='"DOCKER-USER -i virbr0 -j ACCEPT" = 1', title="rule_count",
        ask_item=HostFirewall.rule_count),
    Key("chains", Source.FIREWALL, bool, "iptables chain exists (key: `table CHAIN`, e.g. \"filter "
        "DOCKER-USER\")", example='"filter DOCKER-USER" = true', words=YES_NO, title="chains",
        ask_item=HostFirewall.has_chain),
    Key("nft_tables", Source.FIREWALL, bool, "nft table exists (key: `family name`, e.g. \"ip "
        "libvirt_network\")", example='"ip libvirt_network" = true', words=YES_NO, title="nft_tables",
        ask_item=HostFirewall.has_nft_table),
    Key("zone_of", Source.FIREWALL, str, "firewalld's zone of an interface (key: interface; \"\" for "
        "none)", example='virbr0 = "libvirt"', title="zone_of", ask_item=HostFirewall.zone_of),
    Key("masquerade", Source.FIREWALL, bool, "firewalld's zone masquerades (key: zone)",
        example="libvirt = true", words=YES_NO, title="masquerade", ask_item=HostFirewall.masquerade),
    Key("reverted", Source.STEP, bool, "after a revert: the rulesets are those before the fix was applied "
        "(nft's listing and iptables-legacy's, rules counted, order, handles and counters aside)",
        words=("yes", "NO"), needs=Need.REVERT_STEP, title="back to the rulesets before the fix"),
    Key("docker_rules", Source.STEP, str, "what a firewalld reload or restart did to Docker's rules: kept "
        "(Docker's chains untouched), re-made (flushed and put back by Docker: new nft handles), lost",
        allowed=("kept", "re-made", "lost"), needs=Need.FIREWALLD_EVENT, title="Docker's rules"),
    Key("upgrade_healthy", Source.STEP, bool, "after an upgrade: apt exited 0, every package is at the "
        "version apt planned and the daemons' at the next release's image's, `dpkg --audit` is empty "
        "and no package is half-installed or half-configured", words=("yes", "NO"), needs=Need.UPGRADE_STEP,
        title="upgrade healthy"),
    Key("probe", Source.STEP, bool, "a probe of the scenario's own ([[probe]]) exits 0 (key: its id)",
        example="dns-forwarded = true", words=("succeeds", "FAILS"), title="probe"),
    Key("checks", Source.STEP, bool, "a host check of the step's fix holds (key: the check's id)",
        example="masquerade = true", words=("holds", "FAILS"), needs=Need.FIX_STEP),
)}
GUEST_KEYS = tuple(name for name, key in KEYS.items() if key.source is Source.GUEST)
FACTS = tuple(key for key in KEYS.values() if key.source is Source.FIREWALL)
PROBES = tuple(key.name for key in KEYS.values() if key.needs is Need.PROBE)   # [workload] probes
