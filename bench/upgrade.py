"""How long an in-place upgrade takes: apt full-upgrade inside the lab, and the whole scenario.

    sudo .venv/bin/python bench/upgrade.py scenarios/upgrade-*.toml [--out bench/results]

Runs each scenario file with `coexist run --json` (one after the other, never two labs at once)
and writes bench/results/upgrade-<date>.json: per file its wall time, the images' phase (the
upgrade's packages prepared, or found in the cache), apt's own time in the lab, the reboot after
it, the versions before and after and whether the upgrade was healthy.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COEXIST = str(Path(sys.executable).parent / "coexist")   # the venv's, beside this python


def measure(path: Path) -> dict[str, object]:
    started = time.monotonic()
    done = subprocess.run([COEXIST, "run", "--json", "-q", str(path)], check=False, capture_output=True,
                          text=True)
    wall = round(time.monotonic() - started, 1)
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    figures: dict[str, object] = {"scenario": str(shown), "command": f"coexist run --json -q {shown}",
                                  "exit": done.returncode, "wall_seconds": wall}
    if done.returncode not in (0, 1):
        figures["error"] = done.stderr.strip().splitlines()[-1:] or ""
        return figures
    verdict = json.loads(done.stdout)
    steps = {step["id"]: step for step in verdict["steps"]}
    upgrade = next((step["upgrade"] for step in verdict["steps"] if step.get("upgrade")), None)
    figures.update(
        images_seconds=round(verdict["timings"]["images"], 1),
        steps_seconds={name: step["seconds"] for name, step in steps.items()},
        apt_seconds=round(upgrade["seconds"], 1) if upgrade else None,
        healthy=upgrade["healthy"] if upgrade else None,
        versions=upgrade["versions"] if upgrade else None,
        as_expected=not verdict["mismatches"])
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenarios", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    out = args.out / f"upgrade-{time.strftime('%Y-%m-%d')}.json"
    results = []
    for path in args.scenarios:
        results.append(measure(path.resolve()))
        out.write_text(json.dumps({"runs": results}, indent=1) + "\n")   # written as it goes
        print(json.dumps(results[-1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
