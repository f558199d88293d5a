"""Scenarios are data: a TOML file validated when loaded, with errors naming the file and field.

Axes (`[host]`, `[events]`) describe the host and what happens to it; `[expect]` states the measured
outcome, and `[[expect.case]]` tables override it for particular axis values (later cases win), so
one file can carry the measured truth for several releases, start orders and events.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.guestnet import KINDS as GUEST_NETWORKS

RELEASES = ("bookworm", "trixie", "forky")
LIBVIRT_BACKENDS = ("default", "iptables", "nftables")
FIREWALLD_BACKENDS = ("default", "nftables", "iptables")
DOCKER_IPTABLES = ("default", "nft", "legacy")
STARTABLE = ("firewalld", "dockerd", "libvirt")
EVENTS = ("firewalld-reload", "firewalld-restart", "dockerd-restart", "libvirt-network-restart",
          "libvirtd-restart")


class ScenarioError(ValueError):
    """A scenario file is malformed; the message names the file, the field and what is allowed."""

    def __init__(self, path: Path | str, where: str, problem: str) -> None:
        self.path, self.where, self.problem = str(path), where, problem
        super().__init__(f"{path}: {where}: {problem}")


@dataclass(frozen=True)
class Host:
    release: str = "trixie"
    libvirt_firewall_backend: str = "default"
    firewalld_backend: str = "default"
    docker_iptables: str = "default"
    start_order: tuple[str, ...] = ("firewalld", "dockerd", "libvirt")

    @property
    def firewalld(self) -> bool:
        return "firewalld" in self.start_order


@dataclass(frozen=True)
class GuestSetup:
    network: str = "default"   # one of harness.guestnet.KINDS, which describes each
    ipv6: bool = False         # an IPv6 /64 on the guest's libvirt network, probed too


@dataclass(frozen=True)
class Events:
    after_setup: tuple[str, ...] = ()   # once the guest is up, before the first measurement
    after_fix: tuple[str, ...] = ()     # after the fix; connectivity is measured again


@dataclass(frozen=True)
class Workload:
    published_port: int | None = 8080   # a container publishing this port; None: no container
    isolated_networks: bool = False     # two containers on two Docker networks (isolation probe)


@dataclass(frozen=True)
class Expect:
    symptom: bool                       # DNS works, ping and TCP to the outside fail (no fix yet)
    dns_before: bool | None = None      # the guest's DNS probe works before any fix (None: either)
    ipv6_before: bool | None = None     # with guest.ipv6: ping and TCP over IPv6 work before a fix
    fix_effective: bool | None = None   # after the fix: DNS, ping and TCP all work
    published_port: bool = True         # the container's published port answers from outside
    published_port_after_fix: bool | None = None   # after the fix (None: as published_port)
    # with workload.isolated_networks: Docker keeps its networks apart (before / after the fix)
    docker_isolation: bool = True
    docker_isolation_after_fix: bool | None = None   # None: as docker_isolation
    # after events.after_fix (in the file or a matrix variant): DNS, ping and TCP still work
    survives_events: bool | None = None
    notes: tuple[str, ...] = ()         # why, from the cases that applied


@dataclass(frozen=True)
class Case:
    """`[[expect.case]]`: outcomes that hold when every given axis value matches."""

    match: dict[str, Any]
    outcome: dict[str, Any]


@dataclass(frozen=True)
class Scenario:
    path: Path
    name: str
    summary: str
    source: str
    host: Host
    events: Events
    workload: Workload
    guest: GuestSetup
    fix: str | None
    base_expect: Expect
    cases: tuple[Case, ...] = ()
    notes: tuple[str, ...] = field(default=())

    def axes(self) -> dict[str, Any]:
        """This scenario's axis values, as `[[expect.case]]` tables name them."""
        return {
            "release": self.host.release,
            "libvirt_firewall_backend": self.host.libvirt_firewall_backend,
            "firewalld_backend": self.host.firewalld_backend,
            "docker_iptables": self.host.docker_iptables,
            "start_order": list(self.host.start_order),
            "firewalld": self.host.firewalld,
            "network": self.guest.network,
            "ipv6": self.guest.ipv6,
            "after_setup": list(self.events.after_setup),
            "after_fix": list(self.events.after_fix),
        }

    @property
    def expect(self) -> Expect:
        """The expected outcome for this scenario's axis values."""
        axes = self.axes()
        outcome = dataclasses.asdict(self.base_expect)
        notes = list(self.base_expect.notes)
        for case in self.cases:
            if all(axes[key] == value for key, value in case.match.items()):
                notes += [case.outcome["note"]] if "note" in case.outcome else []
                outcome.update({k: v for k, v in case.outcome.items() if k != "note"})
        outcome["notes"] = tuple(notes)
        for after, before in (("published_port_after_fix", "published_port"),
                              ("docker_isolation_after_fix", "docker_isolation")):
            if outcome[after] is None:   # unstated: as before the fix
                outcome[after] = outcome[before]
        return Expect(**outcome)

    def variant(self, **axes: Any) -> Scenario:
        """The same scenario with other axis values (validated like a file)."""
        host = {k: axes.pop(k) for k in list(axes) if k in _SCHEMA["host"]}
        events = {k: axes.pop(k) for k in list(axes) if k in _SCHEMA["events"]}
        guest = {k: axes.pop(k) for k in list(axes) if k in _SCHEMA["guest"]}
        if axes:
            raise ScenarioError(self.path, "variant", f"unknown axes {sorted(axes)}")
        where = f"{self.path} (variant {host | events | guest})"
        new_host = _host(where, {**_host_data(self.host), **host})
        new_events = _events(where, {"after_setup": list(self.events.after_setup),
                                     "after_fix": list(self.events.after_fix), **events})
        new_guest = _guest(where, {**dataclasses.asdict(self.guest), **guest})
        return dataclasses.replace(self, host=new_host, events=new_events, guest=new_guest)

    def label(self) -> str:
        """A short description of the axis values, for reports."""
        h = self.host
        parts = [h.release, f"libvirt:{h.libvirt_firewall_backend}",
                 "order:" + ">".join(h.start_order)]
        if self.guest.network != "default":
            parts.append(f"network:{self.guest.network}")
        if self.guest.ipv6:
            parts.append("ipv6")
        if h.firewalld_backend != "default":
            parts.append(f"firewalld:{h.firewalld_backend}")
        if h.docker_iptables != "default":
            parts.append(f"docker-iptables:{h.docker_iptables}")
        if self.events.after_setup:
            parts.append("events:" + ",".join(self.events.after_setup))
        if self.events.after_fix:
            parts.append("after-fix:" + ",".join(self.events.after_fix))
        return " ".join(parts)


_SCHEMA: dict[str, dict[str, type | tuple[type, ...]]] = {
    "scenario": {"name": str, "summary": str, "source": str, "notes": list},
    "host": {"release": str, "libvirt_firewall_backend": str, "firewalld_backend": str,
             "docker_iptables": str, "start_order": list},
    "events": {"after_setup": list, "after_fix": list},
    "guest": {"network": str, "ipv6": bool},
    "workload": {"published_port": int, "isolated_networks": bool},
    "fix": {"name": str},
    "expect": {"symptom": bool, "dns_before": bool, "ipv6_before": bool, "fix_effective": bool,
               "published_port": bool,
               "published_port_after_fix": bool, "survives_events": bool,
               "docker_isolation": bool, "docker_isolation_after_fix": bool, "case": list},
}
_REQUIRED = {"scenario": ("name", "summary"), "expect": ("symptom",)}
_CASE_MATCH: dict[str, type] = {
    "release": str, "libvirt_firewall_backend": str, "firewalld_backend": str,
    "docker_iptables": str, "start_order": list, "firewalld": bool, "after_setup": list,
    "after_fix": list, "network": str, "ipv6": bool}
# A case states any of [expect]'s outcomes (not further cases), and why.
_CASE_OUTCOME: dict[str, type | tuple[type, ...]] = {
    **{k: v for k, v in _SCHEMA["expect"].items() if k != "case"}, "note": str}


def load(path: Path | str) -> Scenario:
    """Read and validate a scenario file."""
    path = Path(path)
    if not path.is_file():
        raise ScenarioError(path, "file", "no such scenario file")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ScenarioError(path, "file", f"not valid TOML: {error}") from error
    return parse(data, path)


def parse(data: dict[str, Any], path: Path | str = "<scenario>") -> Scenario:
    """Validate already-parsed TOML data: unknown keys, types and allowed values are all errors."""
    path = Path(path)
    for table, value in data.items():
        if table not in _SCHEMA:
            raise ScenarioError(path, f"[{table}]", f"unknown table; allowed: {_names(_SCHEMA)}")
        if not isinstance(value, dict):
            raise ScenarioError(path, table, "must be a table ([...])")
        _check_types(path, table, value, _SCHEMA[table])
    for table, keys in _REQUIRED.items():
        for key in keys:
            if key not in data.get(table, {}):
                raise ScenarioError(path, f"{table}.{key}", "is required")

    meta = data["scenario"]
    host = _host(path, data.get("host", {}))
    events = _events(path, data.get("events", {}))
    guest = _guest(path, data.get("guest", {}))
    workload_data = data.get("workload", {})
    port = workload_data.get("published_port", Workload.published_port)
    if port is not None and not 1 <= port <= 65535:
        raise ScenarioError(path, "workload.published_port", f"must be 1..65535, got {port}")
    fix = data.get("fix", {}).get("name")
    if fix is not None:
        from harness import fixes

        if fix not in fixes.ALL:
            raise ScenarioError(path, "fix.name",
                                f"unknown fix {fix!r}; known: {', '.join(fixes.ALL)}")
    expect_data = data["expect"]
    _require_together(path, "fix_effective", fix is not None, expect_data, "[fix]")
    if events.after_fix and "survives_events" not in expect_data:
        raise ScenarioError(path, "expect.survives_events",
                            "is required when the scenario has events.after_fix")
    workload = Workload(published_port=port, isolated_networks=workload_data.get(
        "isolated_networks", Workload.isolated_networks))
    for keys, probed, because in (
            (("docker_isolation", "docker_isolation_after_fix"), workload.isolated_networks,
             "the scenario probes no Docker isolation (workload.isolated_networks = true)"),
            (("ipv6_before",), guest.ipv6, "the guest has no IPv6 (guest.ipv6 = true)")):
        for key in keys:
            if key in expect_data and not probed:
                raise ScenarioError(path, f"expect.{key}", f"given, but {because}")
    if events.after_fix and fix is None:
        raise ScenarioError(path, "events.after_fix", "given, but the scenario has no [fix]")
    return Scenario(
        path=path,
        name=meta["name"],
        summary=meta["summary"],
        source=meta.get("source", ""),
        notes=tuple(_strings(path, "scenario.notes", meta.get("notes", []))),
        host=host,
        events=events,
        workload=workload,
        guest=guest,
        fix=fix,
        # Every [expect] key but `case` is an Expect field (types checked above); the rest default.
        base_expect=Expect(**{k: v for k, v in expect_data.items() if k != "case"}),
        cases=tuple(_case(path, i, c) for i, c in enumerate(expect_data.get("case", []))),
    )


def _host_data(host: Host) -> dict[str, Any]:
    data = dataclasses.asdict(host)
    data["start_order"] = list(host.start_order)
    return data


def _host(path: Path | str, data: dict[str, Any]) -> Host:
    _check_types(path, "host", data, _SCHEMA["host"])
    return Host(
        release=_choice(path, "host.release", data.get("release", Host.release), RELEASES),
        libvirt_firewall_backend=_choice(
            path, "host.libvirt_firewall_backend",
            data.get("libvirt_firewall_backend", Host.libvirt_firewall_backend), LIBVIRT_BACKENDS),
        firewalld_backend=_choice(path, "host.firewalld_backend",
                                  data.get("firewalld_backend", Host.firewalld_backend),
                                  FIREWALLD_BACKENDS),
        docker_iptables=_choice(path, "host.docker_iptables",
                                data.get("docker_iptables", Host.docker_iptables),
                                DOCKER_IPTABLES),
        start_order=_start_order(path, data.get("start_order", list(Host.start_order))),
    )


def _guest(path: Path | str, data: dict[str, Any]) -> GuestSetup:
    _check_types(path, "guest", data, _SCHEMA["guest"])
    network = _choice(path, "guest.network", data.get("network", GuestSetup.network), GUEST_NETWORKS)
    ipv6 = data.get("ipv6", GuestSetup.ipv6)
    if ipv6 and network == "bridged":
        raise ScenarioError(path, "guest.ipv6", "only on a libvirt network (default, nat2, routed), "
                                                "not with network = \"bridged\"")
    return GuestSetup(network=network, ipv6=ipv6)


def _events(path: Path | str, data: dict[str, Any]) -> Events:
    _check_types(path, "events", data, _SCHEMA["events"])
    lists = {}
    for key in ("after_setup", "after_fix"):
        values = _strings(path, f"events.{key}", data.get(key, []))
        for value in values:
            _choice(path, f"events.{key}", value, EVENTS)
        lists[key] = tuple(values)
    return Events(**lists)


def _case(path: Path, index: int, data: Any) -> Case:
    where = f"expect.case[{index}]"
    if not isinstance(data, dict):
        raise ScenarioError(path, where, "must be a table ([[expect.case]])")
    match = {k: v for k, v in data.items() if k in _CASE_MATCH}
    outcome = {k: v for k, v in data.items() if k in _CASE_OUTCOME}
    unknown = set(data) - set(match) - set(outcome)
    if unknown:
        raise ScenarioError(path, f"{where}.{sorted(unknown)[0]}",
                            f"unknown key; allowed: {_names(_CASE_MATCH)}, {_names(_CASE_OUTCOME)}")
    _check_types(path, where, data, {**_CASE_MATCH, **_CASE_OUTCOME})
    if not match:
        raise ScenarioError(path, where, f"matches nothing: give one of {_names(_CASE_MATCH)}")
    if not set(outcome) - {"note"}:
        raise ScenarioError(path, where, "states no outcome: give one of "
                            f"{_names({k: v for k, v in _CASE_OUTCOME.items() if k != 'note'})}")
    allowed = {"release": RELEASES, "libvirt_firewall_backend": LIBVIRT_BACKENDS,
               "firewalld_backend": FIREWALLD_BACKENDS, "docker_iptables": DOCKER_IPTABLES,
               "network": GUEST_NETWORKS}
    for key, choices in allowed.items():
        if key in match:
            _choice(path, f"{where}.{key}", match[key], choices)
    if "start_order" in match:
        _start_order(path, match["start_order"], f"{where}.start_order")
    return Case(match, outcome)


def _check_types(path: Path | str, table: str, values: dict[str, Any],
                 allowed: dict[str, type | tuple[type, ...]]) -> None:
    for key, item in values.items():
        if key not in allowed:
            raise ScenarioError(path, f"{table}.{key}", f"unknown key; allowed: {_names(allowed)}")
        expected = allowed[key]
        if isinstance(item, bool) and expected is int or not isinstance(item, expected):
            kind = expected.__name__ if isinstance(expected, type) else str(expected)
            raise ScenarioError(path, f"{table}.{key}", f"must be a {kind}, got {item!r}")


def _require_together(path: Path, key: str, needed: bool, expect: dict[str, Any],
                      because: str) -> None:
    """`key` is required when `needed`, and an error otherwise."""
    if needed and key not in expect:
        raise ScenarioError(path, f"expect.{key}", f"is required when the scenario has {because}")
    if not needed and key in expect:
        raise ScenarioError(path, f"expect.{key}", f"given, but the scenario has no {because}")


def _names(allowed: dict[str, Any]) -> str:
    return ", ".join(allowed)


def _choice(path: Path | str, where: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ScenarioError(path, where, f"{value!r} is not allowed; allowed: {', '.join(allowed)}")
    return value


def _strings(path: Path | str, where: str, values: list[Any]) -> list[str]:
    for value in values:
        if not isinstance(value, str):
            raise ScenarioError(path, where, f"must be a list of strings, got {value!r}")
    return values


def _start_order(path: Path | str, order: list[Any], where: str = "host.start_order",
                 ) -> tuple[str, ...]:
    for item in _strings(path, where, order):
        _choice(path, where, item, STARTABLE)
    if len(set(order)) != len(order):
        raise ScenarioError(path, where, f"names a daemon twice: {order}")
    if "libvirt" not in order:
        raise ScenarioError(path, where, "must include 'libvirt' (the guest needs its network)")
    return tuple(order)
