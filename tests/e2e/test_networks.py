"""The guest on other networks than libvirt's stock NAT one, and with IPv6, for real."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import scenario
from harness.runner import build_images, run_scenario
from harness.verdict import Verdict

pytestmark = pytest.mark.e2e
SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def bridged_guest_is_cut_off_until_docker_user_lets_the_bridge_forward(verdict: Verdict) -> None:
    assert verdict.before.state == "offline", verdict.render()   # DNS on the LAN fails too
    assert verdict.after is not None and verdict.after.all_ok, verdict.render()


def seed_fix_misses_a_guest_on_a_second_nat_network(verdict: Verdict) -> None:
    assert verdict.symptom and verdict.fix_effective is False, verdict.render()
    assert any("this guest's NIC is on virbr1" in line for line in verdict.explanation)


def ipv6_is_measured_beside_ipv4(verdict: Verdict) -> None:
    assert verdict.before.ipv6_ok is not None, verdict.render()
    assert [p.what for p in verdict.before.probes][-2:] == ["ping6", "TCP6"]


# id -> (scenario file, axes, what must hold besides the file's own expectations)
RUNS = {
    "bridged": ("bridged-guest-docker-user.toml", {},
                bridged_guest_is_cut_off_until_docker_user_lets_the_bridge_forward),
    "nat2": ("seed-firewalld-direct.toml", {"network": "nat2"},
             seed_fix_misses_a_guest_on_a_second_nat_network),
    "forky-ipv6": ("seed-firewalld-direct.toml", {"release": "forky", "ipv6": True},
                   ipv6_is_measured_beside_ipv4),
}


def variant(run: str) -> scenario.Scenario:
    file, axes, _ = RUNS[run]
    return scenario.load(SCENARIOS / file).variant(**axes)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "run" in metafunc.fixturenames:
        chosen = metafunc.config.getoption("--release")
        metafunc.parametrize("run", [r for r in RUNS
                                     if not chosen or variant(r).host.release == chosen])


def test_guest_network_variant_matches_its_measured_truth(run: str, artifacts: Path) -> None:
    chosen = variant(run)
    verdict = run_scenario(chosen, artifacts=artifacts, images=build_images(chosen.host.release))
    print(verdict.render())
    RUNS[run][2](verdict)
    assert not verdict.mismatches(), verdict.render()
