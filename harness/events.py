"""Things that happen to a host after setup: reloads and restarts, by the names scenarios use."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from harness import log
from harness.guestnet import STOCK_NETWORK, GuestNetwork

if TYPE_CHECKING:
    from harness.lab import Lab


def _firewalld_reload(lab: Lab, network: GuestNetwork) -> None:
    lab.succeed("firewall-cmd --reload")


def _libvirt_network_restart(lab: Lab, network: GuestNetwork) -> None:
    """`virsh net-destroy` + `net-start` of the guest's network (a bridged guest: the stock one)."""
    name = network.libvirt_network or STOCK_NETWORK
    defined = lab.libvirt().networkLookupByName(name)
    if defined.isActive():
        defined.destroy()
    defined.create()


# name -> (the daemon it acts on, what makes it happen)
HAPPEN: dict[str, tuple[str, Callable[[Lab, GuestNetwork], None]]] = {
    "firewalld-reload": ("firewalld", _firewalld_reload),
    "firewalld-restart": ("firewalld", lambda lab, _: lab.restart("firewalld")),
    "dockerd-restart": ("dockerd", lambda lab, _: lab.restart("dockerd")),
    "libvirt-network-restart": ("libvirtd", _libvirt_network_restart),
    "libvirtd-restart": ("libvirtd", lambda lab, _: lab.restart("libvirtd")),
}


def happen(lab: Lab, events: tuple[str, ...], network: GuestNetwork) -> None:
    """Make each event happen, in order; an event on a daemon that is not running is an error."""
    for event in events:
        daemon, make_happen = HAPPEN[event]
        if not lab.running(daemon):
            raise RuntimeError(f"event {event}: {daemon} is not running in this scenario")
        with log.step(f"event: {event}"):
            make_happen(lab, network)
