"""Two shards of a catalogue run, run one after the other and merged, against one unsharded run.

    .venv/bin/python bench/shards.py [--release trixie] [--fix A,B,...] [-n 2] [--out DIR]

Runs `coexist fixes` on the fixes and release given, then `--shard 1/2` and `--shard 2/2` of the
same, then `coexist report merge` of the two parts (as a CI system's job matrix and its final job
would). Writes bench/results/shards-<release>-<date>.json: the commands, their wall times, which
rows each part ran, and every cell where the merged table differs from the unsharded one (issue
19: none; a cell that differs is a measurement that varies between runs, or a merge that is wrong,
and its texts are there to tell which).
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
FIXES = "forward-accept,docker-user-libvirt,libvirt-before-docker,seed-firewalld-direct"


def run(command: list[str]) -> dict[str, object]:
    started = time.monotonic()
    done = subprocess.run([COEXIST, *command], check=False, stdout=subprocess.DEVNULL)
    return {"command": "coexist " + " ".join(command), "exit": done.returncode,
            "wall_seconds": round(time.monotonic() - started, 1)}


def cells(folder: Path) -> dict[str, dict[str, str]]:
    data = json.loads((folder / "fixes.json").read_text())
    return {f"{row['release']} {row['fix']}": {column: cell["text"] for column, cell in row["cells"].items()}
            | ({"not applicable": row["not_applicable"]} if row["not_applicable"] else {})
            for row in data["rows"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--release", default="trixie")
    parser.add_argument("--fix", default=FIXES)
    parser.add_argument("-n", default="2")
    parser.add_argument("--out", type=Path, default=Path("/var/tmp/bench-shards"))
    args = parser.parse_args()
    common = ["fixes", "--release", args.release, "--fix", args.fix, "-n", args.n, "-q"]
    whole, parts, merged = args.out / "whole", [args.out / "part-1", args.out / "part-2"], args.out / "merged"
    runs = [run([*common, "--out", str(whole)])]
    runs += [run([*common, "--shard", f"{k}/2", "--out", str(part)]) for k, part in enumerate(parts, 1)]
    runs.append(run(["report", "merge", "--out", str(merged), *map(str, parts)]))
    one, two = cells(whole), cells(merged)
    differ = {row: {column: {"unsharded": text, "merged": two.get(row, {}).get(column)}
                    for column, text in columns.items() if two.get(row, {}).get(column) != text}
              for row, columns in one.items()}
    result = {
        "command": f".venv/bin/python bench/shards.py --release {args.release} --fix {args.fix} -n {args.n}",
        "date": time.strftime("%Y-%m-%d"),
        "runs": runs,
        "rows_per_part": {part.name: sorted(cells(part)) for part in parts},
        "rows": {"unsharded": sorted(one), "merged": sorted(two)},
        "cells_that_differ": {row: found for row, found in differ.items() if found},
    }
    out = ROOT / "bench" / "results" / f"shards-{args.release}-{result['date']}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({key: result[key] for key in ("runs", "cells_that_differ")}, indent=2))
    print(f"written: {out}")
    return 0 if not result["cells_that_differ"] and one.keys() == two.keys() else 1


if __name__ == "__main__":
    raise SystemExit(main())
