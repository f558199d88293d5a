from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from coexist.base.schema import FieldError
from coexist.guest.domain import DomainSpec, domain_xml
from coexist.host.guestnet import KINDS, guest_network, parse_network
from coexist.report.explain import fix_scope
from coexist.scenario.fixes import builtin

STOCK = """<network>
  <name>default</name>
  <forward mode='nat'/>
  <bridge name='virbr0' stp='on' delay='0'/>
  <ip address='192.168.122.1' netmask='255.255.255.0'>
    <dhcp><range start='192.168.122.2' end='192.168.122.254'/></dhcp>
  </ip>
</network>"""


@pytest.mark.parametrize(("kind", "mode", "bridge", "gateway"), [
    ("nat2", "nat", "virbr1", "192.168.100.1"),
    ("routed", "route", "virbr2", "192.168.110.1"),
])
def test_extra_networks_have_their_own_bridge_subnet_and_dhcp(kind: str, mode: str, bridge: str,
                                                              gateway: str) -> None:
    network = guest_network(kind)
    root = ET.fromstring(network.spec.network_xml(STOCK))
    assert root.findtext("name") == network.libvirt_network != "default"
    assert root.find("forward").get("mode") == mode
    assert root.find("bridge").get("name") == bridge == network.bridge
    assert root.find("ip").get("address") == gateway == network.dns
    assert root.find("ip/dhcp/range").get("start") == gateway.rsplit(".", 1)[0] + ".2"
    assert not network.spec.stock and network.kernel_args() == ""


def test_an_isolated_network_has_no_forward_element() -> None:
    spec = parse_network("iso", {"forward": "isolated", "bridge": "virbr7", "ipv4": "192.168.170.0/24"})
    root = ET.fromstring(spec.network_xml(STOCK))
    assert root.find("forward") is None and root.find("ip").get("address") == "192.168.170.1"


def test_the_stock_network_is_libvirts_own_xml() -> None:
    network = guest_network("default")
    assert network.spec.stock and not network.ipv6
    assert ET.fromstring(network.spec.network_xml(STOCK)).find("bridge").get("name") == "virbr0"


@pytest.mark.parametrize("kind", ["default", "nat2", "routed"])
def test_ipv6_adds_a_documentation_prefix_to_a_libvirt_network(kind: str) -> None:
    network = guest_network(kind, ipv6=True)
    prefix = network.spec.ipv6_prefix
    assert network.ipv6 and prefix.startswith("2001:db8:")
    ips = ET.fromstring(network.spec.network_xml(STOCK)).findall("ip")
    assert [ip.get("family") for ip in ips] == [None, "ipv6"]
    assert ips[1].get("address") == f"{prefix}1" and ips[1].get("prefix") == "64"



def test_a_bridged_guest_with_ipv6_has_a_static_address_on_the_uplinks_lan_and_its_router() -> None:
    network = guest_network("bridged", ipv6=True, index=1)
    assert network.ipv6 and network.spec.ipv6 == "2001:db8:ff::/64"
    assert network.static_address6 == "2001:db8:ff::51/64"
    assert network.kernel_args().endswith(" coexist.ip6=2001:db8:ff::51/64 coexist.gateway6=2001:db8:ff::1")
    assert "coexist.ip6" not in guest_network("bridged").kernel_args()


def test_a_bridged_guest_has_a_static_address_on_the_lan_and_no_libvirt_network() -> None:
    network = guest_network("bridged")
    assert network.libvirt_network is None and network.bridge == "br0"
    assert network.kernel_args() == ("coexist.ip=203.0.113.50/24 coexist.gateway=203.0.113.1 "
                                     "coexist.dns=203.0.113.1")
    spec = DomainSpec(name="g", kernel="k", initrd="i", cmdline="c", serial_log="s",
                      mac="52:54:00:00:00:01", network=None, bridge=network.bridge)
    interface = ET.fromstring(domain_xml(spec)).find("devices/interface")
    assert interface.get("type") == "bridge"
    assert interface.find("source").get("bridge") == "br0"
    with pytest.raises(ValueError, match="exactly one"):
        DomainSpec(name="g", kernel="k", initrd="i", cmdline="c", serial_log="s",
                   mac="52:54:00:00:00:01", bridge="br0")   # and the default network


def test_unknown_kinds_are_refused() -> None:
    assert KINDS == ("default", "nat2", "routed", "bridged")
    with pytest.raises(ValueError, match="known: default, nat2, routed, bridged"):
        guest_network("macvtap")


def test_libvirt_accepts_the_network_definitions() -> None:
    libvirt = pytest.importorskip("libvirt")
    conn = libvirt.open("test:///default")
    try:
        for kind, ipv6 in (("nat2", False), ("routed", False), ("nat2", True)):
            network = guest_network(kind, ipv6=ipv6)
            defined = conn.networkDefineXML(network.spec.network_xml(STOCK))
            assert defined.bridgeName() == network.bridge
            defined.undefine()
        spec = DomainSpec(name="bridged", kernel="/k", initrd="/i", cmdline="c", serial_log="/s",
                          mac="52:54:00:00:00:02", network=None, bridge="br0")
        domain = conn.defineXML(domain_xml(spec))
        assert ET.fromstring(domain.XMLDesc()).find("devices/interface").get("type") == "bridge"
        domain.undefine()
    finally:
        conn.close()


def test_a_fix_that_names_other_interfaces_is_explained() -> None:
    seed = builtin()["seed-firewalld-direct"].commands
    assert fix_scope(seed, "virbr0") == []
    assert fix_scope(seed, "virbr1") == [
        "the fix's rules name virbr0; this guest's NIC is on virbr1, which no rule of the fix names"]
    assert fix_scope(builtin()["docker-user-bridge"].commands, "br0") == []
    wildcard = builtin()["docker-user-libvirt"].with_params({"bridge": "virbr+"}).commands
    assert fix_scope(wildcard, "virbr1") == []


def test_a_scenario_network_is_its_own_bridge_subnet_and_mode() -> None:
    spec = parse_network("lab-nat", {"bridge": "virbr5", "ipv4": "192.168.150.0/24"})
    assert (spec.forward, spec.libvirt_name, spec.gateway) == ("nat", "lab-nat", "192.168.150.1")
    root = ET.fromstring(spec.network_xml(STOCK))
    assert root.find("ip/dhcp/range").attrib == {"start": "192.168.150.2", "end": "192.168.150.254"}
    assert spec.with_ipv6(True).ipv6 == "2001:db8:150::/64"
    assert parse_network("o", {"bridge": "virbr6", "ipv4": "10.9.0.0/16", "forward": "open"}).forward == "open"


@pytest.mark.parametrize(("data", "field", "says"), [
    ({"ipv4": "192.168.1.0/24"}, "bridge", "is required"),
    ({"bridge": "a-very-long-bridge-name"}, "bridge", "no interface name"),
    ({"bridge": "v", "ipv4": "203.0.113.0/24"}, "ipv4", "simulated internet"),
    ({"bridge": "v", "ipv4": "8.8.8.0/24"}, "ipv4", "private"),
    ({"bridge": "v", "ipv4": "192.168.1.0/24", "forward": "macvtap"}, "forward", "allowed: nat, route, open, isolated, bridge"),
    ({"bridge": "v", "ipv4": "10.0.0.0/8"}, "ipv4", "/16 to /29"),
    ({"bridge": "v", "ipv4": "nope"}, "ipv4", "no IPv4 subnet"),
    ({"bridge": "v", "ipv4": "10.1.0.0/24", "ipv6": "fd00::/64"}, "ipv6", "documentation range"),
    ({"bridge": "br1", "forward": "bridge", "ipv4": "10.1.0.0/24"}, "ipv4", "not with forward"),
    ({"bridge": "v"}, "ipv4", "is required"),
    ({"bridge": "v", "ipv4": "10.1.0.0/24", "dhcp": True}, "dhcp", "unknown key"),
])
def test_bad_networks_name_the_field(data: dict, field: str, says: str) -> None:
    with pytest.raises(FieldError, match=says) as caught:
        parse_network("n", data)
    assert caught.value.field == field
