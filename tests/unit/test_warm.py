"""Warm labs' parts that need no lab: /etc captured, compared and put back; which scenarios share
a host."""

from __future__ import annotations

import os
from pathlib import Path

from coexist.host import configfiles
from coexist.run.warm import ResetLeftovers, host_key
from coexist.scenario.model import parse


class _Root:
    """A lab as configfiles sees it: paths inside it under a folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, inside: str) -> Path:
        return Path(f"{self.root}{inside}")


def test_etc_put_back_as_the_fresh_host_had_it(tmp_path: Path) -> None:
    lab = _Root(tmp_path)
    etc = tmp_path / "etc"
    (etc / "docker").mkdir(parents=True)
    (etc / "docker" / "daemon.json").write_text("{}\n")
    (etc / "sysctl.conf").write_text("# stock\n")
    (etc / "sysctl.conf").chmod(0o600)
    (etc / "libvirt" / "qemu" / "autostart").mkdir(parents=True)
    (etc / "libvirt" / "qemu" / "autostart" / "guest.xml").symlink_to("/etc/libvirt/qemu/guest.xml")
    (etc / "resolv.conf").write_text("nameserver 10.0.0.1\n")
    fresh = configfiles.capture(lab)  # type: ignore[arg-type]
    assert "/etc/resolv.conf" not in fresh   # the lab's bind mount, not configuration
    assert configfiles.differences(fresh, configfiles.capture(lab)) == []  # type: ignore[arg-type]

    (etc / "docker" / "daemon.json").write_text('{"iptables": false}\n')   # a fix's settings
    (etc / "sysctl.conf").chmod(0o644)
    (etc / "libvirt" / "hooks").mkdir()
    (etc / "libvirt" / "hooks" / "network").write_text("#!/bin/sh\n")
    os.unlink(etc / "libvirt" / "qemu" / "autostart" / "guest.xml")
    assert configfiles.differences(fresh, configfiles.capture(lab)) == [  # type: ignore[arg-type]
        "+ /etc/libvirt/hooks", "+ /etc/libvirt/hooks/network",
        "- /etc/libvirt/qemu/autostart/guest.xml", "~ /etc/docker/daemon.json", "~ /etc/sysctl.conf"]

    restored = configfiles.restore(lab, fresh)  # type: ignore[arg-type]
    assert len(restored) == 5
    assert configfiles.differences(fresh, configfiles.capture(lab)) == []  # type: ignore[arg-type]
    assert (etc / "docker" / "daemon.json").read_text() == "{}\n"
    assert (etc / "sysctl.conf").stat().st_mode & 0o777 == 0o600
    assert os.readlink(etc / "libvirt" / "qemu" / "autostart" / "guest.xml") == "/etc/libvirt/qemu/guest.xml"
    assert configfiles.restore(lab, fresh) == []  # type: ignore[arg-type]


def _scenario(steps: list[dict[str, object]], **host: object) -> object:
    return parse({"scenario": {"name": "s", "summary": "s"}, "host": {"release": "trixie", **host}, "step": steps},
                 "s.toml", runnable=False)


def test_scenarios_share_a_warm_lab_when_their_hosts_are_the_same_at_boot() -> None:
    one = _scenario([{"do": "boot"}, {"fix": "forward-accept"}])
    other = _scenario([{"do": "boot"}, {"fix": "docker-user-libvirt"}, {"event": "host-reboot"}])
    assert host_key(one) == host_key(other)   # the steps differ, the host does not
    assert host_key(one) != host_key(_scenario([{"do": "boot"}], start_order=["dockerd", "libvirt", "firewalld"]))
    assert host_key(one) != host_key(_scenario([{"do": "boot"}], release="forky"))


def test_a_reset_that_left_something_says_what() -> None:
    error = ResetLeftovers([f"+ rule {n}" for n in range(8)])
    assert str(error).startswith("the warm lab's reset left 8 difference(s) from its fresh boot: + rule 0; ")
    assert str(error).endswith("; ... 2 more")
