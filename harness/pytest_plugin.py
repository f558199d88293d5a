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

The marker takes a scenario's [host] keys (release, start_order, libvirt_firewall_backend,
firewalld_backend, docker_iptables, ipv6, docker, libvirt, firewalld, sysctl, zones) and
`network` (the guest's network), or `scenario="path/to/file.toml"` (its host and first guest).
They are validated like a scenario file: a bad key fails the test in one line. Options:
`--release` (every lab on this release), `--accel auto|kvm|tcg`, `--artifacts-dir`.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import docker

    from harness.guest import Guest
    from harness.lab import Lab
    from harness.runner import Images
    from harness.scenario import Scenario
    from harness.wan import Wan

MARKER = "coexist"
RELEASES = ("bookworm", "trixie", "forky")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("coexist", "coexist labs (libvirt + Docker on one host, for real)")
    group.addoption("--release", default=None, choices=RELEASES,
                    help="host release for every lab (default: the marker's or scenario's own)")
    group.addoption("--accel", default="auto", choices=("auto", "kvm", "tcg"),
                    help="guest accelerator: auto (KVM if a guest really boots under it, else "
                         "TCG), or forced")
    group.addoption("--artifacts-dir", default="artifacts",
                    help="where each test's logs, rulesets and verdicts go (a folder per test)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}(scenario=None, network='default', **host): the coexist lab of this test: "
                   "a scenario file, or a scenario's [host] keys and the guest's network")


@pytest.fixture
def coexist_artifacts(request: pytest.FixtureRequest) -> Path:
    """A folder of this test's own for logs, rulesets and verdicts; named in the report on failure."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid.split("::", 1)[-1])
    folder = Path(request.config.getoption("--artifacts-dir")).resolve() / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    request.node.coexist_artifacts = folder
    return folder


@pytest.fixture
def coexist_scenario(request: pytest.FixtureRequest) -> Scenario:
    """The scenario the test's marker describes (one boot step), with --release applied."""
    from harness.scenario import ScenarioError, load, parse

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
        release = request.config.getoption("--release")
        return chosen.variant(release=release) if release else chosen
    except ScenarioError as error:
        pytest.fail(f"coexist: {error}", pytrace=False)


@pytest.fixture
def coexist_images(coexist_scenario: Scenario) -> Images:
    from harness.runner import build_images

    return build_images(coexist_scenario.host.release)


@pytest.fixture
def coexist_lab(coexist_scenario: Scenario, coexist_images: Images,
                coexist_artifacts: Path) -> Iterator[Lab]:
    """A booted lab host: its configuration written, its daemons started in the marker's order."""
    from harness import firewall
    from harness.runner import boot_host, lab_for, save_logs

    if (why := coexist_scenario.not_applicable()) is not None:
        pytest.skip(f"not applicable on {coexist_scenario.host.release}: {why}")
    with lab_for(coexist_scenario.host, coexist_images) as lab:
        try:
            boot_host(lab, coexist_scenario.host, coexist_scenario.host_networks())
            yield lab
        finally:
            try:
                firewall.snapshot(lab, "at-teardown").save(coexist_artifacts)
            finally:
                save_logs(lab, coexist_artifacts)


@pytest.fixture
def coexist_guest(request: pytest.FixtureRequest, coexist_scenario: Scenario, coexist_lab: Lab,
                  coexist_images: Images, coexist_artifacts: Path) -> Iterator[Guest]:
    """The scenario's first guest, booted on its network and reachable over SSH."""
    from harness import accel
    from harness.runner import accel_for, guest_for

    forced = request.config.getoption("--accel")
    decision = (accel_for(coexist_lab, coexist_images) if forced == "auto"
                else accel.AccelDecision(forced, "forced by --accel"))
    name, network = next(iter(coexist_scenario.guest_networks().items()))
    with guest_for(coexist_lab, coexist_images, network=network, artifacts=coexist_artifacts,
                   role=name, decision=decision) as guest:
        yield guest


@pytest.fixture
def coexist_wan(coexist_lab: Lab) -> Wan:
    """The lab's simulated internet (example.test, 198.51.100.1, 203.0.113.10)."""
    return coexist_lab.wan


@pytest.fixture
def coexist_docker(coexist_lab: Lab) -> docker.DockerClient:
    """A docker-py client of the lab's dockerd."""
    if not coexist_lab.running("dockerd"):
        pytest.fail("coexist_docker: the marker's start_order starts no dockerd", pytrace=False)
    return coexist_lab.docker()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item,
                              call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport,
                                                                        pytest.TestReport]:
    report = yield
    folder = getattr(item, "coexist_artifacts", None)
    if folder is not None and report.failed:
        report.sections.append(("coexist artifacts", f"logs, rulesets and verdict: {folder}"))
    return report
