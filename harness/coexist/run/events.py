"""Things that happen to a host after boot (coexist.scenario.events.Event): reloads, restarts, a guest
restart and a host reboot, made to happen on a testbed and its guests."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from coexist.base import log
from coexist.guest.guest import Guest
from coexist.host.daemons import Daemon
from coexist.host.testbed import Testbed
from coexist.scenario.events import Event

Guests = Mapping[str, Guest]


def _firewalld_reload(bed: Testbed, guests: Guests) -> None:
    bed.lab.succeed("firewall-cmd --reload")


def _libvirt_network_restart(bed: Testbed, guests: Guests) -> None:
    """`virsh net-destroy` + `net-start` of each libvirt network a guest is on (none: the stock one)."""
    names = {g.network.libvirt_network for g in guests.values() if g.network.libvirt_network}
    for name in sorted(names or {"default"}):
        defined = bed.lab.libvirt().networkLookupByName(name)
        if defined.isActive():
            defined.destroy()
        defined.create()


def _guest_restart(bed: Testbed, guests: Guests) -> None:
    """Each guest power-cycled (`virsh destroy` + `virsh start`): it boots and asks DHCP afresh."""
    for guest in guests.values():
        guest.restart()


def _restart(daemon: Daemon) -> Callable[[Testbed, Guests], None]:
    def restart(bed: Testbed, guests: Guests) -> None:
        bed.lab.restart(daemon)
    return restart


def _host_reboot(bed: Testbed, guests: Guests) -> None:
    bed.reboot(guests.values())


# event -> what makes it happen (Event.needs says which service each needs)
HAPPEN: dict[Event, Callable[[Testbed, Guests], None]] = {
    Event.FIREWALLD_RELOAD: _firewalld_reload,
    Event.FIREWALLD_RESTART: _restart(Daemon.FIREWALLD),
    Event.DOCKERD_RESTART: _restart(Daemon.DOCKERD),
    Event.LIBVIRT_NETWORK_RESTART: _libvirt_network_restart,
    Event.LIBVIRTD_RESTART: _restart(Daemon.LIBVIRTD),
    Event.GUEST_RESTART: _guest_restart,
    Event.HOST_REBOOT: _host_reboot,
}


def happen(bed: Testbed, guests: Guests, events: tuple[Event, ...]) -> None:
    """Make each event happen, in order."""
    for event in events:
        with log.step(f"event: {event}"):
            HAPPEN[event](bed, guests)
