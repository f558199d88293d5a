"""A scenario's [host]: its axis values (release, backends, start order, IPv6: one field per host
axis of coexist.scenario.axes, named for it) and the daemons' own settings, validated, and what
the testbed makes of them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from coexist.base.schema import FieldError, check_types
from coexist.host.daemons import Service
from coexist.host.guestnet import NetworkSpec
from coexist.host.hostconfig import HostSettings
from coexist.host.testbed import HostPlan
from coexist.scenario.axes import HOST_AXES

# [host]'s keys and their TOML types: the host axes, then the daemons' settings
HOST_TABLE: dict[str, type | tuple[type, ...]] = {
    **{axis.name: axis.toml_type for axis in HOST_AXES},
    "docker": dict, "libvirt": dict, "firewalld": dict, "sysctl": dict, "zones": dict}


@dataclass(frozen=True)
class Host:
    release: str
    libvirt_firewall_backend: str
    firewalld_backend: str
    docker_iptables: str
    start_order: tuple[Service, ...]
    ipv6: bool
    docker: Mapping[str, Any] = field(default_factory=dict)
    libvirt: Mapping[str, Any] = field(default_factory=dict)
    firewalld_conf: Mapping[str, Any] = field(default_factory=dict)
    sysctl: Mapping[str, Any] = field(default_factory=dict)
    zones: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def axes(self) -> dict[str, Any]:
        """The host axes' values, as a scenario file writes them (a list for a list)."""
        values = {axis.name: getattr(self, axis.name) for axis in HOST_AXES}
        return {name: list(value) if isinstance(value, tuple) else value for name, value in values.items()}

    def data(self) -> dict[str, Any]:
        """This host as a [host] table (parse_host makes the same host of it)."""
        return {**self.axes(), "docker": dict(self.docker), "libvirt": dict(self.libvirt),
                "firewalld": dict(self.firewalld_conf), "sysctl": dict(self.sysctl),
                "zones": {zone: list(interfaces) for zone, interfaces in self.zones.items()}}

    def settings(self) -> HostSettings:
        """The files and sysctls to write, the backend axes included."""
        libvirt = dict(self.libvirt)
        if self.libvirt_firewall_backend != "default":
            libvirt["firewall_backend"] = self.libvirt_firewall_backend
        firewalld = dict(self.firewalld_conf)
        if self.firewalld_backend != "default":
            firewalld["FirewallBackend"] = self.firewalld_backend
        return HostSettings(dict(self.docker), libvirt, firewalld, dict(self.sysctl),
                            dict(self.zones), self.docker_iptables)

    def plan(self, networks: tuple[NetworkSpec, ...] = ()) -> HostPlan:
        """This host as a testbed assembles it, with `networks` (none: the stock one)."""
        return HostPlan(self.release, self.settings(), self.start_order, networks)


def parse_host(data: dict[str, Any]) -> Host:
    """Validate a [host] table: its axes (coexist.scenario.axes) and the daemons' settings."""
    check_types("host", data, HOST_TABLE)
    axes = {axis.name: axis.check(f"host.{axis.name}", data.get(axis.name, axis.default))
            for axis in HOST_AXES}
    libvirt = dict(data.get("libvirt", {}))
    firewalld = dict(data.get("firewalld", {}))
    for axis, table, key in (("libvirt_firewall_backend", libvirt, "firewall_backend"),
                             ("firewalld_backend", firewalld, "FirewallBackend")):
        if axes[axis] != "default" and key in table:
            raise FieldError(f"host.{'libvirt' if table is libvirt else 'firewalld'}.{key}",
                             "set twice: give it once, as the host's backend key (a matrix axis)")
    for name, table in (("docker", data.get("docker", {})), ("libvirt", libvirt), ("firewalld", firewalld)):
        for key, value in table.items():
            if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_.-]{0,63}", key):
                raise FieldError(f"host.{name}.{key}", "a configuration key: letters, digits, _ . -")
            if name != "docker" and not isinstance(value, str | int | bool):
                raise FieldError(f"host.{name}.{key}",
                                 f"must be a string, number or boolean, got {value!r}")
    sysctl = data.get("sysctl", {})
    for key, value in sysctl.items():
        if not re.fullmatch(r"net(\.[A-Za-z0-9_+-]+)+", key):
            raise FieldError(f"host.sysctl.{key}", "only network sysctls (net.*): the lab "
                                                   "owns its network namespace, nothing else")
        short = isinstance(value, str) and re.fullmatch(r"[\w .:-]{1,64}", value)
        if isinstance(value, bool) or not (isinstance(value, int) or short):
            raise FieldError(f"host.sysctl.{key}",
                             f"must be a number or a short string, got {value!r}")
    zones = {}
    for zone, interfaces in data.get("zones", {}).items():
        names = interfaces if isinstance(interfaces, list) else []
        if not names or not all(isinstance(i, str) for i in names):
            raise FieldError(f"host.zones.{zone}",
                             "a list of interface names, e.g. libvirt = [\"virbr0\"]")
        zones[zone] = tuple(interfaces)
    return Host(**axes, docker=dict(data.get("docker", {})), libvirt=libvirt, firewalld_conf=firewalld,
                sysctl=dict(sysctl), zones=zones)

