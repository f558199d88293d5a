"""coexist as a pytest plugin (entry point `pytest11`): a lab host, its guest, its simulated internet
and its Docker as fixtures of your own tests, with no harness internals imported.

    import pytest

    @pytest.mark.coexist(start_order=["dockerd", "libvirt", "firewalld"],
                         libvirt_firewall_backend="nftables")
    def test_my_report(coexist_lab, coexist_guest):
        coexist_guest.succeed("nslookup example.test 192.168.122.1")   # DNS works
        coexist_guest.fail("ping -c1 -W2 198.51.100.1")                 # forwarding does not
        coexist_lab.succeed("iptables -I DOCKER-USER -i virbr0 -j ACCEPT")
        coexist_lab.succeed("iptables -I DOCKER-USER -o virbr0 -j ACCEPT")
        coexist_guest.wait_until_succeeds("ping -c1 -W2 198.51.100.1")

The marker takes a scenario's [host] keys (docs/reference.md, "Tables": release, start_order, the backends,
the daemons' settings, ...) and `network` (the guest's network), or `scenario="path/to/file.toml"`
(its host and first guest).
They are validated like a scenario file: a bad key fails the test in one line. Options, each
also an ini setting `coexist_*` (the option wins): `--coexist-release` (every lab on this
release), `--coexist-accel auto|kvm|tcg`, `--coexist-artifacts`, `--coexist-keep-lab` (a failed
test's lab and guest stay up until Ctrl-C at the end; `coexist shell` enters them). Nothing is
read, written or checked unless a test uses coexist's fixtures or items.

Scenario files are test items when asked: named on the command line, or matching the ini
setting `coexist_scenarios` (glob patterns relative to the rootdir, e.g. `scenarios/*.toml`); one
item per variant when `--coexist-axis` crosses it with other values (`--coexist-axis
release=bookworm,trixie,forky`, `--coexist-axis start_order=dockerd+libvirt+firewalld`,
`--coexist-axis after_fix=firewalld-reload,none`); an item fails with its verdict when reality differs
from the file, and the matrix report (matrix.md, .html, .json) is written from the items' results
at the end of the run, into <artifacts-dir>/matrix (with -n, each worker hands its rows over
to the controller through xdist's own channel, `workeroutput`).
"""

from __future__ import annotations

import json
import re
import shutil
import time
import zlib
from collections.abc import Generator, Iterable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import docker

    from coexist.guest.guest import Guest
    from coexist.host.lab import Lab
    from coexist.images.built import Images
    from coexist.net.wan import Wan
    from coexist.report.matrix import Row
    from coexist.run.warm import WarmLabs
    from coexist.scenario.model import Scenario

MARKER = "coexist"
KEPT_FILE = "kept.json"   # in a kept lab's work folder: what `coexist shell` needs to enter it
_kept = pytest.StashKey[list[ExitStack]]()
_failed = pytest.StashKey[bool]()
_guests = pytest.StashKey[list["Guest"]]()
_rows = pytest.StashKey[list["Row"]]()
_started = pytest.StashKey[float]()
_warm = pytest.StashKey["WarmLabs"]()
ROWS_OUTPUT = "coexist_rows"   # an xdist worker's rows in its workeroutput, as Row.to_json writes them


def pytest_addoption(parser: pytest.Parser) -> None:
    """Every option is `--coexist-*`, each with an ini setting of the same name (`coexist_*`) for
    CI: the option wins when both are given."""
    from coexist.guest.accel import ACCELS
    from coexist.scenario.axes import RELEASES

    group = parser.getgroup("coexist", "coexist labs (libvirt + Docker on one host, for real)")
    group.addoption("--coexist-release", default=None, choices=RELEASES,
                    help="host release for every lab (default: the marker's or scenario's own)")
    parser.addini("coexist_release", "as --coexist-release", default="")
    group.addoption("--coexist-accel", default=None, choices=ACCELS,
                    help="guest accelerator: auto (KVM if a guest really boots under it, else "
                         "TCG), or forced (default: auto)")
    parser.addini("coexist_accel", "as --coexist-accel", default="auto")
    group.addoption("--coexist-artifacts", default=None, metavar="DIR",
                    help="where each test's logs, rulesets and verdicts go, a folder per test "
                         "(default: ./artifacts)")
    parser.addini("coexist_artifacts", "as --coexist-artifacts", default="artifacts")
    group.addoption("--coexist-axis", action="append", default=[], metavar="NAME=V1,V2",
                    help=_axis_help())
    parser.addini("coexist_axis", "as --coexist-axis, one NAME=V1,V2 per line", type="linelist",
                  default=[])
    group.addoption("--coexist-matrix-dir", default=None, metavar="DIR",
                    help="where the scenario items' matrix report goes (default: "
                         "<artifacts>/matrix)")
    parser.addini("coexist_matrix_dir", "as --coexist-matrix-dir", default="")
    group.addoption("--coexist-keep-lab", action="store_true", default=None,
                    help="when a test fails, leave its lab and guest running until Ctrl-C at the "
                         "end of the run; `coexist shell [--guest] <lab>` enters them")
    parser.addini("coexist_keep_lab", "as --coexist-keep-lab", type="bool", default=False)
    group.addoption("--coexist-shard", default=None, metavar="K/N",
                    help="run part K of N of the scenario items (sorted by id, dealt round-robin: "
                         "each item in exactly one part; other tests all run)")
    parser.addini("coexist_shard", "as --coexist-shard", default="")
    group.addoption("--coexist-warm", action="store_true", default=None,
                    help="scenario items of the same host share one lab, booted once and reset "
                         "(power cycle, /etc put back, reboot; proven by comparing the firewall and "
                         "/etc with the fresh boot's) between them; with xdist, use --dist loadgroup")
    parser.addini("coexist_warm", "as --coexist-warm", type="bool", default=False)
    parser.addini("coexist_scenarios", "scenario files that are test items: glob patterns of "
                  "paths relative to the rootdir, e.g. scenarios/*.toml (files named on the "
                  "command line always are)", type="linelist", default=[])


def setting(config: pytest.Config, name: str) -> Any:
    """The value of the coexist setting `name` (`release`, `accel`, ...): its --coexist-* option
    if given, else its coexist_* ini setting (checked against the option's choices)."""
    from coexist.guest.accel import ACCELS
    from coexist.scenario.axes import RELEASES

    given = config.getoption(f"coexist_{name}")
    if given not in (None, []):
        return given
    value = config.getini(f"coexist_{name}")
    if name in ("release", "matrix_dir") and not value:
        return None   # an empty ini value: not set
    choices = {"release": RELEASES, "accel": ACCELS}.get(name)
    if choices is not None and value not in choices:
        raise pytest.UsageError(f"coexist_{name} = {value!r}: one of {', '.join(choices)}")
    return value


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(_Progress(config), "coexist-progress")
    for name in ("release", "accel"):   # a bad ini value: one line at the start, as a bad option
        setting(config, name)
    config.stash[_kept] = []
    config.stash[_rows] = []
    config.stash[_started] = time.monotonic()
    config.addinivalue_line("markers", "upstream(url): the public report a scenario reproduces")
    config.addinivalue_line(
        "markers", f"{MARKER}(scenario=None, network='default', **host): the coexist lab of this test: "
                   "a scenario file, or a scenario's [host] keys and the guest's network")


@pytest.fixture
def coexist_artifacts(request: pytest.FixtureRequest) -> Path:
    """A folder of this test's own for logs, rulesets and verdicts; named in the report on failure."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid.split("::", 1)[-1])
    folder = Path(setting(request.config, "artifacts")).resolve() / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    request.node.coexist_artifacts = folder
    return folder


@pytest.fixture
def coexist_scenario(request: pytest.FixtureRequest) -> Scenario:
    """The scenario the test's marker describes (one boot step), with the coexist release applied."""
    from coexist.base.schema import ScenarioError
    from coexist.scenario.model import load, parse

    marker = request.node.get_closest_marker(MARKER)
    settings: dict[str, Any] = dict(marker.kwargs) if marker else {}
    where = f"{request.node.nodeid} (@pytest.mark.{MARKER})"
    try:
        if "scenario" in settings:
            extra = sorted(set(settings) - {"scenario"})
            if extra:
                raise ScenarioError(where, extra[0], "give either scenario= or host keys, not both")
            chosen = load(settings["scenario"])
        else:
            network = settings.pop("network", "default")
            chosen = parse({"scenario": {"name": "pytest", "summary": where}, "host": settings,
                            "guest": [{"name": "guest", "network": network}],
                            "step": [{"do": "boot"}]}, where)
        release = setting(request.config, "release")
        return chosen.variant(release=release) if release else chosen
    except ScenarioError as error:
        pytest.fail(f"coexist: {error}", pytrace=False)


@pytest.fixture
def coexist_images(request: pytest.FixtureRequest, coexist_scenario: Scenario) -> Images:
    from coexist.images.built import build_images

    ready(request.config, coexist_scenario.host.release)
    return build_images(coexist_scenario.host.release, coexist_scenario.host.packages)


_checked = pytest.StashKey[set[str]]()


def ready(config: pytest.Config, release: str) -> None:
    """Preflight, once per session and release, before the first lab of a run that uses coexist:
    a machine that cannot run a lab ends the session with one line per problem, never a traceback
    from deep inside a fixture."""
    from coexist import preflight

    checked = config.stash.setdefault(_checked, set())
    if release in checked:
        return
    found = preflight.before_labs(artifacts_root=Path(setting(config, "artifacts")), releases=[release])
    if found:
        pytest.exit("coexist preflight: " + "; ".join(found), returncode=pytest.ExitCode.USAGE_ERROR)
    checked.add(release)


@pytest.fixture
def coexist_lab(request: pytest.FixtureRequest, coexist_scenario: Scenario, coexist_images: Images,
                coexist_artifacts: Path) -> Iterator[Lab]:
    """A booted lab host: its configuration written, its daemons started in the marker's order."""
    from coexist.host.testbed import Testbed

    if (why := coexist_scenario.not_applicable()) is not None:
        pytest.skip(f"not applicable on {coexist_scenario.host.release}: {why}")
    with ExitStack() as stack:
        bed = stack.enter_context(Testbed(coexist_scenario.host_plan(), coexist_images,
                                          artifacts=coexist_artifacts))
        stack.callback(bed.snapshot, "at-teardown")
        bed.boot()
        lab = bed.lab
        yield lab
        if _keep(request):
            (lab.workdir.parent / KEPT_FILE).write_text(json.dumps(
                {"enter": lab.executor.argv([]), "enter_network": lab.network_executor.argv([]),
                 "owner": lab.owner, "test": request.node.nodeid,
                 "release": lab.image.release, "guests": _kept_guests(request)}, indent=2))
            request.config.stash[_kept].append(stack.pop_all())
            print(f"\ncoexist: kept lab {lab.workdir.parent.name} of the failed test; enter it with "
                  f"`coexist shell {lab.workdir.parent.name}` (`--guest` for its guest)")


@pytest.fixture
def coexist_guest(request: pytest.FixtureRequest, coexist_scenario: Scenario, coexist_lab: Lab,
                  coexist_images: Images, coexist_artifacts: Path) -> Iterator[Guest]:
    """The scenario's first guest, booted on its network and reachable over SSH."""
    from coexist.guest.guest import accel_for, guest_for

    decision = accel_for(coexist_lab, coexist_images.guest, asked=setting(request.config, "accel"))
    name, network = next(iter(coexist_scenario.guest_networks().items()))
    with ExitStack() as stack:
        guest = stack.enter_context(guest_for(coexist_lab, coexist_images.guest, network=network,
                                              artifacts=coexist_artifacts, role=name,
                                              decision=decision))
        request.node.stash.setdefault(_guests, []).append(guest)
        yield guest
        if _keep(request):
            request.config.stash[_kept].append(stack.pop_all())


def _keep(request: pytest.FixtureRequest) -> bool:
    return bool(setting(request.config, "keep_lab")) and request.node.stash.get(_failed, False)


def _kept_guests(request: pytest.FixtureRequest) -> dict[str, dict[str, str]]:
    return {guest.role: {"address": guest.address or "", "key": str(guest.keys.client_key_file),
                         "known_hosts": str(guest.keys.known_hosts(guest.address or ""))}
            for guest in request.node.stash.get(_guests, [])}


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The matrix report from the scenario items' rows; kept labs stay until Ctrl-C (or SIGTERM,
    SIGHUP), then go as any other: guests first. The warm lab (--coexist-warm) goes first."""
    if (warm := session.config.stash.get(_warm, None)) is not None:
        warm.close()
    _write_matrix(session.config)
    kept = session.config.stash.get(_kept, [])
    if not kept:
        return
    print(f"\ncoexist: {len(kept)} lab part(s) kept (--coexist-keep-lab): `coexist shell` lists them; "
          "press Ctrl-C to tear them down", flush=True)
    import signal

    from coexist.base import interrupt

    # Ctrl-C, SIGTERM and SIGHUP end the wait (an Interrupted, a KeyboardInterrupt), also where
    # pytest was started with them ignored (a background job of a script ignores SIGINT)
    saved = {sig: signal.getsignal(sig) for sig in interrupt.SIGNALS}
    interrupt.install()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        try:
            for stack in kept:   # in teardown order: each test's guest before its lab
                stack.close()
            kept.clear()
        finally:
            for sig, handler in saved.items():
                signal.signal(sig, handler)


@pytest.fixture
def coexist_wan(coexist_lab: Lab) -> Wan:
    """The lab's simulated internet (example.test, 198.51.100.1, 203.0.113.10)."""
    return coexist_lab.wan


@pytest.fixture
def coexist_docker(coexist_lab: Lab) -> docker.DockerClient:
    """A docker-py client of the lab's dockerd."""
    from coexist.host.daemons import Daemon

    if not coexist_lab.running(Daemon.DOCKERD):
        pytest.fail("coexist_docker: the marker's start_order starts no dockerd", pytrace=False)
    return coexist_lab.docker()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item,
                              call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport,
                                                                        pytest.TestReport]:
    report = yield
    if report.when == "call":
        item.stash[_failed] = report.failed
    folder = getattr(item, "coexist_artifacts", None)
    if folder is not None and report.failed:
        report.sections.append(("coexist artifacts", f"logs, rulesets and verdict: {folder}"))
    return report


# -- scenario files as test items ------------------------------------------------------------------
def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """A scenario file is a test item only when asked: named on the command line, or matching a
    `coexist_scenarios` pattern (as `python_files` names Python test modules). Any other .toml
    of a project is none of coexist's business."""
    if file_path.suffix != ".toml":
        return None
    config = parent.config
    named = any(Path(arg.split("::")[0]).resolve() == file_path.resolve() for arg in config.args)
    patterns = config.getini("coexist_scenarios")
    if named or patterns and _matches(file_path, config.rootpath, patterns):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


def _matches(path: Path, root: Path, patterns: list[str]) -> bool:
    try:
        relative = path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return any(relative.match(pattern) and len(relative.parts) == len(Path(pattern).parts)
               for pattern in patterns)


def _axis_help() -> str:
    """--axis's help, from the axes' table (coexist.scenario.axes)."""
    from coexist.scenario.axes import CROSSED, Kind

    single = [axis.name + (" (false,true)" if axis.kind is Kind.YES_NO else "") for axis in CROSSED
              if axis.kind in (Kind.CHOICE, Kind.YES_NO)]
    lists = [axis.name for axis in CROSSED if axis.kind in (Kind.ORDER, Kind.EVENTS)]
    return (f"cross scenario files with these values (repeatable): {', '.join(single)}, "
            f"{' / '.join(lists)} (a list per value, its items joined by '+'; 'none' for no event)")


def axes_from(options: Iterable[str]) -> dict[str, list[Any]]:
    """`--axis` values as coexist.report.matrix.cross takes them (coexist.scenario.axes.axis_options)."""
    from coexist.scenario.axes import axis_options

    try:
        return axis_options(options)
    except ValueError as error:
        raise pytest.UsageError(str(error)) from None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """--coexist-shard K/N: only part K of the scenario items (the same on every xdist worker)."""
    text = config.getoption("coexist_shard") or config.getini("coexist_shard")
    if not text:
        return
    from coexist.base.schema import dealt, part_of

    try:
        part = part_of(text)
    except ValueError as error:
        raise pytest.UsageError(f"--coexist-shard {error}") from None
    mine = set(dealt(sorted(item.nodeid for item in items if isinstance(item, ScenarioItem)), part))
    dropped = [item for item in items if isinstance(item, ScenarioItem) and item.nodeid not in mine]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item not in dropped]


class _Progress:
    """One line per finished scenario item, on the controller: `[7/24] <name>[<label>]: as expected (45 s)`
    (a plugin object of the session: the hooks see its config)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.finished = 0
        self.collected = 0

    @pytest.hookimpl(trylast=True)   # after the shard's deselection
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        self.collected = sum(isinstance(item, ScenarioItem) for item in items)

    @pytest.hookimpl(optionalhook=True)   # an xdist hook: the controller collects nothing itself
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        self.collected = sum(".toml::" in nodeid for nodeid in ids)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_report_teststatus(self, report: pytest.TestReport) -> Generator[Any, Any, None]:
        """No progress letter or word for a scenario item: its line below says it (the category
        still counts in pytest's summary)."""
        outcome = yield
        if ".toml::" in report.nodeid:
            category = outcome.get_result()[0]
            outcome.force_result((category, "", ""))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if _is_worker(self.config) or ".toml::" not in report.nodeid:
            return
        if not (report.when == "call" or report.when == "setup" and not report.passed):
            return
        self.finished += 1
        terminal = self.config.pluginmanager.get_plugin("terminalreporter")
        if terminal is not None:
            total = f"/{self.collected}" if self.collected else ""
            label = report.nodeid.rsplit("::", 1)[-1]   # the scenario's name and its variant's label
            if terminal._tw.width_of_current_line:   # after pytest's progress letters
                terminal._tw.line()
            terminal.write_line(f"[{self.finished}{total}] {label}: {_said(report)} "
                                f"({report.duration:.0f} s)")


def _said(report: pytest.TestReport) -> str:
    if report.passed:
        return "as expected"
    if report.skipped:
        return "not applicable"
    return "UNEXPECTED" if "UNEXPECTED" in str(report.longrepr) else "the run broke"


class ScenarioMismatch(AssertionError):
    """Reality differed from the scenario file; the verdict says where."""


class ScenarioFile(pytest.File):
    def collect(self) -> Iterable[pytest.Item]:
        from coexist.base.schema import ScenarioError
        from coexist.report import matrix
        from coexist.scenario.axes import AXES
        from coexist.scenario.model import load

        try:
            variants = matrix.cross([load(self.path)], axes_from(setting(self.config, "axis")))
        except matrix.CrossError as error:
            raise self.CollectError("coexist: " + error.blamed(
                lambda name, value: f"--coexist-axis {name}={AXES[name].to_option([value])}")) from None
        except ScenarioError as error:
            raise self.CollectError(error.headed("coexist: invalid scenario")) from None
        warm = setting(self.config, "warm")
        for variant in variants:
            item = ScenarioItem.from_parent(self, name=f"{variant.name}[{variant.label()}]")
            item.variant = variant
            if warm:   # a host's items in one group per xdist worker: N labs of a host, not twenty
                from coexist.run.warm import host_key

                part = zlib.crc32(item.name.encode()) % _workers(self.config)
                item.add_marker(pytest.mark.xdist_group(f"{variant.host.release}-{host_key(variant)}-{part}"))
            if variant.source:
                item.add_marker(pytest.mark.upstream(variant.source))
                item.user_properties.append(("upstream", variant.source))
            yield item


def _workers(config: pytest.Config) -> int:
    """How many xdist workers this session has (1 without xdist); the same on every worker: xdist
    hands the controller's options to its workers."""
    workers = getattr(config.option, "numprocesses", None)
    return workers if isinstance(workers, int) and workers > 0 else 1


class ScenarioItem(pytest.Item):
    variant: Scenario

    def runtest(self) -> None:
        from coexist.host.daemons import NotApplicable
        from coexist.images.built import build_images
        from coexist.report.matrix import Row, evidence_folder
        from coexist.run.runner import run_scenario

        row = Row(self.variant)
        self.config.stash[_rows].append(row)
        folder = (Path(setting(self.config, "artifacts")).resolve() / "scenarios"
                  / evidence_folder(self.variant))
        row.artifacts = str(folder)
        self.user_properties += [("release", self.variant.host.release), ("artifacts", str(folder))]
        started = time.monotonic()
        try:
            if (why := self.variant.not_applicable()) is not None:
                raise NotApplicable(why)
            ready(self.config, self.variant.host.release)
            shutil.rmtree(folder, ignore_errors=True)
            row.verdict = run_scenario(self.variant, artifacts=folder,
                                       images=build_images(self.variant.host.release,
                                                           self.variant.host.packages,
                                                           upgrade_to=self.variant.upgrade_target()),
                                       accel=setting(self.config, "accel"), warm=self._warm_labs())
        except NotApplicable as error:
            row.unsupported = str(error)
            pytest.skip(f"not applicable on {self.variant.host.release}: {error}")
        except Exception as error:
            row.error = f"{type(error).__name__}: {error}"
            raise
        finally:
            row.seconds = time.monotonic() - started
        self.user_properties.append(("accelerator", row.verdict.accel.accel))
        if row.verdict.mismatches():
            raise ScenarioMismatch(row.verdict.render())

    def _warm_labs(self) -> WarmLabs | None:
        """This process's warm labs with --coexist-warm (made at first use), else None."""
        if not setting(self.config, "warm"):
            return None
        if _warm not in self.config.stash:
            from coexist.run.warm import WarmLabs

            self.config.stash[_warm] = WarmLabs(Path(setting(self.config, "artifacts")).resolve() / "labs")
        return self.config.stash[_warm]

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str:
        if isinstance(excinfo.value, ScenarioMismatch):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo, style=style))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"scenario {self.variant.label()}"


def _is_worker(config: pytest.Config) -> bool:
    """An xdist worker of this session (not a pytest started inside one: it inherits the
    environment, PYTEST_XDIST_WORKER included, so only xdist's own config attribute tells)."""
    return hasattr(config, "workerinput")


@pytest.hookimpl(optionalhook=True)   # an xdist hook: called only with xdist
def pytest_testnodedown(node: Any, error: object | None) -> None:
    """A worker is done: its rows join the controller's. Taken out, not read: xdist calls this
    twice for a worker stopped by Ctrl-C."""
    from coexist.report.matrix import Row

    handed = getattr(node, "workeroutput", {}).pop(ROWS_OUTPUT, [])
    node.config.stash[_rows].extend(Row.from_json(row) for row in handed)


def matrix_dir(config: pytest.Config) -> Path:
    chosen = setting(config, "matrix_dir")
    return Path(chosen or Path(setting(config, "artifacts")) / "matrix").resolve()


def _write_matrix(config: pytest.Config) -> None:
    """The matrix report of this session's rows. An xdist worker hands its rows to the controller
    instead, in xdist's channel: workeroutput goes with the worker's last message, and reaches
    the controller's pytest_testnodedown before its session finishes."""
    from coexist.report import matrix

    out = matrix_dir(config)
    rows = config.stash.get(_rows, [])
    if _is_worker(config):
        # as JSON would carry them: execnet takes plain types only (an enum value is its string)
        plain = json.loads(json.dumps([row.to_json() for row in rows]))
        config.workeroutput[ROWS_OUTPUT] = plain  # type: ignore[attr-defined]
        return
    if not rows:
        return
    rows.sort(key=lambda r: r.scenario.label())
    out.mkdir(parents=True, exist_ok=True)
    matrix.write_reports(rows, out, total=len(rows),
                         seconds=time.monotonic() - config.stash[_started])
    print(f"\ncoexist matrix: {out / 'matrix.md'}, {out / 'matrix.html'}")
