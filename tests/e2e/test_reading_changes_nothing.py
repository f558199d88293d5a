"""Observe without disturbing, on the real stack: every question coexist asks a lab host's
firewall (each host fact, with items for the table ones) and a whole snapshot leave its rulesets
as they were: the same nft ruleset, the same iptables-legacy tables (none created by a listing),
counters aside."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from coexist.host import firewall
from coexist.host.testbed import HostPlan, Testbed
from coexist.images.built import build_images
from coexist.run.measure import host_facts
from coexist.scenario.keys import FACTS

pytestmark = pytest.mark.e2e

ASKED = {"iptables": ["FORWARD -i virbr0 -j ACCEPT", "-t nat POSTROUTING -s 192.168.122.0/24 -j MASQUERADE"],
         "ip6tables": ["FORWARD -i virbr0 -j ACCEPT"],
         "rule_position": ["FORWARD -j DOCKER-USER", "-t nat POSTROUTING -j LIBVIRT_PRT"],
         "rule_count": ["DOCKER-USER -i virbr0 -j ACCEPT"],
         "chains": ["filter DOCKER-USER", "filter LIBVIRT_FWI"],
         "nft_tables": ["ip libvirt_network", "inet firewalld"],
         "zone_of": ["virbr0", "docker0"], "masquerade": ["libvirt", "public"]}
_COUNTERS = re.compile(r"counter packets \d+ bytes \d+|\[\d+:\d+\]")


def rulesets(bed: Testbed) -> dict[str, str]:
    """The lab's rulesets as a person would compare them, counters blanked."""
    lab = bed.lab
    read = {"nft": lab.succeed(["nft", "list", "ruleset"]),
            **{f"{family} legacy tables": lab.succeed(["cat", f"/proc/net/{family}_tables_names"])
               for family in ("ip", "ip6", "arp")},
            "iptables-legacy-save": lab.execute(["iptables-legacy-save"]).output,
            "ip6tables-legacy-save": lab.execute(["ip6tables-legacy-save"]).output}
    return {name: _COUNTERS.sub("counter", text) for name, text in read.items()}


def test_measuring_a_host_leaves_its_rulesets_as_they_were(tmp_path: Path) -> None:
    assert set(ASKED) == {key.name for key in FACTS if key.table}, "ask every table fact"
    images = build_images("trixie")
    with Testbed(HostPlan(release="trixie"), images, name="reads", artifacts=tmp_path) as bed:
        bed.boot()
        before = rulesets(bed)
        assert before["ip legacy tables"] == "", "a fresh host has no iptables-legacy table"
        facts = host_facts(bed.lab, ASKED)
        firewall.snapshot(bed.lab, "after-reading")
        assert facts["forward_policy"] == "DROP" and facts["legacy_forward_policy"] is None
        after = rulesets(bed)
        assert after == before
        warned = bed.lab.execute(["iptables", "-S", "FORWARD"]).output
        assert "iptables-legacy tables present" not in warned
