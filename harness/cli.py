"""`coexist`: run a scenario for real and print the verdict; build images ahead of time."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from harness import log


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="coexist", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a scenario end to end and print the verdict")
    run.add_argument("scenario", type=Path, help="a scenario file, e.g. scenarios/seed.toml")
    run.add_argument("--artifacts", type=Path, default=None,
                     help="where logs, rulesets and the verdict go (default: ./artifacts/<name>-<time>)")
    check = sub.add_parser("check", help="validate scenario files without running anything")
    check.add_argument("scenarios", type=Path, nargs="+")
    images = sub.add_parser("images", help="build (or reuse) the host and guest images")
    images.add_argument("--release", default="trixie")
    args = parser.parse_args(argv)

    from harness.scenario import ScenarioError, load

    try:
        if args.command == "check":
            for path in args.scenarios:
                scenario = load(path)
                print(f"{path}: ok ({scenario.name}, {scenario.host.release})")
            return 0
        if args.command == "images":
            from harness.runner import build_images

            built = build_images(args.release)
            print(f"host image: {built.host.root}\nguest image: {built.guest.kernel.parent}")
            return 0
        scenario = load(args.scenario)
    except ScenarioError as error:
        print(f"coexist: invalid scenario: {error}", file=sys.stderr)
        return 2

    from harness.runner import run_scenario

    artifacts = args.artifacts or Path("artifacts") / f"{scenario.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        verdict = run_scenario(scenario, artifacts=artifacts.resolve())
    except PermissionError as error:
        print(f"coexist: {error}", file=sys.stderr)
        return 2
    except Exception as error:
        log.info(f"coexist: the run itself failed: {type(error).__name__}: {error}")
        log.info(f"coexist: logs and rulesets so far: {artifacts.resolve()}")
        return 3
    print(verdict.render())
    return 0 if not verdict.mismatches() else 1


if __name__ == "__main__":
    sys.exit(main())
