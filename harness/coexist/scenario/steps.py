"""A scenario's steps, in order: what happens (boot, admin commands, events, fixes, reverts, the
matrix's event axes) and what must hold after each; validated when the file is loaded.

A step is one of the typed variants below (`Step`), each with what it needs and nothing else;
every step has an id, its expectations and its settle time. A new kind of step is a class here
(its `kind`, label and default id), its parser in `_KINDS`, and what it does in
coexist.run.runner (a `match` that mypy checks covers every variant).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from coexist.base.schema import (
    Collected,
    FieldError,
    Said,
    choice,
    strings,
    unknown,
    within,
)
from coexist.scenario.axes import EVENT_AXES, RELEASES
from coexist.scenario.events import EVENTS as EVENTS  # re-exported: the steps' events
from coexist.scenario.events import Event as Event
from coexist.scenario.events import event_list
from coexist.scenario.expect import Expect, parse_expect
from coexist.scenario.fixes import Fix

DO = ("boot", "measure")
SETTLE_DEFAULT = 30.0   # seconds a step's measurement may take to settle
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")


@dataclass(frozen=True, kw_only=True)
class StepBase:
    """What every step has: its id, what must hold after it, how long its measurement may settle."""

    id: str = ""
    expect: Expect = field(default_factory=Expect)
    settle: float = SETTLE_DEFAULT
    kind: ClassVar[str]   # the step table's key, as verdict.json's "kind" says it

    def label(self) -> str:
        raise NotImplementedError

    def default_id(self) -> str:
        raise NotImplementedError

    def expect_summary(self) -> str:
        e = self.expect
        parts = [f"{k} = {json.dumps(v)}" for k, v in {**e.guest, **e.host}.items()]
        parts += [f"{g}.{k} = {json.dumps(v)}" for g, vals in e.per_guest.items() for k, v in vals.items()]
        return "expected: " + ", ".join(parts) if parts else "nothing stated"


@dataclass(frozen=True)
class Boot(StepBase):
    """`do = "boot"`: the daemons in start order, the workload, the guests up (the first step)."""

    kind: ClassVar[str] = "do"

    def label(self) -> str:
        return "boot: daemons in start order, guests up"

    def default_id(self) -> str:
        return "boot"


@dataclass(frozen=True)
class Measure(StepBase):
    """`do = "measure"`: nothing happens; measure again."""

    kind: ClassVar[str] = "do"

    def label(self) -> str:
        return "measure again"

    def default_id(self) -> str:
        return "measure"


@dataclass(frozen=True)
class Admin(StepBase):
    """`run = [...]`: host commands, verbatim, as the admin typed them."""

    commands: tuple[str, ...]
    kind: ClassVar[str] = "run"

    def label(self) -> str:
        return "admin: " + "; ".join(f"host# {c}" for c in self.commands)

    def default_id(self) -> str:
        return "admin"


@dataclass(frozen=True)
class Events(StepBase):
    """`event = ...`: events happen, in order."""

    events: tuple[Event, ...]
    kind: ClassVar[str] = "event"

    def label(self) -> str:
        return "event: " + ", ".join(self.events)

    def default_id(self) -> str:
        return self.events[0].value if len(self.events) == 1 else "events"


@dataclass(frozen=True)
class ApplyFix(StepBase):
    """`fix = "name"`: a fix's settings written, its commands run verbatim, its events made to
    happen (`then`), then its host checks."""

    fix: Fix
    kind: ClassVar[str] = "fix"

    def label(self) -> str:
        parts = [f"{part} {key} = {json.dumps(value)}" for part, table in self.fix.settings.items()
                 for key, value in table.items()]
        said = f" (settings: {'; '.join(parts)})" if parts else ""
        said += "".join(f" (after every start of {service}: {'; '.join(run)})"
                        for service, run in self.fix.after_start.items())
        if self.fix.start_before:
            said += f" ({self.fix.start_before[0]} now starts right before {self.fix.start_before[1]})"
        then = f", then {', '.join(self.fix.then)}" if self.fix.then else ""
        return f"fix {self.fix.name}{said}{then}"

    def default_id(self) -> str:
        return self.fix.name


@dataclass(frozen=True)
class RevertFix(StepBase):
    """`revert = "name"`: a fix's revert commands."""

    fix: Fix
    kind: ClassVar[str] = "revert"

    def label(self) -> str:
        return f"revert {self.fix.name}"

    def default_id(self) -> str:
        return f"revert-{self.fix.name}"


@dataclass(frozen=True)
class AxisEvents(StepBase):
    """`axis = "after_fix"`: the events of a matrix axis (none until a scenario's axis values
    give them: then the step is left out)."""

    axis: str
    events: tuple[Event, ...] = ()
    kind: ClassVar[str] = "axis"

    def label(self) -> str:
        return "event: " + ", ".join(self.events)

    def default_id(self) -> str:
        return self.axis.replace("_", "-")


@dataclass(frozen=True)
class Upgrade(StepBase):
    """`upgrade = "<release>"`: the running host upgraded in place to the next Debian release
    (apt full-upgrade from packages prepared beforehand, no daemon restarted by it), then
    rebooted, as the release notes say (the new daemons start in boot order, the guests
    autostart); measured after the reboot. `conffiles = "keep"` (dpkg's and ucf's: keep the
    admin's changed files), `"new"` (take the package's) or `"default"` (whatever dpkg and ucf
    answer by default, as apt run with only --force-confdef does)."""

    target: str
    conffiles: str = "keep"
    kind: ClassVar[str] = "upgrade"

    def label(self) -> str:
        return f"upgrade to {self.target} (apt full-upgrade; conffiles: {self.conffiles}), then host-reboot"

    def default_id(self) -> str:
        return "upgrade"


Step = Boot | Measure | Admin | Events | ApplyFix | RevertFix | AxisEvents | Upgrade
CONFFILES = ("keep", "new", "default")   # an upgrade step's conffile policy


def touches_firewalld(step: Step) -> bool:
    """The step reloads or restarts firewalld (what Docker's rules go through is then measured)."""
    return any(event in (Event.FIREWALLD_RELOAD, Event.FIREWALLD_RESTART) for event in events_of(step))


def events_of(step: Step) -> tuple[Event, ...]:
    """The events a step makes happen (none for steps that are not events)."""
    match step:
        case Events(events=events) | AxisEvents(events=events):
            return events
        case ApplyFix(fix=fix):
            return fix.then
        case Upgrade():
            return (Event.HOST_REBOOT,)
        case _:
            return ()


@dataclass(frozen=True)
class _At:
    """Where a step table sits, and what the steps before it and the scenario's fixes are."""

    where: str
    index: int
    earlier: list[Step]
    fixes: dict[str, Fix]
    table: dict[str, Any]
    complete: bool = True   # `fixes` holds every fix the file defines (none failed its validation)


def _do(value: Any, at: _At) -> Step:
    do = choice(f"{at.where}.do", value, DO)
    if (do == "boot") != (at.index == 0):
        raise FieldError(f"{at.where}.do", "the first step, and only it, is do = \"boot\"")
    return Boot() if do == "boot" else Measure()


def _run(value: Any, at: _At) -> Step:
    commands = strings(f"{at.where}.run", value)
    if not commands or not all(c.strip() for c in commands):
        raise FieldError(f"{at.where}.run", "a list of host commands, each run verbatim")
    return Admin(tuple(commands))


def _event(value: Any, at: _At) -> Step:
    events = event_list(f"{at.where}.event", [value] if isinstance(value, str) else value)
    if not events:
        raise FieldError(f"{at.where}.event", "names no event")
    return Events(events)


def _fix(key: str, value: Any, at: _At) -> Fix:
    if value not in at.fixes:
        if not at.complete:
            raise Said   # perhaps one of the file's fixes that failed their own validation
        raise FieldError(f"{at.where}.{key}", f"{unknown(f'fix {value!r}', value, at.fixes)} "
                                              f"(or define [fix.{value}])")
    with within(at.where):
        return at.fixes[value].with_params(at.table.get("params", {}))


def _apply(value: Any, at: _At) -> Step:
    return ApplyFix(_fix("fix", value, at))


def _revert(value: Any, at: _At) -> Step:
    fix = _fix("revert", value, at)
    if not fix.revert:
        raise FieldError(f"{at.where}.revert", f"fix {value} has no revert commands")
    return RevertFix(fix)


def _axis(value: Any, at: _At) -> Step:
    axis = choice(f"{at.where}.axis", value, EVENT_AXES)
    if any(isinstance(s, AxisEvents) and s.axis == axis for s in at.earlier):
        raise FieldError(f"{at.where}.axis", f"a second step with axis = \"{axis}\"")
    return AxisEvents(axis)


def _upgrade(value: Any, at: _At) -> Step:
    if any(isinstance(s, Upgrade) for s in at.earlier):
        raise FieldError(f"{at.where}.upgrade", "a second upgrade step (one upgrade per scenario)")
    target = choice(f"{at.where}.upgrade", value, RELEASES)
    conffiles = choice(f"{at.where}.conffiles", at.table.get("conffiles", "keep"), CONFFILES)
    return Upgrade(target, conffiles)


# a step table's key -> the TOML type of its value, and what makes the step of it (in the order
# the error for a step of no kind lists them)
_KINDS: dict[str, tuple[type | tuple[type, ...], Callable[[Any, _At], Step]]] = {
    "do": (str, _do), "run": (list, _run), "event": ((str, list), _event), "fix": (str, _apply),
    "revert": (str, _revert), "axis": (str, _axis), "upgrade": (str, _upgrade)}
STEP_KINDS = tuple(_KINDS)
_STEP_FIELDS: dict[str, type | tuple[type, ...]] = {
    "id": str, **{kind: spec[0] for kind, spec in _KINDS.items()}, "params": dict, "expect": dict,
    "settle": (int, float), "note": str, "conffiles": str}


def parse_steps(tables: list[Any], known_fixes: dict[str, Fix], guests: tuple[str, ...], *,
                own_fixes_complete: bool = True) -> tuple[Step, ...]:
    """The [[step]] tables, each validated on its own (all their errors said at once)."""
    if not tables:
        raise FieldError("step", "is required: at least [[step]] do = \"boot\"")
    steps: list[Step] = []
    found = Collected()
    for index, table in enumerate(tables):
        with found.part():
            steps.append(_step(index, table, steps, known_fixes, guests, own_fixes_complete))
    found.check()
    return tuple(steps)


def _step(index: int, table: Any, steps: list[Step], known_fixes: dict[str, Fix],
          guests: tuple[str, ...], complete: bool) -> Step:
    """One step table: what it does, its id and settle time, and its expectations, each
    validated on its own."""
    where = f"step[{index}]"
    if not isinstance(table, dict):
        raise FieldError(where, "must be a table ([[step]])")
    found = Collected()
    written, table = table, found.typed(where, table, _STEP_FIELDS)
    step: Step | None = None
    with found.part():
        kinds = [k for k in STEP_KINDS if k in written]
        if len(kinds) == 1 and kinds[0] not in table:
            raise Said   # its type was said above
        if len(kinds) != 1:
            raise FieldError(where, f"give exactly one of {', '.join(STEP_KINDS)}"
                             + (f", not {' and '.join(kinds)}" if kinds else ""))
        kind = kinds[0]
        if kind != "do" and index == 0:
            raise FieldError(where, "the first step must be do = \"boot\" (daemons up, guests up)")
        step = _KINDS[kind][1](table[kind], _At(where, index, steps, known_fixes, table, complete))
        if "params" in table and not isinstance(step, ApplyFix | RevertFix):
            raise FieldError(f"{where}.params", "only with fix = or revert =")
        if "conffiles" in table and not isinstance(step, Upgrade):
            raise FieldError(f"{where}.conffiles", "only with upgrade =")
    settle = table.get("settle", SETTLE_DEFAULT)
    with found.part():
        if not 1 <= settle <= 300:
            raise FieldError(f"{where}.settle", f"seconds, 1..300, got {settle}")
    step_id = table.get("id") or _unique(step.default_id() if step else "step", [s.id for s in steps])
    with found.part():
        if not _ID.fullmatch(step_id):
            raise FieldError(f"{where}.id", f"{step_id!r}: lower-case letters, digits, '-'")
        if step_id in [s.id for s in steps]:
            raise FieldError(f"{where}.id", f"two steps are called {step_id!r}")
    expect = Expect()
    with found.part(), within(f"{where}.expect"):
        expect = parse_expect(table.get("expect", {}), guests)
    found.check()
    if step is None:
        raise Said
    return dataclasses.replace(step, id=step_id, expect=expect, settle=float(settle))


def _unique(base: str, taken: list[str]) -> str:
    candidate, number = base, 1
    while candidate in taken:
        number += 1
        candidate = f"{base}-{number}"
    return candidate
