"""Fixes as data: the commands a post tells people to run, verbatim, and what must hold afterwards.

The built-in fixes are in `fixes.toml` beside this module; a scenario may define its own in
`[fix.<name>]` tables of the same shape. Python only interprets them: `{name}` parameters are
filled in, commands run through /bin/sh on the lab host, checks are evaluated from the tools'
own output.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from coexist.base.commands import Machine
from coexist.base.schema import FieldError, not_allowed, shown, unknown, within
from coexist.host.daemons import Service
from coexist.scenario.events import Event, event_list
from coexist.scenario.host import parse_settings

_PARAM_VALUE = re.compile(r"^[A-Za-z0-9_.+:-]{1,40}$")
_FIX_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
_FIELDS = {"summary": str, "source": str, "needs": list, "params": dict, "commands": list,
           "settings": dict, "then": list, "revert": list, "check": list, "after_start": dict,
           "start_before": list}
_CHECK_FIELDS = {"id": str, "description": str, "run": str, "output": str, "contains": str,
                 "matches": str, "listing": str, "also": str}
_MATCHERS = ("output", "contains", "matches", "listing")


@dataclass(frozen=True)
class CheckResult:
    id: str
    description: str
    holds: bool
    evidence: str = ""


@dataclass(frozen=True)
class HostCheck:
    """Something a fix promises on the host, read from a command's output."""

    id: str
    description: str
    run: str
    matcher: str | None = None   # one of _MATCHERS, or None: the command must exit 0
    expected: str = ""
    also: str | None = None

    def evaluate(self, lab: Machine) -> CheckResult:
        result = lab.execute(self.run)
        output = result.output
        if self.matcher is None:
            holds = result.returncode == 0
        elif self.matcher == "output":
            holds = output.strip() == self.expected.strip()
        elif self.matcher == "contains":
            holds = self.expected in output
        elif self.matcher == "matches":
            holds = re.search(self.expected, output, re.MULTILINE) is not None
        else:
            holds, difference = compare_listing(self.expected, output)
            output = f"{output.rstrip()}\n{difference}" if difference else output
        evidence = f"$ {self.run}  (exit {result.returncode})\n{output.rstrip()}"
        if self.also:
            evidence += f"\n$ {self.also}\n{lab.execute(self.also).output.rstrip()}"
        return CheckResult(self.id, self.description, holds, evidence)


@dataclass(frozen=True)
class Fix:
    name: str
    summary: str
    commands: tuple[str, ...]          # run verbatim, in order, on the lab host
    source: str = ""
    revert: tuple[str, ...] = ()
    checks: tuple[HostCheck, ...] = ()
    needs: tuple[Service, ...] = ()    # services that must be running (checked before applying)
    params: dict[str, str] = field(default_factory=dict)   # defaults of the {name} parameters
    template: Fix | None = field(default=None, repr=False, compare=False)   # before filling in
    # the daemons' settings it writes, as an admin merges them into the files that are there (tables
    # of coexist.scenario.host.SETTINGS), before its commands; and what happens after both, e.g. a
    # host-reboot for what must be in place before the daemons start
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    then: tuple[Event, ...] = ()
    # persistence as a systemd drop-in's ExecStartPost gives it: commands run on the host right
    # after a service starts, at every start from then on (restarts and reboots included)
    after_start: dict[Service, tuple[str, ...]] = field(default_factory=dict)
    # the boot order changed: the first service starts right before the second from then on
    start_before: tuple[Service, Service] | None = None

    def with_params(self, given: dict[str, str]) -> Fix:
        """The fix with its {name} parameters filled in (`given` over the defaults)."""
        if self.template is not None:
            return self.template.with_params(given)
        unknown = sorted(set(given) - set(self.params))
        if unknown:
            allowed = ", ".join(self.params) or "none"
            raise FieldError("params", f"fix {self.name} has no parameter {unknown[0]!r}; "
                                       f"its parameters: {allowed}")
        for key, value in given.items():
            if not isinstance(value, str) or not _PARAM_VALUE.fullmatch(value):
                raise FieldError(f"params.{key}", f"{value!r}: an interface-like word "
                                                  "(letters, digits, _ . + : -, at most 40)")
        values = {**self.params, **given}

        def fill(text: str) -> str:
            return re.sub(r"\{(\w+)\}", lambda m: values.get(m[1], m[0]), text)

        return dataclasses.replace(
            self, summary=fill(self.summary), commands=tuple(map(fill, self.commands)),
            revert=tuple(map(fill, self.revert)),
            checks=tuple(HostCheck(c.id, fill(c.description), fill(c.run), c.matcher,
                                   fill(c.expected), c.also and fill(c.also)) for c in self.checks),
            params=values, template=self,
            after_start={service: tuple(map(fill, run)) for service, run in self.after_start.items()})

    def boot_order(self, order: tuple[Service, ...]) -> tuple[Service, ...]:
        """`order` as this fix leaves it (start_before: the first right before the second)."""
        if self.start_before is None:
            return order
        moved, before = self.start_before
        rest = [service for service in order if service is not moved]
        return (*rest[:rest.index(before)], moved, *rest[rest.index(before):])


def parse_fix(name: str, data: Any) -> Fix:
    """Validate one fix table; FieldError names the field and what is allowed."""
    if not isinstance(name, str) or not _FIX_NAME.fullmatch(name):
        raise FieldError("name", f"{name!r}: lower-case letters, digits and '-', at most 40")
    if not isinstance(data, dict):
        raise FieldError("", "must be a table")
    for key, value in data.items():
        if key not in _FIELDS:
            raise FieldError(key, unknown("key", key, _FIELDS))
        if not isinstance(value, _FIELDS[key]):
            raise FieldError(key, f"must be a {_FIELDS[key].__name__}, got {shown(value)}")
    if "summary" not in data:
        raise FieldError("summary", "is required")
    commands = _commands(data, "commands")
    with within("settings"):
        settings = {part: table for part, table in parse_settings(data.get("settings", {})).items() if table}
    after_start = {}
    for service, run in data.get("after_start", {}).items():
        if service not in Service.names():
            raise FieldError(f"after_start.{service}", not_allowed(service, Service.names()))
        if not isinstance(run, list) or not run:
            raise FieldError(f"after_start.{service}", "a list of commands (at least one)")
        after_start[Service(service)] = tuple(_strings(run, f"after_start.{service}"))
    start_before = None
    if "start_before" in data:
        pair = _strings(data["start_before"], "start_before")
        if len(pair) != 2 or len(set(pair)) != 2 or any(p not in Service.names() for p in pair):
            raise FieldError("start_before", f"two different services of {', '.join(Service.names())}: "
                                             f"the first starts right before the second, got {shown(pair)}")
        start_before = (Service(pair[0]), Service(pair[1]))
    if not commands and not settings and not after_start and start_before is None:
        raise FieldError("commands", "is required (at least one command), unless the fix is settings, "
                                     "after_start or start_before")
    then = event_list("then", data.get("then", []))
    needs = _strings(data.get("needs", []), "needs")
    for service in needs:
        if service not in Service.names():
            raise FieldError("needs", not_allowed(service, Service.names()))
    params = data.get("params", {})
    for key, value in params.items():
        if not re.fullmatch(r"[a-z_]{1,20}", key) or not isinstance(value, str):
            raise FieldError(f"params.{key}", "parameters are lower-case names with string defaults")
    checks = [_check(i, c) for i, c in enumerate(data.get("check", []))]
    ids = [c.id for c in checks]
    if len(set(ids)) != len(ids):
        raise FieldError("check", f"two checks share an id: {ids}")
    fix = Fix(name, data["summary"], tuple(commands), data.get("source", ""),
              tuple(_commands(data, "revert")), tuple(checks), tuple(map(Service, needs)), dict(params),
              settings=settings, then=then, after_start=after_start, start_before=start_before)
    used = {m for text in (*fix.commands, *fix.revert, *(c for run in after_start.values() for c in run))
            for m in re.findall(r"\{(\w+)\}", text)}
    undeclared = sorted(used - set(params))
    if undeclared:
        raise FieldError("commands", f"uses {{{undeclared[0]}}}, which is not in params")
    return fix


def _check(index: int, data: Any) -> HostCheck:
    where = f"check[{index}]"
    if not isinstance(data, dict):
        raise FieldError(where, "must be a table ([[<fix>.check]])")
    for key, value in data.items():
        if key not in _CHECK_FIELDS:
            raise FieldError(f"{where}.{key}", unknown("key", key, _CHECK_FIELDS))
        if not isinstance(value, str):
            raise FieldError(f"{where}.{key}", f"must be a string, got {shown(value)}")
    for key in ("id", "run"):
        if key not in data:
            raise FieldError(f"{where}.{key}", "is required")
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,39}", data["id"]):
        raise FieldError(f"{where}.id", "lower-case letters, digits and '-', at most 40")
    given = [m for m in _MATCHERS if m in data]
    if len(given) > 1:
        raise FieldError(where, f"give at most one of {', '.join(_MATCHERS)}, not {given}")
    matcher = given[0] if given else None
    if matcher == "matches":
        try:
            re.compile(data["matches"])
        except re.error as error:
            raise FieldError(f"{where}.matches", f"not a valid regular expression: {error}") from None
    if matcher == "listing" and not listing_rows(data["listing"])[1]:
        raise FieldError(f"{where}.listing", "lists no numbered rule rows")
    description = data["description"] if "description" in data else data["run"]
    return HostCheck(data["id"], description, data["run"], matcher,
                     data[matcher] if matcher else "", data.get("also"))


def _commands(data: dict[str, Any], key: str) -> list[str]:
    commands = _strings(data.get(key, []), key)
    for command in commands:
        if not command.strip() or "\n" in command.strip():
            raise FieldError(key, f"one command per string, not empty: {command!r}")
    return commands


def _strings(values: list[Any], key: str) -> list[str]:
    for value in values:
        if not isinstance(value, str):
            raise FieldError(key, f"must be a list of strings, got {shown(value)}")
    return values


def listing_rows(text: str) -> tuple[str | None, list[tuple[str, ...]]]:
    """The policy and the rows (fields after the rule number; ("...",) for an ellipsis) of an
    `iptables -L CHAIN -n [--line-numbers]` listing."""
    policy = None
    rows: list[tuple[str, ...]] = []
    for line in text.splitlines():
        fields = line.split()
        if line.startswith("Chain ") and "(policy " in line:
            policy = line.split("(policy ", 1)[1].split()[0]
        elif fields == ["..."]:
            rows.append(("...",))
        elif fields and fields[0].isdigit():
            rows.append(tuple(fields[1:]))
    return policy, rows


def compare_listing(expected: str, actual: str) -> tuple[bool, str]:
    """Do `actual`'s policy and rows start as `expected` lists them (all of them, unless
    `expected` ends in `...`)? Returns the verdict and the first difference, said in words."""
    want_policy, want = listing_rows(expected)
    have_policy, have = listing_rows(actual)
    if want_policy is not None and want_policy != have_policy:
        return False, f"differs: policy {have_policy}, the listing expected says {want_policy}"
    more = bool(want) and want[-1] == ("...",)
    want = [row for row in want if row != ("...",)]
    for number, row in enumerate(want, 1):
        if number > len(have):
            return False, f"differs: the host lists {len(have)} rule(s), the expected listing {len(want)}+"
        if have[number - 1] != row:
            return False, (f"differs at rule {number}: the host lists `{' '.join(have[number - 1])}`"
                           f", the expected listing `{' '.join(row)}`")
    if not more and len(have) != len(want):
        return False, f"differs: the host lists {len(have)} rule(s), the expected listing {len(want)}"
    return True, ""


@cache
def builtin() -> dict[str, Fix]:
    """The fixes of fixes.toml, by name, their parameters at their defaults."""
    data = tomllib.loads(resources.files("coexist.scenario").joinpath("fixes.toml").read_text())
    return {name: parse_fix(name, table).with_params({}) for name, table in data.items()}


def __getattr__(name: str) -> Fix:
    """`fixes.SEED_FIREWALLD_DIRECT` etc.: a built-in fix by its name in upper case."""
    wanted = name.lower().replace("_", "-")
    if wanted in builtin():
        return builtin()[wanted]
    raise AttributeError(name)
