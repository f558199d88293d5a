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


HAPPEN: dict[str, Callable[[Lab], None]] = {
    "firewalld-reload": _firewalld_reload,
    "firewalld-restart": lambda lab: lab.restart("firewalld"),
    "dockerd-restart": lambda lab: lab.restart("dockerd"),
    "libvirt-network-restart": _libvirt_network_restart,
    "libvirtd-restart": lambda lab: lab.restart("libvirtd"),
}


def happen(lab: Lab, events: tuple[str, ...]) -> None:
    """Make each event happen, in order; an event on a daemon that is not running is an error."""
    needs = {"firewalld-reload": "firewalld", "firewalld-restart": "firewalld",
             "dockerd-restart": "dockerd", "libvirt-network-restart": "libvirtd",
             "libvirtd-restart": "libvirtd"}
    for event in events:
        if not lab.running(needs[event]):
            raise RuntimeError(f"event {event}: {needs[event]} is not running in this scenario")
        with log.step(f"event: {event}"):
            HAPPEN[event](lab)
