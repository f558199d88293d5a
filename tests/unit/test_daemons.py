"""The daemons' names and the one mapping from what a scenario starts or a fix needs to the daemon
that must run (no lab: a Lab object whose daemons are stand-ins)."""

from __future__ import annotations

from typing import Any

import pytest
from coexist.base.commands import Command, Result
from coexist.host.daemons import Daemon, Service, spec
from coexist.host.lab import Lab
from coexist.scenario.events import Event
from coexist.scenario.fixes import Fix


def test_each_service_maps_to_the_daemon_that_must_run() -> None:
    assert {service.value: service.daemon for service in Service} == {
        "firewalld": Daemon.FIREWALLD, "dockerd": Daemon.DOCKERD, "libvirt": Daemon.LIBVIRTD}


def test_every_daemon_has_a_spec_named_for_it_and_its_requirements_have_specs_too() -> None:
    for daemon in Daemon:
        made = spec(daemon, owner="1.2")
        assert made.name is daemon and all(spec(r, owner="1.2").name is r for r in made.requires)
    assert "/coexist-1.2" in spec(Daemon.DOCKERD, owner="1.2").argv


def test_every_event_needs_a_service_or_nothing() -> None:
    assert Event("libvirtd-restart").needs is Service.LIBVIRT
    assert Event("host-reboot").needs is None


class _Running:
    def poll(self) -> None:
        return None


class _StandInLab(Lab):
    """A Lab whose daemons are stand-ins and whose commands only get recorded."""

    def __init__(self, running: tuple[Daemon, ...]) -> None:   # no namespaces, nothing started
        self.name, self.where, self.quiet, self.timeout = "unit", "lab unit", True, 1.0
        self._daemons: dict[Daemon, Any] = {d: (_Running(), None) for d in running}
        self.ran: list[Command] = []

    def execute(self, command: Command, *, timeout: float | None = None) -> Result:
        self.ran.append(command)
        return Result(0, "")


def test_a_fix_that_needs_libvirt_applies_when_libvirtd_runs() -> None:
    """The bug of two copies of the rule: Lab.apply asked for a daemon called "libvirt"."""
    lab = _StandInLab(running=(Daemon.VIRTLOGD, Daemon.LIBVIRTD))
    lab.apply(Fix(name="user-fix", summary="s", commands=("virsh net-list",), needs=("libvirt",)))
    assert lab.ran == ["virsh net-list"]


def test_a_fix_whose_service_is_not_running_is_refused_before_any_command() -> None:
    lab = _StandInLab(running=(Daemon.LIBVIRTD,))
    with pytest.raises(RuntimeError, match="needs firewalld, dockerd running"):
        lab.apply(Fix(name="f", summary="s", commands=("true",), needs=("libvirt", "firewalld", "dockerd")))
    assert lab.ran == []
