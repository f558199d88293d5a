"""Record `coexist fixes` runs as the catalogue's expectations, and keep them in bench/results.

    .venv/bin/python bench/record_catalogue.py RUN [RUN ...]

Each RUN is a `coexist fixes --out RUN` folder, or a `coexist report merge` one (taken as it
is). A run's report is made again from its matrix.json with the code of this checkout (so a run
made before a report change still records what this code says). Then
harness/coexist/scenario/measured.json is written from all of them (coexist.scenario.catalogue.
record: a cell the runs disagree on is left out as varying), and each report, with the verdicts
and scenario files its links point to, is copied to bench/results/fixes-<setup>-<date>/ (with
-<n> after it where one setup has two runs).
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

from coexist.report import catalogue as report
from coexist.report import matrix
from coexist.scenario import catalogue

ROOT = Path(__file__).resolve().parents[1]


def remake(run: Path) -> dict[str, object]:
    old = json.loads((run / "fixes.json").read_text())
    setup = catalogue.setups()[old["setup"]["name"]]
    had = {(row["release"], row["fix"]) for row in old["rows"]}
    fixes = catalogue.chosen(list(dict.fromkeys(row["fix"] for row in old["rows"]
                                                if row["fix"] != catalogue.CONTROL.name)))
    # the rows the run had (a run made before the control row existed gets none)
    planned = [plan for plan in catalogue.plan(setup, fixes, old["releases"])
               if (plan.release, plan.fix.name) in had]
    measured = matrix.read_report(run)
    found = report.rows(planned, measured, against_record=False)   # it is the record: nothing to compare
    environment = {**matrix.environment(measured), "command": old["environment"]["command"],
                   "date": old["environment"]["date"]}
    report.write_reports(setup, found, run, environment=environment, seconds=old["wall_seconds"])
    data: dict[str, object] = json.loads((run / "fixes.json").read_text())
    return data


def keep(run: Path, name: str) -> Path:
    """The report, with what its links point to (each row's verdict, beside its scenario file),
    copied into bench/results/<name>: the links rewritten to the copies."""
    kept = ROOT / "bench" / "results" / name
    kept.mkdir(parents=True, exist_ok=True)
    data = json.loads((run / "fixes.json").read_text())
    for row in data["rows"]:
        if not row["evidence"]:
            continue
        verdict = (run / row["evidence"]).resolve()
        own = Path("runs") / row["release"] / row["fix"]
        (kept / own).mkdir(parents=True, exist_ok=True)
        shutil.copy(verdict, kept / own / "verdict.txt")
        scenario = next(verdict.parent.parent.glob(f"{row['release']}/{row['fix']}.toml"), None)
        if scenario is not None:
            shutil.copy(scenario, kept / own / "scenario.toml")
        row["evidence"] = f"{own}/verdict.txt"
    (kept / "fixes.json").write_text(json.dumps(data, indent=2) + "\n")
    (kept / "fixes.md").write_text(report.markdown(data))
    (kept / "fixes.html").write_text(report.page(data))
    return kept


def main(runs: list[Path]) -> None:
    tables, kept = [], []
    for run in runs:
        # a run's report made again; a merged one (no matrix.json of its own) as it is
        if (run / "matrix.json").is_file():
            table = remake(run)
        else:
            table = json.loads((run / "fixes.json").read_text())
        tables.append(table)
    setups = [table["setup"]["name"] for table in tables]   # type: ignore[index]
    for index, (run, setup) in enumerate(zip(runs, setups, strict=True), 1):
        name = f"fixes-{setup}-{time.strftime('%Y-%m-%d')}"
        kept.append(keep(run, name if setups.count(setup) == 1 else f"{name}-{index}").relative_to(ROOT))
        print(f"{run}: kept in {kept[-1]}")
    record = catalogue.record(tables, "coexist fixes, recorded by bench/record_catalogue.py from "
                                      + ", ".join(map(str, kept)))
    out = ROOT / "harness" / "coexist" / "scenario" / "measured.json"
    out.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    print(f"{out}: {sum(len(f) for s in record['setups'].values() for f in s.values())} rows recorded, "
          f"{len(record['varies'])} cells vary")


if __name__ == "__main__":
    main([Path(arg).resolve() for arg in sys.argv[1:]])
