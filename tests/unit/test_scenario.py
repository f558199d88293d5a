from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.scenario import ScenarioError, load, parse

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def minimal(**tables: dict) -> dict:
    data = {"scenario": {"name": "s", "summary": "x"}, "expect": {"symptom": True}}
    for table, values in tables.items():
        data.setdefault(table, {}).update(values)
    return data


def test_every_shipped_scenario_loads() -> None:
    paths = sorted(SCENARIOS.glob("*.toml"))
    assert paths, "no scenarios shipped"
    for path in paths:
        assert load(path).name


def test_seed_scenario_says_what_it_measures() -> None:
    seed = load(SCENARIOS / "seed-firewalld-direct.toml")
    assert seed.host.release == "trixie"
    assert seed.host.libvirt_firewall_backend == "nftables"
    assert seed.host.start_order == ("firewalld", "dockerd", "libvirt")
    assert seed.fix == "seed-firewalld-direct"
    assert seed.expect.symptom is True


def test_defaults() -> None:
    scenario = parse(minimal())
    assert scenario.host.release == "trixie"
    assert scenario.fix is None and scenario.expect.fix_effective is None


@pytest.mark.parametrize(
    ("data", "where", "says"),
    [
        (minimal(hosts={"release": "trixie"}), "[hosts]", "allowed: scenario, host"),
        (minimal(host={"relase": "trixie"}), "host.relase", "allowed: release,"),
        (minimal(host={"release": "bullseye"}), "host.release", "allowed: bookworm, trixie, forky"),
        (minimal(host={"release": 13}), "host.release", "must be a str"),
        (minimal(host={"libvirt_firewall_backend": "pf"}), "host.libvirt_firewall_backend",
         "allowed: default, iptables, nftables"),
        (minimal(host={"start_order": ["dockerd", "qemu", "libvirt"]}), "host.start_order",
         "'qemu' is not allowed"),
        (minimal(host={"start_order": ["dockerd"]}), "host.start_order", "must include 'libvirt'"),
        (minimal(host={"start_order": ["libvirt", "libvirt"]}), "host.start_order", "twice"),
        (minimal(workload={"published_port": 70000}), "workload.published_port", "1..65535"),
        (minimal(workload={"published_port": True}), "workload.published_port", "must be a int"),
        (minimal(fix={"name": "reboot-it"}), "fix.name", "known: seed-firewalld-direct"),
        (minimal(fix={"name": "seed-firewalld-direct"}), "expect.fix_effective", "is required"),
        (minimal(expect={"fix_effective": True}), "expect.fix_effective", "no [fix]"),
        ({"scenario": {"name": "s"}, "expect": {"symptom": True}}, "scenario.summary", "required"),
        (minimal(expect={"symptom": "yes"}), "expect.symptom", "must be a bool"),
        (minimal(guest={"network": "macvtap"}), "guest.network",
         "allowed: default, nat2, routed, bridged"),
        (minimal(guest={"nic": "virtio"}), "guest.nic", "unknown key; allowed: network"),
        (minimal(expect={"dns_before": 1}), "expect.dns_before", "must be a bool"),
        (minimal(guest={"network": "bridged", "ipv6": True}), "guest.ipv6",
         "only on a libvirt network"),
        (minimal(expect={"ipv6_before": True}), "expect.ipv6_before", "guest has no IPv6"),
        (minimal(workload={"isolated_networks": "yes"}), "workload.isolated_networks",
         "must be a bool"),
        (minimal(expect={"docker_isolation_after_fix": False}), "expect.docker_isolation_after_fix",
         "probes no Docker isolation"),
    ],
)
def test_errors_name_the_file_the_field_and_what_is_allowed(data: dict, where: str,
                                                            says: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse(data, "scenarios/broken.toml")
    message = str(caught.value)
    assert message.startswith("scenarios/broken.toml: ")
    assert caught.value.where == where
    assert says in message


def test_malformed_toml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[scenario\nname = 1\n")
    with pytest.raises(ScenarioError, match=r"bad\.toml: file: not valid TOML"):
        load(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="no such scenario file"):
        load(tmp_path / "nope.toml")


def test_cases_override_the_expectation_for_matching_axes() -> None:
    data = minimal(fix={"name": "seed-firewalld-direct"},
                   expect={"fix_effective": True,
                           "case": [{"release": "bookworm", "symptom": False, "note": "old"},
                                    {"firewalld": False, "fix_effective": False}]})
    scenario = parse(data)
    assert scenario.expect.symptom is True and scenario.expect.notes == ()
    bookworm = scenario.variant(release="bookworm")
    assert bookworm.expect.symptom is False and bookworm.expect.notes == ("old",)
    assert bookworm.expect.fix_effective is True
    no_firewalld = scenario.variant(start_order=["dockerd", "libvirt"])
    assert no_firewalld.expect.fix_effective is False


def test_variants_are_validated_like_files() -> None:
    scenario = parse(minimal())
    with pytest.raises(ScenarioError, match="host.release: 'sid' is not allowed"):
        scenario.variant(release="sid")
    with pytest.raises(ScenarioError, match="events.after_setup: 'reboot' is not allowed"):
        scenario.variant(after_setup=["reboot"])
    with pytest.raises(ScenarioError, match="unknown axes"):
        scenario.variant(colour="blue")


@pytest.mark.parametrize(
    ("case", "says"),
    [
        ({"symptom": False}, "matches nothing"),
        ({"release": "trixie"}, "states no outcome"),
        ({"release": "trixie", "symptom": False, "colour": "x"}, "expect.case[0].colour"),
        ({"release": "potato", "symptom": False}, "'potato' is not allowed"),
        ({"firewalld": "yes", "symptom": False}, "must be a bool"),
        ({"network": "wifi", "symptom": False}, "expect.case[0].network: 'wifi' is not allowed"),
    ],
)
def test_bad_cases_are_named(case: dict, says: str) -> None:
    with pytest.raises(ScenarioError, match=re.escape(says)):
        parse(minimal(expect={"case": [case]}), "s.toml")


def test_after_fix_events_need_a_fix_and_an_expectation() -> None:
    with pytest.raises(ScenarioError, match="events.after_fix: given, but the scenario has no"):
        parse(minimal(events={"after_fix": ["firewalld-reload"]},
                      expect={"survives_events": True}))
    with pytest.raises(ScenarioError, match="expect.survives_events: is required"):
        parse(minimal(events={"after_fix": ["firewalld-reload"]},
                      fix={"name": "seed-firewalld-direct"}, expect={"fix_effective": True}))


def test_every_event_a_scenario_may_name_can_happen() -> None:
    from harness import events
    from harness.scenario import EVENTS

    assert set(EVENTS) == set(events.HAPPEN)


def test_the_guest_network_is_an_axis_cases_can_match() -> None:
    data = minimal(expect={"case": [{"network": "bridged", "symptom": False, "dns_before": False,
                                     "note": "bridged frames cross FORWARD"}]})
    scenario = parse(data)
    assert scenario.guest.network == "default" and scenario.expect.dns_before is None
    bridged = scenario.variant(network="bridged")
    assert bridged.guest.network == "bridged" and bridged.axes()["network"] == "bridged"
    assert bridged.expect.symptom is False and bridged.expect.dns_before is False
    assert "network:bridged" in bridged.label() and "network:" not in scenario.label()
    with pytest.raises(ScenarioError, match="guest.network: 'vlan' is not allowed"):
        scenario.variant(network="vlan")


def test_ipv6_is_an_axis_with_its_own_expectation() -> None:
    scenario = parse(minimal(guest={"ipv6": True}, expect={
        "ipv6_before": True, "case": [{"release": "forky", "ipv6_before": False}]}))
    assert scenario.guest.ipv6 and scenario.expect.ipv6_before is True
    assert "ipv6" in scenario.label()
    assert scenario.variant(release="forky").expect.ipv6_before is False
    assert scenario.variant(ipv6=False).axes()["ipv6"] is False


def test_docker_isolation_after_the_fix_defaults_to_before() -> None:
    scenario = parse(minimal(workload={"isolated_networks": True}, expect={
        "case": [{"release": "forky", "docker_isolation_after_fix": False}]}))
    assert scenario.workload.isolated_networks
    assert scenario.expect.docker_isolation is True
    assert scenario.expect.docker_isolation_after_fix is True
    assert scenario.variant(release="forky").expect.docker_isolation_after_fix is False
