"""Benchmark: the seed scenario N times in a row, each a whole `coexist run` process.

    sudo .venv/bin/python bench/seed_repeat.py [--runs 20] [--release trixie]

Reports passes (exit 0: every step as the scenario expects), failures (with the exit code and the
last line each printed), and the median, min and max wall time of a run, images cached. Writes the
figures, with the command, to bench/results/seed-repeat-<release>-<date>.json. Also prints, for
each signal, how long a run takes to end after it (SIGINT, SIGTERM: the process's own teardown;
SIGKILL: the guardian's sweep), delivered to the run's process group right after the fix.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "harness"))

from coexist.sandbox import cgroups, processes  # noqa: E402
from coexist.sandbox.leftovers import WORK_ROOT  # noqa: E402

SEED = ROOT / "scenarios" / "seed-firewalld-direct.toml"
RESULTS = Path(__file__).resolve().parent / "results"
AFTER_FIX = "host# firewall-cmd --reload"


def coexist(release: str, artifacts: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "coexist.cli", "run", "-v", str(SEED),
                             "--release", release, "--artifacts", str(artifacts)], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def one_run(release: str, artifacts: Path) -> dict[str, object]:
    started = time.monotonic()
    proc = coexist(release, artifacts)
    out, err = proc.communicate()
    seconds = time.monotonic() - started
    last = (err.strip().splitlines() or [""])[-1] if proc.returncode else ""
    return {"exit": proc.returncode, "seconds": round(seconds, 1), "last_line": last[:200]}


def traces(owner: str) -> bool:
    """Anything of run `owner` left: its cgroups, its work folders, its marked processes."""
    if cgroups.of_owner(owner):
        return True
    if WORK_ROOT.is_dir() and any(WORK_ROOT.glob(f"{owner}-*")):
        return True
    return owner in processes.stale_owners()


def ending_after(signum: int, release: str, artifacts: Path) -> dict[str, object]:
    proc = coexist(release, artifacts)
    owner = processes.owner_token(proc.pid)
    assert proc.stderr is not None
    for line in proc.stderr:
        if AFTER_FIX in line:
            break
    signalled = time.monotonic()
    os.killpg(proc.pid, signum)
    proc.communicate()
    exited = time.monotonic() - signalled
    while traces(owner) and time.monotonic() - signalled < 30:
        time.sleep(0.05)
    return {"signal": signal.Signals(signum).name, "exit": proc.returncode,
            "process_ended_s": round(exited, 2), "nothing_left_s": round(time.monotonic() - signalled, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--release", default="trixie", choices=("bookworm", "trixie", "forky"))
    parser.add_argument("--artifacts", type=Path, default=ROOT / "artifacts" / "bench-seed-repeat")
    args = parser.parse_args()
    runs = []
    for index in range(1, args.runs + 1):
        result = one_run(args.release, args.artifacts)
        runs.append(result)
        print(f"run {index}/{args.runs}: exit {result['exit']} in {result['seconds']}s "
              f"{result['last_line']}", flush=True)
    endings = [ending_after(s, args.release, args.artifacts)
               for s in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)]
    seconds = [float(str(r["seconds"])) for r in runs]
    summary = {
        "command": f"sudo .venv/bin/python bench/seed_repeat.py --runs {args.runs} --release {args.release}",
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "runs": args.runs, "passes": sum(r["exit"] == 0 for r in runs),
        "failures": [{"run": i, **r} for i, r in enumerate(runs, 1) if r["exit"] != 0],
        "median_s": round(statistics.median(seconds), 1), "min_s": min(seconds), "max_s": max(seconds),
        "all_s": seconds, "after_a_signal_right_after_the_fix": endings,
    }
    print(json.dumps(summary, indent=2))
    out = RESULTS / f"seed-repeat-{args.release}-{time.strftime('%Y-%m-%d')}.json"
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"written: {out}")
    return 0 if summary["passes"] == args.runs else 1


if __name__ == "__main__":
    sys.exit(main())
