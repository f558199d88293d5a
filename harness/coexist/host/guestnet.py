"""Guest networks as data: libvirt networks (nat, route, open) or the host's LAN bridge.

The networks coexist knows by name are in `networks.toml` beside this module (the stock
`default`, `nat2`, `routed`, `bridged`); a scenario may define its own with the same fields.

- a libvirt network: its own bridge and IPv4 subnet, DHCP and DNS from libvirt's dnsmasq; the
  stock `default` is libvirt's own definition, as the package ships it;
- `route`: no NAT, so the upstream router gets a route to the subnet through the host (as a
  routed network requires);
- `isolated`: no `<forward>` element: the guests reach the host (DHCP, DNS) and one another, and
  libvirt rejects everything else;
- `bridge`: no libvirt network: the host's uplink is enslaved to a Linux bridge, the guests'
  taps join it and each guest takes a static address on the uplink's LAN (there is no DHCP
  server there). br_netfilter is in the kernel and `net.bridge.bridge-nf-call-iptables=1` (as
  Docker leaves it), so bridged frames cross the iptables FORWARD chain Docker's DROP guards.

IPv6 gives a libvirt network a documentation-range /64: libvirt routes it (no NAT), its dnsmasq
sends router advertisements, the guest configures itself (SLAAC) and the upstream router gets a
route to the /64 through the host. On a `bridge` network the guests share the uplink's LAN /64
(UPLINK_LAN6) with the host and the router, each with a static address as for IPv4: nothing on
that LAN sends router advertisements, so frames that the host's ip6tables FORWARD chain drops
(bridge-nf-call-ip6tables) cut the guest off over IPv6 as iptables' do over IPv4.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import tomllib
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from coexist.base import log
from coexist.base.schema import FieldError, not_allowed, shown, unknown
from coexist.net.wan import LAB_UPLINK, LAB_UPLINK6, ROUTER, ROUTER6, UPLINK_LAN6, WAN_SUBNETS

if TYPE_CHECKING:
    from coexist.host.lab import Lab
    from coexist.net.wan import Wan

STOCK_NETWORK = "default"
FORWARD_MODES = ("nat", "route", "open", "isolated", "bridge")   # isolated: no <forward> at all
BRIDGED_GUESTS = "203.0.113.50"   # the first bridged guest's static address on the uplink's LAN
BRIDGED_GUESTS6 = "2001:db8:ff::50"   # and its IPv6 address there, when IPv6 is on
_FIELDS = {"forward": str, "bridge": str, "ipv4": str, "ipv6": str, "libvirt_name": str}
_IFACE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,14}$")


@dataclass(frozen=True)
class NetworkSpec:
    """A guest network: what the host defines, and what a guest on it is told."""

    name: str                        # the scenario's name for it
    forward: str                     # one of FORWARD_MODES
    bridge: str                      # the host bridge the guests' taps join
    ipv4: str | None = None          # a libvirt network's subnet, e.g. 192.168.122.0/24
    ipv6: str | None = None          # the /64 while IPv6 is on (see with_ipv6)
    libvirt_name: str | None = None  # None: a host bridge, no libvirt network

    @property
    def is_libvirt(self) -> bool:
        return self.libvirt_name is not None

    @property
    def stock(self) -> bool:
        """libvirt's stock network, defined by the host's package, not by coexist."""
        return self.libvirt_name == STOCK_NETWORK

    @property
    def gateway(self) -> str:
        """The host's address on the network (a libvirt network's dnsmasq answers DNS there)."""
        if self.ipv4 is None:
            return ROUTER
        return str(next(ipaddress.ip_network(self.ipv4).hosts()))

    @property
    def ipv6_prefix(self) -> str | None:
        """`2001:db8:122::` for a /64 of 2001:db8:122::/64 (None: no IPv6)."""
        return None if self.ipv6 is None else str(ipaddress.ip_network(self.ipv6).network_address)

    def with_ipv6(self, on: bool) -> NetworkSpec:
        """The network with IPv6 (its /64, or one derived from its IPv4 subnet; a LAN bridge: the
        uplink's LAN /64) or without."""
        if not on:
            return dataclasses.replace(self, ipv6=None)
        if self.forward == "bridge":
            return dataclasses.replace(self, ipv6=UPLINK_LAN6)
        if self.ipv6 is not None:
            return self
        assert self.ipv4 is not None
        third = ipaddress.ip_network(self.ipv4).network_address.packed[2]
        return dataclasses.replace(self, ipv6=f"2001:db8:{third}::/64")

    def network_xml(self, stock_xml: str) -> str:
        """The libvirt definition (`stock_xml`: the stock network's own, for `default`)."""
        assert self.libvirt_name is not None and self.ipv4 is not None
        if self.stock:
            root = ET.fromstring(stock_xml)
        else:
            net = ipaddress.ip_network(self.ipv4)
            hosts = list(net.hosts())
            root = ET.Element("network")
            ET.SubElement(root, "name").text = self.libvirt_name
            if self.forward != "isolated":   # an isolated network has no <forward> element
                ET.SubElement(root, "forward", mode=self.forward)
            ET.SubElement(root, "bridge", name=self.bridge, stp="on", delay="0")
            ip = ET.SubElement(root, "ip", address=str(hosts[0]), netmask=str(net.netmask))
            ET.SubElement(ET.SubElement(ip, "dhcp"), "range", start=str(hosts[1]), end=str(hosts[-1]))
        if self.ipv6_prefix is not None:
            ET.SubElement(root, "ip", family="ipv6", address=f"{self.ipv6_prefix}1", prefix="64")
        return ET.tostring(root, encoding="unicode")

    def prepare_host(self, lab: Lab) -> None:
        """Before any daemon starts, as a host's boot would: the LAN bridge for `bridge`."""
        if self.forward != "bridge":
            return
        with log.step(f"lab: uplink enslaved to bridge {self.bridge}, {LAB_UPLINK} moves to it"):
            lab.succeed(["sh", "-ec", "\n".join([
                f"ip link add {self.bridge} type bridge",
                f"ip addr del {LAB_UPLINK}/24 dev uplink",
                f"ip link set uplink master {self.bridge}",
                f"ip addr add {LAB_UPLINK}/24 dev {self.bridge}",
                f"ip link set {self.bridge} up",
                f"ip route replace default via {ROUTER}",
                "echo 1 > /proc/sys/net/bridge/bridge-nf-call-iptables",
                "echo 1 > /proc/sys/net/bridge/bridge-nf-call-ip6tables",
            ])])
            setting = lab.sysctl("net.bridge.bridge-nf-call-iptables")
            if setting != "1":
                raise RuntimeError(f"bridge-nf-call-iptables is {setting} in the lab, not 1")

    def prepare_wan(self, wan: Wan) -> None:
        """What the upstream network needs: routes to a routed subnet and to an IPv6 /64 (not to
        a LAN bridge's: its guests are on the router's own link)."""
        if self.forward == "route":
            assert self.ipv4 is not None
            wan.route(self.ipv4, via=LAB_UPLINK)
        if self.ipv6 is not None and self.forward != "bridge":
            wan.route(self.ipv6, via=LAB_UPLINK6)


@dataclass(frozen=True)
class GuestNetwork:
    """One guest's place on a network: the network, and its static address on a LAN bridge."""

    spec: NetworkSpec
    static_address: str | None = None   # `bridge` networks: address/prefix on the LAN
    static_address6: str | None = None   # and its IPv6 address/prefix there, when IPv6 is on

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def bridge(self) -> str:
        return self.spec.bridge

    @property
    def libvirt_network(self) -> str | None:
        return self.spec.libvirt_name

    @property
    def dns(self) -> str:
        """The resolver the guest asks (the DNS probe's server)."""
        return self.spec.gateway

    @property
    def ipv6(self) -> bool:
        return self.spec.ipv6 is not None

    def kernel_args(self) -> str:
        """What the guest's /init reads: a static address on a LAN bridge, else nothing (DHCP)."""
        if self.static_address is None:
            return ""
        args = f"coexist.ip={self.static_address} coexist.gateway={ROUTER} coexist.dns={ROUTER}"
        if self.static_address6 is not None:
            args += f" coexist.ip6={self.static_address6} coexist.gateway6={ROUTER6}"
        return args


def uplink_ipv6(lab: Lab, networks: Iterable[NetworkSpec]) -> None:
    """The host's uplink gets IPv6 and a default route (when a guest network has IPv6): on the
    LAN bridge the uplink is enslaved to, if a network has one."""
    bridges = [spec.bridge for spec in networks if spec.forward == "bridge"]
    device = bridges[0] if bridges else "uplink"
    with log.step(f"lab: IPv6 on the uplink ({LAB_UPLINK6} on {device}, default via {ROUTER6})"):
        lab.succeed(["sh", "-ec", f"ip -6 addr replace {LAB_UPLINK6}/64 dev {device} nodad\n"
                                  f"ip -6 route replace default via {ROUTER6}"])


def parse_network(name: str, data: dict[str, Any]) -> NetworkSpec:
    """Validate one network table; FieldError names the field and what is allowed."""
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,39}", name):
        raise FieldError("name", f"{name!r}: letters, digits, '_', '.', '-', at most 40")
    for key, value in data.items():
        if key not in _FIELDS and key != "name":
            raise FieldError(key, unknown("key", key, ["name", *_FIELDS]))
        if key != "name" and not isinstance(value, _FIELDS[key]):
            raise FieldError(key, f"must be a string, got {shown(value)}")
    forward = data.get("forward", "nat")
    if forward not in FORWARD_MODES:
        raise FieldError("forward", not_allowed(forward, FORWARD_MODES))
    if "bridge" not in data:
        raise FieldError("bridge", "is required (the host bridge, e.g. virbr5)")
    bridge = data["bridge"]
    if not _IFACE.fullmatch(bridge):
        raise FieldError("bridge", f"{bridge!r} is no interface name (a letter, then up to 14 "
                                   "letters, digits, '_', '.', '-')")
    if forward == "bridge":
        for key in ("ipv4", "ipv6", "libvirt_name"):
            if key in data:
                raise FieldError(key, "not with forward = \"bridge\" (guests sit on the host's LAN, "
                                      f"203.0.113.0/24 and, with host.ipv6, {UPLINK_LAN6}, with static "
                                      "addresses)")
        return NetworkSpec(name, forward, bridge)
    if "ipv4" not in data:
        raise FieldError("ipv4", "is required for a libvirt network, e.g. \"192.168.150.0/24\"")
    try:
        ipv4 = ipaddress.IPv4Network(data["ipv4"])
    except ValueError as error:
        raise FieldError("ipv4", f"{data['ipv4']!r} is no IPv4 subnet ({error})") from None
    if not ipv4.is_private or not 16 <= ipv4.prefixlen <= 29:
        raise FieldError("ipv4", f"{ipv4} must be a private subnet, /16 to /29")
    for wan in WAN_SUBNETS:
        if ipv4.overlaps(ipaddress.ip_network(wan)):
            raise FieldError("ipv4", f"{ipv4} overlaps the simulated internet's {wan}")
    ipv6 = data.get("ipv6")
    if ipv6 is not None:
        try:
            net6 = ipaddress.IPv6Network(ipv6)
        except ValueError as error:
            raise FieldError("ipv6", f"{ipv6!r} is no IPv6 subnet ({error})") from None
        if net6.prefixlen != 64 or not net6.subnet_of(ipaddress.IPv6Network("2001:db8::/32")):
            raise FieldError("ipv6", f"{ipv6} must be a /64 in the documentation range 2001:db8::/32")
    return NetworkSpec(name, forward, bridge, str(ipv4), ipv6, data.get("libvirt_name", name))


@cache
def known() -> dict[str, NetworkSpec]:
    """The networks in networks.toml, by name."""
    data = tomllib.loads(resources.files("coexist.host").joinpath("networks.toml").read_text())
    return {name: parse_network(name, table) for name, table in data.items()}


KINDS = tuple(known())


def guest_network(name: str, *, ipv6: bool = False, index: int = 0) -> GuestNetwork:
    """A guest's place on the known network `name` (the `index`-th guest on it)."""
    if name not in known():
        raise ValueError(f"unknown guest network {name!r}; known: {', '.join(KINDS)}")
    return place(known()[name].with_ipv6(ipv6), index)


def place(spec: NetworkSpec, index: int = 0) -> GuestNetwork:
    """The `index`-th guest on `spec`: DHCP on a libvirt network, a static address on a LAN."""
    if spec.forward != "bridge":
        return GuestNetwork(spec)
    address = ipaddress.ip_address(BRIDGED_GUESTS) + index
    address6 = ipaddress.ip_address(BRIDGED_GUESTS6) + index
    return GuestNetwork(spec, static_address=f"{address}/24",
                        static_address6=f"{address6}/64" if spec.ipv6 is not None else None)
