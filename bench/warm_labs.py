"""Warm labs against a fresh lab per fix, in one run: the same fixes, one after the other.

    .venv/bin/python bench/warm_labs.py [--release trixie] [--fix A,B,...] [--out DIR]

Runs `coexist fixes --cold` (a fresh lab per fix) and then `coexist fixes` (warm: one lab, reset
between fixes), both with one lab at a time, on the same fixes and release. Writes
bench/results/warm-labs-<release>-<date>.json: the two wall times and their ratio; where a warm
fix's seconds go (the reset or the fresh boot, then each step: the fix applied, each survival
event with its measurement, the fix applied again); and whether every cell of the two tables is
the same (a reset that changed an outcome would show here).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXES = "forward-accept,docker-user-libvirt,libvirt-before-docker,docker-ip-forward-false"


def table(out: Path, release: str, fixes: str, cold: bool) -> dict[str, object]:
    command = [str(ROOT / ".venv/bin/coexist"), "fixes", "--release", release, "--fix", fixes,
               "--out", str(out), "-q", *(["--cold"] if cold else [])]
    started = time.monotonic()
    subprocess.run(command, check=False, stdout=subprocess.DEVNULL)
    wall = time.monotonic() - started
    data = json.loads((out / "fixes.json").read_text())
    verdicts = [json.loads(path.read_text()) for path in sorted((out / "scenarios").glob("*/verdict.json"))]
    return {"command": " ".join(command[1:]), "wall_seconds": round(wall, 1), "data": data,
            "verdicts": verdicts}


def where_seconds_go(verdicts: list[dict]) -> dict[str, float]:
    """Mean seconds per fix: the lab's boot or reset, each step (its action and measurement), the
    guests' settling summed over the steps (inside the steps' seconds), and the whole run."""
    phases: dict[str, list[float]] = {}

    def add(name: str, seconds: float) -> None:
        phases.setdefault(name, []).append(seconds)

    for verdict in verdicts:
        timings = verdict["timings"]
        add("lab reset (warm) or daemons + guests booted (fresh)",
            timings.get("reset", timings.get("daemons", 0) + timings.get("guests boot to SSH", 0)))
        for step in verdict["steps"]:
            add(f"step {step['id']}", step["seconds"])
        add("the guests' settling, summed over the steps",
            sum(max((g["seconds"] for g in step["guests"].values()), default=0) for step in verdict["steps"]))
        add("total", timings["total"])
    return {name: round(statistics.mean(values), 1) for name, values in phases.items()}


def cells(data: dict) -> dict[str, dict[str, str]]:
    return {row["fix"]: {column: cell["text"] for column, cell in row["cells"].items()}
            for row in data["rows"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--release", default="trixie")
    parser.add_argument("--fix", default=FIXES)
    parser.add_argument("--out", type=Path, default=Path("/var/tmp/bench-warm-labs"))
    args = parser.parse_args()
    cold = table(args.out / "cold", args.release, args.fix, cold=True)
    warm = table(args.out / "warm", args.release, args.fix, cold=False)
    differ = {fix: {column: (text, cells(warm["data"])[fix][column]) for column, text in row.items()
                    if cells(warm["data"])[fix].get(column) != text}
              for fix, row in cells(cold["data"]).items()}
    result = {
        "command": f".venv/bin/python bench/warm_labs.py --release {args.release} --fix {args.fix}",
        "date": time.strftime("%Y-%m-%d"),
        "fixes": args.fix.split(","),
        "cold": {"command": cold["command"], "wall_seconds": cold["wall_seconds"],
                 "per_fix": where_seconds_go(cold["verdicts"])},
        "warm": {"command": warm["command"], "wall_seconds": warm["wall_seconds"],
                 "per_fix": where_seconds_go(warm["verdicts"]),
                 "fresh_lab_instead": [v["scenario"] for v in warm["verdicts"]
                                       if any("measured in a fresh lab" in d for d in v["deviations"])]},
        "ratio_cold_over_warm": round(cold["wall_seconds"] / warm["wall_seconds"], 2),   # type: ignore[operator]
        "cells_that_differ": {fix: found for fix, found in differ.items() if found},
    }
    target = ROOT / "bench" / "results" / f"warm-labs-{args.release}-{result['date']}.json"
    target.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("ratio_cold_over_warm", "cells_that_differ")}))
    print(f"-> {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
