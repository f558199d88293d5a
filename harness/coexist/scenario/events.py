"""The events a scenario may name: things that happen to a host after boot, by the names a
scenario uses, and which service each needs (coexist.run.events makes them happen)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from coexist.base.schema import FieldError, choice, strings
from coexist.host.daemons import Service


class Event(StrEnum):
    """Something that happens to a host after boot, by the name a scenario uses."""

    FIREWALLD_RELOAD = "firewalld-reload"
    FIREWALLD_RESTART = "firewalld-restart"
    DOCKERD_RESTART = "dockerd-restart"
    LIBVIRT_NETWORK_RESTART = "libvirt-network-restart"
    LIBVIRTD_RESTART = "libvirtd-restart"
    GUEST_RESTART = "guest-restart"
    HOST_REBOOT = "host-reboot"
    # an admin's systemctl on the running host: stop, start; disable, enable (from the next boot)
    FIREWALLD_STOP = "firewalld-stop"
    FIREWALLD_START = "firewalld-start"
    FIREWALLD_DISABLE = "firewalld-disable"
    FIREWALLD_ENABLE = "firewalld-enable"
    DOCKERD_STOP = "dockerd-stop"
    DOCKERD_START = "dockerd-start"
    DOCKERD_DISABLE = "dockerd-disable"
    DOCKERD_ENABLE = "dockerd-enable"
    LIBVIRTD_STOP = "libvirtd-stop"
    LIBVIRTD_START = "libvirtd-start"
    LIBVIRTD_DISABLE = "libvirtd-disable"
    LIBVIRTD_ENABLE = "libvirtd-enable"

    @property
    def service(self) -> Service | None:
        """The service the event acts on (None: a guest, or the whole host)."""
        return _SERVICES.get(self.value.rsplit("-", 1)[0])

    @property
    def verb(self) -> str:
        """What happens to it: reload, restart, stop, start, disable, enable, reboot."""
        return self.value.rsplit("-", 1)[1]

    @property
    def needs(self) -> Service | None:
        """The service that must be running for this event to happen (None: any host). Starting
        and enabling need nothing; disabling a service the host does not start changes nothing."""
        return self.service if self.verb in ("reload", "restart", "stop") else None


_SERVICES = {"firewalld": Service.FIREWALLD, "dockerd": Service.DOCKERD, "libvirtd": Service.LIBVIRT,
             "libvirt-network": Service.LIBVIRT}


EVENTS = tuple(event.value for event in Event)


def event_list(where: str, values: Any) -> tuple[Event, ...]:
    """A list of event names, validated: the events, in order."""
    if not isinstance(values, list | tuple):
        raise FieldError(where, f"must be a list of events, got {values!r}")
    for value in strings(where, list(values)):
        choice(where, value, EVENTS)
    return tuple(Event(value) for value in values)
