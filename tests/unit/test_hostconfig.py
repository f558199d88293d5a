"""The host's settings written as a host's configuration files would have them (a fake lab root)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import pytest
from coexist.host import daemons, hostconfig
from coexist.host.daemons import NotApplicable
from coexist.host.hostconfig import HostSettings

NETWORK_CONF = '#firewall_backend = "nftables"\n'
FIREWALLD_CONF = "# FirewallBackend\nFirewallBackend=nftables\n#IPv6_rpfilter=yes\n"
ZONE = '<?xml version="1.0"?><zone target="ACCEPT"><short>libvirt</short></zone>\n'


class FakeLab:
    def __init__(self, root: Path, release: str = "trixie") -> None:
        self.root, self.image, self.deviations = root, SimpleNamespace(release=release), []
        self.daemon_env: dict[str, dict[str, str]] = {}

    def path(self, inside: str) -> Path:
        return self.root / inside.lstrip("/")

    def install_tc_csum_shim(self) -> None:
        self.deviations.append("tc shim")


@pytest.fixture
def lab(tmp_path: Path) -> FakeLab:
    for name, text in (("etc/libvirt/network.conf", NETWORK_CONF),
                       ("etc/firewalld/firewalld.conf", FIREWALLD_CONF),
                       ("usr/lib/firewalld/zones/libvirt.xml", ZONE)):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return FakeLab(tmp_path)


def test_settings_land_in_the_daemons_files(lab: FakeLab) -> None:
    hostconfig.apply(lab, HostSettings(docker={"ip-forward-no-drop": True},
                                       libvirt={"firewall_backend": "nftables"},
                                       firewalld={"FirewallBackend": "iptables", "IPv6_rpfilter": False},
                                       zones={"libvirt": ("virbr5",)}))
    assert json.loads(lab.path("/etc/docker/daemon.json").read_text()) == {"ip-forward-no-drop": True}
    assert lab.path("/etc/libvirt/network.conf").read_text().endswith('firewall_backend = "nftables"\n')
    assert lab.deviations == ["tc shim"]   # libvirt's nftables backend needs it on this kernel
    conf = lab.path("/etc/firewalld/firewalld.conf").read_text()
    assert "FirewallBackend=iptables" in conf and "IPv6_rpfilter=no" in conf
    zone = ET.fromstring(lab.path("/etc/firewalld/zones/libvirt.xml").read_text())
    assert [i.get("name") for i in zone.findall("interface")] == ["virbr5"]


def test_a_setting_changed_later_is_changed_where_it_is_not_set_twice(lab: FakeLab) -> None:
    # libvirt reads the first of two firewall_backend lines: an appended second one did nothing
    hostconfig.apply(lab, HostSettings(libvirt={"firewall_backend": "nftables"}))
    hostconfig.apply(lab, HostSettings(libvirt={"firewall_backend": "iptables"}))
    active = [line for line in lab.path("/etc/libvirt/network.conf").read_text().splitlines()
              if line.startswith("firewall_backend")]
    assert active == ['firewall_backend = "iptables"']


@pytest.mark.parametrize(("settings", "says"), [
    (HostSettings(libvirt={"firewall_backend_x": "nftables"}), "network.conf knows no key 'firewall_backend_x'"),
    (HostSettings(firewalld={"Colour": "blue"}), "firewalld.conf knows no key 'Colour'"),
    (HostSettings(zones={"dmz2": ("virbr0",)}), "has no zone 'dmz2'"),
])
def test_a_key_the_release_does_not_know_is_not_applicable(lab: FakeLab, settings: HostSettings,
                                                           says: str) -> None:
    with pytest.raises(NotApplicable, match=says):
        hostconfig.apply(lab, settings)


def test_bookworm_has_no_network_conf(tmp_path: Path) -> None:
    with pytest.raises(NotApplicable, match="libvirt on bookworm has no /etc/libvirt/network.conf"):
        hostconfig.apply(FakeLab(tmp_path, "bookworm"), HostSettings(libvirt={"firewall_backend": "nftables"}))


def test_dockerd_refusing_an_unknown_key_is_recognised() -> None:
    log = ("unable to configure the Docker daemon with file /etc/docker/daemon.json: the following "
           "directives don't match any configuration option: ip-forward-no-drop\n")
    refusal = daemons.dockerd_refusal(log, "trixie")
    assert isinstance(refusal, NotApplicable) and "ip-forward-no-drop" in str(refusal)
    assert daemons.dockerd_refusal("failed to start daemon: something else", "trixie") is None
