"""Things that happen to a host after boot, by the names scenarios use: reloads, restarts, a guest
restart and a host reboot."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from coexist.base import log

if TYPE_CHECKING:
    from coexist.run.runner import Run


def _firewalld_reload(run: Run) -> None:
    run.lab.succeed("firewall-cmd --reload")


def _libvirt_network_restart(run: Run) -> None:
    """`virsh net-destroy` + `net-start` of each libvirt network a guest is on (none: the stock one)."""
    names = {n.libvirt_network for n in run.networks.values() if n.libvirt_network} or {"default"}
    for name in sorted(names):
        defined = run.lab.libvirt().networkLookupByName(name)
        if defined.isActive():
            defined.destroy()
        defined.create()


def _guest_restart(run: Run) -> None:
    """Each guest power-cycled (`virsh destroy` + `virsh start`): it boots and asks DHCP afresh."""
    for guest in run.guests.values():
        guest.restart()


def _restart(daemon: str) -> Callable[[Run], None]:
    def restart(run: Run) -> None:
        run.lab.restart(daemon)
    return restart


def _host_reboot(run: Run) -> None:
    run.reboot()


# name -> what makes it happen (scenario.EVENT_NEEDS says which daemon each needs)
HAPPEN: dict[str, Callable[[Run], None]] = {
    "firewalld-reload": _firewalld_reload,
    "firewalld-restart": _restart("firewalld"),
    "dockerd-restart": _restart("dockerd"),
    "libvirt-network-restart": _libvirt_network_restart,
    "libvirtd-restart": _restart("libvirtd"),
    "guest-restart": _guest_restart,
    "host-reboot": _host_reboot,
}


def happen(run: Run, events: tuple[str, ...]) -> None:
    """Make each event happen, in order."""
    for event in events:
        with log.step(f"event: {event}"):
            HAPPEN[event](run)
