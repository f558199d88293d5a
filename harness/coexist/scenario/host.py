"""A scenario's [host]: its axis values (release, backends, start order, IPv6: one field per host
axis of coexist.scenario.axes, named for it) and the daemons' own settings, validated, and what
the testbed makes of them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from coexist.base.schema import Collected, FieldError, shown, suggest, unknown
from coexist.host import known
from coexist.host.daemons import Service
from coexist.host.guestnet import NetworkSpec
from coexist.host.hostconfig import HostSettings
from coexist.host.testbed import HostPlan
from coexist.images.hostimage import is_package_name
from coexist.scenario.axes import HOST_AXES

# [host]'s keys and their TOML types: the host axes, then the daemons' settings
HOST_TABLE: dict[str, type | tuple[type, ...]] = {
    **{axis.name: axis.toml_type for axis in HOST_AXES},
    "docker": dict, "libvirt": dict, "firewalld": dict, "sysctl": dict, "zones": dict, "stock_network": bool,
    "packages": list}


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
    stock_network: bool = True   # false: libvirt's `default` is not started (disabled, or removed)
    packages: tuple[str, ...] = ()   # Debian packages on the host besides the image's recipe (jq, ...)

    def axes(self) -> dict[str, Any]:
        """The host axes' values, as a scenario file writes them (a list for a list)."""
        values = {axis.name: getattr(self, axis.name) for axis in HOST_AXES}
        return {name: list(value) if isinstance(value, tuple) else value for name, value in values.items()}

    def data(self) -> dict[str, Any]:
        """This host as a [host] table (parse_host makes the same host of it)."""
        return {**self.axes(), "docker": dict(self.docker), "libvirt": dict(self.libvirt),
                "firewalld": dict(self.firewalld_conf), "sysctl": dict(self.sysctl),
                "zones": {zone: list(interfaces) for zone, interfaces in self.zones.items()},
                "stock_network": self.stock_network,
                **({"packages": list(self.packages)} if self.packages else {})}

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
    """Validate a [host] table: its axes (coexist.scenario.axes) and the daemons' settings, every
    mistake said at once; a setting no release knows is an error (with a suggestion), one that
    another release knows is for not_applicable (below) to say."""
    found = Collected()
    data = found.typed("host", data, HOST_TABLE)
    axes = {}
    for axis in HOST_AXES:
        with found.part():
            axes[axis.name] = axis.check(f"host.{axis.name}", data.get(axis.name, axis.default))
    libvirt = dict(data.get("libvirt", {}))
    firewalld = dict(data.get("firewalld", {}))
    for backend, table, key in (("libvirt_firewall_backend", libvirt, "firewall_backend"),
                                ("firewalld_backend", firewalld, "FirewallBackend")):
        if axes.get(backend, "default") != "default" and key in table:
            with found.part():
                raise FieldError(f"host.{'libvirt' if table is libvirt else 'firewalld'}.{key}",
                                 "set twice: give it once, as the host's backend key (a matrix axis)")
    packages: tuple[str, ...] = ()
    with found.part():
        packages = _packages(data.get("packages", []))
    settings = {}
    with found.part("host"):
        settings = parse_settings({part: data[part] for part in SETTINGS if part in data})
    found.check()
    return Host(**axes, docker=settings["docker"], libvirt=settings["libvirt"],
                firewalld_conf=settings["firewalld"], sysctl=settings["sysctl"], zones=settings["zones"],
                stock_network=data.get("stock_network", True), packages=packages)


def _packages(given: list[Any]) -> tuple[str, ...]:
    """[host] packages: Debian package names, each once (apt installs them into an image of the
    release's recipe plus these, cached by that recipe)."""
    for index, name in enumerate(given):
        if not (isinstance(name, str) and is_package_name(name)):
            raise FieldError(f"host.packages[{index}]", f"{shown(name)} is not a Debian package name "
                             "(lower case letters, digits, + - .; e.g. \"jq\", \"iputils-ping\")")
    twice = sorted({name for name in given if given.count(name) > 1})
    if twice:
        raise FieldError("host.packages", f"listed twice: {', '.join(twice)}")
    return tuple(given)


SETTINGS = ("docker", "libvirt", "firewalld", "sysctl", "zones")   # the daemons' own settings' tables


def parse_settings(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The daemons' own settings (daemon.json, network.conf, firewalld.conf keys, network sysctls,
    zone bindings), each table's keys validated on their own (all mistakes said at once): every
    table of SETTINGS, empty where not given. Zones' interfaces as tuples."""
    found = Collected()
    settings: dict[str, dict[str, Any]] = {part: {} for part in SETTINGS}
    for part, table in data.items():
        with found.part():
            if part not in SETTINGS:
                raise FieldError(part, unknown("table", part, SETTINGS))
            if not isinstance(table, dict):
                raise FieldError(part, "must be a table")
        if part not in SETTINGS or not isinstance(table, dict):
            continue
        for key, value in table.items():
            with found.part(f"{part}.{key}"):
                settings[part][key] = _SETTING_CHECKS[part](part, key, value)
    found.check()
    return settings


def _zone(part: str, zone: str, interfaces: Any) -> tuple[str, ...]:
    names = interfaces if isinstance(interfaces, list) else []
    if not names or not all(isinstance(i, str) for i in names):
        raise FieldError("", "a list of interface names, e.g. libvirt = [\"virbr0\"]")
    _known_anywhere("zones", zone)
    return tuple(names)


_SETTING_FILES = {"docker": "daemon.json key", "libvirt": "libvirt network.conf key",
                  "firewalld": "firewalld.conf key", "zones": "firewalld zone"}


def _setting(table: str, key: str, value: Any) -> Any:
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_.-]{0,63}", key):
        raise FieldError("", "a configuration key: letters, digits, _ . -")
    if table != "docker" and not isinstance(value, str | int | bool):
        raise FieldError("", f"must be a string, number or boolean, got {shown(value)}")
    _known_anywhere(table, key)
    return value


_SEE_TABLE = " see harness/coexist/host/known-settings.json"


def _known_anywhere(part: str, name: str) -> None:
    """`name` is known to some release's daemons (else: unknown, with a suggestion)."""
    if name not in known.anywhere(part):
        releases = ", ".join(k.release for k in known.releases())
        near = suggest(name, sorted(known.anywhere(part))) or _SEE_TABLE
        raise FieldError("", f"unknown {_SETTING_FILES[part]} on every release ({releases});{near}")


def _sysctl(part: str, key: str, value: Any) -> Any:
    if not re.fullmatch(r"net(\.[A-Za-z0-9_+-]+)+", key):
        raise FieldError("", "only network sysctls (net.*): the lab owns its network namespace, "
                             "nothing else")
    short = isinstance(value, str) and re.fullmatch(r"[\w .:-]{1,64}", value)
    if isinstance(value, bool) or not (isinstance(value, int) or short):
        raise FieldError("", f"must be a number or a short string, got {shown(value)}")
    if not known.sysctl_known(key):
        near = suggest(known.sysctl_pattern(key), known.sysctl_names())
        raise FieldError("", f"no such network sysctl in a lab (Linux {known.kernel()});"
                             f"{near or ' per-interface ones are net.ipv4.conf.<interface>.<name>'}")
    return value


_SETTING_CHECKS = {"docker": _setting, "libvirt": _setting, "firewalld": _setting, "sysctl": _sysctl,
                   "zones": _zone}


def not_applicable(host: Host) -> str | None:
    """Why `host`'s settings cannot be made on its release (a key only other releases know)."""
    return settings_not_applicable(host.release, {"docker": host.docker, "libvirt": host.libvirt,
                                                  "firewalld": host.firewalld_conf, "zones": host.zones})


def settings_not_applicable(release: str, settings: Mapping[str, Mapping[str, Any]]) -> str | None:
    """Why settings (tables of SETTINGS) cannot be made on `release`: a key only other releases
    know (sysctls are the kernel's: any release)."""
    here = known.release(release)
    for part, table in settings.items():
        if part == "sysctl":
            continue
        for name in table:
            if name not in getattr(here, part):
                others = ", ".join(k.release for k in known.releases() if name in getattr(k, part))
                return f"{_SETTING_FILES[part]} {name!r} is known on {others} only, not on {release}"
    return None
