"""One record per expectation key: every key is validated, measured, judged and worded from its
record, and the host's facts are the firewall's answers, asked with the commands a person would
type (no lab: a stand-in host that records them)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from coexist.base.commands import Command, Result
from coexist.host import firewalld
from coexist.host.upgrade import Upgraded
from coexist.net.connectivity import Connectivity, Probe
from coexist.report.results import CommandRun, Settled, StepResult
from coexist.run.measure import host_facts, wanted_facts
from coexist.scenario.expect import parse_expect
from coexist.scenario.fixes import CheckResult
from coexist.scenario.keys import FACTS, KEYS, PROBES, Source
from coexist.scenario.steps import Admin

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "reference.md"   # the README links to it


def a_value(name: str) -> Any:
    """A value the key accepts: a table's one item, a string's first allowed value, or true."""
    key = KEYS[name]
    plain = (key.allowed[0] if key.allowed else "x") if key.type is str else 1 if key.type is int else True
    return {"item": plain} if key.table else plain


def other(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: other(v) for k, v in value.items()}
    if isinstance(value, bool):
        return not value
    return value + 1 if isinstance(value, int) else value + "-other"


def test_every_key_has_a_way_to_be_measured() -> None:
    for key in KEYS.values():
        match key.source:
            case Source.GUEST:
                assert key.read is not None and not key.table, key.name
            case Source.FIREWALL:
                assert (key.ask_item if key.table else key.ask) is not None, key.name
            case Source.WORKLOAD | Source.STEP:
                assert key.read is key.ask is key.ask_item is None, key.name


def test_every_key_is_validated_from_its_record() -> None:
    for name in KEYS:
        expect = parse_expect({name: a_value(name)}, ())
        assert {**expect.guest, **expect.host} == {name: a_value(name)}


def measured(value: dict[str, Any]) -> StepResult:
    """A step result whose every host-side key measured `value[key]`."""
    facts = {key.name: value[key.name] for key in FACTS}
    return StepResult(Admin(("true",), id="s"), published_port=value["published_port"],
                      docker_isolation=value["docker_isolation"], facts=facts,
                      **{name: value[name] for name in PROBES},
                      commands=[CommandRun("true", 0 if value["commands"] else 1, "")],
                      checks=[CheckResult(c, c, holds) for c, holds in value["checks"].items()],
                      probes={p: CommandRun(p, 0 if ok else 1, "") for p, ok in value["probe"].items()},
                      unreverted=[] if value["reverted"] else ["+ a line"],
                      docker_rules=(value["docker_rules"], "why"),
                      upgrade=Upgraded("bookworm", "trixie", "keep", returncode=0 if value["upgrade_healthy"] else 100))


def test_every_key_is_judged_and_worded_from_its_record() -> None:
    host = {k.name: a_value(k.name) for k in KEYS.values() if k.source is not Source.GUEST}
    result = measured({k: other(v) for k, v in host.items()})
    result.step = Admin(("true",), id="s", expect=parse_expect(host, ()))
    found = result.mismatches()
    for name, wanted in host.items():
        key = KEYS[name]
        said = (f"[s] {name} 'item': expected {key.word(wanted['item'])}, measured "
                f"{key.word(other(wanted['item']))}" if key.table else
                f"[s] {name}: expected {key.word(wanted)}, measured {key.word(other(wanted))}")
        assert said in found, (said, found)
    agreeing = measured(host)
    agreeing.step = result.step
    assert agreeing.mismatches() == []


def test_every_guest_key_reads_the_guests_connectivity() -> None:
    six = (Probe("ping6", "", True, ""), Probe("TCP6", "", False, ""))
    final = Connectivity(Probe("DNS", "", True, ""), Probe("ping", "", False, ""), Probe("TCP", "", False, ""),
                         ipv6=six)
    result = StepResult(Admin(("true",), id="s"), guests={"vm": Settled(final, 2, 4.0, True)})
    values = {name: result.guest_value("vm", name) for name in KEYS if KEYS[name].source is Source.GUEST}
    assert values == {"state": "symptom", "symptom": True, "online": False, "dns": True, "ping": False,
                      "tcp": False, "ipv6": False, "ping6": True, "tcp6": False}


class _Host:
    """A host that records the commands it is asked to run and answers as a lab with Docker's
    DROP, libvirt's nft table and one rule in place would."""

    where = "host"

    def __init__(self, root: Path) -> None:
        self.root, self.ran = root, []

    def execute(self, command: Command, *, timeout: float | None = None) -> Result:
        shown = command if isinstance(command, str) else " ".join(command)
        self.ran.append(shown)
        if shown == "nft -j list tables":
            return Result(0, json.dumps({"nftables": [{"table": {"family": "ip", "name": "libvirt_network"}}]}))
        answers = {"iptables -S FORWARD": "-P FORWARD DROP\n", "iptables-legacy -S FORWARD": "-P FORWARD ACCEPT\n",
                   "iptables -C FORWARD -i virbr0 -j ACCEPT": "", "iptables -t filter -S DOCKER-USER": "",
                   "sh -ec cat /proc/sys/net/ipv4/ip_forward": "1\n", "ip6tables -S FORWARD": "-P FORWARD DROP\n",
                   "sh -ec cat /proc/sys/net/ipv6/conf/all/forwarding": "0\n",
                   "cat /proc/net/ip_tables_names": "filter\n",   # a host with a legacy filter table
                   "iptables -S DOCKER-USER": "-N DOCKER-USER\n-A DOCKER-USER -i virbr0 -j ACCEPT\n"
                                              "-A DOCKER-USER -j RETURN\n-A DOCKER-USER -i virbr0 -j ACCEPT\n"}
        return Result(0, answers[shown]) if shown in answers else Result(1, "No chain/target/match")

    def succeed(self, command: Command, *, timeout: float | None = None) -> str:
        return self.execute(command).output

    def sysctl(self, key: str, value: str | None = None) -> str | None:
        return self.execute(["sh", "-ec", f"cat /proc/sys/{key.replace('.', '/')}"]).output.strip()

    def path(self, inside: str) -> Path:
        return self.root / inside.lstrip("/")

    @property
    def firewall(self) -> Any:
        from coexist.host.firewall import HostFirewall
        return HostFirewall(self)


@pytest.mark.parametrize("running", [True, False])
def test_host_facts_are_the_firewalls_answers_to_every_fact_key(tmp_path: Path, running: bool,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []
    monkeypatch.setattr(firewalld.Firewalld, "running", lambda self: running)
    monkeypatch.setattr(firewalld.Firewalld, "zone_of", lambda self, i: asked.append(i) or "libvirt")
    monkeypatch.setattr(firewalld.Firewalld, "masquerade", lambda self, z: asked.append(z) or True)
    wanted = wanted_facts([parse_expect({"iptables": {"FORWARD -i virbr0 -j ACCEPT": True,
                                                      "-t nat POSTROUTING -j MASQUERADE": False},
                                         "chains": {"filter DOCKER-USER": True},
                                         "ip6tables": {"FORWARD -i virbr0 -j ACCEPT": False},
                                         "rule_position": {"DOCKER-USER -i virbr0 -j ACCEPT": 1,
                                                           "FORWARD -o virbr0 -j ACCEPT": 1},
                                         "rule_count": {"DOCKER-USER -i virbr0 -j ACCEPT": 1},
                                         "nft_tables": {"ip libvirt_network": True},
                                         "zone_of": {"virbr0": "libvirt"}, "masquerade": {"libvirt": True}}, ())])
    host = _Host(tmp_path)
    facts = host_facts(host, wanted)  # type: ignore[arg-type]
    assert list(facts) == [key.name for key in FACTS] == [   # verdict.json's "facts", in this order
        "forward_policy", "legacy_forward_policy", "ip_forward", "forward6_policy", "ipv6_forwarding", "iptables",
        "ip6tables", "rule_position", "rule_count",
        "chains", "nft_tables",
        "zone_of", "masquerade"]
    assert facts == {"forward_policy": "DROP", "legacy_forward_policy": "ACCEPT", "ip_forward": True,
                     "forward6_policy": "DROP", "ipv6_forwarding": False,
                     "ip6tables": {"FORWARD -i virbr0 -j ACCEPT": False},
                     "iptables": {"FORWARD -i virbr0 -j ACCEPT": True, "-t nat POSTROUTING -j MASQUERADE": False},
                     "rule_position": {"DOCKER-USER -i virbr0 -j ACCEPT": 1, "FORWARD -o virbr0 -j ACCEPT": 0},
                     "rule_count": {"DOCKER-USER -i virbr0 -j ACCEPT": 2},   # a fix applied twice
                     "chains": {"filter DOCKER-USER": True}, "nft_tables": {"ip libvirt_network": True},
                     "zone_of": {"virbr0": "libvirt" if running else ""}, "masquerade": {"libvirt": running}}
    assert sorted(host.ran) == [   # only looking: nothing a listing creates, firewalld asked only when up
        "cat /proc/net/ip_tables_names", "ip6tables -C FORWARD -i virbr0 -j ACCEPT", "ip6tables -S FORWARD",
        "iptables -C FORWARD -i virbr0 -j ACCEPT", "iptables -S DOCKER-USER",
        "iptables -S DOCKER-USER", "iptables -S FORWARD", "iptables -S FORWARD", "iptables -t filter -S DOCKER-USER",
        "iptables -t nat -C POSTROUTING -j MASQUERADE", "iptables-legacy -S FORWARD", "nft -j list tables",
        "sh -ec cat /proc/sys/net/ipv4/ip_forward", "sh -ec cat /proc/sys/net/ipv6/conf/all/forwarding"]
    assert sorted(asked) == (["libvirt", "virbr0"] if running else [])


def test_the_reference_lists_every_key() -> None:
    section = REFERENCE.read_text().split("### Expectations", 1)[1].split("\n### ", 1)[0]
    listed = set(re.findall(r"`([a-z_0-9]+)`", section))
    assert set(KEYS) <= listed, set(KEYS) - listed
