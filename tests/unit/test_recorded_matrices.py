"""Every matrix run recorded in bench/results agrees with the scenario files as they are now.

The scenario files' expectations were written from these runs; editing a case (or the case
logic) so that it contradicts a recorded measurement fails here, without running anything.
A later report of the same scenario and axes supersedes an earlier one (e.g. a re-run after a
harness fix), in path order.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness import scenario

ROOT = Path(__file__).resolve().parents[2]
REPORTS = sorted((ROOT / "bench" / "results").rglob("matrix.json"))


def recorded_runs() -> dict[tuple[str, str], dict[str, Any]]:
    runs: dict[tuple[str, str], dict[str, Any]] = {}
    for report in REPORTS:
        for row in json.loads(report.read_text())["rows"]:
            if row["verdict"] is not None:
                runs[(row["scenario"], row["label"])] = row | {"report": str(report.parent.relative_to(ROOT))}
    return runs


def measured(verdict: dict[str, Any]) -> dict[str, bool | None]:
    before = verdict["before"]
    ipv6 = before.get("ipv6") or []
    return {"symptom": verdict["symptom"], "fix_effective": verdict["fix_effective"],
            "survives_events": verdict["survives_events"],
            "published_port": verdict["published_before"],
            "published_port_after_fix": verdict["published_after"],
            "dns_before": before["dns"]["ok"],
            "ipv6_before": all(p["ok"] for p in ipv6) if ipv6 else None,
            "docker_isolation": verdict.get("isolation_before"),
            "docker_isolation_after_fix": verdict.get("isolation_after")}


def test_every_recorded_run_matches_the_scenario_files() -> None:
    files = {s.name: s for s in map(scenario.load, sorted((ROOT / "scenarios").glob("*.toml")))}
    runs = recorded_runs()
    assert len(runs) >= 90, f"only {len(runs)} recorded runs in {len(REPORTS)} reports"
    differ = []
    for (name, label), row in runs.items():
        axes = {k: v for k, v in row["axes"].items() if k != "firewalld"}   # derived, not an axis
        expect = files[name].variant(**axes).expect
        for outcome, value in measured(row["verdict"]).items():
            wanted = getattr(expect, outcome)
            if value is not None and wanted is not None and value != wanted:
                differ.append(f"{row['report']}: {label}: {outcome} measured {value}, "
                              f"the scenario file expects {wanted}")
    assert not differ, "\n".join(differ)
