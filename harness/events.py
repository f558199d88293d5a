"""Things that happen to a host after setup: reloads and restarts, by the names scenarios use."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from harness import log

if TYPE_CHECKING:
    from harness.lab import Lab


def _firewalld_reload(lab: Lab) -> None:
    lab.succeed("firewall-cmd --reload")


def _libvirt_network_restart(lab: Lab, name: str = "default") -> None:
    network = lab.libvirt().networkLookupByName(name)
    if network.isActive():
        network.destroy()
    network.create()


# name -> (the daemon it acts on, what makes it happen)
HAPPEN: dict[str, tuple[str, Callable[[Lab], None]]] = {
    "firewalld-reload": ("firewalld", _firewalld_reload),
    "firewalld-restart": ("firewalld", lambda lab: lab.restart("firewalld")),
    "dockerd-restart": ("dockerd", lambda lab: lab.restart("dockerd")),
    "libvirt-network-restart": ("libvirtd", _libvirt_network_restart),
    "libvirtd-restart": ("libvirtd", lambda lab: lab.restart("libvirtd")),
}


def happen(lab: Lab, events: tuple[str, ...]) -> None:
    """Make each event happen, in order; an event on a daemon that is not running is an error."""
    for event in events:
        daemon, make_happen = HAPPEN[event]
        if not lab.running(daemon):
            raise RuntimeError(f"event {event}: {daemon} is not running in this scenario")
        with log.step(f"event: {event}"):
            make_happen(lab)
