"""The verdict: what each step measured, whether it matches what the scenario expects, and why."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from coexist.guest.accel import AccelDecision
from coexist.report.results import StepResult
from coexist.scenario.model import Scenario
from coexist.scenario.steps import Admin, ApplyFix


@dataclass
class Verdict:
    scenario: Scenario
    versions: dict[str, str]
    accel: AccelDecision
    deviations: list[str]
    steps: list[StepResult]
    explanation: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    artifacts: str = ""

    def step(self, step_id: str) -> StepResult:
        for result in self.steps:
            if result.step.id == step_id:
                return result
        raise KeyError(f"no step {step_id!r}; steps: {', '.join(r.step.id for r in self.steps)}")

    @property
    def symptom(self) -> bool:
        """The first measurement (after boot) shows the reported symptom on some guest."""
        return any(s.final.symptom for s in self.steps[0].guests.values())

    def mismatches(self) -> list[str]:
        """Where reality differs from what the scenario expects (empty: as expected)."""
        return [line for result in self.steps for line in result.mismatches()]

    def headline(self) -> list[str]:
        """The answer at a glance: symptom reproduced, and each fix's effect."""
        first = self.steps[0]
        states = ", ".join(f"{n} {s.final.state}" for n, s in first.guests.items())
        lines = [f"Symptom reproduced: {'YES' if self.symptom else 'NO'}   (after boot: {states})"]
        for result in self.steps:
            if isinstance(result.step, ApplyFix):
                online = all(s.final.all_ok for s in result.guests.values())
                lines.append(f"Fix {result.step.fix.name} effective: {'YES' if online else 'NO'}   "
                             f"(guests {'online' if online else 'not all online'} after it)")
        return lines

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
        lines += [f"  DEVIATION from a real host: {d}" for d in self.deviations]
        lines += [""] + [f"  {line}" for line in self.headline()] + [""]
        for number, result in enumerate(self.steps, 1):
            lines += _render_step(number, result)
        if self.explanation:
            lines += ["", "  Why:"] + [f"    {line}" for line in self.explanation]
        lines.append("")
        lines += [f"  expectation note: {note}" for note in s.expect_notes]
        mismatches = self.mismatches()
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
            "format": 2, "scenario": self.scenario.name, "release": self.scenario.host.release,
            "label": self.scenario.label(), "axes": self.scenario.axes(),
            "versions": self.versions, "accel": asdict(self.accel), "deviations": self.deviations,
            "symptom": self.symptom, "steps": [r.to_json() for r in self.steps],
            "expect_notes": list(self.scenario.expect_notes), "explanation": self.explanation,
            "mismatches": self.mismatches(), "timings": self.timings, "artifacts": self.artifacts,
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2)

    @classmethod
    def from_json(cls, data: Mapping[str, Any], scenario: Scenario) -> Verdict:
        """The verdict `to_json` wrote, of `scenario` (the JSON names the scenario, not what it
        holds). What `to_json` derives (symptom, mismatches, labels) is derived again."""
        steps = {step.id: step for step in scenario.steps}
        return cls(scenario, dict(data["versions"]), AccelDecision(**data["accel"]),
                   list(data["deviations"]), [StepResult.from_json(s, steps[s["id"]]) for s in data["steps"]],
                   explanation=list(data["explanation"]), timings=dict(data["timings"]),
                   artifacts=data.get("artifacts", ""))


def _render_step(number: int, result: StepResult) -> list[str]:
    step = result.step
    lines = [f"  step {number} [{step.id}] {'admin commands' if isinstance(step, Admin) else step.label()}"]
    for ran in result.commands:
        tail = ran.output.strip().splitlines()[-1:] or [""]
        lines.append(f"      host# {ran.command}")
        lines.append(f"            -> exit {ran.returncode}{': ' + tail[0][:100] if tail[0] else ''}")
    for name, settled in result.guests.items():
        lines.append(f"      [{step.id}] guest {name}: {settled.describe()}")
    host = result.shown()
    if host:
        lines.append(f"      [{step.id}] host: " + "; ".join(host))
    for check in result.checks:
        lines.append(f"      [{step.id}] host check {check.id}: {'ok   ' if check.holds else 'FAILS'} "
                     f"{check.description}")
        if not check.holds:
            lines += [f"          {line}" for line in check.evidence.splitlines()[:24]]
    lines += [f"      [{step.id}] {problem}" for problem in result.problems]
    mismatches = result.mismatches()
    lines.append(f"      [{step.id}] {'UNEXPECTED' if mismatches else 'as expected'} "
                 f"({step.expect_summary()})")
    return lines
