"""The axes a scenario varies along: one table (name, kind, values, default, help, flag, label),
from which everything that names an axis is derived: a scenario's [host] and [events] keys and
their validation, `[[case]]` matching, `Scenario.axes()`, `variant()` and `label()`,
`coexist matrix`'s flags and the pytest plugin's `--coexist-axis`.

A new axis is one entry in AXES, plus what it means: a host axis is the Host field of its name
(coexist.scenario.host) and what the host does with it (Host.settings); an event axis is where
an `axis = "..."` step happens.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from coexist.base.schema import FieldError, choice, shown, strings
from coexist.host.daemons import Service
from coexist.host.guestnet import KINDS as GUEST_NETWORKS
from coexist.scenario.events import EVENTS, event_list

RELEASES = ("bookworm", "trixie", "forky")


class Kind(Enum):
    """What an axis's value is, and so how a file, a flag and `--axis` write it."""

    CHOICE = "one of its values"
    YES_NO = "true or false, as TOML writes it (on the command line also no or yes)"
    ORDER = "services in the order they start, each at most once (items joined by '+' in --axis)"
    EVENTS = "events in order (items joined by '+' in --axis; 'none' for no event)"
    DERIVED = "follows from another axis: [[case]] may match it, a matrix does not cross it"


class Home(Enum):
    """Where a scenario keeps an axis's value."""

    HOST = "[host]: the Host field of the axis's name"
    GUEST = "the first guest's network"
    EVENTS = "[events]: the events of the step with axis = <name>"
    DERIVED = "nowhere: true when the axis it follows lists the axis's name"


@dataclass(frozen=True)
class Axis:
    name: str                 # as [host], [events], [[case]], --axis and verdict.json's "axes" name it
    kind: Kind
    home: Home
    values: tuple[str, ...]   # allowed values (ORDER: its items; GUEST: besides the scenario's own)
    default: Any
    help: str                 # what it is, for the command line's help
    flag: str | None = None   # `coexist matrix --<flag>`: its name with '-' for '_' (None: not crossed)
    old_flag: str = ""        # an earlier spelling of the flag, still taken (not in the help)
    tag: str = ""             # how the label says it, before the value
    always: bool = False      # in every label, default or not
    label_at: int | None = None   # its place in the label (None: not in it)
    follows: str = ""         # DERIVED: the axis it follows from

    @property
    def toml_type(self) -> type:
        return {Kind.CHOICE: str, Kind.YES_NO: bool, Kind.ORDER: list, Kind.EVENTS: list,
                Kind.DERIVED: bool}[self.kind]

    def check(self, where: str, value: Any, own: tuple[str, ...] = ()) -> Any:
        """`value` validated (its type already checked) and as a scenario keeps it; `own`: values
        the scenario adds (its own networks)."""
        match self.kind:
            case Kind.CHOICE:
                return choice(where, value, (*own, *self.values))
            case Kind.ORDER:
                return _services(where, value, self.values)
            case Kind.EVENTS:
                return event_list(where, value)
            case Kind.YES_NO | Kind.DERIVED:
                return value

    def label(self, value: Any) -> str | None:
        """How a scenario's label says this value (None: it says nothing of it)."""
        if self.label_at is None:
            return None
        match self.kind:
            case Kind.CHOICE:
                return f"{self.tag}{value}" if self.always or value != self.default else None
            case Kind.ORDER:
                return self.tag + ">".join(value)
            case Kind.EVENTS:
                return self.tag + ",".join(value) if value else None
            case Kind.YES_NO:
                return self.tag if value else None
        return None

    def from_option(self, text: str) -> list[Any]:
        """The values of `--axis NAME=<text>`: comma-separated; a list's items joined by '+',
        'none' for an empty list; true or false for a yes/no axis, as TOML writes it (no or yes
        too). ValueError: not so."""
        items = text.split(",")
        match self.kind:
            case Kind.ORDER | Kind.EVENTS:
                return [[] if item == "none" else item.split("+") for item in items]
            case Kind.YES_NO:
                if set(items) - {*_TRUE, *_FALSE}:
                    raise ValueError(f"{self.name} is true or false")
                return [item in _TRUE for item in items]
        return list(items)

    def to_option(self, values: list[Any]) -> str:
        """The `--axis NAME=<text>` text of axis values (from_option's inverse)."""
        match self.kind:
            case Kind.ORDER:
                return ",".join("+".join(order) for order in values)
            case Kind.EVENTS:
                return ",".join("+".join(events) or "none" for events in values)
            case Kind.YES_NO:
                return ",".join("true" if value else "false" for value in values)
        return ",".join(values)

    def unknown_items(self, values: list[Any]) -> list[str]:
        """The items of `values` (from_option's) that are none of this axis's own values (a
        guest's network may also be one the scenario defines: its variant says)."""
        match self.kind:
            case Kind.ORDER | Kind.EVENTS:
                return [item for value in values for item in value if item not in self.values]
            case Kind.CHOICE if self.home is not Home.GUEST:
                return [value for value in values if value not in self.values]
        return []


_TRUE, _FALSE = ("true", "yes"), ("false", "no")   # a yes/no axis's value on the command line


def _services(where: str, order: list[Any], allowed: tuple[str, ...]) -> tuple[Service, ...]:
    for item in strings(where, order):
        choice(where, item, allowed)
    if len(set(order)) != len(order):
        raise FieldError(where, f"names a daemon twice: {shown(order)}")
    if Service.LIBVIRT not in order:
        raise FieldError(where, "must include 'libvirt' (the guests need its network)")
    return tuple(Service(item) for item in order)


# in the order verdict.json's "axes", [[case]]'s allowed keys and the matrix's flags list them;
# label_at orders the label
AXES: dict[str, Axis] = {axis.name: axis for axis in (
    Axis("release", Kind.CHOICE, Home.HOST, RELEASES, "trixie", "the host's Debian release",
         flag="release", always=True, label_at=0),
    Axis("libvirt_firewall_backend", Kind.CHOICE, Home.HOST, ("default", "iptables", "nftables"),
         "default", "libvirt's firewall backend (network.conf's firewall_backend)",
         flag="libvirt-firewall-backend", old_flag="libvirt-backend", tag="libvirt:", always=True,
         label_at=1),
    Axis("firewalld_backend", Kind.CHOICE, Home.HOST, ("default", "nftables", "iptables"), "default",
         "firewalld's backend (firewalld.conf's FirewallBackend)", flag="firewalld-backend",
         tag="firewalld:", label_at=5),
    Axis("docker_iptables", Kind.CHOICE, Home.HOST, ("default", "nft", "legacy"), "default",
         "the iptables dockerd finds first on its PATH", flag="docker-iptables",
         tag="docker-iptables:", label_at=6),
    Axis("start_order", Kind.ORDER, Home.HOST, Service.names(),
         (Service.FIREWALLD, Service.DOCKERD, Service.LIBVIRT), "the daemons' start order",
         flag="start-order", tag="order:", label_at=2),
    Axis("firewalld", Kind.DERIVED, Home.DERIVED, (), False, "firewalld in the start order",
         follows="start_order"),
    Axis("network", Kind.CHOICE, Home.GUEST, GUEST_NETWORKS, "default", "the guest's network",
         flag="network", tag="network:", label_at=3),
    Axis("ipv6", Kind.YES_NO, Home.HOST, (), False, "IPv6 on the guest's libvirt network", flag="ipv6",
         tag="ipv6", label_at=4),
    Axis("after_setup", Kind.EVENTS, Home.EVENTS, EVENTS, (), "events before the first measurement",
         flag="after-setup", tag="events:", label_at=7),
    Axis("after_fix", Kind.EVENTS, Home.EVENTS, EVENTS, (), "events after the fix", flag="after-fix",
         tag="after-fix:", label_at=8),
)}
CROSSED = tuple(axis for axis in AXES.values() if axis.flag is not None)
HOST_AXES = tuple(axis for axis in AXES.values() if axis.home is Home.HOST)
EVENT_AXES = tuple(axis.name for axis in AXES.values() if axis.home is Home.EVENTS)
IN_LABEL = tuple(sorted((axis for axis in AXES.values() if axis.label_at is not None),
                        key=lambda axis: axis.label_at or 0))


def axis_options(options: Iterable[str]) -> dict[str, list[Any]]:
    """`--axis NAME=VALUE[,VALUE...]` options (pytest's, `coexist run`'s and the matrix's), as
    coexist.report.matrix.cross takes them: values by axis name. An unknown name is passed on (a
    scenario's variant names the axes there are). ValueError: one line saying what is wrong."""
    axes: dict[str, list[Any]] = {}
    for option in options:
        name, sep, values = option.partition("=")
        if not sep or not values:
            raise ValueError(f"--axis {option!r}: give NAME=VALUE[,VALUE...]")
        try:
            items = AXES[name].from_option(values) if name in AXES else values.split(",")
        except ValueError as error:
            raise ValueError(f"--axis {option!r}: {error}") from None
        axes.setdefault(name, []).extend(items)
    return axes
