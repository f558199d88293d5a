"""The host's settings as data, written into the lab before any daemon starts, as a host's own
configuration files and boot would have them: Docker's daemon.json, libvirt's network.conf,
firewalld.conf, network sysctls, firewalld zone bindings.

A setting the release's daemon does not know is not a broken run: NotApplicable says so, naming
the release, the file and the key.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from coexist.base import log
from coexist.host import known
from coexist.host.daemons import Daemon, NotApplicable
from coexist.host.lab import Lab
from coexist.sandbox.namespaces import SYSTEM_PATH

NETWORK_CONF, FIREWALLD_CONF = known.NETWORK_CONF, known.FIREWALLD_CONF
DAEMON_JSON = "/etc/docker/daemon.json"
SYSCTL_FILE = "/etc/sysctl.d/90-coexist.conf"   # the settings' sysctls, read at every boot


@dataclass(frozen=True)
class HostSettings:
    docker: Mapping[str, Any] = field(default_factory=dict)      # daemon.json keys
    libvirt: Mapping[str, Any] = field(default_factory=dict)     # network.conf keys
    firewalld: Mapping[str, Any] = field(default_factory=dict)   # firewalld.conf keys
    sysctl: Mapping[str, Any] = field(default_factory=dict)      # net.* sysctls at boot
    zones: Mapping[str, tuple[str, ...]] = field(default_factory=dict)   # zone -> interfaces
    docker_iptables: str = "default"   # the iptables dockerd finds first: default | nft | legacy

    def merged(self, later: HostSettings) -> HostSettings:
        """These settings with `later`'s over them, key by key (an admin's change to a host)."""
        return HostSettings({**self.docker, **later.docker}, {**self.libvirt, **later.libvirt},
                            {**self.firewalld, **later.firewalld}, {**self.sysctl, **later.sysctl},
                            {**self.zones, **later.zones}, self.docker_iptables)


def apply(lab: Lab, settings: HostSettings) -> None:
    """Write the configuration files (kept across a host-reboot), the sysctls in SYSCTL_FILE
    (the boot reads it: coexist.host.sysctlfiles); apply_sysctls sets them now as well."""
    release = lab.image.release
    if settings.sysctl:
        _sysctl_file(lab, settings.sysctl)
    if settings.libvirt:
        _network_conf(lab, release, settings.libvirt)
    if settings.firewalld:
        _firewalld_conf(lab, release, settings.firewalld)
    if settings.docker:
        path = lab.path(DAEMON_JSON)
        path.parent.mkdir(parents=True, exist_ok=True)
        current = json.loads(path.read_text()) if path.exists() else {}
        path.write_text(json.dumps({**current, **settings.docker}, indent=2) + "\n")
        log.info(f"lab: {DAEMON_JSON}: {json.dumps(dict(settings.docker))}")
    for zone, interfaces in settings.zones.items():
        _bind_zone(lab, release, zone, interfaces)
    if settings.docker_iptables != "default":
        _give_dockerd_iptables(lab, settings.docker_iptables)


def apply_sysctls(lab: Lab, settings: HostSettings) -> None:
    """The settings' network sysctls set now, as `sysctl -p` would (the lab owns only net.*)."""
    for key, value in settings.sysctl.items():
        now = lab.sysctl(key, _sysctl_value(value))
        if now is None:
            raise NotApplicable(f"sysctl {key} does not exist in the {lab.image.release} lab's kernel")
        log.info(f"lab: sysctl {key} = {now}")


def _sysctl_value(value: Any) -> str:
    return str(int(value) if isinstance(value, bool) else value)


def _sysctl_file(lab: Lab, keys: Mapping[str, Any]) -> None:
    path = lab.path(SYSCTL_FILE)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = path.read_text() if path.exists() else "# coexist scenario: the host's sysctl settings\n"
    for key, value in keys.items():
        text = _set_key(text, key, f"{key} = {_sysctl_value(value)}")
    path.write_text(text)
    log.info(f"lab: {SYSCTL_FILE}: {'; '.join(f'{k} = {_sysctl_value(v)}' for k, v in keys.items())}")


def _network_conf(lab: Lab, release: str, keys: Mapping[str, Any]) -> None:
    conf = lab.path(NETWORK_CONF)
    if not conf.exists():
        raise NotApplicable(f"libvirt on {release} has no {NETWORK_CONF} (libvirt 9.0 has no "
                            f"firewall_backend); not applicable: {', '.join(keys)}")
    text = conf.read_text()
    lines = []
    for key, value in keys.items():
        if key not in known.conf_keys(text):   # named by the shipped file, set or commented out
            raise NotApplicable(f"libvirt on {release}: {NETWORK_CONF} knows no key {key!r}")
        shown = json.dumps(value) if not isinstance(value, bool) else str(int(value))
        line = f"{key} = {shown}"
        lines.append(line)
        if key == "firewall_backend" and value == "nftables":
            lab.install_tc_csum_shim()
        # libvirt reads the first of two: an appended second firewall_backend was silently ignored
        text = _set_key(text, key, line, header="# coexist scenario\n")
    conf.write_text(text)
    log.info(f"lab: {NETWORK_CONF}: {'; '.join(lines)}")


def _set_key(text: str, key: str, line: str, *, header: str = "") -> str:
    """A `key = value` configuration file's `text` with `key` set by `line`, as an admin edits
    it: where the key is set already, changed there; else `line` appended (after `header`)."""
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*=.*$", re.MULTILINE)
    return pattern.sub(line, text) if pattern.search(text) else text + f"\n{header}{line}\n"


def _firewalld_conf(lab: Lab, release: str, keys: Mapping[str, Any]) -> None:
    conf = lab.path(FIREWALLD_CONF)
    text = conf.read_text()
    for key, value in keys.items():
        if key not in known.conf_keys(text):   # named by the shipped file, set or commented out
            raise NotApplicable(f"firewalld on {release}: firewalld.conf knows no key {key!r}")
        shown = ("yes" if value else "no") if isinstance(value, bool) else str(value)
        line = f"{key}={shown}"
        text = _set_key(text, key, line)
        log.info(f"lab: firewalld.conf: {line}")
    conf.write_text(text)


def _bind_zone(lab: Lab, release: str, zone: str, interfaces: tuple[str, ...]) -> None:
    """The zone's permanent configuration, with the interfaces bound (as firewall-cmd
    --permanent --zone=Z --add-interface=I writes it)."""
    own = lab.path(f"/etc/firewalld/zones/{zone}.xml")
    shipped = lab.path(f"/usr/lib/firewalld/zones/{zone}.xml")
    source = own if own.exists() else shipped
    if not source.exists():
        raise NotApplicable(f"firewalld on {release} has no zone {zone!r}")
    root = ET.fromstring(source.read_text())
    for interface in interfaces:
        ET.SubElement(root, "interface", name=interface)
    own.parent.mkdir(parents=True, exist_ok=True)
    own.write_text(ET.tostring(root, encoding="unicode") + "\n")
    log.info(f"lab: firewalld zone {zone}: interfaces {', '.join(interfaces)} (permanent)")


def _give_dockerd_iptables(lab: Lab, variant: str) -> None:
    """dockerd alone finds iptables-<variant> first on its PATH; other daemons keep the default."""
    bindir = "/usr/local/lib/coexist/docker-iptables"
    lab.path(bindir).mkdir(parents=True, exist_ok=True)
    for tool in ("iptables", "ip6tables", "iptables-save", "iptables-restore", "ip6tables-save",
                 "ip6tables-restore"):
        target = lab.path(f"/usr/sbin/{tool.replace('tables', 'tables-' + variant, 1)}")
        if not target.exists():
            raise NotApplicable(f"{lab.image.release} has no {target.name}")
        link = lab.path(f"{bindir}/{tool}")
        if not link.is_symlink():
            link.symlink_to(f"/usr/sbin/{target.name}")
    lab.daemon_env[Daemon.DOCKERD] = {"PATH": f"{bindir}:{SYSTEM_PATH}"}
