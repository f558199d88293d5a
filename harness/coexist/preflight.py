"""Before anything is built or started: can this machine run a lab? One line per problem found.

Checked, in order: root; the kernel features a lab is made of (network, mount, cgroup, PID, UTS and IPC
namespaces, overlayfs, cgroups, bridge, veth, tun, nf_tables), the kernel's links tried for real in
a throwaway network namespace; the machine's tools the run calls; free space and write access in
the image cache, the labs' work root and the artifacts root.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

from coexist.images.cache import cache_root
from coexist.sandbox import cgroups
from coexist.sandbox.leftovers import WORK_ROOT

# Measured here: a host image is 648-669 MB (bookworm, trixie, forky); building one holds the
# image, its apt downloads and debootstrap's cache at once.
IMAGE_BUILD_BYTES = 1_500_000_000
LAB_WORK_BYTES = 500_000_000       # a lab's overlay upper layer, Docker's and libvirt's state
LAB_TOOLS = ("unshare", "nsenter", "tini", "ip", "mount", "umount", "dnsmasq")
HOST_IMAGE_TOOLS = ("debootstrap", "chroot")
GUEST_IMAGE_TOOLS = ("busybox", "dropbearkey", "cpio", "depmod", "dpkg-deb", "apt-get", "ldd")
NAMESPACES = ("net", "mnt", "cgroup", "pid", "uts", "ipc")


def problems(*, artifacts_root: Path | None, build_host: bool, build_guest: bool,
             lab: bool = True) -> list[str]:
    """Everything that would stop the run, each a line saying what and what to do."""
    if os.geteuid() != 0:
        return ["not root: coexist builds namespaces, mounts and bridges (run it with sudo)"]
    found: list[str] = []
    if lab:
        found += _kernel()
    tools = [*(LAB_TOOLS if lab else ()), *(HOST_IMAGE_TOOLS if build_host else ()),
             *(GUEST_IMAGE_TOOLS if build_guest else ())]
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        found.append(f"missing tools on PATH: {', '.join(missing)} (ci/setup installs them)")
    places = [(cache_root(), IMAGE_BUILD_BYTES if build_host else 0, "image cache ($COEXIST_CACHE)")]
    if lab:
        places.append((WORK_ROOT, LAB_WORK_BYTES, "labs' work root"))
    if artifacts_root is not None:
        places.append((artifacts_root, 0, "artifacts root"))
    for path, need, what in places:
        found += _writable(path, need, what)
    return found


def _kernel() -> list[str]:
    found = [f"the kernel offers no {ns} namespaces (/proc/self/ns/{ns} is missing)"
             for ns in NAMESPACES if not Path(f"/proc/self/ns/{ns}").exists()]
    filesystems = Path("/proc/filesystems").read_text().split()
    if "overlay" not in filesystems:
        found.append("the kernel has no overlayfs (the lab's root is an overlay of the host image)")
    if not cgroups.hierarchies():
        found.append("no cgroup hierarchy is mounted under /sys/fs/cgroup")
    if not Path("/dev/net/tun").exists():
        found.append("/dev/net/tun is missing (libvirt gives each guest a tap device)")
    if not _nf_tables():
        found.append("the kernel has no nf_tables (iptables-nft, nft and firewalld need it)")
    if shutil.which("unshare") and shutil.which("ip"):
        found += _links()
    return found


def _links() -> list[str]:
    """Make a bridge, a veth pair and a tap in a throwaway network namespace (gone on exit)."""
    tries = {"bridge": "ip link add coexist-br type bridge",
             "veth": "ip link add coexist-v0 type veth peer name coexist-v1",
             "tun": "ip tuntap add coexist-tap mode tap"}
    script = "\n".join(f'{command} 2>/dev/null || echo "{name}"' for name, command in tries.items())
    result = subprocess.run(["unshare", "--net", "sh", "-c", script], capture_output=True, text=True,
                            timeout=20)
    if result.returncode != 0:
        return [f"cannot make a network namespace: {result.stderr.strip()[:200]}"]
    return [f"the kernel refused a {name} link in a scratch network namespace"
            for name in result.stdout.split()]


def _nf_tables() -> bool:
    """Built in (its symbols are in the kernel), loaded, or loadable as a module."""
    if Path("/sys/module/nf_tables").exists():
        return True
    modules = Path("/lib/modules") / platform.release()
    for listing in ("modules.builtin", "modules.dep"):
        try:
            if "/nf_tables.ko" in (modules / listing).read_text():
                return True
        except OSError:
            pass
    try:
        with open("/proc/kallsyms") as symbols:
            return any(" nf_tables_" in line for line in symbols)
    except OSError:
        return False


def _writable(path: Path, need: int, what: str) -> list[str]:
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        return [f"{what} {path}: {existing} is not a folder"]
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as error:
        return [f"{what} {path} is not writable: {error.strerror}"]
    free = shutil.disk_usage(path).free
    if free < need:
        return [f"{what} {path}: {free / 1e9:.1f} GB free, needs {need / 1e9:.1f} GB "
                "(a host image is ~0.7 GB, building one needs ~1.5 GB)"]
    return []


def before_labs(*, artifacts_root: Path | None, releases: list[str]) -> list[str]:
    """What would stop labs of these releases (their images built if not cached yet)."""
    from coexist.images.guestimage import guest_image_cached
    from coexist.images.hostimage import host_image_cached

    return problems(artifacts_root=artifacts_root,
                    build_host=not all(host_image_cached(r) for r in releases),
                    build_guest=not guest_image_cached())
