"""What a run measured, step by step, and how it is judged against the step's expectations: a
guest's settled connectivity, the host's facts, the commands a step ran, the fix's checks."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from coexist.net.connectivity import Connectivity
from coexist.scenario.expect import TABLE_KEYS, describe
from coexist.scenario.fixes import CheckResult
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


@dataclass(frozen=True)
class HostFacts:
    forward_policy: str | None
    legacy_forward_policy: str | None
    ip_forward: bool
    iptables: dict[str, bool] = field(default_factory=dict)
    chains: dict[str, bool] = field(default_factory=dict)
    nft_tables: dict[str, bool] = field(default_factory=dict)
    zone_of: dict[str, str] = field(default_factory=dict)
    masquerade: dict[str, bool] = field(default_factory=dict)


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
    facts: HostFacts | None = None
    checks: list[CheckResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)   # e.g. Docker refusing a container
    seconds: float = 0.0

    def guest_value(self, name: str, key: str) -> bool | str | None:
        settled = self.guests.get(name)
        if settled is None:
            return None
        final = settled.final
        probes = {p.what.lower(): p.ok for p in final.probes}
        values: dict[str, bool | str | None] = {"state": final.state, "symptom": final.symptom,
                                                "online": final.all_ok, "ipv6": final.ipv6_ok}
        return values.get(key, probes.get(key))

    def host_value(self, key: str) -> Any:
        if key == "commands":
            return all(c.returncode == 0 for c in self.commands)
        if key == "checks":
            return {c.id: c.holds for c in self.checks}
        if key in ("published_port", "docker_isolation"):
            return getattr(self, key)
        return None if self.facts is None else getattr(self.facts, key)

    def mismatches(self) -> list[str]:
        """Where reality differs from this step's expectations (empty: as expected)."""
        found = []
        expect = self.step.expect
        for name in self.guests:
            for key, wanted in expect.for_guest(name).items():
                value = self.guest_value(name, key)
                if value is not None and value != wanted:
                    found.append(f"[{self.step.id}] guest {name}: {key} expected {describe(key, wanted)}, "
                                 f"measured {describe(key, value)} ({self.guests[name].describe()})")
        host = dict(expect.host)
        if self.commands and "commands" not in host:
            host["commands"] = True   # a command that fails is a finding unless expected
        for key, wanted in host.items():
            value = self.host_value(key)
            if key in TABLE_KEYS:
                for item, want in wanted.items():
                    have = (value or {}).get(item)
                    if have != want:
                        found.append(f"[{self.step.id}] {key} {item!r}: expected {describe(key, want)}, "
                                     f"measured {describe(key, have)}")
            elif value is not None and value != wanted:
                found.append(f"[{self.step.id}] {key}: expected {describe(key, wanted)}, "
                             f"measured {describe(key, value)}")
        if isinstance(self.step, ApplyFix):
            stated = expect.host.get("checks", {})
            found += [f"[{self.step.id}] host check failed: {c.description}" for c in self.checks
                      if not c.holds and c.id not in stated]
        return found

    def to_json(self) -> dict[str, Any]:
        return {"id": self.step.id, "label": self.step.label(), "kind": self.step.kind,
                "events": list(events_of(self.step)),
                "commands": [asdict(c) for c in self.commands],
                "guests": {n: {"final": asdict(s.final), "state": s.final.state, "rounds": s.rounds,
                               "seconds": round(s.seconds, 1), "stable": s.stable,
                               "transient": list(s.transient)} for n, s in self.guests.items()},
                "published_port": self.published_port, "docker_isolation": self.docker_isolation,
                "facts": asdict(self.facts) if self.facts else None,
                "checks": [asdict(c) for c in self.checks], "problems": self.problems,
                "seconds": round(self.seconds, 1), "mismatches": self.mismatches()}
