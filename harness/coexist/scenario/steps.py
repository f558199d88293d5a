"""A scenario's steps, in order: what happens (boot, admin commands, events, fixes, reverts, the
matrix's event axes) and what must hold after each; validated when the file is loaded."""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from coexist.base.schema import FieldError, check_types, choice, strings, within
from coexist.host.daemons import Service
from coexist.scenario.expect import Expect, parse_expect
from coexist.scenario.fixes import Fix


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
AXIS_EVENTS = ("after_setup", "after_fix")
STEP_KINDS = ("do", "run", "event", "fix", "revert", "axis")
DO = ("boot", "measure")
SETTLE_DEFAULT = 30.0   # seconds a step's measurement may take to settle
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
_STEP_FIELDS: dict[str, type | tuple[type, ...]] = {
    "id": str, "do": str, "run": list, "event": (str, list), "fix": str, "revert": str,
    "axis": str, "params": dict, "expect": dict, "settle": (int, float), "note": str}


@dataclass(frozen=True)
class Step:
    id: str
    kind: str                            # do | run | event | fix | revert | axis
    do: str = ""                         # boot | measure
    commands: tuple[str, ...] = ()       # run: verbatim host commands
    events: tuple[str, ...] = ()         # event (or the axis's events)
    fix: Fix | None = None               # fix, revert
    axis: str | None = None              # axis: after_setup | after_fix
    expect: Expect = field(default_factory=Expect)
    settle: float = SETTLE_DEFAULT

    def label(self) -> str:
        if self.kind == "do":
            return "boot: daemons in start order, guests up" if self.do == "boot" else "measure again"
        if self.kind == "run":
            return "admin: " + "; ".join(f"host# {c}" for c in self.commands)
        if self.kind == "fix":
            assert self.fix is not None
            return f"fix {self.fix.name}"
        if self.kind == "revert":
            assert self.fix is not None
            return f"revert {self.fix.name}"
        return "event: " + ", ".join(self.events)

    def expect_summary(self) -> str:
        e = self.expect
        parts = [f"{k} = {json.dumps(v)}" for k, v in {**e.guest, **e.host}.items()]
        parts += [f"{g}.{k} = {json.dumps(v)}" for g, vals in e.per_guest.items() for k, v in vals.items()]
        return "expected: " + ", ".join(parts) if parts else "nothing stated"


def parse_steps(tables: list[Any], known_fixes: dict[str, Fix], guests: tuple[str, ...]) -> tuple[Step, ...]:
    if not tables:
        raise FieldError("step", "is required: at least [[step]] do = \"boot\"")
    steps: list[Step] = []
    for index, table in enumerate(tables):
        where = f"step[{index}]"
        if not isinstance(table, dict):
            raise FieldError(where, "must be a table ([[step]])")
        check_types(where, table, _STEP_FIELDS)
        kinds = [k for k in STEP_KINDS if k in table]
        if len(kinds) != 1:
            raise FieldError(where, f"give exactly one of {', '.join(STEP_KINDS)}"
                             + (f", not {kinds}" if kinds else ""))
        kind = kinds[0]
        step = Step(id="", kind=kind)
        if kind == "do":
            step = dataclasses.replace(step, do=choice(f"{where}.do", table["do"], DO))
            if (step.do == "boot") != (index == 0):
                raise FieldError(f"{where}.do", "the first step, and only it, is do = \"boot\"")
        elif index == 0:
            raise FieldError(where, "the first step must be do = \"boot\" (daemons up, guests up)")
        elif kind == "run":
            commands = strings(f"{where}.run", table["run"])
            if not commands or not all(c.strip() for c in commands):
                raise FieldError(f"{where}.run", "a list of host commands, each run verbatim")
            step = dataclasses.replace(step, commands=tuple(commands))
        elif kind == "event":
            value = table["event"]
            events = event_list(f"{where}.event", [value] if isinstance(value, str) else value)
            if not events:
                raise FieldError(f"{where}.event", "names no event")
            step = dataclasses.replace(step, events=tuple(events))
        elif kind == "axis":
            axis = choice(f"{where}.axis", table["axis"], AXIS_EVENTS)
            if any(s.axis == axis for s in steps):
                raise FieldError(f"{where}.axis", f"a second step with axis = \"{axis}\"")
            step = dataclasses.replace(step, axis=axis)
        else:
            name = table[kind]
            if name not in known_fixes:
                raise FieldError(f"{where}.{kind}", f"unknown fix {name!r}; known: "
                                 f"{', '.join(known_fixes)} (or define [fix.{name}])")
            with within(where):
                fix = known_fixes[name].with_params(table.get("params", {}))
            if kind == "revert" and not fix.revert:
                raise FieldError(f"{where}.revert", f"fix {name} has no revert commands")
            step = dataclasses.replace(step, fix=fix)
        if "params" in table and kind not in ("fix", "revert"):
            raise FieldError(f"{where}.params", "only with fix = or revert =")
        settle = table.get("settle", SETTLE_DEFAULT)
        if not 1 <= settle <= 300:
            raise FieldError(f"{where}.settle", f"seconds, 1..300, got {settle}")
        step_id = table.get("id") or _unique(_default_id(step), [s.id for s in steps])
        if not _ID.fullmatch(step_id):
            raise FieldError(f"{where}.id", f"{step_id!r}: lower-case letters, digits, '-'")
        if step_id in [s.id for s in steps]:
            raise FieldError(f"{where}.id", f"two steps are called {step_id!r}")
        with within(f"{where}.expect"):
            expect = parse_expect(table.get("expect", {}), guests)
        steps.append(dataclasses.replace(step, id=step_id, expect=expect, settle=float(settle)))
    return tuple(steps)


def _default_id(step: Step) -> str:
    if step.kind == "do":
        return step.do
    if step.kind == "run":
        return "admin"
    if step.kind == "event":
        return step.events[0] if len(step.events) == 1 else "events"
    if step.kind == "axis":
        assert step.axis is not None
        return step.axis.replace("_", "-")
    assert step.fix is not None
    return step.fix.name if step.kind == "fix" else f"revert-{step.fix.name}"


def _unique(base: str, taken: list[str]) -> str:
    candidate, number = base, 1
    while candidate in taken:
        number += 1
        candidate = f"{base}-{number}"
    return candidate


def event_list(where: str, values: Any) -> list[str]:
    if not isinstance(values, list | tuple):
        raise FieldError(where, f"must be a list of events, got {values!r}")
    for value in strings(where, list(values)):
        choice(where, value, EVENTS)
    return list(values)
