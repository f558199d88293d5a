"""One table of axes (coexist.scenario.axes): every axis in it is a flag of `coexist matrix`, an
`--axis` of the plugin, a key of [[case]], a part of the label and validated like a file, all
derived from its entry."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from coexist import cli
from coexist.base.schema import ScenarioError
from coexist.pytest_plugin import _axis_help, axes_from
from coexist.report.matrix import cross
from coexist.scenario.axes import AXES, CROSSED, HOST_AXES, Home, Kind
from coexist.scenario.host import Host
from coexist.scenario.model import Scenario, parse

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
REFERENCE = (ROOT / "docs" / "reference.md").read_text()   # the scenario file's tables
BASE = parse({"scenario": {"name": "s", "summary": "s"},
              "step": [{"do": "boot"}, {"axis": "after_setup"}, {"axis": "after_fix"}]})
# an axis value other than the default, as a flag writes it and as the scenario keeps it
OTHER: dict[Kind, tuple[str, Any]] = {
    Kind.YES_NO: ("true", True), Kind.ORDER: ("dockerd+libvirt", ["dockerd", "libvirt"]),
    Kind.EVENTS: ("guest-restart+host-reboot", ["guest-restart", "host-reboot"])}


def other(name: str) -> tuple[str, Any]:
    axis = AXES[name]
    if axis.kind is Kind.CHOICE:
        value = next(v for v in axis.values if v != axis.default)
        return value, value
    return OTHER[axis.kind]


@pytest.mark.parametrize("name", [axis.name for axis in CROSSED])
def test_every_crossed_axis_is_a_matrix_flag_and_an_axis_option(name: str) -> None:
    axis = AXES[name]
    flag, value = other(name)
    args = cli._parser().parse_args(["matrix", "x.toml", f"--{axis.flag}", flag])
    [values] = getattr(args, name)
    option = f"{name}={axis.to_option(values)}"
    assert option == f"{name}={flag}"   # the flag and --axis write a value alike
    one = cli._parser().parse_args(["run", "x.toml", f"--{axis.flag}", flag])
    assert getattr(one, name) == values
    assert name in _axis_help()
    [variant] = cross([BASE], axes_from([option]))
    assert variant.axes()[name] == value
    assert variant.label() != BASE.label()   # a crossed axis shows in the label


@pytest.mark.parametrize("name", list(AXES))
def test_every_axis_is_matched_by_a_case(name: str) -> None:
    axis = AXES[name]
    matched = (other(name)[1] if axis.home is not Home.DERIVED
               else not BASE.axes()[name])
    scenario = parse({"scenario": {"name": "s", "summary": "s"},
                      "step": [{"do": "boot"}, {"axis": "after_setup"}, {"axis": "after_fix"}],
                      "case": [{name: matched, "expect": {"boot": {"ping": False}}}]})
    assert scenario.steps[0].expect.guest == {}
    follows = {"firewalld": {"start_order": ["dockerd", "libvirt"]}}.get(name, {name: matched})
    assert scenario.variant(**follows).steps[0].expect.guest == {"ping": False}


@pytest.mark.parametrize("name", list(AXES))
def test_every_axis_is_validated_in_a_case_and_a_variant(name: str) -> None:
    axis = AXES[name]
    bad = {Kind.CHOICE: "nope", Kind.YES_NO: "nope", Kind.ORDER: ["nope"], Kind.EVENTS: ["nope"],
           Kind.DERIVED: "nope"}[axis.kind]
    with pytest.raises(ScenarioError, match=f"case\\[0\\].{name}: "):
        parse({"scenario": {"name": "s", "summary": "s"}, "step": [{"do": "boot"}],
               "case": [{name: bad, "expect": {"boot": {"ping": False}}}]})
    if axis.flag is not None:
        with pytest.raises(ScenarioError, match=f"\\.{name}: "):
            BASE.variant(**{name: bad})


def test_every_host_axis_is_a_field_of_the_host() -> None:
    fields = [f.name for f in dataclasses.fields(Host)]
    assert [axis.name for axis in HOST_AXES] == fields[:len(HOST_AXES)]


def test_the_docs_name_every_axis_and_every_flag() -> None:
    case_row = next(line for line in REFERENCE.splitlines() if line.startswith("| `[[case]]` |"))
    matrix = README.split("## The distro-upgrade matrix", 1)[1].split("\n## ", 1)[0]
    assert [name for name in AXES if f"`{name}`" not in case_row] == []
    assert [a.flag for a in CROSSED if f"--{a.flag} " not in matrix] == []


def test_axes_keep_their_order_in_verdict_json_and_their_label() -> None:
    scenario: Scenario = BASE.variant(network="nat2", ipv6=True, firewalld_backend="iptables",
                                      docker_iptables="legacy", after_setup=["guest-restart"],
                                      after_fix=["host-reboot"])
    assert list(scenario.axes()) == ["release", "libvirt_firewall_backend", "firewalld_backend",
                                     "docker_iptables", "start_order", "firewalld", "network", "ipv6",
                                     "after_setup", "after_fix"]
    assert scenario.label() == ("trixie libvirt:default order:firewalld>dockerd>libvirt network:nat2 ipv6 "
                                "firewalld:iptables docker-iptables:legacy events:guest-restart "
                                "after-fix:host-reboot")
