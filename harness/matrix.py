"""`coexist matrix`: scenarios crossed with axes, run one after another, reported at a glance.

Writes matrix.md and matrix.html (rows: scenario and axes; columns: release x outcome; cells
coloured expected / UNEXPECTED / error) and matrix.json, plus each run's own artifacts folder.
"""

from __future__ import annotations

import html
import itertools
import json
import re
import time
import traceback
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import log
from harness.scenario import RELEASES, Scenario
from harness.verdict import Verdict

OUTCOMES = ("symptom", "fix effective", "survives events", "port before fix", "port after fix",
            "isolation before fix", "isolation after fix")


@dataclass
class Row:
    scenario: Scenario
    verdict: Verdict | None = None
    error: str | None = None
    unsupported: str | None = None   # the release cannot express these axes (not a failure)
    seconds: float = 0.0
    artifacts: str = ""

    def cells(self) -> dict[str, tuple[str, str]]:
        """outcome -> (text, status) with status expected | unexpected | error | none."""
        if self.unsupported is not None:
            return {o: ("unsupported", "none") for o in OUTCOMES}
        if self.verdict is None:
            return {o: ("error", "error") for o in OUTCOMES}
        v, e = self.verdict, self.scenario.expect
        pairs: dict[str, tuple[bool | None, bool | None]] = {
            "symptom": (v.symptom, e.symptom),
            "fix effective": (v.fix_effective, e.fix_effective),
            "survives events": (v.survives_events, e.survives_events),
            "port before fix": (v.published_before, e.published_port),
            "port after fix": (v.published_after, e.published_port_after_fix),
            "isolation before fix": (v.isolation_before, e.docker_isolation),
            "isolation after fix": (v.isolation_after, e.docker_isolation_after_fix),
        }
        cells = {}
        for outcome, (measured, expected) in pairs.items():
            if measured is None:
                cells[outcome] = ("n/a", "none")
            elif expected is None:
                cells[outcome] = (_yes(measured), "none")
            elif measured == expected:
                cells[outcome] = (_yes(measured), "expected")
            else:
                cells[outcome] = (f"{_yes(measured)} (expected {_yes(expected)})", "unexpected")
        text, status = cells["symptom"]
        if not v.symptom:   # "no" alone would hide whether the guest was online or cut off
            text = f"{text}: {v.before.state}"
        if v.before.ipv6_ok is not None:
            text = f"{text}; IPv6 {'ok' if v.before.ipv6_ok else 'fails'}"
        cells["symptom"] = (text, "unexpected" if v.before_mismatches() else status)
        return cells

    def to_json(self) -> dict[str, Any]:
        return {"label": self.scenario.label(), "scenario": self.scenario.name,
                "axes": self.scenario.axes(), "seconds": round(self.seconds, 1),
                "artifacts": self.artifacts, "error": self.error,
                "cells": {k: {"text": t, "status": s} for k, (t, s) in self.cells().items()},
                "unsupported": self.unsupported,
                "verdict": self.verdict.to_json() if self.verdict else None}


def cross(scenarios: Iterable[Scenario], axes: Mapping[str, Sequence[Any]]) -> list[Scenario]:
    """Every scenario with every combination of the given axis values (empty axes: as written)."""
    names = [name for name, values in axes.items() if values]
    variants = []
    for scenario in scenarios:
        for values in itertools.product(*(axes[name] for name in names)):
            variants.append(scenario.variant(**dict(zip(names, values, strict=True))))
    return variants


def run(variants: list[Scenario], out: Path) -> list[Row]:
    """Run each variant for real, one after another, with progress; errors become error cells."""
    from harness.runner import ScenarioUnsupported, build_images, run_scenario

    out.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    started = time.monotonic()
    images = {}
    for index, scenario in enumerate(variants, 1):
        row = Row(scenario)
        folder = out / f"{index:02d}-{_slug(scenario.label())}"
        row.artifacts = str(folder)
        elapsed = time.monotonic() - started
        log.info(f"[{index}/{len(variants)}] {scenario.name}: {scenario.label()} "
                 f"({elapsed:.0f}s elapsed)")
        t0 = time.monotonic()
        try:
            release = scenario.host.release
            if release not in images:
                images[release] = build_images(release)
            row.verdict = run_scenario(scenario, artifacts=folder, images=images[release])
        except ScenarioUnsupported as error:
            row.unsupported = str(error)
            log.info(f"[{index}/{len(variants)}] unsupported here: {error}")
        except Exception as error:  # one broken run must not hide the others' results
            row.error = f"{type(error).__name__}: {error}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "error.txt").write_text(traceback.format_exc())
            log.info(f"[{index}/{len(variants)}] run failed: {row.error.splitlines()[0]}")
        row.seconds = time.monotonic() - t0
        rows.append(row)
        write_reports(rows, out, total=len(variants), seconds=time.monotonic() - started)
    return rows


def write_reports(rows: list[Row], out: Path, *, total: int, seconds: float) -> None:
    releases = sorted({r.scenario.host.release for r in rows}, key=RELEASES.index)
    table = _table(rows)
    summary = _summary(rows, total, seconds)
    (out / "matrix.json").write_text(json.dumps(
        {"summary": summary, "rows": [r.to_json() for r in rows]}, indent=2) + "\n")
    (out / "matrix.md").write_text(_markdown(table, releases, summary, rows))
    (out / "matrix.html").write_text(_html(table, releases, summary, rows))


def _table(rows: list[Row]) -> dict[str, dict[str, Row]]:
    """label without release -> release -> row."""
    table: dict[str, dict[str, Row]] = {}
    for row in rows:
        key = f"{row.scenario.name}: " + row.scenario.label().split(" ", 1)[1]
        table.setdefault(key, {})[row.scenario.host.release] = row
    return table


def _summary(rows: list[Row], total: int, seconds: float) -> dict[str, Any]:
    unexpected = sum(1 for r in rows if r.verdict and r.verdict.mismatches())
    errors = sum(1 for r in rows if r.error)
    unsupported = sum(1 for r in rows if r.unsupported)
    return {"runs": len(rows), "planned": total,
            "as_expected": len(rows) - unexpected - errors - unsupported,
            "unexpected": unexpected, "errors": errors, "unsupported": unsupported,
            "wall_seconds": round(seconds, 1)}


def _markdown(table: dict[str, dict[str, Row]], releases: list[str], summary: dict[str, Any],
              rows: list[Row]) -> str:
    mark = {"expected": "", "unexpected": " **UNEXPECTED**", "error": " **ERROR**", "none": ""}
    head = ["scenario / axes"] + [f"{rel}: {o}" for rel in releases for o in OUTCOMES]
    lines = ["# coexist matrix", "",
             f"{summary['runs']}/{summary['planned']} runs: {summary['as_expected']} as expected, "
             f"{summary['unexpected']} unexpected, {summary['errors']} errors, "
             f"{summary['unsupported']} unsupported by their release; "
             f"{summary['wall_seconds']:.0f} s", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, by_release in table.items():
        cells = []
        for rel in releases:
            row = by_release.get(rel)
            row_cells = row.cells() if row else {}
            for outcome in OUTCOMES:
                if row is None:
                    cells.append("")
                else:
                    text, status = row_cells[outcome]
                    cells.append(text + mark[status])
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "## Where reality contradicts the post behind the scenario", "",
              "The post promises the symptom, and a fix that restores the guest without breaking "
              "anything. Rules before and after: `2-symptom/` and `3-after-fix/` in each folder.", ""]
    for row in rows:
        if row.verdict is not None and (broken := contradictions(row.verdict)):
            lines.append(f"- **{row.scenario.label()}**: {'; '.join(broken)} ({row.artifacts})")
            lines += [f"  - {w}" for w in row.verdict.explanation if w.startswith(("  +", "  -"))]
    lines += ["", "## Evidence", ""]
    for row in rows:
        lines.append(f"- **{row.scenario.label()}**: {row.artifacts}")
        if row.error:
            lines.append(f"  - error: `{row.error.splitlines()[0]}`")
        elif row.unsupported:
            lines.append(f"  - unsupported: {row.unsupported}")
        elif row.verdict:
            lines += [f"  - {m}" for m in row.verdict.mismatches()]
            lines += [f"  - why: {w}" for w in row.verdict.explanation[:4]]
    return "\n".join(lines) + "\n"


def _html(table: dict[str, dict[str, Row]], releases: list[str], summary: dict[str, Any],
          rows: list[Row]) -> str:
    colour = {"expected": "#c8f0c8", "unexpected": "#f6b0b0", "error": "#f0d080",
              "none": "#eeeeee"}
    out = ["<!doctype html><meta charset=utf-8><title>coexist matrix</title>",
           "<style>body{font-family:sans-serif}td,th{border:1px solid #999;padding:4px 8px;"
           "font-size:13px}table{border-collapse:collapse}</style>",
           "<h1>coexist matrix</h1>",
           f"<p>{summary['runs']}/{summary['planned']} runs: {summary['as_expected']} as expected,"
           f" {summary['unexpected']} unexpected, {summary['errors']} errors; "
           f"{summary['wall_seconds']:.0f} s. Green: as expected; red: UNEXPECTED; "
           "yellow: the run broke; grey: nothing expected.</p>",
           "<table><tr><th rowspan=2>scenario / axes</th>"
           + "".join(f"<th colspan={len(OUTCOMES)}>{rel}</th>" for rel in releases) + "</tr><tr>"
           + "".join(f"<th>{o}</th>" for _ in releases for o in OUTCOMES) + "</tr>"]
    for label, by_release in table.items():
        out.append(f"<tr><td>{html.escape(label)}</td>")
        for rel in releases:
            row = by_release.get(rel)
            row_cells = row.cells() if row else {}
            for outcome in OUTCOMES:
                if row is None:
                    out.append("<td></td>")
                    continue
                text, status = row_cells[outcome]
                link = html.escape(row.artifacts)
                out.append(f"<td style='background:{colour[status]}' title='{link}'>"
                           f"{html.escape(text)}</td>")
        out.append("</tr>")
    out.append("</table>")
    return "\n".join(out) + "\n"


def contradictions(verdict: Verdict) -> list[str]:
    """What the measurement says against the post: no symptom, a fix that fails or breaks ports."""
    found = []
    if not verdict.symptom:
        found.append("no symptom: " + verdict.before.summary())
    if verdict.fix_effective is False:
        found.append("the fix does not restore the guest: " + (verdict.after.summary()
                                                                 if verdict.after else ""))
    if verdict.published_before and verdict.published_after is False:
        found.append("the fix cuts Docker's published port off")
    if verdict.isolation_before and verdict.isolation_after is False:
        found.append("the fix breaks Docker's network isolation")
    return found


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:80]
