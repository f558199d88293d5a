"""The fix catalogue: every fix of fixes.toml measured on a setup of setups.toml, side by side.

One scenario per fix and release, written as a file a user can run again (`coexist run FILE`):
the setup's host, workload and guest network; steps `boot`, the fix (id `fix`), then each
survival event whose daemon the setup starts. No expectations: what happened is the result
(coexist.report.catalogue reads it).

Every release's rows start with the control, CONTROL: the same steps with nothing applied (a
`measure` where the fix would be). It is what the host does to itself at each event, so that what
a fix adds can be told apart from it (a reload that flushes Docker's rules with the fix, and keeps
them without it).
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from coexist.base.schema import FieldError, ScenarioError, check_types, dealt, toml_document, unknown
from coexist.scenario import fixes as fix_catalogue
from coexist.scenario.axes import RELEASES
from coexist.scenario.events import Event
from coexist.scenario.fixes import Fix
from coexist.scenario.model import NO_BACKEND, load, parse

# the steps after the fix, by their id in every catalogue scenario: what the fix must survive
SURVIVAL = (("after-reload", Event.FIREWALLD_RELOAD),
            ("after-firewalld-restart", Event.FIREWALLD_RESTART),
            ("after-docker-restart", Event.DOCKERD_RESTART),
            ("after-libvirtd-restart", Event.LIBVIRTD_RESTART),
            ("after-guest-restart", Event.GUEST_RESTART),
            ("after-reboot", Event.HOST_REBOOT))
FIX_STEP = "fix"
AGAIN_STEP = "again"   # the fix applied a second time, last: does it add its rules again?
_FIELDS: dict[str, type | tuple[type, ...]] = {"summary": str, "host": dict, "workload": dict,
                                               "network": str}
_FILE = "setups.toml"
_RECORD = "measured.json"   # what `coexist fixes` measured here: the catalogue's expectations
# the control row of every release: the catalogue's steps with no fix (not a fix of fixes.toml)
CONTROL = Fix("no-fix", "nothing applied: the control row, the same steps and events on the host as it "
              "boots, which each fix's cells are told apart from", commands=(),
              source="coexist's fix catalogue (the control)")


@dataclass(frozen=True)
class Setup:
    """A host the catalogue measures each fix on (a table of setups.toml)."""

    name: str
    summary: str
    host: dict[str, Any]
    workload: dict[str, Any]
    network: str

    def deviation(self, release: str) -> str | None:
        """What this release cannot do of the setup, and so runs otherwise (None: nothing)."""
        backend = self.host.get("libvirt_firewall_backend", "default")
        if backend != "default" and release in NO_BACKEND:
            return f"{NO_BACKEND[release]}: measured with libvirt's only firewall there"
        return None

    def survival(self) -> list[tuple[str, Event]]:
        """The survival events of the catalogue whose daemon this setup starts."""
        order = self.host.get("start_order", [])
        return [(step, event) for step, event in SURVIVAL if event.needs is None or event.needs in order]

    def data(self, fix: Fix, release: str) -> dict[str, Any]:
        """The scenario measuring `fix` on this setup on `release`, as a scenario file's TOML."""
        host = {"release": release, **self.host}
        if self.deviation(release):
            host.pop("libvirt_firewall_backend")
        recorded = self.recorded(fix, release)
        applied = [{"do": "measure", "id": step} if fix is CONTROL else {"fix": fix.name, "id": step}
                   for step in (FIX_STEP, AGAIN_STEP)]
        steps: list[dict[str, Any]] = [{"do": "boot"}, applied[0]]
        steps += [{"event": event.value, "id": step} for step, event in self.survival()]
        steps.append(applied[1])
        for step in (steps[1], steps[-1]):   # what the record saw is no surprise
            expect = {"checks": dict(recorded.get("checks", {})),
                      "commands": recorded.get("commands", {}).get(step["id"])}
            if expect := {key: value for key, value in expect.items() if value not in (None, {})}:
                step["expect"] = expect
        return {"scenario": {"name": fix.name, "summary": fix.summary,
                             "source": fix.source or "coexist's fix catalogue",
                             "notes": [f"the fix catalogue's setup {self.name!r}: {self.summary}",
                                       *filter(None, [self.deviation(release)])]},
                "host": host, "workload": self.workload,
                "guest": [{"name": "guest", "network": self.network}], "step": steps}

    def recorded(self, fix: Fix, release: str) -> dict[str, Any]:
        """What the recorded table has of `fix` on this setup and release: `cells` (step -> the
        cell's text), `checks` (the fix's host checks: id -> held), `commands` (the fix's steps:
        id -> every command exited 0) and `docker_rules` (a firewalld event's step -> kept,
        re-made, lost); {}: nothing."""
        return dict(recorded()["setups"].get(self.name, {}).get(release, {}).get(fix.name, {}))

    def plan(self, fix: Fix, release: str) -> Planned:
        """`fix` on this setup on `release`: its scenario, and why it cannot run (the fix needs a
        daemon the setup does not start, a setting the release does not know, ...)."""
        data = self.data(fix, release)
        scenario = parse(data, f"{self.name}/{release}/{fix.name}.toml", runnable=False)
        return Planned(self, fix, release, data, scenario.not_applicable())


@dataclass(frozen=True)
class Planned:
    """One row of the catalogue: a fix on a setup and release (`not_applicable`: why it cannot
    run there; None: it runs)."""

    setup: Setup
    fix: Fix
    release: str
    data: dict[str, Any]
    not_applicable: str | None

    @property
    def expected(self) -> dict[str, str]:
        """What the recorded table (measured.json) says each step showed ({}: not recorded)."""
        return dict(self.setup.recorded(self.fix, self.release).get("cells", {}))

    def write(self, folder: Path) -> Path:
        """The scenario as a file in `folder`/<release>/<fix>.toml, read back as any scenario
        file is read (its errors would be the catalogue's)."""
        path = folder / self.release / f"{self.fix.name}.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        text = (f"# made by coexist's fix catalogue: fix {self.fix.name!r} on setup {self.setup.name!r}\n"
                + toml_document(self.data))
        path.write_text(text)
        load(path)
        return path


@cache
def recorded() -> dict[str, Any]:
    """The catalogue's recorded table: by setup, release and fix, each step's cell as `coexist
    fixes` measured it here (bench/results/README.md says which runs; made by `record()`)."""
    data: dict[str, Any] = json.loads(resources.files("coexist.scenario").joinpath(_RECORD).read_text())
    return data


def record(tables: Iterable[dict[str, Any]], source: str) -> dict[str, Any]:
    """measured.json's data from fixes.json tables (several runs of one setup, or several setups):
    per row its cells' texts, its fix's checks, its fix steps' commands and what its firewalld
    events did to Docker's rules (a control's are what a fix's are told apart from). What every run agreed
    on is recorded; what the runs disagree on is not (it varies: no expectation), and is listed
    apart."""
    seen: dict[tuple[str, str, str, str, str], set[Any]] = {}
    for table in tables:
        for row in table["rows"]:
            where = (table["setup"]["name"], row["release"], row["fix"])
            for step, cell in row["cells"].items():
                if cell["colour"] != "error":
                    seen.setdefault((*where, "cells", step), set()).add(cell["text"])
            for check, held in row.get("checks", {}).items():
                seen.setdefault((*where, "checks", check), set()).add(held)
            for step, succeeded in row.get("commands", {}).items():
                seen.setdefault((*where, "commands", step), set()).add(succeeded)
            for step, rules in row.get("docker_rules", {}).items():
                seen.setdefault((*where, "docker_rules", step), set()).add(rules)
    setups: dict[str, Any] = {}
    varies = []
    for (setup, release, fix, part, key), values in sorted(seen.items()):
        if len(values) == 1:
            found = setups.setdefault(setup, {}).setdefault(release, {}).setdefault(fix, {})
            found.setdefault(part, {})[key] = values.pop()
        else:
            varies.append(f"{setup} {release} {fix} {part} {key}: {' / '.join(sorted(map(str, values)))}")
    return {"format": 1, "source": source, "setups": setups, "varies": varies}


@cache
def setups() -> dict[str, Setup]:
    """The setups of setups.toml by name; ScenarioError names the table and field that is wrong."""
    text = resources.files("coexist.scenario").joinpath(_FILE).read_text()
    found = {}
    for name, table in tomllib.loads(text).items():
        try:
            found[name] = _setup(name, table)
        except FieldError as error:
            raise ScenarioError(Path(_FILE), f"{name}.{error.field}".rstrip("."), error.problem) from None
    return found


def _setup(name: str, table: Any) -> Setup:
    if not isinstance(table, dict):
        raise FieldError("", "must be a table")
    for key in table:
        if key not in _FIELDS:
            raise FieldError(key, unknown("key", key, _FIELDS))
    check_types("", table, _FIELDS)
    missing = [key for key in _FIELDS if key not in table]
    if missing:
        raise FieldError(missing[0], "is required")
    if "release" in table["host"]:
        raise FieldError("host.release", "the catalogue's --release gives it; leave it out")
    setup = Setup(name, table["summary"], dict(table["host"]), dict(table["workload"]), table["network"])
    try:   # the setup as a scenario: every field checked as a scenario file's would be
        parse(setup.data(next(iter(fix_catalogue.builtin().values())), "trixie"), runnable=False)
    except ScenarioError as error:
        raise FieldError(error.where.replace("guest[0].network", "network"), error.problem) from None
    return setup


def chosen(names: Iterable[str] | None) -> list[Fix]:
    """The catalogue's fixes by name (None: all of them, in fixes.toml's order); ValueError: an
    unknown name, with the names there are."""
    every = fix_catalogue.builtin()
    if not names:
        return list(every.values())
    wanted = list(names)
    for name in wanted:
        if name not in every:
            raise ValueError(f"--fix {name}: {unknown('fix', name, every)}")
    return [every[name] for name in wanted]


def plan(setup: Setup, fixes: list[Fix], releases: Iterable[str]) -> list[Planned]:
    """The catalogue's rows for `setup`: on every release its control, then every fix, in that
    order."""
    return [setup.plan(fix, release) for release in order(releases) for fix in (CONTROL, *fixes)]


def shard(planned: list[Planned], part: tuple[int, int]) -> list[Planned]:
    """Part K of N of the catalogue's rows, deterministically: the runnable fixes' rows in
    catalogue order dealt round-robin, the rows that do not apply in part 1 (each in exactly one
    part), and the controls in every part (each part's cells are told apart from them; merged,
    the later part's control stands)."""
    fixes = [plan for plan in planned if plan.not_applicable is None and plan.fix is not CONTROL]
    mine = {id(plan) for plan in dealt(fixes, part)}
    first = part[0] == 1
    return [plan for plan in planned if id(plan) in mine or plan.fix is CONTROL
            or (plan.not_applicable is not None and first)]


def order(releases: Iterable[str]) -> list[str]:
    return sorted(set(releases), key=RELEASES.index)
