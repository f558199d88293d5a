"""Every matrix run recorded in bench/results agrees with the scenario files as they are now.

The scenario files' expectations were written from these runs; editing a case (or the case
logic) so that it contradicts a recorded measurement fails here, without running anything.
A later report of the same scenario and axes supersedes an earlier one (e.g. a re-run after a
harness fix), in path order.

Reports of the first format (before steps) are mapped onto the steps they measured: the first
measurement is the `boot` step, the one after the fix the fix's step, the one after the matrix's
after-fix events the `after-fix` step. The seed's fix was not yet applied verbatim then (its
second rule was `-o virbr0 -j ACCEPT`): those runs still judge the seed's boot step, not its fix.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from coexist.scenario import model as scenario

ROOT = Path(__file__).resolve().parents[2]
REPORTS = sorted((ROOT / "bench" / "results").rglob("matrix.json"))
NOT_VERBATIM_THEN = {"seed-firewalld-direct"}   # format-1 runs of an earlier version of its fix


def recorded_runs() -> dict[tuple[str, str], dict[str, Any]]:
    runs: dict[tuple[str, str], dict[str, Any]] = {}
    for report in REPORTS:
        for row in json.loads(report.read_text())["rows"]:
            if row["verdict"] is not None:
                runs[(row["scenario"], row["label"])] = row | {"report": str(report.parent.relative_to(ROOT))}
    return runs


def guest_values(probes: list[dict[str, Any]]) -> dict[str, Any]:
    ok = {p["what"].lower(): p["ok"] for p in probes}
    v4 = [ok["dns"], ok["ping"], ok["tcp"]]
    symptom = ok["dns"] and not ok["ping"] and not ok["tcp"]
    state = "online" if all(v4) else "symptom" if symptom else "offline" if not any(v4) else "partial"
    six = [v for k, v in ok.items() if k in ("ping6", "tcp6")]
    return {**ok, "symptom": symptom, "state": state, "online": all(ok.values()),
            "ipv6": all(six) if six else None}


def measured(row: dict[str, Any], fix_step: str | None) -> dict[str, dict[str, Any]]:
    """step id -> {key: measured value}, for either report format."""
    verdict = row["verdict"]
    if verdict.get("format") == 2:
        found = {}
        for step in verdict["steps"]:
            values: dict[str, Any] = {"published_port": step["published_port"],
                                      "docker_isolation": step["docker_isolation"]}
            for settled in step["guests"].values():   # one guest in every recorded scenario
                final = settled["final"]
                values |= guest_values([final["dns"], final["ping"], final["tcp"], *final["ipv6"]])
            found[step["id"]] = values
        return found
    before = guest_values([verdict["before"]["dns"], verdict["before"]["ping"],
                           verdict["before"]["tcp"], *(verdict["before"].get("ipv6") or [])])
    found = {"boot": {"symptom": verdict["symptom"], "dns": before["dns"], "ipv6": before["ipv6"],
                      "published_port": verdict["published_before"],
                      "docker_isolation": verdict.get("isolation_before")}}
    if fix_step is not None and row["scenario"] not in NOT_VERBATIM_THEN:
        found[fix_step] = {"online": verdict["fix_effective"],
                           "published_port": verdict["published_after"],
                           "docker_isolation": verdict.get("isolation_after")}
        found["after-fix"] = {"online": verdict["survives_events"]}
    return found


def test_every_recorded_run_matches_the_scenario_files() -> None:
    files = {s.name: s for s in map(scenario.load, sorted((ROOT / "scenarios").glob("*.toml")))}
    runs = recorded_runs()
    assert len(runs) >= 90, f"only {len(runs)} recorded runs in {len(REPORTS)} reports"
    differ = []
    judged = 0
    for (name, label), row in runs.items():
        axes = {k: v for k, v in row["axes"].items() if k != "firewalld"}   # derived, not an axis
        variant = files[name].variant(**axes)
        steps = {step.id: step for step in variant.steps}
        fix_step = next((s.id for s in variant.steps if s.kind == "fix"), None)
        for step_id, values in measured(row, fix_step).items():
            if step_id not in steps:
                continue
            expect = steps[step_id].expect
            for key, value in values.items():
                wanted = expect.host.get(key, expect.guest.get(key))
                if value is None or wanted is None:
                    continue
                judged += 1
                if value != wanted:
                    differ.append(f"{row['report']}: {label}: [{step_id}] {key} measured {value}, "
                                  f"the scenario file expects {wanted}")
    assert judged >= 150, f"only {judged} recorded outcomes judged"
    assert not differ, "\n".join(differ)
