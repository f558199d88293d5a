"""A distro upgrade in place, for real: a bookworm lab host with Docker, libvirt's NAT guest and
firewalld, forwarding turned on in /etc/sysctl.conf (read at boot through bookworm's
/etc/sysctl.d/99-sysctl.conf), upgraded to trixie by apt from the packages prepared beforehand,
rebooted into trixie, and measured before and after
(scenarios/upgrade-bookworm-trixie-sysctl-conf.toml)."""

from __future__ import annotations

from pathlib import Path

import pytest
from coexist.images.built import build_images
from coexist.images.hostimage import MANIFEST_PACKAGES
from coexist.pytest_plugin import setting
from coexist.run.runner import run_scenario
from coexist.scenario import model as scenario

pytestmark = pytest.mark.e2e
SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "upgrade-bookworm-trixie-sysctl-conf.toml"


def test_a_bookworm_host_upgraded_in_place_to_trixie_is_trixie_and_healthy(
        artifacts: Path, request: pytest.FixtureRequest) -> None:
    loaded = scenario.load(SCENARIO)
    chosen = setting(request.config, "release")
    if chosen and chosen not in ("bookworm", "trixie"):
        pytest.skip("the upgrade runs from bookworm to trixie")
    images = build_images("bookworm", upgrade_to="trixie")
    verdict = run_scenario(loaded, artifacts=artifacts, images=images)
    print(verdict.render())
    upgraded = verdict.step("upgrade")
    done = upgraded.upgrade
    assert done is not None and done.healthy, verdict.render()
    trixie = build_images("trixie").host.manifest
    assert {name: done.versions[name][1] for name in MANIFEST_PACKAGES} == {
        name: trixie.get(name, "") for name in MANIFEST_PACKAGES}
    assert all(before != after for before, after in (done.versions[n] for n in ("docker.io", "libvirt-daemon")))
    assert done.config == {"etc/sysctl.conf": "MOVED ASIDE by the upgrade (the package dropped it; the "
                                              "scenario's kept as sysctl.conf.dpkg-bak, which nothing reads)"}
    assert "linux-sysctl-defaults" in done.beyond_image   # trixie's systemd and procps recommend it
    assert verdict.step("sysctl-conf-forwarding").host_value("forward_policy") == "ACCEPT"
    assert upgraded.host_value("forward_policy") == "DROP"   # the file is no longer read at boot
    assert (artifacts / "03-upgrade-apt.log").read_text().startswith("$ env DEBIAN_FRONTEND=noninteractive")
    assert upgraded.since_upgrade is not None
    assert not verdict.mismatches(), verdict.render()
