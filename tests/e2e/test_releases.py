"""The seed scenario on the other Debian releases, with the expectations measured there."""

from __future__ import annotations

from pathlib import Path

import pytest
from coexist.images.built import build_images
from coexist.pytest_plugin import setting
from coexist.run.runner import run_scenario
from coexist.scenario import model as scenario

pytestmark = pytest.mark.e2e
SEED = Path(__file__).resolve().parents[2] / "scenarios" / "seed-firewalld-direct.toml"

# One variant per release that shows what is particular to it (the seed file has the others).
VARIANTS = {
    # libvirt 9.0 has no nftables backend: its iptables ACCEPTs keep the guest online.
    "bookworm": {"libvirt_firewall_backend": "default"},
    # libvirt 12.8 on its nftables backend: the symptom, and the seed fix repairs it.
    "forky": {"libvirt_firewall_backend": "nftables"},
}


def releases(config: pytest.Config) -> list[str]:
    chosen = setting(config, "release")
    return [chosen] if chosen in VARIANTS else [] if chosen else list(VARIANTS)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "release" in metafunc.fixturenames:
        metafunc.parametrize("release", releases(metafunc.config))


def test_seed_on_release_matches_its_measured_truth(release: str, artifacts: Path) -> None:
    variant = scenario.load(SEED).variant(release=release, **VARIANTS[release])
    verdict = run_scenario(variant, artifacts=artifacts, images=build_images(release))
    print(verdict.render())
    assert verdict.versions["docker.io"], "the host image records its versions"
    boot = verdict.step("boot").guests["guest"].final
    assert boot.dns.ok, boot.dns.output
    assert boot.symptom == variant.steps[0].expect.guest["symptom"], verdict.render()
    assert not verdict.mismatches(), verdict.render()
