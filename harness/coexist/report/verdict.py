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

# a positive control's outcome (coexist.run.runner.Run.controls)
CONTROL_SEEN = "sees an open path: OPEN with the lab's firewall flushed"
CONTROL_BLIND = "BLIND: still closed with the lab's firewall flushed"
CONTROL_NOT_RUN = "not run: the probe had nothing to ask (e.g. no isolated server running)"


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
    controls: dict[str, str] = field(default_factory=dict)   # probe -> its positive control's outcome

    def step(self, step_id: str) -> StepResult:
        for result in self.steps:
            if result.step.id == step_id:
                return result
        raise KeyError(f"no step {step_id!r}; steps: {', '.join(r.step.id for r in self.steps)}")

    @property
    def symptom(self) -> bool:
        """The first measurement (after boot) shows a guest cut off, in any way: the reported
        symptom (DNS works, the outside does not), offline, partly, or over IPv6 only."""
        return not self.steps[0].online

    def mismatches(self) -> list[str]:
        """Where reality differs from what the scenario expects (empty: as expected)."""
        found = [line for result in self.steps for line in result.mismatches()]
        return found + [f"probe {name} is {self.controls[name]}: its \"closed\" proves nothing"
                        for name in self.blind()]

    def blind(self) -> list[str]:
        """The probes whose positive control failed and which said "closed" at some step (a
        probe that never measured anything, e.g. no isolated server to probe, misleads nobody)."""
        return [name for name, seen in self.controls.items() if seen.startswith(CONTROL_BLIND)
                and any(result.host_value(name) is True for result in self.steps)]

    def headline(self) -> list[str]:
        """The answer at a glance: whether the guests were cut off after boot, and for each fix
        (and each step of admin commands after a cut) what it changed and what it cost."""
        first = self.steps[0]
        lines = [f"Symptom reproduced: {'YES' if self.symptom else 'NO'}   (after boot: {_states(first)})"]
        for before, result in zip(self.steps, self.steps[1:], strict=False):
            step = result.step
            if isinstance(step, ApplyFix):
                lines.append(f"Fix {step.fix.name} [{step.id}]: {outcome(before, result)}")
            elif isinstance(step, Admin) and not before.online:
                lines.append(f"Commands [{step.id}]: {outcome(before, result)}")
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
        if self.controls:
            lines += ["", "  Positive controls (after the last step):"]
            lines += [f"    {name}: {seen}" for name, seen in self.controls.items()]
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
            "controls": self.controls,
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
                   artifacts=data.get("artifacts", ""), controls=dict(data.get("controls", {})))


def _states(result: StepResult) -> str:
    return ", ".join(f"{name} {settled.final.state}" + (" (IPv6 fails)" if settled.final.state == "online"
                                                         and settled.final.ipv6_ok is False else "")
                     for name, settled in result.guests.items())


def costs(before: StepResult, after: StepResult) -> list[str]:
    """What a step broke that held before it, in the words the reports use: Docker's published
    port, Docker's isolation, the cost probes ([workload] probes), a promise of the fix that
    does not hold."""
    found = []
    if before.published_port and after.published_port is False:
        found.append("published port BROKEN")
    if before.docker_isolation and after.docker_isolation is False:
        found.append("Docker isolation BROKEN")
    if before.container_egress and after.container_egress is False:
        found.append("container egress BROKEN")
    if before.guests_closed and after.guests_closed is False:
        found.append("guests OPEN to the outside")
    if before.containers_closed and after.containers_closed is False:
        found.append("containers OPEN to the guests")
    found += [f"check {check.id} FAILS" for check in after.checks if not check.holds]
    return found


def outcome(before: StepResult, after: StepResult) -> str:
    """What a fix (or an admin's commands) did, as the headline says it: nothing to fix, effective
    (and at what cost), or not effective."""
    if before.online:
        return f"nothing to fix (guests already online before it: {_states(before)})"
    if not after.online:
        return f"effective: NO   (guests still cut off after it: {_states(after)})"
    paid = costs(before, after)
    return "effective: YES" + (f", but {', '.join(paid)}" if paid else "") + "   (guests online after it)"


def _render_step(number: int, result: StepResult) -> list[str]:
    step = result.step
    lines = [f"  step {number} [{step.id}] {'admin commands' if isinstance(step, Admin) else step.label()}"]
    for ran in result.commands:
        output = ran.output.rstrip().splitlines()
        lines.append(f"      host# {ran.command}")
        if isinstance(step, Admin):   # an admin's commands: their whole output, as a terminal shows it
            lines.append(f"            -> exit {ran.returncode}")
            lines += [f"               {line}" for line in output]
        else:
            tail = output[-1:] or [""]
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
    for name, ran in result.probes.items():
        if ran.returncode != 0:
            tail = ran.output.strip().splitlines()[-3:] or [""]
            said = " | ".join(tail)[:200]
            lines.append(f"      [{step.id}] probe {name}: `{ran.command}` exit {ran.returncode}: {said}")
    if result.docker_rules is not None:
        lines.append(f"      [{step.id}] Docker's rules: {result.docker_rules[0]} ({result.docker_rules[1]})")
    if result.unreverted:
        lines.append(f"      [{step.id}] not as before the fix: {len(result.unreverted)} ruleset line(s)")
        lines += [f"          {line}" for line in result.unreverted[:8]]
    if result.upgrade is not None:
        lines += [f"      [{step.id}] {line}" for line in result.upgrade.lines()]
    if result.since_upgrade is not None:
        differ = f"{len(result.since_upgrade)} line(s) differ" if result.since_upgrade else "the same"
        lines.append(f"      [{step.id}] the firewall against before the upgrade: {differ}")
        lines += [f"          {line}" for line in result.since_upgrade[:16]]
        if len(result.since_upgrade) > 16:
            lines.append(f"          ... {len(result.since_upgrade) - 16} more (verdict.json)")
    if isinstance(step, ApplyFix):
        lines.append(f"      [{step.id}] ruleset lines the step added: {len(result.added) or 'none'}")
        lines += [f"          {line}" for line in result.added[:8]]
        if len(result.added) > 8:
            lines.append(f"          ... {len(result.added) - 8} more (verdict.json)")
    mismatches = result.mismatches()
    lines.append(f"      [{step.id}] {'UNEXPECTED' if mismatches else 'as expected'} "
                 f"({step.expect_summary()})")
    return lines
