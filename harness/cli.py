"""`coexist`: run a scenario for real and print the verdict; build images ahead of time."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from harness import log
from harness.scenario import GUEST_NETWORKS, RELEASES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="coexist", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a scenario end to end and print the verdict")
    run.add_argument("scenario", type=Path, help="a scenario file, e.g. scenarios/seed.toml")
    run.add_argument("--artifacts", type=Path, default=None,
                     help="where logs, rulesets and the verdict go (default: ./artifacts/<name>-<time>)")
    run.add_argument("--release", choices=RELEASES, default=None,
                     help="run on this Debian release instead of the scenario's own")
    run.add_argument("--network", default=None,
                     help=f"put the first guest on this network instead of the scenario's own "
                          f"({', '.join(GUEST_NETWORKS)}, or one the scenario defines)")
    run.add_argument("--ipv6", action="store_true", help="add IPv6 to the guest's libvirt network")
    check = sub.add_parser("check", help="validate scenario files without running anything")
    check.add_argument("scenarios", type=Path, nargs="+")
    matrix = sub.add_parser("matrix", help="run scenarios crossed with axes; write a report")
    matrix.add_argument("scenarios", type=Path, nargs="+", help="scenario files or folders")
    matrix.add_argument("--release", action="append", default=[],
                        help="bookworm,trixie,forky (repeatable or comma-separated)")
    matrix.add_argument("--start-order", action="append", default=[],
                        help="e.g. firewalld,dockerd,libvirt (repeatable: one order each)")
    matrix.add_argument("--libvirt-backend", action="append", default=[],
                        help="default,iptables,nftables (repeatable or comma-separated)")
    matrix.add_argument("--firewalld-backend", action="append", default=[],
                        help="default,nftables,iptables (repeatable or comma-separated)")
    matrix.add_argument("--docker-iptables", action="append", default=[],
                        help="default,nft,legacy (repeatable or comma-separated)")
    matrix.add_argument("--network", action="append", default=[],
                        help=f"the guest's network: {','.join(GUEST_NETWORKS)} "
                             "(repeatable or comma-separated)")
    matrix.add_argument("--ipv6", action="append", default=[], choices=["no", "yes", "no,yes"],
                        metavar="no|yes|no,yes",
                        help="IPv6 on the guest's libvirt network: no, yes or no,yes")
    matrix.add_argument("--after-setup", action="append", default=[],
                        help="events before the first measurement, e.g. firewalld-reload "
                             "(repeatable: one list each; 'none' for no event)")
    matrix.add_argument("--after-fix", action="append", default=[],
                        help="events after the fix (repeatable: one list each; 'none')")
    matrix.add_argument("--out", type=Path, default=None,
                        help="report folder (default: ./artifacts/matrix-<time>)")
    images = sub.add_parser("images", help="build (or reuse) the host and guest images")
    images.add_argument("--release", default="trixie")
    args = parser.parse_args(argv)

    from harness.scenario import ScenarioError, load

    try:
        if args.command == "check":
            bad = 0
            for path in args.scenarios:
                try:
                    scenario = load(path)
                except ScenarioError as error:
                    print(f"coexist: invalid scenario: {error}", file=sys.stderr)
                    bad += 1
                    continue
                steps = ", ".join(step.id for step in scenario.steps)
                print(f"{path}: ok ({scenario.name}, {scenario.host.release}; steps: {steps})")
            return 2 if bad else 0
        if args.command == "images":
            from harness.runner import build_images

            built = build_images(args.release)
            print(f"host image: {built.host.root}\nguest image: {built.guest.kernel.parent}")
            return 0
        if args.command == "matrix":
            return _matrix(args)
        scenario = load(args.scenario)
        if args.release:
            scenario = scenario.variant(release=args.release)
        if args.network:
            scenario = scenario.variant(network=args.network)
        if args.ipv6:
            scenario = scenario.variant(ipv6=True)
    except ScenarioError as error:
        print(f"coexist: invalid scenario: {error}", file=sys.stderr)
        return 2

    from harness.runner import NotApplicable, run_scenario

    artifacts = args.artifacts or Path("artifacts") / f"{scenario.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        verdict = run_scenario(scenario, artifacts=artifacts.resolve())
    except PermissionError as error:
        print(f"coexist: {error}", file=sys.stderr)
        return 2
    except NotApplicable as error:
        print(f"coexist: not applicable on {scenario.host.release}: {error}", file=sys.stderr)
        return 2
    except Exception as error:
        log.info(f"coexist: the run itself failed: {type(error).__name__}: {error}")
        log.info(f"coexist: logs and rulesets so far: {artifacts.resolve()}")
        return 3
    print(verdict.render())
    return 0 if not verdict.mismatches() else 1


def _matrix(args: argparse.Namespace) -> int:
    from harness import matrix
    from harness.scenario import load

    files = [p for path in args.scenarios
             for p in (sorted(path.glob("*.toml")) if path.is_dir() else [path])]
    axes: dict[str, list[Any]] = {
        "release": _commas(args.release),
        "libvirt_firewall_backend": _commas(args.libvirt_backend),
        "firewalld_backend": _commas(args.firewalld_backend),
        "docker_iptables": _commas(args.docker_iptables),
        "network": _commas(args.network),
        "ipv6": [value == "yes" for value in _commas(args.ipv6)],
        "start_order": [order.split(",") for order in args.start_order],
        "after_setup": [_event_list(e) for e in args.after_setup],
        "after_fix": [_event_list(e) for e in args.after_fix],
    }
    variants = matrix.cross([load(f) for f in files], axes)
    out = (args.out or Path("artifacts") / f"matrix-{time.strftime('%Y%m%d-%H%M%S')}").resolve()
    log.info(f"coexist matrix: {len(variants)} runs -> {out}")
    rows = matrix.run(variants, out)
    print((out / "matrix.md").read_text())
    print(f"reports: {out / 'matrix.md'}, {out / 'matrix.html'}, {out / 'matrix.json'}")
    bad = [r for r in rows if r.error or (r.verdict and r.verdict.mismatches())]
    return 1 if bad else 0


def _commas(values: list[str]) -> list[str]:
    return [v for value in values for v in value.split(",") if v]


def _event_list(value: str) -> list[str]:
    return [] if value == "none" else value.split(",")


if __name__ == "__main__":
    sys.exit(main())
