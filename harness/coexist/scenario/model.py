"""Scenarios are data: a TOML file validated when loaded, with errors naming the file and field.

A scenario is a host (release, daemons in a boot order, their settings), networks and guests, an
optional Docker workload, fixes (built-in or its own), and steps in order: boot, admin commands,
events, fixes, reverts, each measured and with what must hold after it. `[[case]]` tables
override steps' expectations for particular axis values (later cases win), so one file carries
the measured truth for several releases, start orders and events. Everything `coexist run` would
refuse is refused here, at load time: `coexist check` accepts exactly what `run` accepts.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coexist.base.schema import (
    Collected,
    FieldError,
    ScenarioError,
    anchored,
    check_types,
    choice,
    shown,
    strings,
    unknown,
    within,
)
from coexist.host import guestnet
from coexist.host.daemons import Service
from coexist.host.guestnet import GuestNetwork, NetworkSpec
from coexist.host.testbed import HostPlan
from coexist.images.upgradeset import next_release
from coexist.scenario import fixes
from coexist.scenario.axes import AXES, EVENT_AXES, HOST_AXES, IN_LABEL, Home
from coexist.scenario.events import Event
from coexist.scenario.expect import Expect, parse_expect
from coexist.scenario.fixes import Fix
from coexist.scenario.host import HOST_TABLE, Host, parse_host, settings_not_applicable
from coexist.scenario.host import not_applicable as host_not_applicable
from coexist.scenario.keys import KEYS, PROBES, Need
from coexist.scenario.probes import OwnProbe, parse_probes
from coexist.scenario.steps import (
    ApplyFix,
    AxisEvents,
    RevertFix,
    Step,
    Upgrade,
    events_of,
    parse_steps,
    touches_firewalld,
)

GUEST_NETWORKS = guestnet.KINDS
NO_BACKEND = {"bookworm": "libvirt 9.0 (bookworm) has no firewall_backend setting"}
_RESERVED = set(KEYS)   # names a guest may not take
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_GUEST = re.compile(r"^[a-z][a-z0-9-]{0,15}$")


def _order_not_applicable(fix: Fix, order: tuple[Service, ...]) -> str | None:
    """Why a fix's start hooks or boot order cannot apply to a host starting `order`."""
    named = [*fix.after_start, *(fix.start_before or ())]
    missing = [service for service in dict.fromkeys(named) if service not in order]
    if missing:
        return f"names {', '.join(missing)}, which host.start_order does not start"
    if fix.start_before and fix.boot_order(order) == order:
        return (f"{fix.start_before[0]} starts right before {fix.start_before[1]} already "
                "(host.start_order): nothing to change")
    return None


@dataclass(frozen=True)
class GuestSpec:
    name: str
    network: str   # a known network's name or one of the scenario's own


@dataclass(frozen=True)
class Workload:
    published_port: int | None = None   # a container publishing this port; None: no container
    isolated_networks: bool = False     # two containers on two Docker networks (isolation probe)
    probes: tuple[str, ...] = ()        # the cost probes measured after every step (keys.PROBES)

    @property
    def any(self) -> bool:
        return self.published_port is not None or self.isolated_networks or bool(self.probes)


@dataclass(frozen=True)
class Case:
    """`[[case]]`: step expectations that hold when every given axis value matches."""

    match: dict[str, Any]
    expect: dict[str, Expect]
    note: str = ""


@dataclass(frozen=True)
class Scenario:
    path: Path
    name: str
    summary: str
    source: str
    host: Host
    guests: tuple[GuestSpec, ...]
    networks: Mapping[str, NetworkSpec]   # the scenario's own networks, by name
    workload: Workload
    fixes: Mapping[str, Fix]              # the scenario's own fixes
    step_list: tuple[Step, ...]           # as written; axis steps without events included
    axis_events: Mapping[str, tuple[Event, ...]] = field(default_factory=dict)
    cases: tuple[Case, ...] = ()
    notes: tuple[str, ...] = ()
    probes: tuple[OwnProbe, ...] = ()     # the scenario's own probes ([[probe]])

    # -- axes -----------------------------------------------------------------------------------
    def axes(self) -> dict[str, Any]:
        """This scenario's axis values, as `[[case]]` tables name them (coexist.scenario.axes)."""
        values: dict[str, Any] = {}
        host = self.host.axes()
        for axis in AXES.values():
            match axis.home:
                case Home.HOST:
                    values[axis.name] = host[axis.name]
                case Home.GUEST:
                    values[axis.name] = self.guests[0].network
                case Home.EVENTS:
                    values[axis.name] = list(self.axis_events.get(axis.name, ()))
                case Home.DERIVED:
                    values[axis.name] = axis.name in values[axis.follows]
        return values

    def variant(self, **axes: Any) -> Scenario:
        """The same scenario with other axis values (validated like a file)."""
        data = {k: v for k, v in self.axes().items() if AXES[k].home is not Home.DERIVED}
        extra = sorted(set(axes) - set(data))
        if extra:
            raise ScenarioError(self.path, f"variant.{extra[0]}", unknown("axis", extra[0], data))
        data.update(axes)
        with anchored(self.path):   # the values' givers (flags, options) say which they were
            host = parse_host({**self.host.data(), **{a.name: data[a.name] for a in HOST_AXES}})
            network = AXES["network"].check("guest.network", data["network"], tuple(self.networks))
            guests = (dataclasses.replace(self.guests[0], network=network), *self.guests[1:])
            events = {name: AXES[name].check(f"events.{name}", data[name]) for name in EVENT_AXES}
            variant = dataclasses.replace(self, host=host, guests=guests, axis_events=events)
            _check_networks(variant)
        return variant

    def not_applicable(self) -> str | None:
        """Why this combination cannot run on its release or host (None: it can)."""
        if self.host.libvirt_firewall_backend != "default" and self.host.release in NO_BACKEND:
            return NO_BACKEND[self.host.release]
        if (why := host_not_applicable(self.host)) is not None:
            return why
        running, enabled = set(self.host.start_order), list(self.host.start_order)
        release = self.host.release   # an upgrade step makes it the next one
        for step in self.steps:
            if isinstance(step, Upgrade):
                if step.target != next_release(release):
                    after = next_release(release)
                    return (f"step {step.id}: upgrade to {step.target}: the release after {release} is "
                            + (after if after else "not one coexist builds"))
                release = step.target
            for event in events_of(step):
                need = event.needs
                if need is not None and need not in running:
                    return (f"step {step.id}: event {event} needs {need}, which " +
                            ("an earlier step stopped" if need in self.host.start_order else
                             "host.start_order does not start"))
                _systemctl(event, running, enabled)
            if isinstance(step, ApplyFix) and (
                    why := settings_not_applicable(release, step.fix.settings)
                    or _order_not_applicable(step.fix, self.host.start_order)):
                return f"step {step.id}: fix {step.fix.name}: {why}"
            if isinstance(step, ApplyFix | RevertFix):
                missing = [d for d in step.fix.needs if d not in self.host.start_order]
                if missing:
                    return (f"step {step.id}: fix {step.fix.name} needs {', '.join(missing)}, which "
                            "host.start_order does not start")
        if self.workload.any and Service.DOCKERD not in self.host.start_order:
            return "[workload] needs dockerd in host.start_order"
        docker_ever = Service.DOCKERD in self.host.start_order or any(
            event.service is Service.DOCKERD and event.verb in ("start", "enable")
            for step in self.steps for event in events_of(step))
        if any(p.where == "container" for p in self.probes) and not docker_ever:
            return ("a [[probe]] with where = \"container\" needs dockerd: in host.start_order, or "
                    "started by an event (while it is not running, the probe fails)")
        return None

    def upgrade_target(self) -> str | None:
        """The release an upgrade step takes the host to (None: it has none)."""
        return next((step.target for step in self.steps if isinstance(step, Upgrade)), None)

    def label(self) -> str:
        """A short description of the axis values, for reports."""
        values = self.axes()
        return " ".join(part for axis in IN_LABEL if (part := axis.label(values[axis.name])) is not None)

    # -- what runs ------------------------------------------------------------------------------
    @property
    def steps(self) -> tuple[Step, ...]:
        """The steps that happen: axis steps carry their axis's events, or are left out; each
        with its expectations for this scenario's axis values."""
        axes = self.axes()
        chosen = []
        for step in self.step_list:
            if isinstance(step, AxisEvents):
                events = self.axis_events.get(step.axis, ())
                if not events:
                    continue
                step = dataclasses.replace(step, events=events)
            expect = step.expect
            for case in self.cases:
                if step.id in case.expect and _matches(case.match, axes):
                    expect = expect.merged(case.expect[step.id])
            chosen.append(dataclasses.replace(step, expect=expect))
        return tuple(chosen)

    @property
    def expect_notes(self) -> tuple[str, ...]:
        axes = self.axes()
        return tuple(c.note for c in self.cases if c.note and _matches(c.match, axes))

    def guest_networks(self) -> dict[str, GuestNetwork]:
        """Each guest's place on its network (IPv6 per host.ipv6 or the network's own /64)."""
        placed: dict[str, GuestNetwork] = {}
        count: dict[str, int] = {}
        for guest in self.guests:
            spec = self.network(guest.network)
            index = count[guest.network] = count.get(guest.network, -1) + 1
            placed[guest.name] = guestnet.place(spec, index)
        return placed

    def network(self, name: str) -> NetworkSpec:
        if name in self.networks:
            spec = self.networks[name]
            return spec.with_ipv6(self.host.ipv6 or spec.ipv6 is not None)
        return guestnet.known()[name].with_ipv6(self.host.ipv6)

    def host_plan(self) -> HostPlan:
        """The host a testbed assembles for this scenario: release, settings, start order, networks."""
        return self.host.plan(tuple(self.host_networks()))

    def host_networks(self) -> list[NetworkSpec]:
        """Every network the host has: the stock one (unless host.stock_network = false), the
        scenario's own, and the guests'."""
        stock = [guestnet.STOCK_NETWORK] if self.host.stock_network else []
        names = dict.fromkeys([*stock, *self.networks, *(g.network for g in self.guests)])
        return [self.network(name) for name in names]

    @property
    def docker(self) -> bool:
        return Service.DOCKERD in self.host.start_order


_TABLES: dict[str, dict[str, type | tuple[type, ...]]] = {
    "scenario": {"name": str, "summary": str, "source": str, "notes": list},
    "host": HOST_TABLE,
    "events": {name: list for name in EVENT_AXES},
    "workload": {"published_port": int, "isolated_networks": bool, "probes": list},
    "fix": {},
    "network": {},
    "guest": {},
    "step": {},
    "case": {},
    "probe": {},
}
_ARRAYS = ("network", "guest", "step", "case", "probe")
_CASE_MATCH = {axis.name: axis.toml_type for axis in AXES.values()}   # what [[case]] may match

MAX_BYTES = 1_000_000   # a scenario is a few KB; anything this big is not one


def load(path: Path | str) -> Scenario:
    """Read and validate a scenario file: UTF-8 TOML text."""
    path = Path(path)
    try:
        if path.is_dir():
            raise ScenarioError(path, "file", "is a folder; give a scenario file (.toml)")
        if path.exists() and not path.is_file():
            raise ScenarioError(path, "file", "not a regular file (a device, FIFO or socket)")
        with path.open("rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise ScenarioError(path, "file", "no such scenario file") from None
    except OSError as error:
        raise ScenarioError(path, "file", f"cannot read it: {error.strerror}") from None
    if len(raw) > MAX_BYTES:
        raise ScenarioError(path, "file", f"larger than {MAX_BYTES} bytes; a scenario is a few KB")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ScenarioError(path, "file", "UTF-16 text; save it as UTF-8")
    if b"\0" in raw:
        raise ScenarioError(path, "file", "binary data (NUL bytes), not a TOML text file")
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        raise ScenarioError(path, "file", f"not UTF-8 (byte 0x{raw[error.start]:02x} at offset "
                                          f"{error.start}); save it as UTF-8") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ScenarioError(path, "file", f"not valid TOML: {error}") from None
    except RecursionError:
        raise ScenarioError(path, "file", "arrays or tables nested too deeply to be a scenario") from None
    return parse(data, path, text)


def parse(data: dict[str, Any], path: Path | str = "<scenario>", text: str | None = None, *,
          runnable: bool = True) -> Scenario:
    """Validate already-parsed TOML data: unknown keys, types and allowed values are all errors,
    all of them said at once, each with its line in `text` (the file's TOML) when it is given.
    `runnable`: a scenario that cannot run as written (Scenario.not_applicable) is an error too."""
    path = Path(path)
    with anchored(path, text):
        return _parse(data, path, runnable)


def _parse(data: dict[str, Any], path: Path, runnable: bool) -> Scenario:
    found = Collected()
    tables: dict[str, Any] = {}
    for table, value in data.items():
        with found.part():
            _check_table(table, value)
        if table in _ARRAYS:
            if isinstance(value, list):
                tables[table] = value
        elif table in _TABLES and isinstance(value, dict):   # [host], [fix.*]: checked by their parsers
            tables[table] = value if table in ("fix", "host") else found.typed(table, value, _TABLES[table])
    meta = tables.get("scenario", {})
    written = data.get("scenario", {})   # a key written with a wrong type was said above
    with found.part():
        for key in ("name", "summary"):
            if isinstance(written, dict) and key not in written:
                raise FieldError(f"scenario.{key}", "is required")
        if "name" in meta and not _NAME.fullmatch(meta["name"]):
            raise FieldError("scenario.name", f"{shown(meta['name'])}: letters, digits, '_', '.', "
                                              "'-', starting with a letter or digit, at most 64")
    with found.part():
        notes = tuple(strings("scenario.notes", meta.get("notes", [])))
    with found.part():
        host = parse_host(tables.get("host", {}))
    networks, network_errors = _networks(tables.get("network", []), found)
    guests: tuple[GuestSpec, ...] = ()
    with found.part():
        guests = _guests(tables.get("guest", []), networks, complete=not network_errors)
    with found.part():
        workload_data = tables.get("workload", {})
        port = workload_data.get("published_port")
        if port is not None and not 1 <= port <= 65535:
            raise FieldError("workload.published_port", f"must be 1..65535, got {port}")
        probes = tuple(strings("workload.probes", workload_data.get("probes", [])))
        for probe in probes:
            if probe not in PROBES:
                raise FieldError("workload.probes", unknown(f"probe {probe!r}", probe, PROBES))
        isolated = workload_data.get("isolated_networks", False)
        if "containers_closed" in probes and not isolated:
            raise FieldError("workload.probes", "\"containers_closed\" probes the isolated server's "
                                                "port: it needs isolated_networks = true")
        workload = Workload(port, isolated, probes)
    own_fixes = {}
    fix_errors = False
    for name, table in tables.get("fix", {}).items():
        with found.part(f"fix.{name}"):
            fix_errors = True
            if name in fixes.builtin():
                raise FieldError("", "is a built-in fix's name; name yours differently")
            own_fixes[name] = fixes.parse_fix(name, table)
            fix_errors = False
    own_probes: tuple[OwnProbe, ...] = ()
    with found.part():
        own_probes = parse_probes(tables.get("probe", []))
    axis_events: dict[str, tuple[Event, ...]] = {}
    for name in EVENT_AXES:
        with found.part():
            axis_events[name] = AXES[name].check(f"events.{name}", tables.get("events", {}).get(name, []))
    steps: tuple[Step, ...] = ()
    if "step" not in data or "step" in tables:   # else: of the wrong shape, said above
        with found.part():
            steps = parse_steps(tables.get("step", []), {**fixes.builtin(), **own_fixes},
                                tuple(g.name for g in guests), own_fixes_complete=not fix_errors)
    found.check()   # what follows needs every part above
    scenario = Scenario(
        path=path, name=meta["name"], summary=meta["summary"], source=meta.get("source", ""),
        notes=notes, host=host, guests=guests, networks=networks, workload=workload,
        fixes=own_fixes, step_list=steps, axis_events=axis_events, probes=own_probes)
    for axis in EVENT_AXES:
        if axis_events[axis] and not any(isinstance(s, AxisEvents) and s.axis == axis for s in steps):
            with found.part():
                raise FieldError(f"events.{axis}", f"given, but no step has axis = \"{axis}\" "
                                                   "(where the events happen)")
    cases = []
    for index, case in enumerate(tables.get("case", [])):
        with found.part():
            cases.append(_case(index, case, scenario))
    found.check()
    scenario = dataclasses.replace(scenario, cases=tuple(cases))
    _check_networks(scenario)
    _check_consistency(scenario)
    why = scenario.not_applicable() if runnable else None
    if why is not None:
        raise FieldError("host", f"cannot run as written: {why}")
    return scenario


def _check_table(table: str, value: Any) -> None:
    if table not in _TABLES:
        raise FieldError(f"[{table}]", unknown("table", table, _TABLES)
                         + (" ([expect] became per-step `expect` tables and [[case]])"
                            if table == "expect" else ""))
    if table in _ARRAYS:
        if not isinstance(value, list):
            raise FieldError(table, f"must be an array of tables ([[{table}]])")
    elif not isinstance(value, dict):
        raise FieldError(table, "must be a table ([...])")


def _networks(tables: list[Any], found: Collected) -> tuple[dict[str, NetworkSpec], bool]:
    """The scenario's own networks, each validated on its own; and whether any failed."""
    networks: dict[str, NetworkSpec] = {}
    failed = False
    for index, table in enumerate(tables):
        where = f"network[{index}]"
        with found.part():
            failed = True
            if not isinstance(table, dict):
                raise FieldError(where, "must be a table ([[network]])")
            name = table.get("name")
            if name is None:
                raise FieldError(f"{where}.name", "is required")
            if name in guestnet.known():
                raise FieldError(f"{where}.name", f"{name!r} is a known network "
                                 f"({', '.join(GUEST_NETWORKS)}); name yours differently")
            with within(where):
                spec = guestnet.parse_network(name, table)
            if name in networks:
                raise FieldError(f"{where}.name", f"two networks are called {name!r}")
            networks[name] = spec
            failed = False
    return networks, failed


def _guests(tables: list[Any], networks: dict[str, NetworkSpec], *, complete: bool = True) \
        -> tuple[GuestSpec, ...]:
    """The guests ([[guest]]); `complete`: `networks` holds every network the file names (else
    a guest on a network that failed its own validation is not blamed for it)."""
    if not tables:
        return (GuestSpec("guest", "default"),)
    guests: list[GuestSpec] = []
    for index, table in enumerate(tables):
        where = f"guest[{index}]"
        if not isinstance(table, dict):
            raise FieldError(where, "must be a table ([[guest]])")
        check_types(where, table, {"name": str, "network": str})
        name = table.get("name", "guest" if index == 0 else "")
        if not _GUEST.fullmatch(name) or name in _RESERVED:
            raise FieldError(f"{where}.name", f"{name!r}: a lower-case name (letters, digits, "
                             "'-', at most 16), not an expectation key")
        if name in {g.name for g in guests}:
            raise FieldError(f"{where}.name", f"two guests are called {name!r}")
        network = table.get("network", "default")
        if complete or network in (*networks, *GUEST_NETWORKS):
            choice(f"{where}.network", network, (*networks, *GUEST_NETWORKS))
        guests.append(GuestSpec(name, network))
    return tuple(guests)


def _case(index: int, data: Any, scenario: Scenario) -> Case:
    where = f"case[{index}]"
    if not isinstance(data, dict):
        raise FieldError(where, "must be a table ([[case]])")
    match = {k: v for k, v in data.items() if k in _CASE_MATCH}
    extra = set(data) - set(match) - {"expect", "note"}
    if extra:
        first = sorted(extra)[0]
        raise FieldError(f"{where}.{first}", unknown("key", first, [*_CASE_MATCH, "expect", "note"]))
    check_types(where, data, {**_CASE_MATCH, "expect": dict, "note": str})
    if not match:
        raise FieldError(where, f"matches nothing: give one of {', '.join(_CASE_MATCH)}")
    for axis in AXES.values():
        if axis.name not in match:
            continue
        field_name = f"{where}.{axis.name}"
        axis.check(field_name, match[axis.name], tuple(scenario.networks) if axis.home is Home.GUEST else ())
        if axis.home is Home.EVENTS and not any(isinstance(s, AxisEvents) and s.axis == axis.name
                                                for s in scenario.step_list):
            raise FieldError(field_name, f"never matches: no step has axis = \"{axis.name}\"")
        if axis.home is Home.DERIVED and axis.follows in match \
                and match[axis.name] != (axis.name in match[axis.follows]):
            raise FieldError(field_name, f"contradicts its {axis.follows}: never matches")
    if match.get("release") in NO_BACKEND and match.get("libvirt_firewall_backend", "default") != "default":
        raise FieldError(where, f"never matches: {NO_BACKEND[match['release']]}")
    expect_data = data.get("expect", {})
    if not expect_data:
        raise FieldError(f"{where}.expect", "states no outcome: expect.<step id> = { ... }")
    ids = [s.id for s in scenario.step_list]
    expects = {}
    guests = tuple(g.name for g in scenario.guests)
    for step_id, table in expect_data.items():
        if step_id not in ids:
            raise FieldError(f"{where}.expect.{step_id}", f"no such step; steps: {', '.join(ids)}")
        with within(f"{where}.expect.{step_id}"):
            expects[step_id] = parse_expect(table, guests)
        if expects[step_id].is_empty():
            raise FieldError(f"{where}.expect.{step_id}", "states no outcome")
    return Case(match, expects, data.get("note", ""))


def _bridge_networks(scenario: Scenario) -> set[str]:
    return {n for n in (*scenario.networks, *GUEST_NETWORKS) if scenario.network(n).forward == "bridge"}


def _check_networks(scenario: Scenario) -> None:
    on_stock = [g.name for g in scenario.guests if g.network == guestnet.STOCK_NETWORK]
    if not scenario.host.stock_network and on_stock:
        raise FieldError("host.stock_network", f"false, but guest {on_stock[0]} is on the stock network "
                                               f"'{guestnet.STOCK_NETWORK}' (give it another network)")
    bridges = [g for g in scenario.guests if scenario.network(g.network).forward == "bridge"]
    lan = {scenario.network(g.network).bridge for g in bridges}
    if len(lan) > 1:
        raise FieldError("guest",
                         f"guests on two LAN bridges ({', '.join(sorted(lan))}): the host has one uplink")
    seen: dict[str, tuple[str, str]] = {}
    for spec in scenario.host_networks():
        for other, (subnet, bridge) in seen.items():
            if spec.bridge == bridge or spec.ipv4 and subnet and _overlap(spec.ipv4, subnet):
                raise FieldError("network", f"networks {other} and {spec.name} share a bridge "
                                            "or overlapping subnets")
        seen[spec.name] = (spec.ipv4 or "", spec.bridge)


def _systemctl(event: Event, running: set[Service], enabled: list[Service]) -> None:
    """What `event` does to the services running and those started at boot (in their order)."""
    service = event.service
    match event.verb:
        case "start" if service is not None:
            running.add(service)
        case "stop" if service is not None:
            running.discard(service)
        case "enable" if service is not None and service not in enabled:
            enabled.append(service)
        case "disable" if service in enabled:
            enabled.remove(service)
        case "reboot":
            running.clear()
            running.update(enabled)


def _overlap(a: str, b: str) -> bool:
    import ipaddress

    return ipaddress.ip_network(a).overlaps(ipaddress.ip_network(b))


def _check_consistency(scenario: Scenario) -> None:
    """Expectations that could never be measured are errors, not silently ignored."""
    ipv6 = any(n.ipv6 for n in scenario.guest_networks().values())
    for index, step in enumerate(scenario.step_list):
        met = {Need.PUBLISHED_PORT: scenario.workload.published_port is not None,
               Need.ISOLATION: scenario.workload.isolated_networks,
               Need.IPV6: ipv6 or any(c.match.get("ipv6") for c in scenario.cases),
               Need.FIX_STEP: isinstance(step, ApplyFix), Need.REVERT_STEP: isinstance(step, RevertFix),
               Need.FIREWALLD_EVENT: touches_firewalld(step), Need.UPGRADE_STEP: isinstance(step, Upgrade)}
        probed = set(scenario.workload.probes)
        for expect, where in [(step.expect, f"step[{index}].expect"),
                              *[(c.expect[step.id], f"case[{i}].expect.{step.id}")
                                for i, c in enumerate(scenario.cases) if step.id in c.expect]]:
            for need in Need:
                for key in (k.name for k in KEYS.values() if k.needs is need and k.name in expect.keys()):
                    if not met.get(need, key in probed):
                        raise FieldError(f"{where}.{key}", need.value)
            for probe in expect.host.get("probe", {}):
                if probe not in [p.id for p in scenario.probes]:
                    raise FieldError(f"{where}.probe.{probe}", unknown(
                        "probe", probe, [p.id for p in scenario.probes]) + " (define it in [[probe]])")
            if "checks" in expect.host and isinstance(step, ApplyFix):
                ids = [c.id for c in step.fix.checks]
                for check in expect.host["checks"]:
                    if check not in ids:
                        raise FieldError(f"{where}.checks.{check}",
                                         f"fix {step.fix.name} has no such check; its checks: "
                                         f"{', '.join(ids) or 'none'}")


def _matches(match: dict[str, Any], axes: dict[str, Any]) -> bool:
    return all(axes[key] == value for key, value in match.items())

