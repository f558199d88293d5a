"""The guest's network, one of four setups a libvirt host commonly has.

- `default`: libvirt's stock NAT network (virbr0, 192.168.122.0/24), as shipped;
- `nat2`: a second NAT network on its own bridge and subnet (virbr1, 192.168.100.0/24), the stock
  one still up beside it;
- `routed`: a libvirt routed network (virbr2, 192.168.110.0/24): no NAT, the upstream router has a
  route to the subnet through the host (as a routed network requires);
- `bridged`: no libvirt network: the host's uplink is enslaved to a Linux bridge `br0`, the guest's
  tap joins it and the guest takes a static address on the uplink's LAN (there is no DHCP server on
  the LAN, and DHCP could not tell an unreachable guest from a slow one). br_netfilter is in the
  kernel and `net.bridge.bridge-nf-call-iptables=1` (as Docker leaves it), so bridged frames cross
  the iptables FORWARD chain that Docker's DROP policy guards.

`ipv6` adds a documentation-range /64 to a libvirt network: libvirt routes IPv6 (it does not NAT
it), its dnsmasq sends router advertisements, the guest configures itself (SLAAC) and the upstream
router gets a route to the /64 through the host, as routed IPv6 requires.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness import log
from harness.wan import LAB_UPLINK, LAB_UPLINK6, ROUTER, ROUTER6

if TYPE_CHECKING:
    from harness.lab import Lab
    from harness.wan import Wan

KINDS = ("default", "nat2", "routed", "bridged")
STOCK_NETWORK = "default"
HOST_BRIDGE = "br0"
BRIDGED_GUEST = "203.0.113.50"       # the guest's static address on the uplink's LAN (bridged)


@dataclass(frozen=True)
class GuestNetwork:
    """Where the guest's NIC plugs in, what it is told, and what the host must set up for it."""

    kind: str
    bridge: str                       # the host bridge the guest's tap joins
    dns: str                          # the resolver the guest asks (the DNS probe's server)
    libvirt_network: str | None       # None: the guest is on a host bridge, not a libvirt network
    subnet: str | None = None         # a libvirt network's IPv4 subnet
    static_address: str | None = None  # bridged: address/prefix on the LAN (no DHCP there)
    gateway: str | None = None        # bridged: the LAN's router
    ipv6_prefix: str | None = None    # a /64 on the libvirt network, e.g. 2001:db8:122:: (ipv6)

    @property
    def ipv6(self) -> bool:
        return self.ipv6_prefix is not None

    @property
    def defined_here(self) -> bool:
        """A network coexist defines (the stock one comes from libvirt's own XML)."""
        return self.libvirt_network not in (None, STOCK_NETWORK)

    def kernel_args(self) -> str:
        """What the guest's /init reads: a static address for bridged, else nothing (DHCP)."""
        if self.static_address is None:
            return ""
        return f"coexist.ip={self.static_address} coexist.gateway={self.gateway} coexist.dns={self.dns}"

    def network_xml(self, stock_xml: str) -> str:
        """The libvirt definition of this network (`stock_xml`: the stock network's definition,
        libvirt's default.xml or the host's own)."""
        assert self.libvirt_network is not None
        if self.libvirt_network == STOCK_NETWORK:
            root = ET.fromstring(stock_xml)
        else:
            assert self.subnet is not None
            prefix = self.subnet.rsplit(".", 1)[0]
            root = ET.Element("network")
            ET.SubElement(root, "name").text = self.libvirt_network
            ET.SubElement(root, "forward", mode="route" if self.kind == "routed" else "nat")
            ET.SubElement(root, "bridge", name=self.bridge, stp="on", delay="0")
            ip = ET.SubElement(root, "ip", address=f"{prefix}.1", netmask="255.255.255.0")
            ET.SubElement(ET.SubElement(ip, "dhcp"), "range", start=f"{prefix}.2", end=f"{prefix}.254")
        if self.ipv6_prefix is not None:
            ET.SubElement(root, "ip", family="ipv6", address=f"{self.ipv6_prefix}1", prefix="64")
        return ET.tostring(root, encoding="unicode")

    def prepare_host(self, lab: Lab) -> None:
        """Before any daemon starts, as a host's boot would: the host bridge for `bridged`, an
        IPv6 address and default route on the uplink for `ipv6`."""
        if self.ipv6:
            with log.step(f"lab: IPv6 on the uplink ({LAB_UPLINK6}, default via {ROUTER6})"):
                lab.succeed(["sh", "-ec", f"ip -6 addr add {LAB_UPLINK6}/64 dev uplink nodad\n"
                                          f"ip -6 route add default via {ROUTER6}"])
        if self.kind != "bridged":
            return
        with log.step(f"lab: uplink enslaved to bridge {HOST_BRIDGE}, {LAB_UPLINK} moves to it"):
            lab.succeed(["sh", "-ec", "\n".join([
                f"ip link add {HOST_BRIDGE} type bridge",
                f"ip addr del {LAB_UPLINK}/24 dev uplink",
                f"ip link set uplink master {HOST_BRIDGE}",
                f"ip addr add {LAB_UPLINK}/24 dev {HOST_BRIDGE}",
                f"ip link set {HOST_BRIDGE} up",
                f"ip route replace default via {ROUTER}",
                "echo 1 > /proc/sys/net/bridge/bridge-nf-call-iptables",
            ])])
            setting = lab.path("/proc/sys/net/bridge/bridge-nf-call-iptables").read_text().strip()
            if setting != "1":
                raise RuntimeError(f"bridge-nf-call-iptables is {setting} in the lab, not 1")

    def prepare_wan(self, wan: Wan) -> None:
        """What the upstream network needs: a route to a routed subnet through the lab host."""
        if self.kind == "routed":
            assert self.subnet is not None
            wan.route(self.subnet, via=LAB_UPLINK)
        if self.ipv6_prefix is not None:
            wan.route(f"{self.ipv6_prefix}/64", via=LAB_UPLINK6)


def guest_network(kind: str, *, ipv6: bool = False) -> GuestNetwork:
    """The setup for `kind` (one of KINDS), with an IPv6 /64 too if `ipv6` (libvirt networks)."""
    if kind == "bridged":
        if ipv6:
            raise ValueError("ipv6 is an option of libvirt's networks, not of a bridged guest")
        return GuestNetwork(kind, HOST_BRIDGE, ROUTER, None, static_address=f"{BRIDGED_GUEST}/24",
                            gateway=ROUTER)
    subnets = {"default": ("virbr0", STOCK_NETWORK, "192.168.122", "2001:db8:122::"),
               "nat2": ("virbr1", "coexist-nat2", "192.168.100", "2001:db8:100::"),
               "routed": ("virbr2", "coexist-routed", "192.168.110", "2001:db8:110::")}
    if kind not in subnets:
        raise ValueError(f"unknown guest network {kind!r}; known: {', '.join(KINDS)}")
    bridge, name, prefix, prefix6 = subnets[kind]
    return GuestNetwork(kind, bridge, f"{prefix}.1", name, f"{prefix}.0/24",
                        ipv6_prefix=prefix6 if ipv6 else None)
