"""Things that happen to a host after boot (coexist.scenario.events.Event): reloads, restarts, a guest
restart and a host reboot, made to happen on a testbed and its guests."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from coexist.base import log
from coexist.guest.guest import Guest
from coexist.host.daemons import Daemon, Service
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


def _systemctl(verb: str, service: Service) -> Callable[[Testbed, Guests], None]:
    """`systemctl <verb> <service>` on the running host: stop or start it now (libvirt: libvirtd,
    its networks left as they are, as stopping libvirtd leaves them; started again, it starts
    the host's networks that are not up), or take it out of the boot order or add it at its end
    (enable: systemd would order it by its units' After=; the end is where a late install lands)."""
    def act(bed: Testbed, guests: Guests) -> None:
        order = bed.plan.start_order
        match verb:
            case "stop":
                bed.lab.stop(service.daemon)
            case "start":
                bed.start([service])
            case "disable":
                bed.reorder(tuple(s for s in order if s is not service))
            case "enable":
                bed.reorder(order if service in order else (*order, service))
    return act


# event -> what makes it happen (Event.needs says which service each needs)
HAPPEN: dict[Event, Callable[[Testbed, Guests], None]] = {
    Event.FIREWALLD_RELOAD: _firewalld_reload,
    Event.FIREWALLD_RESTART: _restart(Daemon.FIREWALLD),
    Event.DOCKERD_RESTART: _restart(Daemon.DOCKERD),
    Event.LIBVIRT_NETWORK_RESTART: _libvirt_network_restart,
    Event.LIBVIRTD_RESTART: _restart(Daemon.LIBVIRTD),
    Event.GUEST_RESTART: _guest_restart,
    Event.HOST_REBOOT: _host_reboot,
    **{event: _systemctl(event.verb, event.service) for event in Event
       if event.verb in ("stop", "start", "disable", "enable") and event.service is not None},
}
assert set(HAPPEN) == set(Event), "an event nothing makes happen"


def happen(bed: Testbed, guests: Guests, events: tuple[Event, ...]) -> None:
    """Make each event happen, in order."""
    for event in events:
        with log.step(f"event: {event}"):
            HAPPEN[event](bed, guests)
