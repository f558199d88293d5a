from __future__ import annotations

import re
from pathlib import Path

import pytest
from coexist.base.schema import ScenarioError
from coexist.scenario.model import load, parse

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
SEED_POST = (  # shared/seed-post.md, section 3, character for character
    "firewall-cmd --permanent --direct --add-rule ipv4 filter FORWARD 0 -i virbr0 -j ACCEPT",
    "firewall-cmd --permanent --direct --add-rule ipv4 filter FORWARD 0 -o virbr0 -m state --state RELATED,ESTABLISHED -j ACCEPT",
    "firewall-cmd --permanent --zone=libvirt --add-masquerade",
    "firewall-cmd --reload",
)


def minimal(*steps: dict, **tables: dict) -> dict:
    data: dict = {"scenario": {"name": "s", "summary": "x"},
                  "step": [{"do": "boot", "expect": {"symptom": True}}, *steps]}
    for table, values in tables.items():
        if isinstance(values, list) or values is None:
            data[table] = values
        else:
            data.setdefault(table, {}).update(values)
    return data


def test_every_shipped_scenario_loads() -> None:
    paths = sorted(SCENARIOS.glob("*.toml"))
    assert paths, "no scenarios shipped"
    for path in paths:
        assert load(path).name


def test_the_seed_applies_the_posts_four_commands_verbatim() -> None:
    seed = load(SCENARIOS / "seed-firewalld-direct.toml")
    fix_step = next(step for step in seed.steps if step.kind == "fix")
    assert fix_step.fix is not None and fix_step.fix.commands == SEED_POST
    post = Path(__file__).resolve().parents[3] / "shared" / "seed-post.md"
    if post.exists():   # beside the checkout on the project's machines
        text = post.read_text()
        assert all(f"sudo {command}" in text for command in SEED_POST)


def test_seed_scenario_says_what_it_measures() -> None:
    seed = load(SCENARIOS / "seed-firewalld-direct.toml")
    assert seed.host.release == "trixie"
    assert seed.host.libvirt_firewall_backend == "nftables"
    assert seed.host.start_order == ("firewalld", "dockerd", "libvirt")
    assert [s.id for s in seed.steps] == ["boot", "seed-firewalld-direct", "guest-restart", "host-reboot"]
    assert seed.steps[0].expect.guest["symptom"] is True
    with_events = seed.variant(after_fix=["firewalld-reload"])
    assert [s.id for s in with_events.steps][2] == "after-fix"
    assert with_events.steps[2].events == ("firewalld-reload",)


def test_defaults() -> None:
    scenario = parse(minimal())
    assert scenario.host.release == "trixie" and scenario.workload.published_port is None
    assert [g.name for g in scenario.guests] == ["guest"] and scenario.guests[0].network == "default"
    assert not scenario.docker or scenario.host.start_order[1] == "dockerd"


@pytest.mark.parametrize(
    ("data", "where", "says"),
    [
        (minimal(hosts={"release": "trixie"}), "[hosts]", "allowed: scenario, host"),
        ({**minimal(), "expect": {"symptom": True}}, "[expect]", "became per-step"),
        (minimal(host={"relase": "trixie"}), "host.relase", "allowed: release,"),
        (minimal(host={"release": "bullseye"}), "host.release", "allowed: bookworm, trixie, forky"),
        (minimal(host={"release": 13}), "host.release", "must be a str"),
        (minimal(host={"libvirt_firewall_backend": "pf"}), "host.libvirt_firewall_backend",
         "allowed: default, iptables, nftables"),
        (minimal(host={"release": "bookworm", "libvirt_firewall_backend": "nftables"}), "host",
         "libvirt 9.0 (bookworm) has no firewall_backend"),
        (minimal(host={"start_order": ["dockerd", "qemu", "libvirt"]}), "host.start_order",
         "'qemu' is not allowed"),
        (minimal(host={"start_order": ["dockerd"]}), "host.start_order", "must include 'libvirt'"),
        (minimal(host={"start_order": ["libvirt", "libvirt"]}), "host.start_order", "twice"),
        (minimal(host={"libvirt_firewall_backend": "nftables", "libvirt": {"firewall_backend": "iptables"}}),
         "host.libvirt.firewall_backend", "set twice"),
        (minimal(host={"firewalld_backend": "iptables", "firewalld": {"FirewallBackend": "nftables"}}),
         "host.firewalld.FirewallBackend", "set twice"),
        (minimal(host={"sysctl": {"kernel.panic": 1}}), "host.sysctl.kernel.panic", "only network sysctls"),
        (minimal(host={"sysctl": {"net.ipv4.ip_forward": [1]}}), "host.sysctl.net.ipv4.ip_forward",
         "a number or a short string"),
        (minimal(host={"zones": {"libvirt": "virbr0"}}), "host.zones.libvirt", "a list of interface names"),
        (minimal(host={"libvirt": {"firewall_backend": ["x"]}}), "host.libvirt.firewall_backend",
         "string, number or boolean"),
        (minimal(workload={"published_port": 70000}), "workload.published_port", "1..65535"),
        (minimal(workload={"published_port": True}), "workload.published_port", "must be an integer"),
        (minimal(workload={"published_port": 8080}, host={"start_order": ["libvirt"]}), "host",
         "[workload] needs dockerd"),
        ({"scenario": {"name": "s"}, "step": [{"do": "boot"}]}, "scenario.summary", "required"),
        ({"scenario": {"name": "../../x", "summary": "s"}, "step": [{"do": "boot"}]}, "scenario.name",
         "letters, digits"),
        ({"scenario": {"name": "s", "summary": "s"}}, "step", "is required"),
        (minimal(guest={"network": "default"}), "guest", "array of tables"),
        (minimal(guest=[{"network": "macvtap"}]), "guest[0].network", "allowed: default, nat2, routed, bridged"),
        (minimal(guest=[{"nic": "virtio"}]), "guest[0].nic", "unknown key; allowed: name, network"),
        (minimal(guest=[{"name": "a"}, {"name": "a"}]), "guest[1].name", "two guests"),
        (minimal(guest=[{}, {}]), "guest[1].name", "a lower-case name"),
        (minimal(guest=[{"name": "ping"}]), "guest[0].name", "not an expectation key"),
        (minimal(network=[{"name": "default", "bridge": "virbr9", "ipv4": "10.1.0.0/24"}]),
         "network[0].name", "is a known network"),
        (minimal(network=[{"name": "n", "bridge": "virbr9"}]), "network[0].ipv4", "is required"),
        (minimal(network=[{"name": "n", "bridge": "virbr0", "ipv4": "10.1.0.0/24"}]), "network",
         "share a bridge"),
        (minimal(network=[{"name": "n", "bridge": "virbr9", "ipv4": "192.168.122.0/25"}]), "network",
         "overlapping subnets"),
        (minimal(network=[{"name": "n", "bridge": "virbr9", "ipv4": "10.1.0.0/24"},
                          {"name": "n", "bridge": "virbr8", "ipv4": "10.2.0.0/24"}]), "network[1].name", "two networks"),
        ({"scenario": {"name": "s", "summary": "x"}, "step": [{"run": ["true"]}]}, "step[0]",
         "first step must be do = \"boot\""),
        (minimal({"do": "boot"}), "step[1].do", "only it"),
        (minimal({"do": "reboot"}), "step[1].do", "allowed: boot, measure"),
        (minimal({"run": ["true"], "event": "firewalld-reload"}), "step[1]", "exactly one of"),
        (minimal({"expect": {"ping": True}}), "step[1]", "exactly one of"),
        (minimal({"run": []}), "step[1].run", "a list of host commands"),
        (minimal({"run": "iptables -P FORWARD ACCEPT"}), "step[1].run", "must be an array"),
        (minimal({"event": "reboot"}), "step[1].event", "'reboot' is not allowed"),
        (minimal({"event": []}), "step[1].event", "names no event"),
        (minimal({"event": "dockerd-restart"}, host={"start_order": ["firewalld", "libvirt"]}), "host",
         "event dockerd-restart needs dockerd"),
        (minimal({"fix": "reboot-it"}), "step[1].fix", "unknown fix 'reboot-it'; allowed: seed-firewalld-direct"),
        (minimal({"fix": "seed-firewalld-direct"}, host={"start_order": ["dockerd", "libvirt"]}), "host",
         "needs firewalld"),
        (minimal({"fix": "seed-firewalld-direct", "params": {"iface": "x"}}), "step[1].params",
         "no parameter 'iface'"),
        (minimal({"fix": "seed-firewalld-direct", "params": {"bridge": "virbr0; rm -rf /"}}),
         "step[1].params.bridge", "interface-like"),
        (minimal({"run": ["true"], "params": {"bridge": "x"}}), "step[1].params", "only with fix"),
        (minimal({"revert": "forward-accept"}, {"revert": "docker-user-bridge-x"}), "step[2].revert", "unknown fix"),
        (minimal({"run": ["true"], "settle": 0}), "step[1].settle", "1..300"),
        (minimal({"run": ["true"], "id": "Admin Step"}), "step[1].id", "lower-case"),
        (minimal({"run": ["true"], "id": "boot"}), "step[1].id", "two steps"),
        (minimal({"axis": "after_boot"}), "step[1].axis", "allowed: after_setup, after_fix"),
        (minimal({"axis": "after_fix"}, {"axis": "after_fix"}), "step[2].axis", "a second step"),
        (minimal(events={"after_fix": ["firewalld-reload"]}), "events.after_fix", "no step has axis"),
        (minimal(events={"after_fix": ["nap"]}, step=None), "events.after_fix", "'nap' is not allowed"),
        (minimal({"run": ["true"], "expect": {"pingg": True}}), "step[1].expect.pingg", "unknown key"),
        (minimal({"run": ["true"], "expect": {"ping": "yes"}}), "step[1].expect.ping", "must be a boolean"),
        (minimal({"run": ["true"], "expect": {"state": "fine"}}), "step[1].expect.state",
         "allowed: online, symptom, offline, partial"),
        (minimal({"run": ["true"], "expect": {"forward_policy": "REJECT"}}), "step[1].expect.forward_policy",
         "allowed: ACCEPT, DROP"),
        (minimal({"run": ["true"], "expect": {"iptables": True}}), "step[1].expect.iptables", "must be a table"),
        (minimal({"run": ["true"], "expect": {"zone_of": {"virbr0": True}}}), "step[1].expect.zone_of.virbr0",
         "must be a string"),
        (minimal({"run": ["true"], "expect": {"vm2": {"ping": True}}}), "step[1].expect.vm2", "unknown key"),
        (minimal({"run": ["true"], "expect": {"published_port": True}}), "step[1].expect.published_port",
         "publishes no port"),
        (minimal({"run": ["true"], "expect": {"docker_isolation": True}}), "step[1].expect.docker_isolation",
         "probes no Docker isolation"),
        (minimal({"run": ["true"], "expect": {"ping6": True}}), "step[1].expect.ping6", "no guest network has IPv6"),
        (minimal({"run": ["true"], "expect": {"guests_closed": True}}, workload={"probes": ["container_egress"]}),
         "step[1].expect.guests_closed", "[workload] probes does not name it"),
        (minimal(workload={"probes": ["guest_closed"]}), "workload.probes",
         "unknown probe 'guest_closed'; did you mean 'guests_closed'?"),
        (minimal(workload={"probes": ["containers_closed"]}), "workload.probes", "needs isolated_networks = true"),
        (minimal(probe=[{"id": "p", "where": "gest", "run": "true"}]), "probe[0].where",
         "'gest' is not allowed; did you mean 'guest'?"),
        (minimal(probe=[{"id": "p", "where": "wan"}]), "probe[0].run", "is required"),
        (minimal(probe=[{"id": "p", "where": "wan", "run": "a"}, {"id": "p", "where": "host", "run": "b"}]),
         "probe[1].id", "two probes are called 'p'"),
        (minimal({"run": ["true"], "expect": {"probe": {"dns": True}}}, probe=[{"id": "dsn", "where": "guest",
                                                                              "run": "x"}]),
         "step[1].expect.probe.dns", "unknown probe; allowed: dsn (define it in [[probe]])"),
        (minimal({"run": ["true"], "expect": {"checks": {"masquerade": True}}}), "step[1].expect.checks",
         "only on a fix step"),
        (minimal({"fix": "seed-firewalld-direct", "expect": {"checks": {"listing": True}}}),
         "step[1].expect.checks.listing", "its checks: rules-in-kernel, post-listing, masquerade"),
    ],
)
def test_errors_name_the_file_the_field_and_what_is_allowed(data: dict, where: str, says: str) -> None:
    if "step" in data and data["step"] is None:
        data["step"] = [{"do": "boot"}]
    with pytest.raises(ScenarioError) as caught:
        parse(data, "scenarios/broken.toml")
    message = str(caught.value)
    assert message.startswith("scenarios/broken.toml: ")
    assert caught.value.where == where, message
    assert says in message


@pytest.mark.parametrize(
    ("fix", "field", "says"),
    [
        ({"commands": ["true"]}, "fix.mine.summary", "is required"),
        ({"summary": "s"}, "fix.mine.commands", "is required"),
        ({"summary": "s", "commands": []}, "fix.mine.commands", "at least one"),
        ({"summary": "s", "commands": ["a\nb"]}, "fix.mine.commands", "one command per string"),
        ({"summary": "s", "commands": ["x"], "needs": ["qemu"]}, "fix.mine.needs", "allowed: firewalld"),
        ({"summary": "s", "commands": ["ip link set {dev} up"]}, "fix.mine.commands", "uses {dev}"),
        ({"summary": "s", "commands": ["x"], "how": "?"}, "fix.mine.how", "unknown key"),
        ({"summary": "s", "commands": ["x"], "check": [{"run": "true"}]}, "fix.mine.check[0].id", "required"),
        ({"summary": "s", "commands": ["x"], "check": [{"id": "a", "run": "x", "output": "y", "contains": "z"}]},
         "fix.mine.check[0]", "at most one"),
        ({"summary": "s", "commands": ["x"], "check": [{"id": "a", "run": "x", "matches": "("}]},
         "fix.mine.check[0].matches", "not a valid regular expression"),
        ({"summary": "s", "commands": ["x"], "check": [{"id": "a", "run": "x", "listing": "Chain X"}]},
         "fix.mine.check[0].listing", "no numbered rule rows"),
        ({"summary": "s", "commands": ["x"], "check": [{"id": "a", "run": "x"}, {"id": "a", "run": "y"}]},
         "fix.mine.check", "share an id"),
    ],
)
def test_inline_fixes_are_validated(fix: dict, field: str, says: str) -> None:
    with pytest.raises(ScenarioError, match=re.escape(says)) as caught:
        parse(minimal(fix={"mine": fix}))
    assert caught.value.where == field


def test_a_builtin_fix_name_cannot_be_redefined() -> None:
    with pytest.raises(ScenarioError, match="built-in fix's name"):
        parse(minimal(fix={"forward-accept": {"summary": "s", "commands": ["true"]}}))


def test_an_inline_fix_with_parameters_checks_and_revert() -> None:
    scenario = parse(minimal(
        {"fix": "accept-bridge", "params": {"bridge": "virbr+"},
         "expect": {"online": True, "checks": {"rule": True}}},
        {"revert": "accept-bridge"},
        fix={"accept-bridge": {
            "summary": "DOCKER-USER for {bridge}", "source": "https://example.test/report",
            "needs": ["dockerd"], "params": {"bridge": "virbr0"},
            "commands": ["iptables -I DOCKER-USER -i {bridge} -j ACCEPT"],
            "revert": ["iptables -D DOCKER-USER -i {bridge} -j ACCEPT"],
            "check": [{"id": "rule", "run": "iptables -S DOCKER-USER", "contains": "-i {bridge} -j ACCEPT"}]}}))
    fix_step, revert_step = scenario.steps[1:]
    assert fix_step.fix.commands == ("iptables -I DOCKER-USER -i virbr+ -j ACCEPT",)
    assert fix_step.fix.checks[0].expected == "-i virbr+ -j ACCEPT"
    assert revert_step.id == "revert-accept-bridge"
    assert revert_step.fix.revert == ("iptables -D DOCKER-USER -i virbr0 -j ACCEPT",)


def test_steps_get_ids_and_their_own_expectations() -> None:
    scenario = parse(minimal(
        {"run": ["iptables -P FORWARD ACCEPT"], "expect": {"ping": True, "forward_policy": "ACCEPT"}},
        {"event": "firewalld-reload", "expect": {"ping": False, "forward_policy": "DROP"}},
        {"run": ["true"]},
        {"event": ["guest-restart", "host-reboot"]}))
    assert [s.id for s in scenario.steps] == ["boot", "admin", "firewalld-reload", "admin-2", "events"]
    assert scenario.steps[1].expect.host == {"forward_policy": "ACCEPT"}
    assert scenario.steps[2].expect.guest == {"ping": False}
    assert scenario.steps[1].label() == "admin: host# iptables -P FORWARD ACCEPT"


def test_several_guests_and_networks_with_per_guest_expectations() -> None:
    scenario = parse(minimal(
        {"do": "measure", "expect": {"ping": False, "vm2": {"ping": True}}},
        network=[{"name": "lab-nat", "bridge": "virbr5", "ipv4": "192.168.150.0/24"}],
        guest=[{"name": "vm1"}, {"name": "vm2", "network": "lab-nat"}]))
    placed = scenario.guest_networks()
    assert placed["vm2"].bridge == "virbr5" and placed["vm2"].dns == "192.168.150.1"
    assert [n.name for n in scenario.host_networks()] == ["default", "lab-nat"]
    expect = scenario.steps[1].expect
    assert expect.for_guest("vm1") == {"ping": False} and expect.for_guest("vm2") == {"ping": True}
    assert scenario.variant(network="nat2").guest_networks()["vm1"].bridge == "virbr1"


def test_two_bridged_guests_get_their_own_addresses() -> None:
    scenario = parse(minimal(guest=[{"name": "a", "network": "bridged"}, {"name": "b", "network": "bridged"}],
                             host={"start_order": ["dockerd", "libvirt"]}))
    placed = scenario.guest_networks()
    assert (placed["a"].static_address, placed["b"].static_address) == ("203.0.113.50/24", "203.0.113.51/24")


def test_host_settings_become_the_daemons_files() -> None:
    scenario = parse(minimal(host={
        "release": "forky", "libvirt_firewall_backend": "nftables", "firewalld_backend": "iptables",
        "docker": {"ip-forward-no-drop": True}, "sysctl": {"net.ipv4.ip_forward": 1},
        "zones": {"trusted": ["virbr0"]}}))
    settings = scenario.host.settings()
    assert settings.libvirt == {"firewall_backend": "nftables"}
    assert settings.firewalld == {"FirewallBackend": "iptables"}
    assert settings.docker == {"ip-forward-no-drop": True} and settings.zones == {"trusted": ("virbr0",)}
    assert scenario.variant(release="trixie").host.docker == {"ip-forward-no-drop": True}


def test_a_control_run_without_docker() -> None:
    scenario = parse(minimal(host={"start_order": ["libvirt"]}))
    assert not scenario.docker and scenario.not_applicable() is None


def test_cases_override_step_expectations_for_matching_axes() -> None:
    data = minimal({"fix": "seed-firewalld-direct", "expect": {"online": True}},
                   case=[{"release": "bookworm", "expect": {"boot": {"symptom": False}}, "note": "old"},
                         {"firewalld": True, "expect": {"seed-firewalld-direct": {"online": False}}},
                         {"release": "bookworm", "expect": {"boot": {"dns": True}}}])
    scenario = parse(data)
    assert scenario.steps[0].expect.guest == {"symptom": True} and scenario.expect_notes == ()
    assert scenario.steps[1].expect.guest == {"online": False}
    bookworm = scenario.variant(release="bookworm")
    assert bookworm.steps[0].expect.guest == {"symptom": False, "dns": True}
    assert bookworm.expect_notes == ("old",)


def test_variants_are_validated_like_files() -> None:
    scenario = parse(minimal())
    with pytest.raises(ScenarioError, match="host.release: 'sid' is not allowed"):
        scenario.variant(release="sid")
    with pytest.raises(ScenarioError, match="events.after_setup: 'reboot' is not allowed"):
        scenario.variant(after_setup=["reboot"])
    with pytest.raises(ScenarioError, match="variant.colour: unknown axis; allowed: release"):
        scenario.variant(colour="blue")
    with pytest.raises(ScenarioError, match="guest.network: 'vlan' is not allowed"):
        scenario.variant(network="vlan")


def test_a_variant_the_release_cannot_run_is_not_applicable_not_an_error() -> None:
    scenario = parse(minimal({"event": "firewalld-reload"}, host={"libvirt_firewall_backend": "nftables"}))
    assert "bookworm" in scenario.variant(release="bookworm").not_applicable()
    assert "needs firewalld" in scenario.variant(start_order=["dockerd", "libvirt"]).not_applicable()


@pytest.mark.parametrize(
    ("case", "says"),
    [
        ({"expect": {"boot": {"symptom": False}}}, "matches nothing"),
        ({"release": "trixie"}, "states no outcome"),
        ({"release": "trixie", "expect": {"boot": {}}}, "states no outcome"),
        ({"release": "trixie", "expect": {"fix": {"ping": True}}}, "case[0].expect.fix: no such step"),
        ({"release": "trixie", "expect": {"boot": {"png": True}}}, "case[0].expect.boot.png: unknown key"),
        ({"release": "trixie", "colour": "x", "expect": {"boot": {"ping": True}}}, "case[0].colour"),
        ({"release": "potato", "expect": {"boot": {"ping": True}}}, "'potato' is not allowed"),
        ({"firewalld": "yes", "expect": {"boot": {"ping": True}}}, "must be true or false"),
        ({"network": "wifi", "expect": {"boot": {"ping": True}}}, "case[0].network: 'wifi' is not allowed"),
        ({"after_fix": ["nap"], "expect": {"boot": {"ping": True}}}, "case[0].after_fix: 'nap' is not allowed"),
        ({"after_fix": ["firewalld-reload"], "expect": {"boot": {"ping": True}}}, "never matches: no step has axis"),
        ({"release": "bookworm", "libvirt_firewall_backend": "nftables", "expect": {"boot": {"ping": True}}},
         "never matches: libvirt 9.0"),
        ({"start_order": ["dockerd", "libvirt"], "firewalld": True, "expect": {"boot": {"ping": True}}},
         "contradicts its start_order"),
    ],
)
def test_bad_cases_are_named(case: dict, says: str) -> None:
    with pytest.raises(ScenarioError, match=re.escape(says)):
        parse(minimal(case=[case]), "s.toml")


def test_malformed_toml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[scenario\nname = 1\n")
    with pytest.raises(ScenarioError, match=r"bad\.toml: file: not valid TOML"):
        load(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="no such scenario file"):
        load(tmp_path / "nope.toml")


def test_every_event_a_scenario_may_name_can_happen() -> None:
    from coexist.run import events
    from coexist.scenario.steps import EVENTS

    assert set(EVENTS) == set(events.HAPPEN)


def test_a_host_without_the_stock_network() -> None:
    bridged = parse(minimal(host={"stock_network": False}, guest=[{"name": "vm", "network": "bridged"}]))
    assert [n.name for n in bridged.host_networks()] == ["bridged"]
    assert bridged.host_plan().libvirt_networks() == []
    assert [n.name for n in parse(minimal(guest=[{"name": "vm", "network": "bridged"}])).host_networks()] == [
        "default", "bridged"]
    with pytest.raises(ScenarioError, match="false, but guest guest is on the stock network 'default'"):
        parse(minimal(host={"stock_network": False}))


def test_a_host_with_packages_of_its_own() -> None:
    scenario = parse(minimal(host={"packages": ["jq", "iputils-ping"]}))
    assert scenario.host.packages == ("jq", "iputils-ping")
    assert scenario.host.data()["packages"] == ["jq", "iputils-ping"]
    assert "packages" not in parse(minimal()).host.data()   # none: the file says nothing
    with pytest.raises(ScenarioError, match=r"host.packages\[1\]: 'Ping!' is not a Debian package name"):
        parse(minimal(host={"packages": ["jq", "Ping!"]}))
    with pytest.raises(ScenarioError, match="host.packages: listed twice: jq"):
        parse(minimal(host={"packages": ["jq", "jq"]}))


def test_a_scenarios_own_probes_are_data() -> None:
    scenario = parse(minimal({"run": ["true"], "expect": {"probe": {"dns-forwarded": True, "ssh-in": False}}},
                             probe=[{"id": "dns-forwarded", "where": "guest", "run": "nslookup example.test 203.0.113.1"},
                                    {"id": "ssh-in", "where": "wan", "run": "nc -z -w 2 {guest} 22"}]))
    assert [(p.id, p.where) for p in scenario.probes] == [("dns-forwarded", "guest"), ("ssh-in", "wan")]
    assert scenario.probes[1].command("192.168.122.5") == "nc -z -w 2 192.168.122.5 22"
    container = minimal(probe=[{"id": "c", "where": "container", "run": "true"}], host={"start_order": ["libvirt"]})
    assert "needs dockerd" in (parse(container, runnable=False).not_applicable() or "")


@pytest.mark.parametrize(
    ("order", "events", "why"),
    [
        (["firewalld", "libvirt"], ["dockerd-start", "dockerd-restart"], None),   # Docker installed later
        (["dockerd", "libvirt"], ["dockerd-stop", "dockerd-restart"], "dockerd-restart needs dockerd, which an "
                                                                      "earlier step stopped"),
        (["dockerd", "libvirt"], ["dockerd-disable", "host-reboot", "dockerd-restart"], "an earlier step stopped"),
        (["libvirt"], ["dockerd-enable", "host-reboot", "dockerd-restart"], None),
        (["libvirt"], ["firewalld-reload"], "needs firewalld, which host.start_order does not start"),
        (["libvirt"], ["firewalld-disable", "libvirtd-stop", "libvirtd-start"], None),
    ],
)
def test_systemctl_events_change_what_runs_now_and_at_the_next_boot(order: list, events: list,
                                                                      why: str | None) -> None:
    scenario = parse(minimal({"event": events}, host={"start_order": order}), runnable=False)
    found = scenario.not_applicable()
    assert found is None if why is None else why in (found or ""), found


def test_ipv6_is_an_axis_with_its_own_expectation() -> None:
    scenario = parse(minimal(host={"ipv6": True}, case=[{"release": "forky", "expect": {"boot": {"ipv6": False}}}]))
    assert scenario.host.ipv6 and scenario.guest_networks()["guest"].ipv6
    assert "ipv6" in scenario.label()
    assert scenario.variant(release="forky").steps[0].expect.guest["ipv6"] is False
    assert scenario.variant(ipv6=False).axes()["ipv6"] is False
