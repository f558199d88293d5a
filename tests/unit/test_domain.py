from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from coexist.guest.domain import DomainSpec, domain_xml

SPEC = DomainSpec(name="coexist-1.2-guest", kernel="/var/lib/coexist/guest/vmlinux",
                  initrd="/var/lib/coexist/guest/initrd", cmdline="console=ttyS0 x=1",
                  serial_log="/var/log/libvirt/qemu/g-serial.log", mac="52:54:00:aa:bb:cc")


def test_tcg_domain_boots_the_kernel_directly_on_the_default_network() -> None:
    root = ET.fromstring(domain_xml(SPEC))
    assert root.get("type") == "qemu"
    assert root.findtext("os/kernel") == SPEC.kernel
    assert root.findtext("os/initrd") == SPEC.initrd
    assert root.findtext("os/cmdline") == "console=ttyS0 x=1"
    assert root.find("os/type").get("machine") == "pc"
    assert root.find("cpu/model").text == "qemu64"
    assert root.find("cpu/feature").get("name") == "rdrand"
    interface = root.find("devices/interface")
    assert interface.get("type") == "network"
    assert interface.find("source").get("network") == "default"
    assert interface.find("mac").get("address") == SPEC.mac
    assert interface.find("model").get("type") == "virtio"
    assert root.find("devices/serial/source").get("path") == SPEC.serial_log
    assert root.findtext("on_reboot") == "destroy"


def test_kvm_domain_uses_kvm_and_the_host_cpu() -> None:
    from dataclasses import replace

    root = ET.fromstring(domain_xml(replace(SPEC, accel="kvm")))
    assert root.get("type") == "kvm"
    assert root.find("cpu").get("mode") == "host-passthrough"


def test_libvirt_accepts_the_xml() -> None:
    libvirt = pytest.importorskip("libvirt")
    conn = libvirt.open("test:///default")
    try:
        domain = conn.defineXML(domain_xml(SPEC))
        defined = ET.fromstring(domain.XMLDesc())
        assert defined.findtext("os/kernel") == SPEC.kernel
        assert defined.find("devices/interface/mac").get("address") == SPEC.mac
        domain.undefine()
    finally:
        conn.close()
