"""What a run measured, step by step, and how it is judged against the step's expectations: a
guest's settled connectivity, the host's facts, the commands a step ran, the fix's checks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from coexist.host.upgrade import Upgraded
from coexist.net.connectivity import Connectivity, Probe
from coexist.scenario.fixes import CheckResult
from coexist.scenario.keys import KEYS, PROBES, Source
from coexist.scenario.steps import ApplyFix, Step, events_of


@dataclass(frozen=True)
class Settled:
    """A guest's connectivity once it settled, and what was seen before that."""

    final: Connectivity
    rounds: int
    seconds: float
    stable: bool                      # False: still changing when the settle time ran out
    transient: tuple[str, ...] = ()   # earlier outcomes that differed, with when they were seen

    def describe(self) -> str:
        text = f"{self.final.summary()}; {self.final.state}"
        if not self.stable:
            text += f" (NOT settled after {self.seconds:.0f}s)"
        if self.transient:
            text += " (before settling: " + "; ".join(self.transient) + ")"
        return text


HostFacts = dict[str, Any]   # what the host's firewall answered, by expectation key (keys.FACTS)


@dataclass(frozen=True)
class CommandRun:
    command: str
    returncode: int
    output: str


@dataclass
class StepResult:
    """What happened in one step and what was measured after it."""

    step: Step
    commands: list[CommandRun] = field(default_factory=list)
    guests: dict[str, Settled] = field(default_factory=dict)
    published_port: bool | None = None     # None: the scenario publishes none
    docker_isolation: bool | None = None   # None: not probed
    container_egress: bool | None = None   # the cost probes ([workload] probes); None: not probed
    guests_closed: bool | None = None
    containers_closed: bool | None = None
    facts: HostFacts | None = None
    checks: list[CheckResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)   # e.g. Docker refusing a container
    added: list[str] = field(default_factory=list)   # a fix step: ruleset lines it added (counted)
    probes: dict[str, CommandRun] = field(default_factory=dict)   # the scenario's own, by id
    unreverted: list[str] | None = None   # a revert step: lines not as before the fix (+ more, - fewer)
    docker_rules: tuple[str, str] | None = None   # a firewalld event's step: kept/re-made/lost, why
    upgrade: Upgraded | None = None   # an upgrade step: what it did, its health
    since_upgrade: list[str] | None = None   # from an upgrade step on: the firewall against before it
    seconds: float = 0.0

    @property
    def online(self) -> bool:
        """Every guest reached everything its probes asked for (IPv6 included)."""
        return all(s.final.all_ok for s in self.guests.values())

    def guest_value(self, name: str, key: str) -> bool | str | None:
        settled = self.guests.get(name)
        read = KEYS[key].read
        return None if settled is None or read is None else read(settled.final)

    def host_value(self, key: str) -> Any:
        """The host-side value of an expectation key: the step's own, or the firewall's answer."""
        own = {"published_port": self.published_port, "docker_isolation": self.docker_isolation,
               **{name: getattr(self, name) for name in PROBES},
               "commands": all(c.returncode == 0 for c in self.commands),
               "checks": {c.id: c.holds for c in self.checks},
               "probe": {name: run.returncode == 0 for name, run in self.probes.items()},
               "reverted": None if self.unreverted is None else not self.unreverted,
               "docker_rules": self.docker_rules[0] if self.docker_rules else None,
               "upgrade_healthy": self.upgrade.healthy if self.upgrade is not None else None}
        return own[key] if key in own else (self.facts or {}).get(key)

    def mismatches(self) -> list[str]:
        """Where reality differs from this step's expectations (empty: as expected)."""
        found = []
        expect = self.step.expect
        for name in self.guests:
            for key, wanted in expect.for_guest(name).items():
                value = self.guest_value(name, key)
                if value is not None and value != wanted:
                    word = KEYS[key].word
                    found.append(f"[{self.step.id}] guest {name}: {key} expected {word(wanted)}, "
                                 f"measured {word(value)} ({self.guests[name].describe()})")
        host = dict(expect.host)
        if self.commands and "commands" not in host:
            host["commands"] = True   # a command that fails is a finding unless expected
        for key, wanted in host.items():
            value = self.host_value(key)
            word = KEYS[key].word
            if KEYS[key].table:
                for item, want in wanted.items():
                    have = (value or {}).get(item)
                    if have != want:
                        found.append(f"[{self.step.id}] {key} {item!r}: expected {word(want)}, "
                                     f"measured {word(have)}")
            elif value is not None and value != wanted:
                found.append(f"[{self.step.id}] {key}: expected {word(wanted)}, measured {word(value)}")
        if isinstance(self.step, ApplyFix):
            stated = expect.host.get("checks", {})
            found += [f"[{self.step.id}] host check failed: {c.description}" for c in self.checks
                      if not c.holds and c.id not in stated]
        return found

    def shown(self) -> list[str]:
        """The host side of the measurement, each value as the verdict's host line words it (the
        firewall's facts once they were measured)."""
        shown = []
        for key in KEYS.values():
            if not key.title or key.source is Source.FIREWALL and self.facts is None:
                continue
            value = self.host_value(key.name)
            if key.table:
                shown += [f"{key.title} {item!r}: {key.word(have)}" for item, have in value.items()]
            elif value not in key.hidden:
                shown.append(f"{key.title} {key.word(value)}")
        return shown

    def to_json(self) -> dict[str, Any]:
        return {"id": self.step.id, "label": self.step.label(), "kind": self.step.kind,
                "events": list(events_of(self.step)),
                "commands": [asdict(c) for c in self.commands],
                "guests": {n: {"final": asdict(s.final), "state": s.final.state, "rounds": s.rounds,
                               "seconds": round(s.seconds, 1), "stable": s.stable,
                               "transient": list(s.transient)} for n, s in self.guests.items()},
                "published_port": self.published_port, "docker_isolation": self.docker_isolation,
                **{name: getattr(self, name) for name in PROBES}, "facts": self.facts,
                "checks": [asdict(c) for c in self.checks], "problems": self.problems,
                "added": self.added, "unreverted": self.unreverted,
                "docker_rules": list(self.docker_rules) if self.docker_rules else None,
                "probes": {name: asdict(run) for name, run in self.probes.items()},
                "upgrade": self.upgrade.to_json() if self.upgrade is not None else None,
                "since_upgrade": self.since_upgrade,
                "seconds": round(self.seconds, 1), "mismatches": self.mismatches()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any], step: Step) -> StepResult:
        """The result `to_json` wrote, of `step` (the round trip is tests/unit/test_matrix.py's);
        what `to_json` derives (label, states, mismatches) is derived again."""
        return cls(
            step, commands=[CommandRun(**c) for c in data["commands"]],
            guests={name: Settled(_connectivity(g["final"]), g["rounds"], g["seconds"], g["stable"],
                                  tuple(g["transient"])) for name, g in data["guests"].items()},
            published_port=data["published_port"], docker_isolation=data["docker_isolation"],
            **{name: data.get(name) for name in PROBES},   # absent from verdicts before the probes
            facts=dict(data["facts"]) if data["facts"] is not None else None,
            checks=[CheckResult(**c) for c in data["checks"]], problems=list(data["problems"]),
            added=list(data.get("added", [])), unreverted=data.get("unreverted"),
            docker_rules=tuple(data["docker_rules"]) if data.get("docker_rules") else None,
            probes={name: CommandRun(**run) for name, run in data.get("probes", {}).items()},
            upgrade=Upgraded.from_json(data["upgrade"]) if data.get("upgrade") else None,
            since_upgrade=data.get("since_upgrade"),
            seconds=data["seconds"])


def _connectivity(data: Mapping[str, Any]) -> Connectivity:
    """A guest's connectivity as `asdict` wrote it."""
    return Connectivity(Probe(**data["dns"]), Probe(**data["ping"]), Probe(**data["tcp"]),
                        ipv6=tuple(Probe(**p) for p in data["ipv6"]))
