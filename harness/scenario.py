"""Scenarios are data: a TOML file validated when loaded, with errors naming the file and field."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RELEASES = ("bookworm", "trixie", "forky")
LIBVIRT_BACKENDS = ("default", "iptables", "nftables")
STARTABLE = ("firewalld", "dockerd", "libvirt")


class ScenarioError(ValueError):
    """A scenario file is malformed; the message names the file, the field and what is allowed."""

    def __init__(self, path: Path | str, where: str, problem: str) -> None:
        self.path, self.where, self.problem = str(path), where, problem
        super().__init__(f"{path}: {where}: {problem}")


@dataclass(frozen=True)
class Host:
    release: str = "trixie"
    libvirt_firewall_backend: str = "default"
    start_order: tuple[str, ...] = ("firewalld", "dockerd", "libvirt")


@dataclass(frozen=True)
class Workload:
    published_port: int | None = 8080  # a container publishing this port; None: no container


@dataclass(frozen=True)
class Expect:
    symptom: bool  # DNS works, ping and TCP to the outside fail (before any fix)
    fix_effective: bool | None = None  # after the fix: DNS, ping and TCP all work
    published_port: bool = True  # the container's published port answers from outside


@dataclass(frozen=True)
class Scenario:
    path: Path
    name: str
    summary: str
    source: str
    host: Host
    workload: Workload
    fix: str | None
    expect: Expect
    notes: tuple[str, ...] = field(default=())


_SCHEMA: dict[str, dict[str, type | tuple[type, ...]]] = {
    "scenario": {"name": str, "summary": str, "source": str, "notes": list},
    "host": {"release": str, "libvirt_firewall_backend": str, "start_order": list},
    "workload": {"published_port": int},
    "fix": {"name": str},
    "expect": {"symptom": bool, "fix_effective": bool, "published_port": bool},
}
_REQUIRED = {"scenario": ("name", "summary"), "expect": ("symptom",)}


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
        for key, item in value.items():
            allowed = _SCHEMA[table]
            if key not in allowed:
                raise ScenarioError(path, f"{table}.{key}", f"unknown key; allowed: {_names(allowed)}")
            expected = allowed[key]
            if isinstance(item, bool) and expected is int or not isinstance(item, expected):
                kind = expected.__name__ if isinstance(expected, type) else str(expected)
                raise ScenarioError(path, f"{table}.{key}", f"must be a {kind}, got {item!r}")
    for table, keys in _REQUIRED.items():
        for key in keys:
            if key not in data.get(table, {}):
                raise ScenarioError(path, f"{table}.{key}", "is required")

    meta, host_data = data["scenario"], data.get("host", {})
    host = Host(
        release=_choice(path, "host.release", host_data.get("release", Host.release), RELEASES),
        libvirt_firewall_backend=_choice(
            path,
            "host.libvirt_firewall_backend",
            host_data.get("libvirt_firewall_backend", Host.libvirt_firewall_backend),
            LIBVIRT_BACKENDS,
        ),
        start_order=_start_order(path, host_data.get("start_order", list(Host.start_order))),
    )
    port = data.get("workload", {}).get("published_port", Workload.published_port)
    if port is not None and not 1 <= port <= 65535:
        raise ScenarioError(path, "workload.published_port", f"must be 1..65535, got {port}")
    fix = data.get("fix", {}).get("name")
    if fix is not None:
        from harness import fixes

        if fix not in fixes.ALL:
            raise ScenarioError(path, "fix.name", f"unknown fix {fix!r}; known: {', '.join(fixes.ALL)}")
    expect_data = data["expect"]
    if fix is None and "fix_effective" in expect_data:
        raise ScenarioError(path, "expect.fix_effective", "given, but the scenario has no [fix]")
    if fix is not None and "fix_effective" not in expect_data:
        raise ScenarioError(path, "expect.fix_effective", "is required when the scenario has a [fix]")
    return Scenario(
        path=path,
        name=meta["name"],
        summary=meta["summary"],
        source=meta.get("source", ""),
        notes=tuple(_strings(path, "scenario.notes", meta.get("notes", []))),
        host=host,
        workload=Workload(published_port=port),
        fix=fix,
        expect=Expect(
            symptom=expect_data["symptom"],
            fix_effective=expect_data.get("fix_effective"),
            published_port=expect_data.get("published_port", Expect.published_port),
        ),
    )


def _names(allowed: dict[str, Any]) -> str:
    return ", ".join(allowed)


def _choice(path: Path, where: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ScenarioError(path, where, f"{value!r} is not allowed; allowed: {', '.join(allowed)}")
    return value


def _strings(path: Path, where: str, values: list[Any]) -> list[str]:
    for value in values:
        if not isinstance(value, str):
            raise ScenarioError(path, where, f"must be a list of strings, got {value!r}")
    return values


def _start_order(path: Path, order: list[Any]) -> tuple[str, ...]:
    where = "host.start_order"
    for item in _strings(path, where, order):
        _choice(path, where, item, STARTABLE)
    if len(set(order)) != len(order):
        raise ScenarioError(path, where, f"names a daemon twice: {order}")
    if "libvirt" not in order:
        raise ScenarioError(path, where, "must include 'libvirt' (the guest needs its network)")
    return tuple(order)
