"""`coexist matrix`: scenarios crossed with axes (pytest runs them: coexist.pytest_plugin), reported
at a glance.

Writes matrix.md and matrix.html (rows: scenario and axes; columns: release x step; each cell
coloured by what happened for the user, framed red where that differs from the scenario file) and
matrix.json, plus each run's own artifacts folder.
"""

from __future__ import annotations

import dataclasses
import hashlib
import html
import itertools
import json
import os
import re
import shlex
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from coexist.base import about
from coexist.base.schema import ScenarioError
from coexist.report.results import StepResult
from coexist.report.verdict import Verdict
from coexist.scenario.axes import RELEASES
from coexist.scenario.model import Scenario, load
from coexist.scenario.steps import ApplyFix

COLOURS = {"online": "#bfe8bf", "docker": "#f7cf8f", "cut": "#f2a7a7", "error": "#f0e08a",
           "none": "#e6e6e6"}
LEGEND = {"online": "guests online, Docker fine", "docker": "guests online, Docker broken "
          "(published port lost or isolation broken)", "cut": "a guest cut off (symptom, offline "
          "or partial)", "error": "the run broke", "none": "not run: the release cannot do it"}


@dataclass(frozen=True)
class Cell:
    text: str
    colour: str            # a key of COLOURS: what happened, for the user
    mismatch: str = ""     # where it differs from the scenario's expectation ("": as expected)


@dataclass
class Row:
    scenario: Scenario
    verdict: Verdict | None = None
    error: str | None = None
    unsupported: str | None = None   # the release cannot express these axes (not a failure)
    seconds: float = 0.0
    artifacts: str = ""
    evidence: str = ""   # in a written report: the link to its evidence, relative to the report

    def cells(self) -> dict[str, Cell]:
        """step id -> what happened after it."""
        ids = [step.id for step in self.scenario.steps]
        if self.unsupported is not None:
            return {i: Cell("n/a", "none") for i in ids}
        if self.verdict is None:
            return {i: Cell(f"error: {(self.error or '').splitlines()[0][:80]}", "error") for i in ids}
        return {result.step.id: _cell(result) for result in self.verdict.steps}

    def to_json(self) -> dict[str, Any]:
        return {"label": self.scenario.label(), "scenario": self.scenario.name,
                "path": str(self.scenario.path), "axes": self.scenario.axes(),
                "seconds": round(self.seconds, 1),
                "artifacts": self.artifacts, "error": self.error,
                "cells": {k: asdict(c) for k, c in self.cells().items()},
                "unsupported": self.unsupported,
                "verdict": self.verdict.to_json() if self.verdict else None}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Row:
        """The row `to_json` wrote (e.g. an xdist worker's, for the controller's report): its
        scenario read again from the file with the row's axes, its verdict from the JSON."""
        axes = {name: value for name, value in data["axes"].items() if name != "firewalld"}
        scenario = load(data["path"]).variant(**axes)   # firewalld follows from start_order
        verdict = None if data["verdict"] is None else Verdict.from_json(data["verdict"], scenario)
        return cls(scenario, verdict, error=data["error"], unsupported=data["unsupported"],
                   seconds=data["seconds"], artifacts=data["artifacts"])


def _cell(result: StepResult) -> Cell:
    states = {s.final.state for s in result.guests.values()}
    docker = [what for what, value in (("port lost", result.published_port),
                                       ("isolation broken", result.docker_isolation)) if value is False]
    text = "/".join(sorted(states)) or "-"
    if any(s.final.state == "online" and not s.final.all_ok for s in result.guests.values()):
        text += " (IPv6 fails)"
    if docker:
        text += "; " + ", ".join(docker)
    colour = "online" if states == {"online"} else "cut"
    if colour == "online" and docker:
        colour = "docker"
    mismatches = result.mismatches()
    return Cell(text, colour, "; ".join(m.split("] ", 1)[-1] for m in mismatches))


class CrossError(ValueError):
    """A combination of axis values that a scenario refuses: the values (to blame the flags
    that gave them) and the scenario's error."""

    def __init__(self, axes: dict[str, Any], error: ScenarioError) -> None:
        super().__init__(str(error))
        self.axes, self.error = axes, error

    def blamed(self, flag: Callable[[str, Any], str]) -> str:
        """`--network bridged --ipv6 yes: host.ipv6: ... (with scenarios/x.toml)`, each value
        written as `flag(axis, value)` writes its option."""
        given = " ".join(flag(name, value) for name, value in self.axes.items())
        return f"{given}: {self.error.where}: {self.error.problem} (with {self.error.path})"


def cross(scenarios: Iterable[Scenario], axes: Mapping[str, Sequence[Any]]) -> list[Scenario]:
    """Every scenario with every combination of the given axis values (empty axes: as written);
    a combination a scenario refuses is a CrossError."""
    names = [name for name, values in axes.items() if values]
    variants = []
    for scenario in scenarios:
        for values in itertools.product(*(axes[name] for name in names)):
            combination = dict(zip(names, values, strict=True))
            try:
                variants.append(scenario.variant(**combination))
            except ScenarioError as error:
                raise CrossError(combination, error) from None
    return variants


def write_reports(rows: list[Row], out: Path, *, total: int, seconds: float) -> None:
    """matrix.json, .md and .html in `out`. Each run's evidence is named by its path relative to
    `out` (the reports travel with their folder), and each cell links to its run's verdict."""
    rows = [dataclasses.replace(row, artifacts=(where := _relative(row.artifacts, out)),
                                evidence=_evidence(where, out)) for row in rows]
    releases = sorted({r.scenario.host.release for r in rows}, key=RELEASES.index)
    table = _table(rows)
    summary = _summary(rows, total, seconds)
    made_with = environment(rows)
    (out / "matrix.json").write_text(json.dumps(
        {"summary": summary, "environment": made_with, "rows": [_travelling(r, out) for r in rows]},
        indent=2) + "\n")
    (out / "matrix.md").write_text(_markdown(table, releases, summary, rows, made_with))
    (out / "matrix.html").write_text(_html(table, releases, summary, rows, made_with))


def _relative(path: str, out: Path) -> str:
    return os.path.relpath(path, out) if path else ""


def _travelling(row: Row, out: Path) -> dict[str, Any]:
    """A row as matrix.json keeps it: every path relative to the report's folder."""
    data = row.to_json()
    data["path"] = os.path.relpath(row.scenario.path.resolve(), out.resolve())
    if data["verdict"] is not None:
        data["verdict"]["artifacts"] = row.artifacts
    return data


def read_report(folder: Path) -> list[Row]:
    """The rows of the matrix.json in `folder` (as write_reports wrote it: paths relative to it),
    with their paths as this machine finds them: to make the report again, here or elsewhere."""
    rows = []
    for data in json.loads((folder / "matrix.json").read_text())["rows"]:
        evidence = _evidence(data["artifacts"], folder)   # relative to the folder, as written
        data = {**data, "path": str(folder / data["path"]),
                "artifacts": str(folder / data["artifacts"]) if data["artifacts"] else ""}
        if data["verdict"] is not None:
            data["verdict"] = {**data["verdict"], "artifacts": data["artifacts"]}
        rows.append(dataclasses.replace(Row.from_json(data), evidence=evidence))
    return rows


def environment(rows: list[Row]) -> dict[str, Any]:
    """What the report was made with: coexist's version, the date, the command, the accelerator
    and the package versions of each release's host image."""
    versions: dict[str, dict[str, str]] = {}
    accels: set[str] = set()
    for row in rows:
        if row.verdict is not None:
            versions.setdefault(row.scenario.host.release, dict(row.verdict.versions))
            accels.add(f"{row.verdict.accel.accel} ({row.verdict.accel.reason})")
    return {"coexist": about.version(), "date": time.strftime("%Y-%m-%d %H:%M %Z"),
            "command": shlex.join(["coexist" if sys.argv[0].endswith("coexist") else sys.argv[0],
                                   *sys.argv[1:]]),
            "accelerator": sorted(accels), "versions": versions}


def _evidence(artifacts: str, out: Path) -> str:
    """The link to a run's evidence (`artifacts`, relative to the report): its verdict, or (a run
    that broke before it had one) its folder; none for a run that never happened (not applicable)."""
    if artifacts and (out / artifacts / "verdict.txt").is_file():
        return f"{artifacts}/verdict.txt"
    if artifacts and (out / artifacts).is_dir():
        return f"{artifacts}/"
    return ""


def _table(rows: list[Row]) -> dict[str, dict[str, Row]]:
    """label without release -> release -> row."""
    table: dict[str, dict[str, Row]] = {}
    for row in rows:
        key = f"{row.scenario.name}: " + row.scenario.label().split(" ", 1)[1]
        table.setdefault(key, {})[row.scenario.host.release] = row
    return table


def _steps(table: dict[str, dict[str, Row]]) -> list[str]:
    """Every step id of the table's rows, in the order the steps happen."""
    ids: dict[str, None] = {}
    for by_release in table.values():
        for row in by_release.values():
            ids.update(dict.fromkeys(step.id for step in row.scenario.steps))
    return list(ids)


def _summary(rows: list[Row], total: int, seconds: float) -> dict[str, Any]:
    unexpected = sum(1 for r in rows if r.verdict and r.verdict.mismatches())
    errors = sum(1 for r in rows if r.error)
    unsupported = sum(1 for r in rows if r.unsupported)
    return {"runs": len(rows), "planned": total,
            "as_expected": len(rows) - unexpected - errors - unsupported,
            "unexpected": unexpected, "errors": errors, "unsupported": unsupported,
            "wall_seconds": round(seconds, 1)}


def _summary_line(summary: dict[str, Any]) -> str:
    return (f"{summary['runs']}/{summary['planned']} runs: {summary['as_expected']} as expected, "
            f"{summary['unexpected']} unexpected, {summary['errors']} errors, "
            f"{summary['unsupported']} not applicable on their release; {summary['wall_seconds']:.0f} s")


def _markdown(table: dict[str, dict[str, Row]], releases: list[str], summary: dict[str, Any],
              rows: list[Row], environment: dict[str, Any]) -> str:
    steps = _steps(table)
    head = ["scenario / axes"] + [f"{rel}: {step}" for rel in releases for step in steps]
    lines = ["# coexist matrix", "", _summary_line(summary), "",
             "Each cell: what the guests and Docker's workload were after that step; "
             "**UNEXPECTED** where it differs from the scenario file.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, by_release in table.items():
        cells = []
        for rel in releases:
            row = by_release.get(rel)
            row_cells = row.cells() if row else {}
            for step in steps:
                cell = row_cells.get(step)
                cells.append("" if cell is None else
                             cell.text + (f" **UNEXPECTED** ({cell.mismatch})" if cell.mismatch else ""))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "## Where reality contradicts the post behind the scenario", "",
              "The post promises the symptom, and a fix that restores the guest without breaking "
              "anything. Rules before and after each step: the numbered folders in each run's artifacts.", ""]
    for row in rows:
        if row.verdict is not None and (broken := contradictions(row.verdict)):
            lines.append(f"- **{row.scenario.label()}**: {'; '.join(broken)} "
                         f"([verdict]({row.evidence}))")
    lines += ["", "## Evidence", ""]
    for row in rows:
        evidence = f"[{row.artifacts}]({row.evidence})" if row.evidence else "no run"
        lines.append(f"- **{row.scenario.label()}**: {evidence}")
        if row.error:
            lines.append(f"  - error: `{row.error.splitlines()[0]}`")
        elif row.unsupported:
            lines.append(f"  - not applicable: {row.unsupported}")
        elif row.verdict:
            lines += [f"  - {m}" for m in row.verdict.mismatches()]
            lines += [f"  - why: {w}" for w in row.verdict.explanation[:4]]
    lines += ["", *environment_markdown(environment)]
    return "\n".join(lines) + "\n"


def environment_markdown(environment: dict[str, Any], *, versions: bool = True) -> list[str]:
    """What a report was made with (`environment()`), as markdown lines; `versions`: each
    release's package versions too."""
    lines = ["## Environment", "", f"- coexist {environment['coexist']}, {environment['date']}",
             f"- command: `{environment['command']}`",
             f"- accelerator: {', '.join(environment['accelerator']) or 'none ran'}"]
    if versions:
        lines += [f"- {release}: " + ", ".join(f"{k} {v}" for k, v in sorted(packages.items()))
                  for release, packages in environment["versions"].items()]
    return lines


def environment_html(environment: dict[str, Any]) -> list[str]:
    """The same as HTML: a heading and a list."""
    e = html.escape
    out = ["<h2>Environment</h2><ul>",
           f"<li>coexist {e(environment['coexist'])}, {e(environment['date'])}</li>",
           f"<li>command: <code>{e(environment['command'])}</code></li>",
           f"<li>accelerator: {e(', '.join(environment['accelerator']) or 'none ran')}</li>"]
    out += [f"<li>{e(release)}: " + e(", ".join(f"{k} {v}" for k, v in sorted(packages.items()))) + "</li>"
            for release, packages in environment["versions"].items()]
    return [*out, "</ul>"]


def _html(table: dict[str, dict[str, Row]], releases: list[str], summary: dict[str, Any],
          rows: list[Row], environment: dict[str, Any]) -> str:
    steps = _steps(table)
    legend = "".join(f"<span class=key style='background:{COLOURS[k]}'>{html.escape(v)}</span>"
                     for k, v in LEGEND.items())
    out = ["<!doctype html><meta charset=utf-8><title>coexist matrix</title>",
           "<style>body{font-family:sans-serif;margin:16px}td,th{border:1px solid #aaa;"
           "padding:3px 6px;font-size:12px;vertical-align:top}table{border-collapse:collapse}"
           "td.label{max-width:260px;font-size:11px}td{max-width:220px}.key{display:inline-block;"
           "padding:2px 8px;margin:0 6px 4px 0;font-size:12px;border:1px solid #aaa}"
           "td.miss{outline:3px solid #b00000;outline-offset:-3px}"
           ".miss b{color:#b00000}th{background:#f4f4f4}</style>",
           "<h1>coexist matrix</h1>",
           f"<p>{html.escape(_summary_line(summary))}</p>",
           f"<p>{legend}<span class=key style='outline:3px solid #b00000'>"
           "red frame: differs from the scenario's expectation</span></p>",
           "<table><tr><th rowspan=2>scenario / axes</th>"
           + "".join(f"<th colspan={len(steps)}>{rel}</th>" for rel in releases) + "</tr><tr>"
           + "".join(f"<th>{html.escape(step)}</th>" for _ in releases for step in steps) + "</tr>"]
    for label, by_release in table.items():
        out.append(f"<tr><td class=label>{html.escape(label)}</td>")
        for rel in releases:
            row = by_release.get(rel)
            row_cells = row.cells() if row else {}
            for step in steps:
                cell = row_cells.get(step)
                if cell is None or row is None:
                    out.append("<td></td>")
                    continue
                short = cell.mismatch if len(cell.mismatch) <= 90 else cell.mismatch[:88] + "…"
                miss = f"<br><b>UNEXPECTED</b>: {html.escape(short)}" if cell.mismatch else ""
                title = html.escape(f"{cell.mismatch}\n{row.artifacts}".strip(), quote=True)
                text = html.escape(cell.text)
                if row.evidence:
                    text = f"<a href=\"{html.escape(row.evidence, quote=True)}\">{text}</a>"
                out.append(f"<td class='{'miss' if cell.mismatch else ''}' data-outcome={cell.colour} "
                           f"style='background:{COLOURS[cell.colour]}' title=\"{title}\">{text}{miss}</td>")
        out.append("</tr>")
    out.append("</table>")
    out += _html_evidence(rows, environment)
    return "\n".join(out) + "\n"


def _html_evidence(rows: list[Row], environment: dict[str, Any]) -> list[str]:
    """What the table cannot say in a cell: no symptom to fix, what a fix breaks, why a run broke
    or does not apply; then what the report was made with."""
    items = []
    for row in rows:
        said = [f"error: {row.error.splitlines()[0]}"] if row.error else []
        said += [f"not applicable: {row.unsupported}"] if row.unsupported else []
        if row.verdict is not None:
            said += contradictions(row.verdict) + row.verdict.mismatches()
        if said:
            label = html.escape(row.scenario.label())
            if row.evidence:
                label = f"<a href=\"{html.escape(row.evidence, quote=True)}\">{label}</a>"
            items.append(f"<li>{label}<ul>"
                         + "".join(f"<li>{html.escape(line)}</li>" for line in said) + "</ul></li>")
    return ["<h2>Notes on the runs</h2>", f"<ul>{''.join(items)}</ul>" if items else "<p>None.</p>",
            *environment_html(environment)]


def contradictions(verdict: Verdict) -> list[str]:
    """What the measurement says against the post: no symptom, a fix that fails or breaks Docker."""
    found = []
    if not verdict.symptom:
        found.append("no symptom after boot: " + "; ".join(
            f"{n} {s.final.summary()}" for n, s in verdict.steps[0].guests.items()))
    before = verdict.steps[0]
    for result in verdict.steps:
        if not isinstance(result.step, ApplyFix):
            continue
        if not result.online:
            found.append(f"{result.step.id} does not restore every guest")
        if before.published_port and result.published_port is False:
            found.append(f"{result.step.id} cuts Docker's published port off")
        if before.docker_isolation and result.docker_isolation is False:
            found.append(f"{result.step.id} breaks Docker's network isolation")
    return found


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:80]


def evidence_folder(scenario: Scenario) -> str:
    """The name of a variant's evidence folder: its scenario's name and its label, shortened, and
    a hash of all it is (file, name, every axis value), so that no two variants share one (a
    label cut at 80 characters mapped a 5-axis cross of 32 variants onto 12 folders)."""
    whole = json.dumps({"file": str(scenario.path.resolve()), "name": scenario.name,
                        "axes": scenario.axes()}, sort_keys=True, default=str)
    digest = hashlib.sha256(whole.encode()).hexdigest()[:10]
    return f"{slug(f'{scenario.name} {scenario.label()}')[:70].strip('-')}-{digest}"
