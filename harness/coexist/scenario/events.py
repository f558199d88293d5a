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

    @property
    def needs(self) -> Service | None:
        """The service host.start_order must start for this event to happen (None: any host)."""
        return {Event.FIREWALLD_RELOAD: Service.FIREWALLD, Event.FIREWALLD_RESTART: Service.FIREWALLD,
                Event.DOCKERD_RESTART: Service.DOCKERD, Event.LIBVIRT_NETWORK_RESTART: Service.LIBVIRT,
                Event.LIBVIRTD_RESTART: Service.LIBVIRT}.get(self)


EVENTS = tuple(event.value for event in Event)


def event_list(where: str, values: Any) -> tuple[Event, ...]:
    """A list of event names, validated: the events, in order."""
    if not isinstance(values, list | tuple):
        raise FieldError(where, f"must be a list of events, got {values!r}")
    for value in strings(where, list(values)):
        choice(where, value, EVENTS)
    return tuple(Event(value) for value in values)
