"""The verdict: what was measured, whether it matches what the scenario expects, and why."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from harness.accel import AccelDecision
from harness.connectivity import Connectivity
from harness.scenario import Scenario


@dataclass(frozen=True)
class CheckResult:
    description: str
    holds: bool
    evidence: str = ""


@dataclass
class Verdict:
    scenario: Scenario
    versions: dict[str, str]
    accel: AccelDecision
    deviations: list[str]
    before: Connectivity
    after: Connectivity | None = None
    published_before: bool | None = None
    published_after: bool | None = None
    after_events: Connectivity | None = None
    published_after_events: bool | None = None   # measured, not expected: shown for evidence
    isolation_before: bool | None = None   # Docker's networks kept apart (None: not probed)
    isolation_after: bool | None = None
    fix_checks: list[CheckResult] = field(default_factory=list)
    explanation: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    artifacts: str = ""

    @property
    def symptom(self) -> bool:
        return self.before.symptom

    @property
    def fix_effective(self) -> bool | None:
        return None if self.after is None else self.after.all_ok

    @property
    def survives_events(self) -> bool | None:
        return None if self.after_events is None else self.after_events.all_ok

    def mismatches(self) -> list[str]:
        """Where reality differs from what the scenario expects (empty: as expected)."""
        expect = self.scenario.expect
        found = []
        if self.symptom != expect.symptom:
            found.append(f"symptom expected {_yes(expect.symptom)}, measured {_yes(self.symptom)}"
                         f" ({self.before.summary()})")
        found += self.before_mismatches()
        if expect.fix_effective is not None and self.fix_effective != expect.fix_effective:
            assert self.after is not None
            found.append(f"fix effective expected {_yes(expect.fix_effective)}, measured "
                         f"{_yes(self.fix_effective)} ({self.after.summary()})")
        if (self.after_events is not None and expect.survives_events is not None
                and self.survives_events != expect.survives_events):
            found.append(f"connectivity after {', '.join(self.scenario.events.after_fix)} "
                         f"expected {'kept' if expect.survives_events else 'lost'}, measured "
                         f"{'kept' if self.survives_events else 'lost'} "
                         f"({self.after_events.summary()})")
        for what, value, expected, (yes, no) in (
                ("published port before the fix", self.published_before, expect.published_port,
                 ("reachable", "unreachable")),
                ("published port after the fix", self.published_after,
                 expect.published_port_after_fix, ("reachable", "unreachable")),
                ("Docker network isolation before the fix", self.isolation_before,
                 expect.docker_isolation, ("kept", "broken")),
                ("Docker network isolation after the fix", self.isolation_after,
                 expect.docker_isolation_after_fix, ("kept", "broken"))):
            if value is not None and value != expected:
                found.append(f"{what}: expected {yes if expected else no}, "
                             f"measured {yes if value else no}")
        found += [f"fix check failed: {c.description}" for c in self.fix_checks if not c.holds]
        return found

    def before_mismatches(self) -> list[str]:
        """The optional expectations on the first measurement: DNS, and IPv6 where probed."""
        expect, found = self.scenario.expect, []
        for what, expected, measured in (("DNS", expect.dns_before, self.before.dns.ok),
                                         ("IPv6 (ping6, TCP6)", expect.ipv6_before,
                                          self.before.ipv6_ok)):
            if expected is not None and measured is not None and measured != expected:
                found.append(f"{what} before any fix expected {'to work' if expected else 'to fail'}"
                             f", measured {'working' if measured else 'failing'} "
                             f"({self.before.summary()})")
        return found

    def render(self) -> str:
        s = self.scenario
        lines = [
            f"coexist verdict: {s.name}",
            f"  {s.summary}",
            f"  host: Debian {s.host.release}: " + ", ".join(f"{k} {v}" for k, v in
                                                          sorted(self.versions.items())),
            f"  axes: {s.label()}",
            f"  guest accelerator: {self.accel.accel} ({self.accel.reason})",
        ]
        for deviation in self.deviations:
            lines.append(f"  DEVIATION from a real host: {deviation}")
        lines += ["", f"  Symptom reproduced: {_yes(self.symptom).upper()}   "
                      f"(before any fix: {self.before.summary()}; {self.before.state})"]
        if self.after is not None:
            nothing = " -- nothing to fix: online before it" if self.before.all_ok else ""
            lines.append(f"  Fix effective:      {_yes(self.fix_effective).upper()}   "
                         f"(after `{s.fix}`: {self.after.summary()}{nothing})")
        if self.after_events is not None:
            events = ", ".join(s.events.after_fix)
            port = "" if self.published_after_events is None else (
                f"; published port {'reachable' if self.published_after_events else 'UNREACHABLE'}")
            lines.append(f"  Survives {events}: {_yes(self.survives_events).upper()}   "
                         f"({self.after_events.summary()}{port})")
        for what, before, after, (yes, no) in (
                ("Docker published port from outside", self.published_before,
                 self.published_after, ("reachable", "UNREACHABLE")),
                ("Docker network isolation (container on one network -> another)",
                 self.isolation_before, self.isolation_after, ("kept", "BROKEN"))):
            if before is not None:
                later = "" if after is None else f", after the fix: {yes if after else no}"
                lines.append(f"  {what}: before: {yes if before else no}{later}")
        for check in self.fix_checks:
            lines.append(f"  host check: {'ok  ' if check.holds else 'FAILS'} {check.description}")
        if self.explanation:
            lines += ["", "  Why:"] + [f"    {line}" for line in self.explanation]
        mismatches = self.mismatches()
        lines.append("")
        for note in s.expect.notes:
            lines.append(f"  expectation note: {note}")
        if mismatches:
            lines.append("  UNEXPECTED: reality differs from the scenario's expectations:")
            lines += [f"    - {m}" for m in mismatches]
        else:
            lines.append("  As expected by the scenario.")
        if self.timings:
            lines.append("  timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in self.timings.items()))
        if self.artifacts:
            lines.append(f"  artifacts: {self.artifacts}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario.name, "release": self.scenario.host.release,
            "versions": self.versions, "accel": asdict(self.accel), "deviations": self.deviations,
            "symptom": self.symptom, "fix_effective": self.fix_effective,
            "before": asdict(self.before), "after": asdict(self.after) if self.after else None,
            "published_before": self.published_before, "published_after": self.published_after,
            "survives_events": self.survives_events,
            "published_after_events": self.published_after_events,
            "isolation_before": self.isolation_before, "isolation_after": self.isolation_after,
            "after_events": asdict(self.after_events) if self.after_events else None,
            "label": self.scenario.label(), "expect_notes": list(self.scenario.expect.notes),
            "fix_checks": [asdict(c) for c in self.fix_checks], "explanation": self.explanation,
            "mismatches": self.mismatches(), "timings": self.timings,
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2)


def _yes(value: bool | None) -> str:
    return {True: "yes", False: "no", None: "n/a"}[value]
