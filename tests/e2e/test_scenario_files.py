"""Scenario files a bug reporter writes, run for real: an inline fix with a parameter-free
wildcard rule, an admin's own commands, a named network on its own bridge and subnet, two guests,
a daemon.json key, a control run without Docker, guest-restart and host-reboot."""

from __future__ import annotations

from pathlib import Path

import pytest
from coexist.host.daemons import NotApplicable
from coexist.images.built import build_images
from coexist.pytest_plugin import setting
from coexist.report.verdict import Verdict
from coexist.run.runner import run_scenario
from coexist.scenario import model as scenario

pytestmark = pytest.mark.e2e
SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def run(name: str, artifacts: Path, request: pytest.FixtureRequest, **axes: object) -> Verdict:
    loaded = scenario.load(SCENARIOS / f"{name}.toml").variant(**axes)
    chosen = setting(request.config, "release")
    if chosen and chosen != loaded.host.release:
        pytest.skip(f"{name} runs on {loaded.host.release}")
    verdict = run_scenario(loaded, artifacts=artifacts, images=build_images(loaded.host.release, loaded.host.packages))
    print(verdict.render())
    return verdict


def test_a_public_report_with_its_own_fix_network_and_two_guests(artifacts: Path,
                                                               request: pytest.FixtureRequest) -> None:
    verdict = run("docker-user-virbr-minikube", artifacts, request)
    fix = verdict.step("report-docker-user-virbr0")
    assert [c.command for c in fix.commands] == ["iptables -I DOCKER-USER -i virbr0 -j ACCEPT",
                                                 "iptables -I DOCKER-USER -o virbr0 -j ACCEPT"]
    assert fix.guests["vm"].final.state == "online"          # virbr0: the rules name it
    assert fix.guests["mk"].final.state == "symptom"         # virbr5, the report's own network
    assert "192.168.39.1" in (artifacts / "01-boot" / "ip-addr.txt").read_text()
    assert not verdict.mismatches(), verdict.render()


def test_an_admins_commands_between_measurements(artifacts: Path, request: pytest.FixtureRequest) -> None:
    verdict = run("forward-accept-by-hand", artifacts, request)
    admin = verdict.step("admin")
    assert [(c.command, c.returncode) for c in admin.commands] == [("iptables -P FORWARD ACCEPT", 0)]
    assert admin.host_value("forward_policy") == "ACCEPT"
    assert admin.guests["guest"].final.state == "online"
    assert not verdict.mismatches(), verdict.render()


def test_a_daemon_json_key_on_the_docker_that_knows_it(artifacts: Path,
                                                      request: pytest.FixtureRequest) -> None:
    verdict = run("ip-forward-no-drop", artifacts, request)
    boot = verdict.step("boot")
    assert boot.host_value("ip_forward") is True and boot.host_value("forward_policy") == "ACCEPT"
    assert not verdict.mismatches(), verdict.render()


def test_a_daemon_json_key_the_releases_docker_does_not_know_is_not_applicable(
        artifacts: Path, request: pytest.FixtureRequest) -> None:
    # said before any lab starts (coexist.host.known); no folder of logs from a lab
    with pytest.raises(NotApplicable, match="daemon.json key 'ip-forward-no-drop' is known on forky "
                                            "only, not on trixie"):
        run("ip-forward-no-drop", artifacts, request, release="trixie")
    assert not (artifacts / "logs").exists()


def test_a_control_run_without_docker(artifacts: Path, request: pytest.FixtureRequest) -> None:
    verdict = run("control-no-docker", artifacts, request)
    assert not (artifacts / "logs" / "dockerd.log").exists()
    assert all(r.published_port is None for r in verdict.steps)
    assert not verdict.mismatches(), verdict.render()


def test_docker_started_on_a_running_libvirt_host_and_enabled_leaves_the_guest_online(
        artifacts: Path, request: pytest.FixtureRequest) -> None:
    verdict = run("docker-installed-later", artifacts, request)
    assert [r.probes["container-out"].returncode == 0 for r in verdict.steps] == [False, True, True]
    assert not verdict.mismatches(), verdict.render()


def test_the_posts_priority_0_rules_land_at_the_end_of_forward_and_a_second_fix_adds_none(
        artifacts: Path, request: pytest.FixtureRequest) -> None:
    verdict = run("seed-post-at-the-top", artifacts, request)
    assert verdict.step("applied-again").added == []
    assert sorted(verdict.step("revert-seed-firewalld-direct").unreverted or []) == [
        '- iifname "docker0" oifname != "docker0" counter jump DOCKER-ISOLATION-STAGE-2',
        '- oifname "docker0" counter drop']
    assert not verdict.mismatches(), verdict.render()


def test_a_guest_on_an_isolated_network_is_offline_and_the_seed_fix_changes_nothing(
        artifacts: Path, request: pytest.FixtureRequest) -> None:
    verdict = run("isolated-network", artifacts, request)
    assert [r.guests["vm"].final.state for r in verdict.steps] == ["offline", "offline"], verdict.render()
    assert not verdict.mismatches(), verdict.render()


def test_a_reports_tools_on_the_host_come_from_host_packages(artifacts: Path, request: pytest.FixtureRequest) -> None:
    """jq and ping (iputils), not in the host image, through `[host] packages`: an image of its own."""
    loaded = scenario.load(SCENARIOS / "report-tools-on-the-host.toml")
    images = build_images(loaded.host.release, loaded.host.packages)
    assert {"jq", "iputils-ping"} <= set(images.host.manifest), images.host.manifest
    assert images.host.root != build_images(loaded.host.release).host.root
    verdict = run("report-tools-on-the-host", artifacts, request)
    ran = verdict.step("reporter").commands
    assert [c.returncode for c in ran] == [0, 0], ran
    assert ran[0].output.strip() == "drop" and " 1 received" in ran[1].output, ran
    assert not verdict.mismatches(), verdict.render()
