"""The boot reads the sysctl files as systemd-sysctl does (a fake lab root; the writing is a lab's)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from coexist.host import hostconfig, sysctlfiles
from coexist.host.hostconfig import HostSettings
from coexist.host.sysctlfiles import Assignment


class FakeLab:
    def __init__(self, root: Path) -> None:
        self.root, self.image = root, SimpleNamespace(release="bookworm")

    def path(self, inside: str) -> Path:
        return self.root / inside.lstrip("/")

    def write(self, inside: str, text: str) -> None:
        self.path(inside).parent.mkdir(parents=True, exist_ok=True)
        self.path(inside).write_text(text)

    def link(self, inside: str, target: str) -> None:
        self.path(inside).parent.mkdir(parents=True, exist_ok=True)
        self.path(inside).symlink_to(target)


@pytest.fixture
def lab(tmp_path: Path) -> FakeLab:
    return FakeLab(tmp_path)


def test_lines_as_systemd_sysctl_reads_them() -> None:
    text = ("# comment\n; also a comment\n\nnet.ipv4.ip_forward = 1\n-net.ipv6.conf.all.forwarding=1\n"
            "net/ipv4/conf/eth0.100/rp_filter = 2\nkernel.pid_max = 4194304\nnot an assignment\n")
    assert sysctlfiles.parse(text, "/etc/sysctl.d/x.conf") == [
        Assignment("net.ipv4.ip_forward", "1", "/etc/sysctl.d/x.conf"),
        Assignment("net.ipv6.conf.all.forwarding", "1", "/etc/sysctl.d/x.conf", ignore_failure=True),
        Assignment("net.ipv4.conf.eth0/100.rp_filter", "2", "/etc/sysctl.d/x.conf"),
        Assignment("kernel.pid_max", "4194304", "/etc/sysctl.d/x.conf")]
    assert Assignment("net.ipv4.conf.*.rp_filter", "2", "f").glob
    # trixie's linux-sysctl-defaults: a glob, and one key left out of it
    assert sysctlfiles.parse("net.ipv4.conf.*.rp_filter = 2\n-net.ipv4.conf.all.rp_filter\n", "d") == [
        Assignment("net.ipv4.conf.*.rp_filter", "2", "d"),
        Assignment("net.ipv4.conf.all.rp_filter", "", "d", ignore_failure=True, excluded=True)]
    assert Assignment("net.ipv4.conf.eth0/100.rp_filter", "2", "f").proc_path == "/proc/sys/net/ipv4/conf/eth0.100/rp_filter"


def test_bookworm_reads_sysctl_conf_through_its_link_and_trixie_does_not(lab: FakeLab) -> None:
    lab.write("/etc/sysctl.conf", "#net.ipv4.ip_forward=1\nnet.ipv4.ip_forward=1\n")
    assert sysctlfiles.read(lab) == []   # trixie: nothing links to /etc/sysctl.conf
    lab.link("/etc/sysctl.d/99-sysctl.conf", "../sysctl.conf")   # bookworm's systemd ships this
    assert [(a.key, a.value, a.file) for a in sysctlfiles.read(lab)] == [
        ("net.ipv4.ip_forward", "1", "/etc/sysctl.d/99-sysctl.conf")]


def test_etc_hides_the_vendors_file_of_the_same_name_and_dev_null_masks(lab: FakeLab) -> None:
    lab.write("/usr/lib/sysctl.d/50-default.conf", "net.ipv4.conf.all.rp_filter = 2\n")
    lab.write("/usr/lib/sysctl.d/60-vendor.conf", "net.ipv4.ping_group_range = 0 0\n")
    lab.write("/etc/sysctl.d/50-default.conf", "net.ipv4.conf.all.rp_filter = 1\n")
    lab.link("/etc/sysctl.d/60-vendor.conf", "/dev/null")
    lab.link("/etc/sysctl.d/70-dangling.conf", "/nowhere.conf")
    assert [(a.key, a.value) for a in sysctlfiles.read(lab)] == [("net.ipv4.conf.all.rp_filter", "1")]


def test_an_absolute_link_is_followed_inside_the_labs_root(lab: FakeLab) -> None:
    lab.write("/srv/forward.conf", "net.ipv4.ip_forward = 1\n")
    lab.link("/etc/sysctl.d/10-forward.conf", "/srv/forward.conf")   # the lab's /srv, not the machine's
    assert [a.key for a in sysctlfiles.read(lab)] == ["net.ipv4.ip_forward"]


def test_files_are_read_by_name_and_the_last_assignment_of_a_key_wins(lab: FakeLab) -> None:
    lab.write("/etc/sysctl.d/99-late.conf", "net.ipv4.ip_forward = 0\n")
    lab.write("/usr/lib/sysctl.d/10-early.conf", "net.ipv4.ip_forward = 1\nnet.ipv4.tcp_syncookies = 1\n")
    assert [(a.key, a.value, a.file) for a in sysctlfiles.read(lab)] == [
        ("net.ipv4.tcp_syncookies", "1", "/usr/lib/sysctl.d/10-early.conf"),
        ("net.ipv4.ip_forward", "0", "/etc/sysctl.d/99-late.conf")]


def test_the_settings_sysctls_are_a_file_the_boot_reads_merged_as_an_admin_edits_it(lab: FakeLab) -> None:
    hostconfig.apply(lab, HostSettings(sysctl={"net.ipv4.ip_forward": 1}))
    hostconfig.apply(lab, HostSettings(sysctl={"net.ipv4.ip_forward": 0, "net.ipv6.conf.all.forwarding": True}))
    assert [(a.key, a.value) for a in sysctlfiles.read(lab)] == [
        ("net.ipv4.ip_forward", "0"), ("net.ipv6.conf.all.forwarding", "1")]
    assert lab.path(hostconfig.SYSCTL_FILE).read_text().count("net.ipv4.ip_forward") == 1
