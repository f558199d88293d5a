"""`coexist fixes`' report: the catalogue's fixes side by side, per release, each cell saying what
happened for the user (restored / still cut off / published port BROKEN / LOST after a reload ...)
with its reason and a link to its evidence. fixes.json is the same table as data a program can
query (coexist's future `doctor` recommends from it): per release and fix, whether it restores
the guest, what it costs, what it survives.
"""

from __future__ import annotations

import dataclasses
import html
import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from coexist.host.firewall import is_rule
from coexist.report.matrix import Row, environment_html, environment_markdown
from coexist.report.results import StepResult
from coexist.report.verdict import costs
from coexist.scenario.axes import RELEASES
from coexist.scenario.catalogue import AGAIN_STEP, CONTROL, FIX_STEP, SURVIVAL, Planned, Setup, order
from coexist.scenario.fixes import builtin
from coexist.scenario.keys import KEYS, PROBES

FORMAT = 1
COLUMNS = {"boot": "before the fix", FIX_STEP: "the fix", "after-reload": "after firewall-cmd --reload",
           "after-firewalld-restart": "after a firewalld restart",
           "after-docker-restart": "after a dockerd restart",
           "after-libvirtd-restart": "after a libvirtd restart",
           "after-guest-restart": "after a guest restart",
           "after-reboot": "after a host reboot", AGAIN_STEP: "the fix applied again"}
assert set(COLUMNS) == {"boot", FIX_STEP, *(step for step, _ in SURVIVAL), AGAIN_STEP}
COLOURS = {"good": "#bfe8bf", "cost": "#f7cf8f", "bad": "#f2a7a7", "none": "#e6e6e6", "error": "#f0e08a"}
LEGEND = {"good": "good for the user: the guest online, Docker as before",
          "cost": "the guest online, but something BROKEN that worked before the fix",
          "bad": "the guest cut off", "none": "nothing to measure: not applicable, nothing to fix",
          "error": "the run broke (its evidence says why)"}


@dataclass(frozen=True)
class Cell:
    text: str     # what happened, for the user
    colour: str   # a key of COLOURS
    reason: str   # one line from the evidence
    recorded: str = ""   # the recorded table's text, where this run differs from it ("": as recorded)


@dataclass(frozen=True)
class FixRow:
    """One fix on one release: its cells by column, and the verdict's gist."""

    release: str
    fix: str
    summary: str
    source: str
    cells: dict[str, Cell]
    restores: bool | None    # None: not measured (not applicable, broken, nothing to fix)
    costs: list[str]         # what it broke, with the step it broke it at
    evidence: str = ""       # relative to the report
    not_applicable: str | None = None
    error: str | None = None
    checks: dict[str, bool] = dataclasses.field(default_factory=dict)   # the fix's host checks
    commands: dict[str, bool] = dataclasses.field(default_factory=dict)   # fix steps: all exit 0
    blind: list[str] = dataclasses.field(default_factory=list)   # probes whose positive control failed
    # what each firewalld event's step did to Docker's rules (kept, re-made, lost), by column
    docker_rules: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def control(self) -> bool:
        """The control row (no fix applied), not a fix."""
        return self.fix == CONTROL.name

    @property
    def mismatches(self) -> list[str]:
        """Where this run differs from the catalogue's recorded table, and probes that could not
        see what they look for."""
        return [f"{COLUMNS[column]}: {cell.text} (recorded: {cell.recorded})"
                for column, cell in self.cells.items() if cell.recorded] + \
            [f"probe {name} is blind (its positive control failed): its \"closed\" proves nothing"
             for name in self.blind]

    @property
    def free(self) -> bool:
        """Restores the guest, survives every event measured, and breaks nothing measured."""
        return bool(self.restores) and not self.costs

    def rank(self) -> tuple[int, int]:
        """Best first: restoring fixes by how many cells after the fix are bad or costly."""
        after = [cell for column, cell in self.cells.items() if column not in ("boot",)]
        return (sum(c.colour == "bad" for c in after), sum(c.colour == "cost" for c in after))

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "free": self.free, "mismatches": self.mismatches}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FixRow:
        fields = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        return cls(**{**fields, "cells": {c: Cell(**cell) for c, cell in data["cells"].items()}})


def rows(planned: Iterable[Planned], measured: Iterable[Row], *, against_record: bool = True) -> list[FixRow]:
    """The catalogue's rows: each planned fix with what its run measured (none for a fix that
    is not applicable on its release; an error for a run that broke), each cell compared with
    the recorded table unless `against_record` is False (then, where the control did not run
    here, the recorded control is what a fix's reload is told apart from)."""
    runs = {(row.scenario.host.release, row.scenario.name): row for row in measured}
    found = []
    expected = {}
    for plan in planned:
        base: dict[str, Any] = dict(release=plan.release, fix=plan.fix.name, summary=plan.fix.summary,
                                    source=plan.fix.source)
        columns = ["boot", FIX_STEP, *(step for step, _ in plan.setup.survival()), AGAIN_STEP]
        run = runs.get((plan.release, plan.fix.name))
        if plan.not_applicable or (run and run.unsupported):
            why = plan.not_applicable or (run.unsupported if run else None)
            found.append(FixRow(**base, cells={}, restores=None, costs=[], not_applicable=why))
        elif run is None or run.verdict is None:
            error = (run.error.splitlines()[0] if run and run.error
                     else "not run (the catalogue run stopped first)")
            found.append(FixRow(**base, cells={c: Cell("error" if run else "not run", "error", error)
                                               for c in columns},
                                restores=None, costs=[], evidence=run.evidence if run else "", error=error))
        else:
            found.append(_measured(base, run))
            expected[plan.release, plan.fix.name] = plan.expected if against_record else {}
    recorded = {plan.release: plan.setup.recorded(CONTROL, plan.release).get("docker_rules", {})
                for plan in planned} if against_record else {}
    return [_against(row, expected.get((row.release, row.fix), {}))
            for row in against_control(found, recorded)]


# what a firewalld event may do to Docker's rules, from harmless to harmful (the key's own values)
_DOCKER_RULES = KEYS["docker_rules"].allowed or ()


def against_control(found: list[FixRow], recorded: dict[str, dict[str, str]] | None = None) -> list[FixRow]:
    """`found` with what each restoring fix adds to its release's control at a firewalld reload
    or restart: Docker's rules re-made (iptables flushed, Docker repaired it) or lost, where the
    control kept them, is a cost the fix brings (firewalld flushes iptables at a reload once it
    has a direct rule). A release whose control did not run here is told apart from its
    `recorded` control (release -> column -> kept/re-made/lost), if given; else the rules stay
    information."""
    controls = {release: (rules, "the recorded control") for release, rules in (recorded or {}).items()
                if rules}
    controls |= {row.release: (row.docker_rules, "the control") for row in found
                 if row.control and not row.error}
    changed = []
    for row in found:
        if row.release not in controls or row.control or not row.restores:
            changed.append(row)
            continue
        rules, which = controls[row.release]
        cells, paid = dict(row.cells), list(row.costs)
        for column, value in row.docker_rules.items():
            without = rules.get(column)
            if without is None or _DOCKER_RULES.index(value) <= _DOCKER_RULES.index(without):
                continue
            cost = "Docker's rules FLUSHED" if value == "re-made" else "Docker's rules LOST"
            cell = cells[column]
            if cell.colour in ("good", "cost") and cost not in cell.text:
                text = f"{cell.text}, {cost}" if cell.colour == "cost" else f"{cell.text}, but {cost}"
                cells[column] = Cell(text, "cost", f"{cell.reason}; without the fix ({which}): {without}")
                paid.append(f"{cost} ({COLUMNS[column]})")
        changed.append(dataclasses.replace(row, cells=cells, costs=_once(paid)))
    return changed


def _against(row: FixRow, expected: dict[str, str]) -> FixRow:
    """`row` with each cell that differs from the recorded table marked (nothing recorded: as is)."""
    cells = {column: cell if expected.get(column, cell.text) == cell.text else
             dataclasses.replace(cell, recorded=expected[column]) for column, cell in row.cells.items()}
    return dataclasses.replace(row, cells=cells)


def _measured(base: dict[str, Any], run: Row) -> FixRow:
    assert run.verdict is not None
    steps = {result.step.id: result for result in run.verdict.steps}
    boot, fix = steps["boot"], steps[FIX_STEP]
    cells = {"boot": Cell("online: no symptom", "good", _probes(boot)) if boot.online else
             Cell("cut off (the symptom)", "bad", _probes(boot))}
    paid: list[str] = []
    control = base["fix"] == CONTROL.name
    if control:
        cells[FIX_STEP] = Cell("nothing applied (the control)", "none", _probes(fix))
        restores = None
    elif boot.online:
        cells[FIX_STEP] = Cell("nothing to fix", "none", "the guest was online before the fix")
        restores = None
    elif not fix.online:
        cells[FIX_STEP] = Cell("still cut off", "bad", _probes(fix))
        restores = False
    else:
        broken = costs(boot, fix)
        cells[FIX_STEP] = _online_cell("restored", broken, fix)
        paid += [f"{cost} ({COLUMNS[FIX_STEP]})" for cost in broken]
        restores = True
    for step, _ in SURVIVAL:
        if step not in steps:
            continue
        after = steps[step]
        if after.online:
            broken = costs(boot, after)
            cells[step] = _online_cell("kept" if restores else "online", broken, after)
            paid += [f"{cost} ({COLUMNS[step]})" for cost in broken if restores]
        else:
            cells[step] = Cell("LOST: cut off again" if restores else "still cut off", "bad", _probes(after))
            if restores:
                paid.append(f"guest LOST {COLUMNS[step]}")
    if control and AGAIN_STEP in steps:
        cells[AGAIN_STEP] = Cell("nothing applied (the control)", "none", _probes(steps[AGAIN_STEP]))
    elif AGAIN_STEP in steps:
        before = run.verdict.steps[-2]
        cells[AGAIN_STEP], cost = _again(before, steps[AGAIN_STEP])
        paid += [f"{cost} ({COLUMNS[AGAIN_STEP]})"] if cost else []
    return FixRow(**base, cells=cells, restores=restores, costs=_once(paid), evidence=run.evidence,
                  checks={check.id: check.holds for check in fix.checks},
                  commands={step: all(c.returncode == 0 for c in steps[step].commands)
                            for step in (FIX_STEP, AGAIN_STEP) if step in steps},
                  blind=run.verdict.blind(),
                  docker_rules={step: result.docker_rules[0] for step, result in steps.items()
                                if result.docker_rules})


def _again(before: StepResult, again: StepResult) -> tuple[Cell, str]:
    """The fix applied a second time (`before`: the step before it): does it add its rules again
    (idempotence), does a command refuse, does an online guest stay online? The cell, and its
    cost ("": none)."""
    failed = [c for c in again.commands if c.returncode != 0]
    if failed:
        said = failed[0].output.strip().splitlines()[-1:] or [""]
        reason = f"`{failed[0].command}` exit {failed[0].returncode}: {said[0][:120]}"
        what = "a command FAILS when applied again"
        return Cell(what, "cost", reason), what
    added = [line for line in again.added if is_rule(line)]   # also in verdicts made before is_rule
    if added:
        more = len(added) - 3
        shown = "; ".join(added[:3]) + (f"; ... {more} more" if more > 0 else "")
        what = f"adds {len(added)} ruleset line(s) again"
        return Cell(what, "cost", shown), f"not idempotent: {what}"
    if before.online and not again.online:
        return Cell("LOST: cut off again", "bad", _probes(again)), "guest LOST when applied again"
    return Cell("adds nothing", "good" if again.online else "bad",
                "no ruleset line added; every command exit 0; " + _probes(again)), ""


def _online_cell(word: str, broken: list[str], result: StepResult) -> Cell:
    if broken:
        return Cell(f"{word}, but {', '.join(broken)}", "cost", _docker(result))
    return Cell(word, "good", _probes(result) + "; " + _docker(result))


def _once(items: list[str]) -> list[str]:
    """Each cost once, at the first step that showed it."""
    seen: dict[str, str] = {}
    for item in items:
        seen.setdefault(item.split(" (")[0], item)
    return list(seen.values())


def _probes(result: StepResult) -> str:
    if len(result.guests) == 1:
        return next(iter(result.guests.values())).final.summary()
    return "; ".join(f"guest {name}: {settled.final.summary()}" for name, settled in result.guests.items())


def _docker(result: StepResult) -> str:
    """Docker's workload and the cost probes, as the verdict's host line words them."""
    said = [f"{key.title} {key.word(value)}" for name in ("published_port", "docker_isolation", *PROBES,
                                                          "docker_rules")
            if (value := result.host_value(name)) is not None and (key := KEYS[name])]
    return ", ".join(said) or "Docker not probed"


def best(found: list[FixRow], release: str) -> dict[str, list[str]]:
    """Per release: the fixes that restore the guest at no measured cost (best first), those that
    restore it at a cost, those that do not, and those that do not apply (the control aside)."""
    mine = [row for row in found if row.release == release and not row.control]
    restoring = sorted((row for row in mine if row.restores), key=FixRow.rank)
    return {"free": [row.fix for row in restoring if row.free],
            "with_costs": [f"{row.fix} ({'; '.join(row.costs)})" for row in restoring if not row.free],
            "not_restoring": [row.fix for row in mine if row.restores is False],
            "nothing_to_fix": [row.fix for row in mine if row.restores is None and not row.not_applicable
                               and not row.error],
            "not_applicable": [row.fix for row in mine if row.not_applicable],
            "errors": [row.fix for row in mine if row.error]}


def terminal(found: list[FixRow], releases: Iterable[str]) -> str:
    """What `coexist fixes` prints when it ends: per release, the best fixes and the rest."""
    lines = []
    for release in releases:
        lines.append(f"{release}:")
        for line, fixes in _best_lines(best(found, release)):
            lines += [f"  {line}", *(f"    {fix}" for fix in fixes)]
    lines += [f"UNEXPECTED: {row.release} {row.fix}: {line}" for row in found for line in row.mismatches]
    return "\n".join(lines)


def write_reports(setup: Setup, found: list[FixRow], out: Path, *, environment: dict[str, Any],
                  seconds: float) -> None:
    """fixes.json, fixes.md and fixes.html in `out` (the evidence links are relative to it)."""
    releases = order(row.release for row in found)
    data = {"format": FORMAT, "setup": asdict(setup), "releases": releases,
            "deviations": {r: d for r in releases if (d := setup.deviation(r))},
            "best": {r: best(found, r) for r in releases}, "columns": COLUMNS,
            "wall_seconds": round(seconds, 1), "environment": environment,
            "rows": [row.to_json() for row in found]}
    (out / "fixes.json").write_text(json.dumps(data, indent=2) + "\n")
    (out / "fixes.md").write_text(markdown(data))
    (out / "fixes.html").write_text(page(data))


def write_index(out: Path, setups: list[str]) -> None:
    """index.md and index.html in `out`: per setup (its report in out/<setup>/), its summary and,
    per release, what its report's top says (the fixes that restore the guest at no measured cost,
    those at a cost, ...)."""
    tables = [json.loads((out / name / "fixes.json").read_text()) for name in setups]
    e = html.escape
    md = ["# coexist fix catalogue: every setup", "",
          "Per setup and release, what its report's top says; each report has the cells and their "
          "evidence.", ""]
    page_ = ["<!doctype html><meta charset=utf-8><title>coexist fix catalogue: every setup</title>",
             "<style>body{font-family:sans-serif;margin:16px;max-width:1100px}li{margin:2px 0}</style>",
             "<h1>coexist fix catalogue: every setup</h1>"]
    for table in tables:
        name = table["setup"]["name"]
        rows = len(table["rows"])
        md += [f"## [{name}]({name}/fixes.md)", "", f"{table['setup']['summary']} ({rows} rows, "
               f"{table['wall_seconds']:.0f} s)", ""]
        page_ += [f"<h2><a href=\"{e(name, quote=True)}/fixes.html\">{e(name)}</a></h2>",
                  f"<p>{e(table['setup']['summary'])} ({rows} rows, {table['wall_seconds']:.0f} s)</p><ul>"]
        for release in table["releases"]:
            md += _best_markdown(release, table["best"][release])
            page_.append(_best_html(release, table["best"][release]))
        md.append("")
        page_.append("</ul>")
    (out / "index.md").write_text("\n".join(md) + "\n")
    (out / "index.html").write_text("\n".join(page_) + "\n")


def merge(parts: list[Path], out: Path, *, command: str) -> list[FixRow]:
    """One report in `out` from the fixes.json of several parts (shards of one catalogue run, or
    a run and cells measured again): their rows in catalogue order, a later part's row replacing
    an earlier one's for the same fix and release, each evidence link made relative to `out`,
    the environments joined, the wall time the longest part's. ValueError: parts of different
    setups."""
    tables = [json.loads((part / "fixes.json").read_text()) for part in parts]
    out.mkdir(parents=True, exist_ok=True)
    setups = {table["setup"]["name"] for table in tables}
    if len(setups) != 1:
        raise ValueError(f"the parts measure different setups: {', '.join(sorted(setups))}")
    by_cell: dict[tuple[str, str], FixRow] = {}
    for part, table in zip(parts, tables, strict=True):
        for data in table["rows"]:
            row = FixRow.from_json(data)
            evidence = os.path.relpath(part / row.evidence, out) if row.evidence else ""
            by_cell[row.release, row.fix] = dataclasses.replace(row, evidence=evidence)
    found = list(by_cell.values())
    fixes = list(builtin())   # the catalogue's order
    found.sort(key=lambda row: (RELEASES.index(row.release), -1 if row.control else
                                fixes.index(row.fix) if row.fix in fixes else len(fixes), row.fix))
    environment = merged_environment([table["environment"] for table in tables], command)
    write_reports(Setup(**tables[0]["setup"]), found, out, environment=environment,
                  seconds=max(table["wall_seconds"] for table in tables))
    return found


def merged_environment(environments: list[dict[str, Any]], command: str) -> dict[str, Any]:
    """What several parts were made with, as one: the merge's command and each part's."""
    return {"coexist": " / ".join(sorted({e["coexist"] for e in environments})),
            "date": " / ".join(sorted({e["date"] for e in environments})),
            "command": " ; ".join([command, *dict.fromkeys(e["command"] for e in environments)]),
            "accelerator": sorted({a for e in environments for a in e["accelerator"]}),
            "versions": {r: v for e in environments for r, v in e["versions"].items()}}


def _cells(data: dict[str, Any], release: str) -> list[dict[str, Any]]:
    return [row for row in data["rows"] if row["release"] == release]


def _best_lines(picked: dict[str, list[str]]) -> list[tuple[str, list[str]]]:
    """Per group of `best()` that has fixes: its line, and the fixes to list under it one a line
    (those with costs: the costs are long), or none (the fixes named in the line)."""
    words = {"free": "restore the guest at no measured cost, best first",
             "with_costs": "restore it, at a cost", "not_restoring": "do not restore it",
             "nothing_to_fix": "had nothing to fix (the guest was online before them)",
             "not_applicable": "not applicable here", "errors": "the run broke"}
    return [(f"{words[key]}:", names) if key == "with_costs" else (f"{words[key]}: {', '.join(names)}", [])
            for key, names in picked.items() if names]


def _best_markdown(release: str, picked: dict[str, list[str]]) -> list[str]:
    """A release's item of "Best per release" in markdown (the report's and the index's)."""
    lines = [f"- **{release}**:"]
    for line, fixes in _best_lines(picked):
        lines += [f"  - {line}", *(f"    - {fix}" for fix in fixes)]
    return lines


def _best_html(release: str, picked: dict[str, list[str]]) -> str:
    """A release's item of "Best per release" in HTML (the report's and the index's)."""
    e = html.escape
    said = "".join(f"<li>{e(line)}" + (f"<ul>{''.join(f'<li>{e(fix)}</li>' for fix in fixes)}</ul>"
                                         if fixes else "") + "</li>" for line, fixes in _best_lines(picked))
    return f"<li><b>{e(release)}</b><ul>{said}</ul></li>"


def markdown(data: dict[str, Any]) -> str:
    setup = data["setup"]
    named = {r["fix"] for r in data["rows"]}
    control = CONTROL.name in named
    lines = [f"# coexist fix catalogue: setup `{setup['name']}`", "", setup["summary"], "",
             f"{len(data['rows'])} rows ({len(named - {CONTROL.name})} fixes{' and the control' * control} x "
             f"{len(data['releases'])} releases), {data['wall_seconds']:.0f} s. Each cell: what happened "
             "for the user after that step, then why (from the run's evidence)."
             + f" The control, {CONTROL.name}, is the same steps with nothing applied." * control, "",
             "## Best per release", ""]
    for release in data["releases"]:
        lines += _best_markdown(release, data["best"][release])
    for release in data["releases"]:
        lines += ["", f"## {release}" + _main_versions(data, release), ""]
        if release in data["deviations"]:
            lines += [f"Note: {data['deviations'][release]}.", ""]
        head = ["fix", *data["columns"].values()]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for row in _cells(data, release):
            name = f"[{row['fix']}]({row['evidence']})" if row["evidence"] else row["fix"]
            name = f"*{name} (control)*" if row["fix"] == CONTROL.name else name
            cells = [_md_cell(row["cells"].get(column)) for column in data["columns"]]
            if row["not_applicable"]:
                cells = [f"not applicable: {row['not_applicable']}"] + [""] * (len(cells) - 1)
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "## Where this run differs from the recorded table", ""]
    lines += [f"- {row['release']} {row['fix']}: {line}" for row in data["rows"]
              for line in row["mismatches"]] or ["- nowhere (or nothing recorded for these cells)"]
    lines += ["", "## Not applicable, and runs that broke", ""]
    lines += [f"- {row['release']} {row['fix']}: {row['not_applicable'] or row['error']}"
              for row in data["rows"] if row["not_applicable"] or row["error"]] or ["- none"]
    lines += ["", "## The fixes", ""]
    seen: set[str] = set()
    for row in data["rows"]:
        if row["fix"] not in seen:
            seen.add(row["fix"])
            lines.append(f"- **{row['fix']}**: {row['summary']} (source: {row['source'] or 'none given'})")
    lines += ["", *environment_markdown(data["environment"], versions=False)]
    return "\n".join(lines) + "\n"


MAIN = ("docker.io", "libvirt-daemon", "firewalld", "nftables", "iptables")


def _main_versions(data: dict[str, Any], release: str) -> str:
    """`: docker.io 26.1.5..., libvirt-daemon 11.3.0...` (the environment has every package)."""
    versions = data["environment"]["versions"].get(release, {})
    said = [f"{name} {versions[name]}" for name in MAIN if name in versions]
    return ": " + ", ".join(said) if said else ""


def _md_cell(cell: dict[str, Any] | None) -> str:
    if cell is None:
        return ""
    text = cell["text"] if cell["colour"] in ("good", "none") else f"**{cell['text']}**"
    if cell["recorded"]:
        text += f" **UNEXPECTED** (recorded: {cell['recorded']})"
    return text if cell["colour"] == "none" else f"{text}<br>{cell['reason']}"


def page(data: dict[str, Any]) -> str:
    setup = data["setup"]
    e = html.escape
    legend = "".join(f"<span class=key style='background:{COLOURS[k]}'>{e(v)}</span>"
                     for k, v in LEGEND.items())
    out = ["<!doctype html><meta charset=utf-8>",
           f"<title>coexist fix catalogue: {e(setup['name'])}</title>",
           "<style>body{font-family:sans-serif;margin:16px;max-width:1400px}td,th{border:1px solid #aaa;"
           "padding:3px 6px;font-size:12px;vertical-align:top}table{border-collapse:collapse;width:100%}"
           "th{background:#f4f4f4}td.fix{font-weight:bold;white-space:nowrap}td small{color:#333}"
           ".key{display:inline-block;padding:2px 8px;margin:0 6px 4px 0;font-size:12px;"
           "border:1px solid #aaa}"
           "li{margin:2px 0}td.miss{outline:3px solid #b00000;outline-offset:-3px}"
           "td.miss b{color:#b00000}</style>",
           f"<h1>coexist fix catalogue: setup <code>{e(setup['name'])}</code></h1>",
           f"<p>{e(setup['summary'])}. {len(data['rows'])} rows, {data['wall_seconds']:.0f} s.</p>",
           f"<p>{legend}</p>", "<h2>Best per release</h2><ul>"]
    out += [_best_html(release, data["best"][release]) for release in data["releases"]]
    out.append("</ul>")
    for release in data["releases"]:
        out.append(f"<h2>{e(release)}</h2><p>{e(_main_versions(data, release)[2:])}</p>")
        if release in data["deviations"]:
            out.append(f"<p>Note: {e(data['deviations'][release])}</p>")
        out.append("<table><tr><th>fix</th>" + "".join(f"<th>{e(c)}</th>" for c in data["columns"].values())
                   + "</tr>")
        for row in _cells(data, release):
            name = e(row["fix"])
            if row["evidence"]:
                name = f"<a href=\"{e(row['evidence'], quote=True)}\">{name}</a>"
            name = f"<i>{name} (control)</i>" if row["fix"] == CONTROL.name else name
            out.append(f"<tr><td class=fix title=\"{e(row['summary'], quote=True)}\">{name}</td>")
            if row["not_applicable"]:
                out.append(f"<td colspan={len(data['columns'])} data-colour=none style='background:"
                           f"{COLOURS['none']}'>not applicable: {e(row['not_applicable'])}</td></tr>")
                continue
            for column in data["columns"]:
                cell = row["cells"].get(column)
                if cell is None:
                    out.append("<td></td>")
                    continue
                why = (f"<br><small>{e(cell['reason'])}</small>"
                       if cell["colour"] in ("bad", "cost", "error") else "")
                if cell["recorded"]:
                    why += f"<br><b>UNEXPECTED</b>: recorded {e(cell['recorded'])}"
                out.append(f"<td class='{'miss' if cell['recorded'] else ''}' data-colour={cell['colour']} "
                           f"style='background:{COLOURS[cell['colour']]}' "
                           f"title=\"{e(cell['reason'], quote=True)}\">{e(cell['text'])}{why}</td>")
            out.append("</tr>")
        out.append("</table>")
    notes = [f"<li>{e(row['release'])} {e(row['fix'])}: {e(row['not_applicable'] or row['error'])}</li>"
             for row in data["rows"] if row["not_applicable"] or row["error"]]
    differs = [f"<li>{e(row['release'])} {e(row['fix'])}: {e(line)}</li>"
               for row in data["rows"] for line in row["mismatches"]]
    out += ["<h2>Where this run differs from the recorded table</h2>",
            f"<ul>{''.join(differs) or '<li>nowhere (or nothing recorded for these cells)</li>'}</ul>"]
    out += ["<h2>Not applicable, and runs that broke</h2>", f"<ul>{''.join(notes) or '<li>none</li>'}</ul>",
            "<h2>The fixes</h2><ul>"]
    seen: set[str] = set()
    for row in data["rows"]:
        if row["fix"] not in seen:
            seen.add(row["fix"])
            source = e(row["source"] or "no source")
            out.append(f"<li><b>{e(row['fix'])}</b>: {e(row['summary'])} <small>({source})</small></li>")
    out += ["</ul>", *environment_html(data["environment"])]
    return "\n".join(out) + "\n"
