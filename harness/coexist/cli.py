"""`coexist`: run a scenario for real and print the verdict; build images ahead of time.

Exit codes, the same for `run` and `matrix`: 0 as expected, 1 an outcome differed from the
scenario's expectations, 2 bad input or a machine that cannot run a lab (one line says which), 3 a
run itself broke (its artifacts say why; for `matrix`, at least one), 128+N stopped by signal N
(130 Ctrl-C, 143 SIGTERM, 129 SIGHUP), after tearing down.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import re
import secrets
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from coexist.base import about, interrupt, log
from coexist.base.schema import part_of, suggest
from coexist.guest.accel import ACCELS
from coexist.scenario.axes import AXES, CROSSED, RELEASES, Axis, Home, Kind

if TYPE_CHECKING:
    from coexist.scenario.catalogue import Setup
    from coexist.scenario.fixes import Fix


def main(argv: list[str] | None = None) -> int:
    interrupt.install()
    argv = sys.argv[1:] if argv is None else argv
    to_pytest: list[str] = []
    if argv[:1] in (["matrix"], ["fixes"]) and "--" in argv:   # the rest is pytest's: -k, -x, --lf, ...
        argv, to_pytest = argv[:argv.index("--")], argv[argv.index("--") + 1:]
    args = _parser().parse_args(argv)
    args.to_pytest = to_pytest
    args.command_line = argv
    # the outline of what happens (-q: its top level only); -v: every line, however deep
    log.to_stderr(logging.DEBUG if args.verbose else logging.INFO)
    with log.showing(None if args.verbose else 0 if args.quiet else 2):
        return _command(args)


def _command(args: argparse.Namespace) -> int:
    try:
        return _dispatch(args)
    finally:
        _partial.clear()   # a next command in this process (a test's) has its own folder


def _dispatch(args: argparse.Namespace) -> int:
    try:
        if args.command == "check":
            return _check(args.scenarios, as_json=args.json)
        if args.command == "images":
            return _images(args.release)
        if args.command == "matrix":
            return _matrix(args)
        if args.command == "fixes":
            return _fixes(args)
        if args.command == "report":
            return _merge(args)
        if args.command == "shell":
            return _shell(args)
        return _run(args)
    except interrupt.Interrupted as stop:
        return _interrupted(stop)
    except UserError as error:
        print(f"coexist: {error}", file=sys.stderr)
        return 2
    except Exception as error:
        _others_ended()
        signalled = interrupt.received()
        if signalled is not None:   # a child died of the same signal first: say what happened
            return _interrupted(signalled)
        log.info(f"coexist: the {args.command} itself failed: {type(error).__name__}: {error}")
        log.info(f"coexist: traceback for a bug report: {_keep_traceback(error)}")
        if _partial:
            log.info(f"coexist: logs and rulesets so far: {_partial[-1]}")
        return 3


def _keep_traceback(error: BaseException) -> Path:
    """Write the traceback of a run that broke into its artifacts (or, before it has a folder,
    into the temporary folder), and say where."""
    import tempfile
    import traceback

    if _partial and _partial[-1].is_dir():
        path = _partial[-1] / "traceback.txt"
    else:
        path = Path(tempfile.gettempdir()) / f"coexist-traceback-{time.strftime('%Y%m%d-%H%M%S')}.txt"
    path.write_text("".join(traceback.format_exception(error)))
    return path


class UserError(Exception):
    """Bad input or an unfit machine: one line, exit 2."""


_partial: list[Path] = []   # the artifacts folder of the run in progress, for the interrupt line


def _others_ended() -> None:
    """Wait for every other thread that Python would wait for at exit: what they still log comes
    before coexist's closing line, not after it. (Pools join theirs when their block is left; this
    is for any other thread. Daemon threads are not waited for: coexist starts none.)"""
    for thread in threading.enumerate():
        while thread is not threading.current_thread() and not thread.daemon and thread.is_alive():
            try:
                thread.join()
            except interrupt.Interrupted:
                pass   # the run is ending already: the threads stop on their own (interrupt.check)


def _interrupted(stop: interrupt.Interrupted) -> int:
    _others_ended()
    where = f"partial artifacts: {_partial[-1]}" if _partial else "no artifacts yet"
    print(f"coexist: interrupted ({stop.signame}) during {stop.during}; cleaned up; {where}",
          file=sys.stderr)
    return stop.exit_code


class _Parser(argparse.ArgumentParser):
    """A bad command line is one line, as every other user error is (argparse prints the whole
    usage first), with where to read more."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="coexist", description=__doc__,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"coexist {about.version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    add = functools.partial(_with_output, sub.add_parser)   # a subcommand, with -v/-q
    run = add(
        "run", help="run a scenario end to end and print the verdict",
        description="Build the scenario's host in a lab of its own with the real daemons, boot its "
                    "guests, take its steps, and print the verdict; logs, rulesets and the "
                    "verdict go to a folder of the run's own in the artifacts root.",
        epilog="example: sudo coexist run scenarios/seed-firewalld-direct.toml --release forky "
               "--axis libvirt_firewall_backend=nftables")
    run.add_argument("scenario", type=Path,
                     help="a scenario file, e.g. scenarios/seed-firewalld-direct.toml")
    run.add_argument("--artifacts", type=Path, default=Path("artifacts"),
                     help="artifacts root: the run writes logs, rulesets and the verdict into a "
                          "folder of its own inside it, <name>-<time>-<run id> (default: ./artifacts)")
    variant = run.add_argument_group("variant", "run the scenario with other axis values")
    for axis in CROSSED:
        _add_axis(variant, axis, one=True)
    variant.add_argument("--axis", action="append", default=[], metavar="NAME=VALUE",
                     help="run the variant with this axis value, as pytest's --coexist-axis and the matrix "
                          "write it (repeatable; one value each), e.g. --axis "
                          "start_order=dockerd+libvirt+firewalld --axis after_fix=firewalld-reload")
    run.add_argument("--json", action="store_true",
                     help="print the verdict as JSON (as verdict.json in the artifacts) instead of text")
    run.add_argument("--accel", choices=ACCELS, default="auto",
                     help="guest accelerator: auto (KVM if a guest really boots under it here, else "
                          "TCG), or forced; as pytest's --coexist-accel (default: auto)")
    check = add(
        "check", help="validate scenario files without running anything",
        description="Load each scenario file as `run` would and say whether it is valid (one line "
                    "per error), and warn about commands that reach outside the lab. No root, "
                    "no lab.", epilog="example: coexist check scenarios/*.toml")
    check.add_argument("scenarios", type=Path, nargs="+", metavar="SCENARIO",
                       help="scenario files to validate, e.g. scenarios/*.toml")
    check.add_argument("--json", action="store_true",
                       help="print one JSON document (a record per file) instead of lines")
    matrix = add(
        "matrix", help="run scenarios crossed with axes; write a report",
        usage="coexist matrix [options] SCENARIO [SCENARIO ...] [-- PYTEST-ARGS]",
        description="Run scenario files crossed with the axes given, through pytest (each run a "
                    "real lab and guest), and write matrix.md, matrix.html, matrix.json and "
                    "junit.xml. Everything after -- goes to pytest as it is (-k, -x, --lf, ...).",
        epilog="example: coexist matrix scenarios/seed-firewalld-direct.toml --release trixie,forky "
               "-n 2 -- -k nftables")
    matrix.add_argument("scenarios", type=Path, nargs="+", help="scenario files or folders")
    axes = matrix.add_argument_group("axes", "each crosses the scenarios with its values")
    for axis in CROSSED:
        _add_axis(axes, axis)
    axes.add_argument("--axis", action="append", default=[], metavar="NAME=VALUE[,VALUE...]",
                      help="cross with these values of an axis, as pytest's --coexist-axis and "
                           "`run --axis` write them (repeatable), e.g. --axis "
                           "start_order=firewalld+dockerd+libvirt,dockerd+libvirt+firewalld")
    matrix.add_argument("--out", type=Path, default=None,
                        help="report folder (default: ./artifacts/matrix-<time>-<run id>)")
    matrix.add_argument("--shard", type=_shard, default=(1, 1), metavar="K/N",
                        help="run part K of N of the runs (a deterministic split, for N machines); "
                             "`coexist report merge` makes one report of the parts")
    matrix.add_argument("-n", type=_workers, default=1, metavar="N",
                        help="run N labs at once (pytest-xdist workers), or 'auto': one per CPU "
                             "(default 1)")
    fixes = add(
        "fixes", help="measure the fix catalogue side by side on a setup; write a report",
        usage="coexist fixes [options] [-- PYTEST-ARGS]",
        description="Measure every fix of the catalogue (coexist/scenario/fixes.toml) on a host "
                    "setup (coexist/scenario/setups.toml), on each release given: a real lab and "
                    "guest per release (warm: reset between fixes; --cold: one per fix), through "
                    "pytest as `matrix` runs them. Steps: boot, the fix, then firewall-cmd --reload, "
                    "firewalld, dockerd, libvirtd and guest restarts and a host reboot (those whose "
                    "daemon the setup starts), then the fix applied again; each release also "
                    "runs the control (no-fix: the same steps, nothing applied). Writes fixes.md, "
                    "fixes.html and fixes.json (best fixes per release at the top, a cell per "
                    "step saying what happened for the user, linked to its evidence), beside the "
                    "matrix's own reports.",
        epilog="example: coexist fixes --release trixie,forky --fix seed-firewalld-direct,"
               "docker-user-libvirt -n 2;  the whole table, every setup: coexist fixes --setup all -n 4")
    measured = fixes.add_argument_group("what is measured")
    running = fixes.add_argument_group("how it runs")
    measured.add_argument("--setup", default=["seed"], metavar="NAME[,NAME...]",
                          type=lambda text: text.split(","),
                          help="the hosts the fixes are measured on: seed (default), docker-first, bridged, "
                               "or all (then a report folder per setup and an index of them)")
    _add_axis(measured, AXES["release"])
    measured.add_argument("--fix", action="append", default=[], metavar="FIX[,FIX...]",
                          type=lambda text: text.split(","),
                          help="measure only these fixes (repeatable; default: every fix of the catalogue)")
    running.add_argument("--out", type=Path, default=None,
                         help="report folder (default: ./artifacts/fixes-<time>-<run id>)")
    running.add_argument("-n", type=_workers, default=1, metavar="N",
                         help="run N labs at once (pytest-xdist workers), or 'auto' (default 1)")
    measured.add_argument("--cold", action="store_true",
                          help="a fresh lab per fix (default: warm labs, one per release and worker, "
                               "reset between fixes and the reset proven by a comparison "
                               "with the fresh boot)")
    running.add_argument("--shard", type=_shard, default=(1, 1), metavar="K/N",
                         help="run part K of N of the runs (a deterministic split, for N machines); "
                              "`coexist report merge` makes one report of the parts")
    report = add(
        "report", help="make one report of several parts (shards)",
        description="Make one report of the parts of a sharded `coexist fixes` or `coexist matrix` "
                    "run (each part's folder, with its fixes.json or matrix.json): the rows of "
                    "all, each evidence link relative to the new report.",
        epilog="example: coexist report merge --out artifacts/all part-1 part-2")
    report.add_argument("action", choices=["merge"], help="merge: one report of the parts")
    report.add_argument("parts", type=Path, nargs="+", metavar="PART",
                        help="the parts' report folders")
    report.add_argument("--out", type=Path, required=True, help="the merged report's folder")
    shell = add(
        "shell", help="enter a lab that pytest --coexist-keep-lab kept (or its guest)",
        description="Enter a lab that `pytest --coexist-keep-lab` kept after a failed test: a shell on its "
                    "host (in all the lab's namespaces), or over SSH in its guest.",
        epilog="example: sudo coexist shell 12345.678-lab -- iptables -S FORWARD")
    shell.add_argument("lab", nargs="?", help="the kept lab (without it: list the kept labs)")
    shell.add_argument("--guest", action="store_true", help="ssh into the lab's guest instead")
    shell.add_argument("--role", default="guest", help="which guest, by its name (default: guest)")
    shell.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND",
                       help="run this command instead of an interactive shell")
    images = add(
        "images", help="build (or reuse) the host and guest images",
        description="Build the host image of a release (debootstrap and apt, about 0.7 GB) and "
                    "the guest image, or reuse them from the cache; print where they are.",
        epilog="example: sudo coexist images --release bookworm")
    images.add_argument("--release", choices=RELEASES, default="trixie",
                        help="the Debian release of the host image (default: trixie)")
    return parser


def _with_output(add_parser: Callable[..., argparse.ArgumentParser], *args: Any,
                 **kwargs: Any) -> argparse.ArgumentParser:
    """A subcommand's parser with every subcommand's -v/-q, under "output" (argparse's `parents`
    loses the title of a group holding a mutually exclusive one)."""
    parser = add_parser(*args, **kwargs)
    detail = parser.add_argument_group("output").add_mutually_exclusive_group()
    detail.add_argument("-v", "--verbose", action="store_true",
                        help="show every progress line, however deep (default: phases and steps)")
    detail.add_argument("-q", "--quiet", action="store_true",
                        help="show only the top-level progress lines, the verdict and errors")
    return parser


def _shard(text: str) -> tuple[int, int]:
    """--shard K/N: part K of N (1 <= K <= N)."""
    try:
        return part_of(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _workers(text: str) -> int:
    """-n: a number of labs at once, or `auto` (one per CPU this process may use)."""
    import os

    if text == "auto":
        return max(1, len(os.sched_getaffinity(0)))
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: a number of labs at once (1 or more), or auto")
    return int(text)


def _add_axis(group: argparse._ActionsContainer, axis: Axis, *, one: bool = False) -> None:
    """The flag of `axis` (coexist.scenario.axes), written as `--axis` writes its values: an
    order's services or a list's events joined by '+', several values joined by ','; true or
    false (a yes/no flag alone means true). The matrix's is repeatable; `one`: a run's, one value."""
    match axis.kind:
        case Kind.YES_NO:
            example = "false,true" if not one else "true"
        case Kind.ORDER:
            example = "+".join(axis.values) + ("" if one else "," + "+".join(reversed(axis.values)))
        case Kind.EVENTS:
            example = axis.values[0] + ("" if one else f"+{axis.values[1]},none")
        case _:
            example = axis.values[-1] if one else ",".join(axis.values[:2])
    shape: dict[str, Any] = {"nargs": "?", "const": [True]} if axis.kind is Kind.YES_NO else {}
    allowed = "false, true; alone: true" if axis.kind is Kind.YES_NO else ", ".join(axis.values) + (
        ", none" if axis.kind is Kind.EVENTS else "")
    extra = f" ({allowed}{', or one the scenario defines' if axis.home is Home.GUEST else ''})"
    assert axis.flag is not None
    shape.update(dest=axis.name, type=_axis_values(axis), action="store" if one else "append",
                 default=None if one else [], metavar=axis.name.upper())
    group.add_argument(f"--{axis.flag}", help=f"{axis.help}{extra}, e.g. --{axis.flag} {example}", **shape)
    if axis.old_flag:   # still taken, not shown
        group.add_argument(f"--{axis.old_flag}", help=argparse.SUPPRESS, **shape)


def _axis_values(axis: Axis) -> Callable[[str], list[Any]]:
    """An argparse type: a flag's text as the axis's values (as `--axis` parses them)."""

    def parse(text: str) -> list[Any]:
        try:
            values = axis.from_option(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
        wrong = axis.unknown_items(values)
        if wrong:
            allowed = (*axis.values, "none") if axis.kind is Kind.EVENTS else axis.values
            shown = repr(wrong[0]) if wrong[0] else "an empty value"
            within = "" if wrong[0] == text else f" in {text!r}"
            raise argparse.ArgumentTypeError(f"{shown}{within};{suggest(wrong[0], allowed)} "
                                             f"allowed: {', '.join(allowed)}")
        if axis.kind is Kind.ORDER and any(len(set(order)) != len(order) for order in values):
            raise argparse.ArgumentTypeError(f"{text!r} names a service twice in one order")
        return values

    return parse


def _check(paths: list[Path], *, as_json: bool = False) -> int:
    """Validate every file; report each bad one (not only the first). With `as_json`, one JSON
    document on stdout: a record per file (path, ok, error, name, release, steps, warnings)."""

    from coexist.base.schema import ScenarioError
    from coexist.scenario import reach
    from coexist.scenario.model import load

    bad, records = 0, []
    for path in paths:
        try:
            scenario = load(path)
        except ScenarioError as error:   # every error of the file, a linter's line each
            records.append({"path": str(path), "ok": False, "error": str(error),
                            "errors": [{"line": e.line, "field": e.where, "problem": e.problem}
                                       for e in error.errors]})
            if not as_json:
                print(error, file=sys.stderr)
            bad += 1
            continue
        warnings = reach.warnings(scenario)
        records.append({"path": str(path), "ok": True, "error": None, "name": scenario.name,
                        "release": scenario.host.release, "steps": [step.id for step in scenario.steps],
                        "warnings": warnings})
        if not as_json:
            steps = ", ".join(step.id for step in scenario.steps)
            print(f"{path}: ok ({scenario.name}, {scenario.host.release}; steps: {steps})")
            for line in warnings:
                print(f"{path}: warning: {line} (docs/design.md: \"What a lab isolates\")")
    if as_json:
        print(json.dumps({"files": records}, indent=2))
    return 2 if bad else 0


def _preflight(*, artifacts_root: Path | None, releases: list[str]) -> None:
    from coexist import preflight

    found = preflight.before_labs(artifacts_root=artifacts_root, releases=releases)
    if found:
        for line in found[:-1]:
            print(f"coexist: preflight: {line}", file=sys.stderr)
        raise UserError(f"preflight: {found[-1]}")


def _images(release: str) -> int:
    from coexist.images.built import build_images

    _preflight(artifacts_root=None, releases=[release])
    built = build_images(release)
    print(f"host image: {built.host.root}\nguest image: {built.guest.kernel.parent}\n"
          f"container image: {built.container.rootfs} (busybox {built.container.version})")
    return 0


def _load(path: Path) -> Any:
    from coexist.base.schema import ScenarioError
    from coexist.scenario.model import load

    try:
        return load(path)
    except ScenarioError as error:
        raise UserError(error.headed("invalid scenario")) from None


def _run(args: argparse.Namespace) -> int:
    from coexist.base.schema import ScenarioError
    from coexist.host.daemons import NotApplicable
    from coexist.run.runner import run_scenario

    scenario = _load(args.scenario)
    chosen = _one_value_each(args.axis)   # all of them valid, one value per axis, before any is applied
    options = {option.partition("=")[0]: option for option in args.axis}
    asked = []
    for axis in CROSSED:
        values = getattr(args, axis.name)
        if values is None:
            continue
        if len(values) != 1:
            raise UserError(f"--{axis.flag}: one value for a run ({len(values)} given); "
                            "`coexist matrix` crosses several")
        asked.append((f"--{axis.flag} {axis.to_option(values)}", {axis.name: values[0]}))
    asked += [(f"--axis {options[name]}", {name: value}) for name, value in chosen.items()]
    for flag, axes in asked:
        try:
            scenario = scenario.variant(**axes)
        except ScenarioError as error:   # blamed on the flag: the file alone was valid
            raise UserError(f"{flag}: {error.where}: {error.problem} (with {args.scenario})") from None
    if (why := scenario.not_applicable()) is not None:
        raise UserError(f"not applicable on {scenario.host.release}: {why}")
    _preflight(artifacts_root=args.artifacts, releases=[scenario.host.release])
    folder = run_folder(args.artifacts, scenario.name)
    _partial.append(folder)
    try:
        verdict = run_scenario(scenario, artifacts=folder, accel=args.accel)
    except NotApplicable as error:
        raise UserError(f"not applicable on {scenario.host.release}: {error}") from None
    print(verdict.dumps() if args.json else painted(verdict.render(), sys.stdout))
    return 0 if not verdict.mismatches() else 1


_ALARMS = re.compile(r"\bUNEXPECTED\b|\bFAILS\b")


def painted(text: str, stream: Any) -> str:
    """`text` with UNEXPECTED and FAILS in bold red when `stream` is a terminal and NO_COLOR
    (https://no-color.org) is unset or empty; as it is otherwise."""
    import os

    if os.environ.get("NO_COLOR") or not stream.isatty():
        return text
    return _ALARMS.sub(lambda found: f"\033[1;31m{found[0]}\033[0m", text)


def _one_value_each(options: list[str]) -> dict[str, Any]:
    """`run --axis` options: one value per axis (a run is one variant; the matrix crosses more)."""
    axes = _axis_options(options, AXES)
    for name, values in axes.items():
        if len(values) != 1:
            raise UserError(f"--axis {name}: one value for a run ({len(values)} given); "
                            "`coexist matrix` crosses several")
    return {name: values[0] for name, values in axes.items()}


def _crossed_axes(options: list[str]) -> dict[str, list[Any]]:
    """`matrix --axis` options: axes the matrix crosses, each value one of its own."""
    crossed = {axis.name: axis for axis in CROSSED}
    axes = _axis_options(options, crossed)
    for name, values in axes.items():
        if wrong := crossed[name].unknown_items(values):
            allowed = ", ".join(crossed[name].values)
            raise UserError(f"--axis {name}: {wrong[0]!r} is not allowed;"
                            f"{suggest(wrong[0], crossed[name].values)} allowed: {allowed}")
    return axes


def _axis_options(options: list[str], allowed: Mapping[str, Axis]) -> dict[str, list[Any]]:
    """`--axis NAME=VALUE[,VALUE...]` options of a command (run's, the matrix's), each naming one
    of the `allowed` axes; a mistake is a UserError naming the option."""
    from coexist.base.schema import unknown
    from coexist.scenario.axes import axis_options

    try:
        axes = axis_options(options)
    except ValueError as error:
        raise UserError(str(error)) from None
    for name in axes:
        if name not in allowed:
            raise UserError(f"--axis {name}: {unknown('axis', name, allowed)}")
    return axes


def run_folder(root: Path, name: str) -> Path:
    """A new folder inside `root` for one run: <name>-<time>-<run id>, never shared by two runs."""
    root = root.resolve()
    while True:
        folder = root / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
        try:
            folder.mkdir(parents=True)
        except FileExistsError:
            continue
        return folder


def _report_folder(given: Path | None, name: str, releases: list[str]) -> Path:
    """The report folder of a `matrix` or `fixes` run, after the preflight of its releases:
    `--out` as given, else a new ./artifacts/<name>-<time>-<run id>."""
    _preflight(artifacts_root=given.resolve().parent if given else Path("artifacts"), releases=releases)
    out = given.resolve() if given else run_folder(Path("artifacts"), name)
    _partial.append(out)
    return out


def _matrix(args: argparse.Namespace) -> int:
    """A thin wrapper over pytest: the scenario files as items crossed with the axes (the plugin's
    --axis), the report written from the items' results; -n runs that many labs at once."""
    import pytest

    from coexist.report import matrix

    files = []
    for path in args.scenarios:
        if path.is_dir():
            found = sorted(path.glob("*.toml"))
            if not found:
                raise UserError(f"{path}: no scenario files (*.toml) in this folder")
            files += found
        else:
            files.append(path)
    scenarios = [_load(f) for f in files]
    from coexist.pytest_plugin import axes_from

    options = [f"{axis.name}={axis.to_option([v for chunk in getattr(args, axis.name) for v in chunk])}"
               for axis in CROSSED if getattr(args, axis.name)]
    by_axis = _crossed_axes(args.axis)
    options += args.axis

    def blamed(name: str, value: Any) -> str:
        said = AXES[name].to_option([value])
        return f"--axis {name}={said}" if name in by_axis else f"--{AXES[name].flag} {said}"

    try:
        variants = matrix.cross(scenarios, axes_from(options))
    except matrix.CrossError as error:   # blamed on the flags: each file alone was valid
        raise UserError(error.blamed(blamed)) from None
    releases = sorted({v.host.release for v in variants})
    out = _report_folder(args.out, "matrix", releases)
    log.info(f"coexist matrix: {len(variants)} runs -> {out}" + (f", {args.n} at once" if args.n > 1 else ""))
    shard = [] if args.shard == (1, 1) else ["--coexist-shard", "/".join(map(str, args.shard))]
    code = pytest.main(pytest_argv(files, out, options, args.n, [*shard, *args.to_pytest]))
    if (stop := interrupt.received()) is not None:
        raise stop
    report = out / "matrix.md"
    if not report.is_file():
        raise UserError(f"pytest ended with {code} before any scenario ran (see above)")
    print(painted(report.read_text(), sys.stdout))
    print(f"reports: {report}, {out / 'matrix.html'}, {out / 'matrix.json'}, {out / 'junit.xml'}")
    return matrix_exit_code(out / "matrix.json", code)


def _fixes(args: argparse.Namespace) -> int:
    """The catalogue's fixes on setups and releases: per setup, one scenario per fix and release,
    written into the report folder and run as the matrix runs scenarios; then the catalogue's
    report (several setups: a folder each, and an index of them)."""
    from coexist.report import catalogue as report
    from coexist.scenario import catalogue

    setups = catalogue.setups()
    names = list(setups) if args.setup == ["all"] else list(dict.fromkeys(args.setup))
    for name in names:
        if name not in setups:
            raise UserError(f"--setup {name}: unknown setup;{suggest(name, setups)} allowed: "
                            f"{', '.join(setups)}, or all")
    try:
        fixes = catalogue.chosen([name for chunk in args.fix for name in chunk])
    except ValueError as error:
        raise UserError(str(error)) from None
    releases = catalogue.order([r for chunk in args.release for r in chunk] or RELEASES)
    out = _report_folder(args.out, "fixes", releases)
    if len(names) == 1:
        return _fixes_on(setups[names[0]], fixes, releases, args, out)
    codes = [_fixes_on(setups[name], fixes, releases, args, out / name) for name in names]
    report.write_index(out, names)
    print(f"index of the setups' reports: {out / 'index.md'}, {out / 'index.html'}")
    return 3 if 3 in codes else 1 if 1 in codes else 0


def _fixes_on(setup: Setup, fixes: list[Fix], releases: list[str], args: argparse.Namespace,
              out: Path) -> int:
    """The catalogue on one setup into `out`: 0 as recorded, 1 a cell differs, 3 a run broke."""
    import pytest

    from coexist.report import catalogue as report
    from coexist.report import matrix
    from coexist.scenario import catalogue

    planned = catalogue.shard(catalogue.plan(setup, fixes, releases), args.shard)
    runnable = [plan for plan in planned if plan.not_applicable is None]
    files = [plan.write(out / "scenarios") for plan in runnable]
    log.info(f"coexist fixes: {len(fixes)} fixes and the control x {', '.join(releases)} on setup "
             f"{setup.name}: {len(files)} runs ({len(planned) - len(files)} not applicable) -> {out}"
             + (f", {args.n} at once" if args.n > 1 else ""))
    started = time.monotonic()
    if files:
        pytest.main(pytest_argv(files, out, [], args.n, args.to_pytest, warm=not args.cold))
        if (stop := interrupt.received()) is not None:
            raise stop
    measured = matrix.read_report(out) if (out / "matrix.json").is_file() else []
    found = report.rows(planned, measured)
    report.write_reports(setup, found, out, environment=matrix.environment(measured),
                         seconds=time.monotonic() - started)
    print(f"setup {setup.name}:")
    print(painted(report.terminal(found, releases), sys.stdout))
    print(f"reports: {out / 'fixes.md'}, {out / 'fixes.html'}, {out / 'fixes.json'}")
    if any(row.error for row in found):
        return 3
    return 1 if any(row.mismatches for row in found) else 0


def _merge(args: argparse.Namespace) -> int:
    """One report of the parts: fixes.json parts (coexist fixes) or matrix.json parts (matrix)."""
    import shlex

    from coexist.report import catalogue as report
    from coexist.report import matrix

    kinds = set()
    for part in args.parts:
        found = [name for name in ("fixes.json", "matrix.json") if (part / name).is_file()]
        if not found:
            raise UserError(f"{part}: neither fixes.json nor matrix.json: not a report folder")
        kinds.add(found[0])
    if len(kinds) != 1:
        raise UserError("the parts are of different kinds (coexist fixes and coexist matrix reports)")
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    command = shlex.join(["coexist", *args.command_line])
    if kinds == {"fixes.json"}:
        try:
            merged = report.merge([p.resolve() for p in args.parts], out, command=command)
        except ValueError as error:
            raise UserError(str(error)) from None
        print(f"{len(merged)} rows from {len(args.parts)} parts: {out / 'fixes.md'}, {out / 'fixes.html'}")
        return 0
    parts = [matrix.read_report(p.resolve()) for p in args.parts]
    rows = sorted((row for part in parts for row in part), key=lambda r: r.scenario.label())
    seconds = max(json.loads((p / "matrix.json").read_text())["summary"]["wall_seconds"]
                  for p in args.parts)
    matrix.write_reports(rows, out, total=len(rows), seconds=seconds)
    print(f"{len(rows)} rows from {len(args.parts)} parts: {out / 'matrix.md'}, {out / 'matrix.html'}")
    return 0


def pytest_argv(files: list[Path], out: Path, options: list[str], labs: int,
                to_pytest: list[str], *, warm: bool = False) -> list[str]:
    """The matrix's pytest command line: the files as items crossed with the --coexist-axis options,
    reports into `out`, `labs` xdist workers (`warm`: warm labs, a host's items in a group per
    worker, each group on one worker), then what the user passes on after `--`. pytest's cache stays off (no
    .pytest_cache where coexist runs) unless what is passed on uses it."""
    no_cache = [] if _CACHE_USERS & set(to_pytest) else ["-p", "no:cacheprovider"]
    # coexist (its plugin) is imported before pytest starts: its asserts are not pytest's to rewrite
    return [*map(str, files), *no_cache, "-q", "-rfEs", "--tb=line",
            "-W", "ignore::pytest.PytestAssertRewriteWarning",
            "--coexist-artifacts", str(out), "--coexist-matrix-dir", str(out),
            "--junitxml", str(out / "junit.xml"), *(f"--coexist-axis={o}" for o in options),
            *(["-n", str(labs)] if labs > 1 else []),
            *(["--coexist-warm"] + (["--dist", "loadgroup"] if labs > 1 else []) if warm else []),
            *to_pytest]


_CACHE_USERS = {"--lf", "--last-failed", "--ff", "--failed-first", "--nf", "--new-first", "--sw",
                "--stepwise", "--cache-show", "--cache-clear"}


def matrix_exit_code(report: Path, pytest_code: int) -> int:
    """As `run`'s: 3 if a run broke (an error row), else 1 if an outcome was unexpected, else 0."""

    rows = json.loads(report.read_text())["rows"]
    if any(row["error"] for row in rows):
        return 3
    return 0 if pytest_code == 0 else 1


def _shell(args: argparse.Namespace) -> int:
    import shutil
    import subprocess

    from coexist.pytest_plugin import KEPT_FILE
    from coexist.sandbox import processes
    from coexist.sandbox.leftovers import WORK_ROOT
    from coexist.sandbox.namespaces import SYSTEM_PATH

    kept = {}
    for record in sorted(WORK_ROOT.glob(f"*/{KEPT_FILE}")) if WORK_ROOT.is_dir() else []:
        facts = json.loads(record.read_text())
        if processes.owner_alive(facts["owner"]):
            kept[record.parent.name] = facts
    if args.lab is None:
        if not kept:
            raise UserError("no kept labs: `pytest --coexist-keep-lab` keeps the lab of a failed test")
        for name, facts in kept.items():
            print(f"{name}: {facts['release']}, kept for {facts['test']}; guests: "
                  f"{', '.join(facts['guests']) or 'none'}")
        return 0
    if args.lab not in kept:
        raise UserError(f"no kept lab {args.lab!r}; kept: {', '.join(kept) or 'none'}")
    facts = kept[args.lab]
    command = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not args.guest:
        inside = ["/bin/sh", "-c", " ".join(command)] if command else ["/bin/bash", "-l"]
        argv = [*facts["enter"], *inside]
    else:
        guest = facts["guests"].get(args.role)
        if guest is None:
            raise UserError(f"lab {args.lab} kept no guest {args.role!r}; kept: "
                            f"{', '.join(facts['guests']) or 'none'}")
        if shutil.which("ssh") is None:
            raise UserError("`coexist shell --guest` needs ssh (Debian's openssh-client)")
        argv = [*facts["enter_network"], "ssh", "-i", guest["key"],
                "-o", f"UserKnownHostsFile={guest['known_hosts']}", "-o", "StrictHostKeyChecking=yes",
                "-o", "LogLevel=ERROR", f"root@{guest['address']}", *command]
    return subprocess.call(argv, env={"PATH": SYSTEM_PATH, "HOME": "/root", "TERM": "xterm"})



if __name__ == "__main__":
    sys.exit(main())
