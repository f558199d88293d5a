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
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness import log
from harness.wan import LAB_UPLINK, ROUTER

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
        """The libvirt definition of this network (`stock_xml`: libvirt's default.xml)."""
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
        return ET.tostring(root, encoding="unicode")

    def prepare_host(self, lab: Lab) -> None:
        """Before any daemon starts, as a host's boot would: the host bridge for `bridged`."""
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


def guest_network(kind: str) -> GuestNetwork:
    """The setup for `kind` (one of KINDS)."""
    if kind == "default":
        return GuestNetwork(kind, "virbr0", "192.168.122.1", STOCK_NETWORK, "192.168.122.0/24")
    if kind == "nat2":
        return GuestNetwork(kind, "virbr1", "192.168.100.1", "coexist-nat2", "192.168.100.0/24")
    if kind == "routed":
        return GuestNetwork(kind, "virbr2", "192.168.110.1", "coexist-routed", "192.168.110.0/24")
    if kind == "bridged":
        return GuestNetwork(kind, HOST_BRIDGE, ROUTER, None, static_address=f"{BRIDGED_GUEST}/24",
                            gateway=ROUTER)
    raise ValueError(f"unknown guest network {kind!r}; known: {', '.join(KINDS)}")
