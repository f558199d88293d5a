"""An upgrade step without a lab: the language (its step, where it applies), apt's plan read, the
upgrade's health and how the verdict says it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from coexist.base.schema import ScenarioError
from coexist.host import upgrade
from coexist.host.hostconfig import HostSettings
from coexist.host.upgrade import Upgraded
from coexist.images.upgradeset import installed_packages, next_release, parse_plan
from coexist.scenario.model import parse
from coexist.scenario.steps import Event, Upgrade, events_of


def scenario(release: str, *steps: dict[str, Any]) -> Any:
    return parse({"scenario": {"name": "s", "summary": "s"}, "host": {"release": release},
                  "step": [{"do": "boot"}, *steps]})


def test_the_next_release_is_the_one_coexist_builds_after_it() -> None:
    assert [next_release(r) for r in ("bookworm", "trixie", "forky")] == ["trixie", "forky", None]


def test_apt_s_full_upgrade_says_what_each_package_becomes() -> None:
    plan = """NOTE: This is only a simulation!
Inst docker.io [20.10.24+dfsg1-1+b3] (26.1.5+dfsg1-9+deb13u1 Debian:13.2/stable [amd64]) []
Inst docker-cli (26.1.5+dfsg1-9+deb13u1 Debian:13.2/stable [amd64])
Conf docker.io (26.1.5+dfsg1-9+deb13u1 Debian:13.2/stable [amd64])
Remv libip4tc2 [1.8.9-2]
"""
    assert parse_plan(plan) == {"docker.io": "26.1.5+dfsg1-9+deb13u1", "docker-cli": "26.1.5+dfsg1-9+deb13u1"}


def test_an_upgrade_step_names_the_release_and_a_conffile_policy() -> None:
    [_, step, _] = scenario("bookworm", {"upgrade": "trixie"}, {"event": "host-reboot"}).steps
    assert isinstance(step, Upgrade) and (step.id, step.target, step.conffiles) == ("upgrade", "trixie", "keep")
    assert step.label() == "upgrade to trixie (apt full-upgrade; conffiles: keep), then host-reboot"
    assert events_of(step) == (Event.HOST_REBOOT,)
    new = scenario("bookworm", {"upgrade": "trixie", "conffiles": "new"}).steps[1]
    assert isinstance(new, Upgrade) and new.conffiles == "new"
    default = scenario("bookworm", {"upgrade": "trixie", "conffiles": "default"}).steps[1]
    assert isinstance(default, Upgrade) and default.conffiles == "default"


@pytest.mark.parametrize(("steps", "said"), [
    ([{"upgrade": "trixie", "conffiles": "old"}], "step[1].conffiles: 'old' is not allowed"),
    ([{"upgrade": "trixy"}], "step[1].upgrade: 'trixy' is not allowed; did you mean 'trixie'?"),
    ([{"run": ["true"], "conffiles": "keep"}], "step[1].conffiles: only with upgrade ="),
    ([{"upgrade": "trixie"}, {"upgrade": "forky"}], "step[2].upgrade: a second upgrade step"),
    ([{"upgrade": "trixie", "expect": {"upgrade_healthy": True}}, {"do": "measure",
      "expect": {"upgrade_healthy": True}}], "step[2].expect.upgrade_healthy: only on an upgrade step"),
])
def test_an_upgrade_step_refuses_what_it_cannot_do_in_one_line(steps: list[dict[str, Any]], said: str) -> None:
    with pytest.raises(ScenarioError) as refused:
        scenario("bookworm", *steps)
    assert said in str(refused.value)


def test_an_upgrade_applies_only_from_the_release_before_it() -> None:
    upgrading = scenario("bookworm", {"upgrade": "trixie"})
    assert upgrading.not_applicable() is None and upgrading.upgrade_target() == "trixie"
    assert upgrading.variant(release="trixie").not_applicable() == (
        "step upgrade: upgrade to trixie: the release after trixie is forky")
    assert upgrading.variant(release="forky").not_applicable() == (
        "step upgrade: upgrade to trixie: the release after forky is not one coexist builds")
    with pytest.raises(ScenarioError, match="cannot run as written: step upgrade: upgrade to trixie"):
        scenario("trixie", {"upgrade": "trixie"})
    assert scenario("bookworm").upgrade_target() is None


def test_a_fix_after_the_upgrade_is_checked_against_the_new_release() -> None:
    fix = {"fix": "docker-ip-forward-no-drop"}   # daemon.json's ip-forward-no-drop: Docker 28 (forky) only
    with pytest.raises(ScenarioError, match="known on forky only, not on trixie"):
        scenario("trixie", fix)
    assert scenario("trixie", {"upgrade": "forky"}, fix).not_applicable() is None


def test_an_upgrade_is_healthy_only_when_apt_dpkg_and_the_plan_agree() -> None:
    done = Upgraded("bookworm", "trixie", "keep", seconds=95.2,
                    versions={"docker.io": ("20.10.24+dfsg1-1+b3", "26.1.5+dfsg1-9+deb13u1")},
                    config={"etc/docker/daemon.json": "kept"}, beyond_image=["linux-sysctl-defaults"],
                    left_over=["gcc-12-base"])
    assert done.healthy   # a Recommends the image lacks is no sickness: apt installs them by default
    assert done.lines() == [
        "upgrade bookworm -> trixie (conffiles: keep): apt exit 0 in 95s; healthy: yes",
        "  docker.io 20.10.24+dfsg1-1+b3 -> 26.1.5+dfsg1-9+deb13u1",
        "  /etc/docker/daemon.json: kept",
        "  1 package(s) installed by the upgrade, not in trixie's image (Recommends: the image is built "
        "without): linux-sysctl-defaults",
        "  1 package(s) left from bookworm, not in trixie's image (apt removes none; autoremove would "
        "take some): gcc-12-base"]
    for broken in ({"returncode": 100}, {"audit": "The following packages are only half configured"},
                   {"not_installed": ["iU firewalld"]}, {"differ": ["runc 1.1.5 (planned 1.1.15)"]}):
        assert not Upgraded("bookworm", "trixie", "keep", **broken).healthy   # type: ignore[arg-type]
    assert Upgraded.from_json(done.to_json()) == done


class _Lab:
    """What the upgrade reads of a lab: its files (a folder) and its image's."""

    def __init__(self, root: Path, image: Path) -> None:
        self.root, self.image = root, type("Image", (), {"root": image})()

    def path(self, inside: str) -> Path:
        return self.root / inside.lstrip("/")


def test_each_etc_file_the_scenario_changed_has_its_fate_said(tmp_path: Path) -> None:
    image, lab = tmp_path / "image", tmp_path / "lab"
    files = {"etc/docker/daemon.json": "{}", "etc/firewalld/firewalld.conf": "FirewallBackend=nftables\n",
             "etc/sysctl.conf": "#\n", "etc/libvirt/network.conf": "#\n", "etc/hostname": "x\n",
             "etc/motd": "hi\n"}
    for name, text in files.items():
        for root in (image, lab):
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(text)
    stub = _Lab(lab, image)
    # before boot: the host's settings; at boot: what the daemons write for themselves
    (lab / "etc/docker/daemon.json").write_text('{"ip-forward": false}')
    (lab / "etc/firewalld/zones").mkdir()
    (lab / "etc/firewalld/zones/docker.xml").write_text("<zone/>")
    at_boot = upgrade.etc_contents(stub)   # type: ignore[arg-type]
    # what the scenario's steps did before the upgrade
    (lab / "etc/firewalld/firewalld.conf").write_text("FirewallBackend=iptables\n")
    (lab / "etc/sysctl.conf").write_text("net.ipv4.ip_forward = 1\n")
    (lab / "etc/libvirt/network.conf").write_text('firewall_backend = "iptables"\n')
    (lab / "etc/hostname").write_text("lab-bookworm\n")   # the lab's own: not the scenario's
    (lab / "etc/motd").unlink()
    (lab / "etc/sysctl.d").mkdir()
    (lab / "etc/sysctl.d/99-forward.conf").write_text("net.ipv4.ip_forward = 1\n")
    (lab / "etc/obsolete.conf").write_text("changed by the admin\n")
    settings = HostSettings(docker={"ip-forward": False})
    changed = upgrade.changed_config(stub, at_boot, settings)   # type: ignore[arg-type]
    assert list(changed) == ["etc/docker/daemon.json", "etc/firewalld/firewalld.conf", "etc/libvirt/network.conf",
                             "etc/motd", "etc/obsolete.conf", "etc/sysctl.conf", "etc/sysctl.d/99-forward.conf"]
    # what the upgrade did to them
    (lab / "etc/firewalld/firewalld.conf.dpkg-dist").write_text("FirewallBackend=nftables\n#new\n")
    (lab / "etc/sysctl.conf").write_text("# the package's\n")
    (lab / "etc/sysctl.conf.dpkg-old").write_text("net.ipv4.ip_forward = 1\n")
    (lab / "etc/libvirt/network.conf").write_text('firewall_backend = "iptables"\n#merged\n')
    (lab / "etc/sysctl.d/99-forward.conf").unlink()
    # dpkg-maintscript-helper rm_conffile of a changed file (trixie's procps: /etc/sysctl.conf)
    (lab / "etc/obsolete.conf").rename(lab / "etc/obsolete.conf.dpkg-bak")
    fates = {path: upgrade._fate(stub, path, text) for path, text in changed.items()}   # type: ignore[arg-type]
    assert fates == {
        "etc/docker/daemon.json": "kept",
        "etc/firewalld/firewalld.conf": "kept, the package's new version beside it (firewalld.conf.dpkg-dist)",
        "etc/libvirt/network.conf": "CHANGED by the upgrade (a maintainer script merged or rewrote it)",
        "etc/motd": "removed by the scenario; still absent",
        "etc/obsolete.conf": "MOVED ASIDE by the upgrade (the package dropped it; the scenario's kept as "
                             "obsolete.conf.dpkg-bak, which nothing reads)",
        "etc/sysctl.conf": "REPLACED by the package's (the scenario's kept as sysctl.conf.dpkg-old)",
        "etc/sysctl.d/99-forward.conf": "REMOVED by the upgrade"}


def test_each_conffile_policy_is_what_dpkg_and_ucf_are_told() -> None:
    assert upgrade.CONFFILES["keep"] == ("--force-confdef", "--force-confold", "UCF_FORCE_CONFFOLD=1")
    assert upgrade.CONFFILES["new"] == ("--force-confnew", "UCF_FORCE_CONFFNEW=1")
    assert upgrade.CONFFILES["default"] == ("--force-confdef",)   # ucf told nothing: its own default answer


def test_the_packages_an_image_has_are_read_from_dpkgs_status(tmp_path: Path) -> None:
    (tmp_path / "var/lib/dpkg").mkdir(parents=True)
    (tmp_path / "var/lib/dpkg/status").write_text(
        "Package: docker.io\nStatus: install ok installed\nDescription: x\n y: z\n\n"
        "Package: old-lib\nStatus: deinstall ok config-files\n\nPackage: procps\nStatus: install ok installed\n")
    assert installed_packages(tmp_path) == {"docker.io", "procps"}
