"""What each release's daemons know, so that a scenario's settings are checked when it is loaded,
not after a lab boots: the daemon.json keys its dockerd accepts, the keys its libvirt network.conf
and firewalld.conf name (set or commented out), its firewalld's zones; and the network sysctls a
lab has (the kernel's, not a release's: the labs run on the machine's kernel).

The table is data, committed in known-settings.json and made from the built host images by
`sudo .venv/bin/python -m coexist.host.known` (tests/e2e/test_known_settings.py compares it with
the images). dockerd is asked, not read: it is started in a private mount and network namespace,
chrooted into a read-only view of the image, with a daemon.json naming every key its binary's
JSON tags and flags could spell, and it refuses with the list of those that "don't match any
configuration option"; the rest are the keys it knows.
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

TABLE = Path(__file__).with_name("known-settings.json")
NETWORK_CONF = "/etc/libvirt/network.conf"
FIREWALLD_CONF = "/etc/firewalld/firewalld.conf"
# sysctls named per interface: the interface's part is written `*` in the table
_PER_INTERFACE = re.compile(r"^(net\.ipv[46]\.(?:conf|neigh))\.[^.]+\.(.+)$")


@dataclass(frozen=True)
class Known:
    """What one release's host knows."""

    release: str
    docker: frozenset[str]      # daemon.json keys
    libvirt: frozenset[str]     # network.conf keys
    firewalld: frozenset[str]   # firewalld.conf keys
    zones: frozenset[str]       # firewalld's zones


PARTS = ("docker", "libvirt", "firewalld", "zones")   # what a release knows, by Known's field


@dataclass(frozen=True)
class _Table:
    releases: dict[str, Known]
    sysctls: frozenset[str]
    kernel: str


@functools.cache
def _table() -> _Table:
    """known-settings.json, read once."""
    data = json.loads(TABLE.read_text())
    return _Table({name: Known(name, *(frozenset(own[part]) for part in PARTS))
                   for name, own in data["releases"].items()},
                  frozenset(data["sysctls"]), str(data["kernel"]))


def release(name: str) -> Known:
    return _table().releases[name]


def releases() -> list[Known]:
    return list(_table().releases.values())


@functools.cache
def anywhere(part: str) -> frozenset[str]:
    """What some release knows of `part` (one of PARTS)."""
    return frozenset(name for k in releases() for name in getattr(k, part))


def sysctl_known(name: str) -> bool:
    """Is `name` a network sysctl of a lab (on the kernel the table was made on)?"""
    return sysctl_pattern(name) in _table().sysctls


def sysctl_names() -> list[str]:
    return sorted(_table().sysctls)


def kernel() -> str:
    return _table().kernel


def sysctl_pattern(name: str) -> str:
    """`net.ipv4.conf.virbr0.forwarding` -> `net.ipv4.conf.*.forwarding` (as the table has it)."""
    return _PER_INTERFACE.sub(r"\1.*.\2", name)


def conf_keys(text: str) -> set[str]:
    """The keys a shipped `key = value` configuration file names, set or commented out."""
    return set(re.findall(r"^\s*#?\s*([A-Za-z][A-Za-z0-9_]*)\s*=", text, re.MULTILINE))


# -- making the table (root; the built images) ---------------------------------------------------
def survey(root: Path) -> dict[str, list[str]]:
    """What the host image at `root` knows."""
    network_conf = root / NETWORK_CONF.lstrip("/")
    return {
        "docker": docker_keys(root),
        "libvirt": sorted(conf_keys(network_conf.read_text()) if network_conf.exists() else ()),
        "firewalld": sorted(conf_keys((root / FIREWALLD_CONF.lstrip("/")).read_text())),
        "zones": sorted(p.stem for p in (root / "usr/lib/firewalld/zones").glob("*.xml")),
    }


def docker_keys(root: Path) -> list[str]:
    """The daemon.json keys the image's dockerd accepts (see the module's doc)."""
    binary = (root / "usr/sbin/dockerd").read_bytes()
    spelt = {m.decode() for m in re.findall(rb'json:"([a-z][a-z0-9-]*)', binary)}
    spelt |= {m.decode() for m in re.findall(rb"--([a-z][a-z0-9-]{2,})", binary)}
    with tempfile.TemporaryDirectory(prefix="coexist-dockerd-keys-") as scratch:
        probe = Path(scratch) / "probe.json"
        probe.write_text(json.dumps(dict.fromkeys(sorted(spelt))))
        view = Path(scratch) / "root"
        view.mkdir()
        script = (f"mount --bind {root} {view} && mount -o remount,bind,ro {view} && "
                  f"mount -t tmpfs none {view}/tmp && cp {probe} {view}/tmp/probe.json && "
                  f"exec chroot {view} /usr/sbin/dockerd --config-file /tmp/probe.json")
        said = subprocess.run(["unshare", "--mount", "--net", "--fork", "sh", "-c", script],
                              capture_output=True, text=True, timeout=60)
    found = re.search(r"don't match any configuration option: (.*)", said.stderr + said.stdout)
    if found is None:
        raise RuntimeError(f"dockerd in {root} did not list unknown keys: {said.stderr[-500:]}")
    refused = {key.strip() for key in found[1].split(",")}
    return sorted(spelt - refused)


def lab_sysctls() -> list[str]:
    """The network sysctls of a fresh network namespace, per-interface ones written with `*`."""
    listed = subprocess.run(["unshare", "--net", "find", "/proc/sys/net", "-type", "f"],
                            capture_output=True, text=True, check=True).stdout.split()
    return sorted({sysctl_pattern(path.removeprefix("/proc/sys/").replace("/", "."))
                   for path in listed})


def make_table() -> dict[str, object]:
    import platform

    from coexist.images.hostimage import build_host_image, load_recipes

    return {"made_by": "sudo .venv/bin/python -m coexist.host.known",
            "kernel": platform.release(),
            "releases": {name: survey(build_host_image(name).root) for name in load_recipes()},
            "sysctls": lab_sysctls()}


if __name__ == "__main__":
    TABLE.write_text(json.dumps(make_table(), indent=1) + "\n")
    print(f"wrote {TABLE}")
