"""The guest image: Debian's cloud kernel as an ELF vmlinux, and a busybox + dropbear initramfs.

Booted with `-kernel vmlinux -initrd initrd` (libvirt: `<kernel>`, `<initrd>`, `<cmdline>`),
the guest prints `COEXIST-GUEST-READY` on its serial console a few seconds later under TCG. The
image holds no secret: the SSH keys of a run travel on the kernel command line (coexist.guest.sshkeys).

Built once per recipe under `cache_root() / "guest-<key>"`, the key covering the guest's scripts,
this module's and vmlinux.py's source, the kernel package version and the exact host binaries
copied in. Parallel builders of one key serialise on a lock file; the second reuses the result.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import lzma
import os
import re
import shutil
import stat
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from coexist.base import log
from coexist.base.commands import run
from coexist.images import vmlinux
from coexist.images.cache import build_lock, cache_root, recipe_key

# images/guest/, shipped as package data (coexist/images/files links to the top-level images/).
GUEST_FILES = resources.files("coexist.images") / "files" / "guest"
KERNEL_META_PACKAGE = "linux-image-cloud-amd64"
# Each argument is there because a TCG boot on pc measured faster with it (bench/results/README.md,
# "moved from comments"): acpi=off (the firmware must still offer ACPI: without its tables the
# kernel finds no IO-APIC either and boots slower); pci=nomsi avoids the WARNing that acpi=off
# triggers in virtio-pci's MSI-X setup; cryptomgr.notests skips the crypto self-tests. panic=-1
# makes a panic a reboot, which -no-reboot / <on_reboot>destroy make an exit.
BOOT_ARGS = "console=ttyS0 panic=-1 acpi=off pci=nomsi cryptomgr.notests"
READY_LINE = "COEXIST-GUEST-READY"
FAILED_LINE = "COEXIST-GUEST-FAILED"

# Kernel features the guest cannot do without; they must be built in.
REQUIRED_BUILTINS = (
    "CONFIG_PVH",  # -kernel / <kernel> enters the ELF vmlinux through its PVH note
    "CONFIG_BLK_DEV_INITRD",
    "CONFIG_RD_GZIP",
    "CONFIG_DEVTMPFS",
    "CONFIG_SERIAL_8250_CONSOLE",
    "CONFIG_UNIX",
    "CONFIG_PACKET",  # udhcpc's raw socket
)
# Drivers for qemu's virtio devices, by config symbol and module name: insmod-ed if modules.
DRIVERS = (
    ("CONFIG_VIRTIO_PCI", "virtio_pci"),
    ("CONFIG_VIRTIO_NET", "virtio_net"),
    ("CONFIG_HW_RANDOM_VIRTIO", "virtio_rng"),  # entropy for dropbear when the CPU has no rdrand
)
HOST_BINARIES = {"bin/busybox": "/bin/busybox", "bin/dropbear": "/usr/sbin/dropbear"}
HOST_PACKAGES = ("busybox-static", "dropbear-bin")
STATIC_FILES = {
    "etc/passwd": "root:x:0:0:root:/root:/bin/sh\n",
    "etc/group": "root:x:0:\ntty:x:5:\n",
    "etc/shells": "/bin/sh\n",
    "etc/hosts": "127.0.0.1\tlocalhost\n::1\tlocalhost\n127.0.1.1\tcoexist-guest\n",
    "etc/resolv.conf": "",  # written by the DHCP script
}
DIRECTORIES = ("bin", "dev", "proc", "sys", "run", "tmp", "var/log", "etc/dropbear", "root/.ssh")
INITRD_GZIP = False  # measured: the uncompressed cpio boots as fast and skips a gzip step
LOCK_TIMEOUT = 900.0


@dataclass(frozen=True)
class GuestImage:
    kernel: Path  # the uncompressed ELF vmlinux
    initrd: Path
    kernel_version: str  # the guest's `uname -r`

    def cmdline(self, *extra: str) -> str:
        """The kernel command line: the boot arguments /init relies on, plus `extra`."""
        return " ".join(arg for arg in (BOOT_ARGS, *extra) if arg)

    @classmethod
    def load(cls, directory: Path) -> GuestImage:
        manifest = json.loads((directory / "manifest.json").read_text())
        return cls(directory / "vmlinux", directory / "initrd", manifest["kernel_version"])


@dataclass(frozen=True)
class _Recipe:
    kernel_package: str  # linux-image-<release>
    kernel_package_version: str
    host_files: tuple[str, ...]  # every host file copied in: binaries and the libraries they load
    host_versions: tuple[str, ...]  # "package=version" of HOST_PACKAGES

    def key(self) -> str:
        digests = [f"{path}={_sha256(Path(path))}" for path in self.host_files]
        return recipe_key(
            (GUEST_FILES / "init").read_text(),
            (GUEST_FILES / "udhcpc.script").read_text(),
            Path(__file__).read_text(),
            Path(vmlinux.__file__).read_text(),
            f"{self.kernel_package}={self.kernel_package_version}",
            *self.host_versions,
            *digests,
        )


def build_guest_image() -> GuestImage:
    """The guest image of the current recipe, built unless the cache already holds it."""
    recipe = _current_recipe()
    key = recipe.key()
    root = cache_root()
    final = root / f"guest-{key}"
    if final.is_dir():
        log.info(f"guest image: reusing {final}")
        return GuestImage.load(final)
    root.mkdir(parents=True, exist_ok=True)
    with build_lock(root / f"guest-{key}.lock", timeout=LOCK_TIMEOUT):
        if final.is_dir():  # another worker built it while we waited
            log.info(f"guest image: reusing {final}, built by another worker")
            return GuestImage.load(final)
        for leftover in root.glob(f".guest-{key}-*"):  # from a build that was killed
            shutil.rmtree(leftover)
        with log.step(f"build guest image {final}"):
            scratch = Path(tempfile.mkdtemp(prefix=f".guest-{key}-", dir=root))
            try:
                _build(recipe, scratch)
                scratch.chmod(0o755)  # mkdtemp's 0700 would hide it from libvirt's qemu user
                scratch.rename(final)
            finally:
                if scratch.exists():
                    shutil.rmtree(scratch)
    return GuestImage.load(final)


@functools.cache  # apt-cache takes a second or two: ask once per process
def _current_recipe() -> _Recipe:
    # The meta package's candidate depends on one exact linux-image-<release> version.
    show = run(
        ["apt-cache", "show", "--no-all-versions", KERNEL_META_PACKAGE],
        check=False,
        where="apt-cache",
    )
    kernel = re.search(
        r"^Depends:.*?\b(linux-image-[^\s,]+) \(= ([^\s)]+)\)", show.output, re.MULTILINE
    )
    if show.returncode != 0 or kernel is None:
        raise RuntimeError(
            f"apt-cache shows no {KERNEL_META_PACKAGE} depending on an exact linux-image-<release>:"
            f" run `apt-get update` first?\n{show.output}"
        )
    versions = run(
        ["dpkg-query", "-W", "-f=${Package}=${Version}\n", *HOST_PACKAGES], where="dpkg-query"
    ).output.split()
    return _Recipe(kernel[1], kernel[2], _host_files(), tuple(versions))


def _host_files() -> tuple[str, ...]:
    """The host binaries and the shared libraries (and loader) that `ldd` says they need."""
    files = list(HOST_BINARIES.values())
    for binary in HOST_BINARIES.values():
        listing = run(["ldd", binary], check=False, where="ldd").output  # a static binary exits 1
        if "not found" in listing:
            raise RuntimeError(f"{binary} needs a library the machine lacks:\n{listing}")
        for line in listing.splitlines():
            files += [word for word in line.split() if word.startswith("/") and word not in files]
    return tuple(files)


def _build(recipe: _Recipe, out: Path) -> None:
    tree = out / "kernel-package"
    with log.step(f"download {recipe.kernel_package}={recipe.kernel_package_version}"):
        tree.mkdir()
        spec = f"{recipe.kernel_package}={recipe.kernel_package_version}"
        run(["env", "-C", str(out), "apt-get", "download", spec], where="apt-get")
        (deb,) = out.glob("*.deb")
        run(["dpkg-deb", "-x", str(deb), str(tree)], where="dpkg-deb")
        deb.unlink()
    (vmlinuz,) = (tree / "boot").glob("vmlinuz-*")
    release = vmlinuz.name.removeprefix("vmlinuz-")
    with log.step(f"extract vmlinux from {vmlinuz.name}"):
        compression = vmlinux.extract_vmlinux(vmlinuz, out / "vmlinux")
        if not vmlinux.has_pvh_entry((out / "vmlinux").read_bytes()):
            raise RuntimeError(
                f"{vmlinuz.name}: vmlinux has no PVH entry note; qemu cannot boot it"
            )
    staging = out / "root"
    with log.step("assemble the initramfs"):
        modules = _install_modules(tree, release, staging)
        _install_userland(recipe, staging)
        _write_cpio(staging, out / "initrd")
    manifest = {
        "kernel_version": release,
        "kernel_package": f"{recipe.kernel_package}={recipe.kernel_package_version}",
        "kernel_compression": compression,
        "modules": modules,
        "host_versions": list(recipe.host_versions),
        "host_files": list(recipe.host_files),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    log.info(f"kernel {release} ({compression}); modules: {' '.join(modules) or 'none'}")
    shutil.rmtree(tree)
    shutil.rmtree(staging)


def _install_modules(tree: Path, release: str, staging: Path) -> list[str]:
    """Copy the drivers the kernel has as modules, and their dependencies; return the load order."""
    config = _read_config(next((tree / "boot").glob("config-*")))
    missing = [f"{symbol}=y" for symbol in REQUIRED_BUILTINS if config.get(symbol) != "y"]
    missing += [f"{symbol}=y|m" for symbol, _ in DRIVERS if config.get(symbol) not in ("y", "m")]
    if missing:
        raise RuntimeError(f"kernel {release} lacks {', '.join(missing)}")
    wanted = [module for symbol, module in DRIVERS if config[symbol] == "m"]
    moddir = next(
        path
        for path in (tree / "lib/modules" / release, tree / "usr/lib/modules" / release)
        if path.is_dir()
    )
    if not (moddir / "modules.dep").exists():  # the package leaves depmod to its postinst
        run(["depmod", "-b", str(tree), release], where="depmod")
    order = load_order((moddir / "modules.dep").read_text(), wanted)
    target = staging / "lib/modules"
    target.mkdir(parents=True)
    names = [_decompress_module(moddir / relative, target) for relative in order]
    (staging / "etc/coexist").mkdir(parents=True)
    (staging / "etc/coexist/modules").write_text("".join(f"{name}\n" for name in names))
    return names


def _read_config(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        symbol, equals, value = line.partition("=")
        if equals and symbol.startswith("CONFIG_"):
            values[symbol] = value
    return values


def module_name(path: str) -> str:
    """The kernel's name for a module file: `.../virtio-rng.ko.xz` -> `virtio_rng`."""
    return Path(path).name.split(".ko")[0].replace("-", "_")


def load_order(modules_dep: str, wanted: list[str]) -> list[str]:
    """The module files (as modules.dep names them) to load for `wanted`, dependencies first."""
    depends = {}
    for line in modules_dep.splitlines():
        module, colon, rest = line.partition(":")
        if colon:
            depends[module] = rest.split()
    by_name = {module_name(module): module for module in depends}
    order: list[str] = []

    def visit(module: str) -> None:
        if module not in order:
            for dependency in reversed(depends[module]):  # modules.dep lists the last-loaded first
                visit(dependency)
            order.append(module)

    for name in wanted:
        if name not in by_name:
            raise RuntimeError(f"module {name} is not in modules.dep")
        visit(by_name[name])
    return order


def _decompress_module(source: Path, target: Path) -> str:
    """Copy a module into `target` as a plain .ko (busybox insmod reads no compressed module)."""
    name = source.name.split(".ko")[0] + ".ko"
    destination = target / name
    if source.name.endswith(".ko.xz"):
        destination.write_bytes(lzma.decompress(source.read_bytes()))
    elif source.name.endswith(".ko.gz"):
        destination.write_bytes(gzip.decompress(source.read_bytes()))
    elif source.name.endswith(".ko.zst"):
        run(["zstd", "-d", "-q", "-f", str(source), "-o", str(destination)], where="zstd")
    else:
        shutil.copyfile(source, destination)
    return name


def _install_userland(recipe: _Recipe, staging: Path) -> None:
    for directory in DIRECTORIES:
        (staging / directory).mkdir(parents=True, exist_ok=True)
    (staging / "root").chmod(0o700)
    (staging / "root/.ssh").chmod(0o700)
    (staging / "tmp").chmod(0o1777)
    for inside, outside in HOST_BINARIES.items():
        shutil.copyfile(outside, staging / inside)
        (staging / inside).chmod(0o755)
    for library in recipe.host_files:
        if library not in HOST_BINARIES.values():
            (staging / library.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(library, staging / library.lstrip("/"))  # the file, not the symlink
            (staging / library.lstrip("/")).chmod(0o755)
    applets = run(["busybox", "--list"], where="busybox").output.split()
    for applet in applets:
        if applet != "busybox" and not (staging / "bin" / applet).exists():
            (staging / "bin" / applet).symlink_to("busybox")
    (staging / "sbin").symlink_to("bin")
    (staging / "usr").mkdir(exist_ok=True)
    (staging / "usr/bin").symlink_to("../bin")
    (staging / "usr/sbin").symlink_to("../bin")
    (staging / "var/run").symlink_to("../run")
    for relative, text in STATIC_FILES.items():
        (staging / relative).write_text(text)
    (staging / "init").write_bytes((GUEST_FILES / "init").read_bytes())
    (staging / "etc/udhcpc.script").write_bytes((GUEST_FILES / "udhcpc.script").read_bytes())
    (staging / "init").chmod(0o755)
    (staging / "etc/udhcpc.script").chmod(0o755)


def _write_cpio(staging: Path, destination: Path) -> None:
    """Write `staging` as a newc cpio owned by root with zero mtimes, plus a /dev/console node."""
    archive = bytearray()
    inode = 0

    def entry(name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)) -> None:
        nonlocal inode
        inode += 1
        encoded = name.encode() + b"\0"
        fields = (inode, mode, 0, 0, 1, 0, len(data), 0, 0, *rdev, len(encoded), 0)
        archive.extend(b"070701" + b"".join(b"%08X" % field for field in fields) + encoded)
        archive.extend(b"\0" * (-(110 + len(encoded)) % 4) + data + b"\0" * (-len(data) % 4))

    for path in sorted(staging.rglob("*"), key=lambda path: path.relative_to(staging).parts):
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            data = os.readlink(path).encode()
        elif stat.S_ISREG(info.st_mode):
            data = path.read_bytes()
        else:
            data = b""
        entry(str(path.relative_to(staging)), info.st_mode, data)
    entry("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1))
    entry("TRAILER!!!", 0)
    destination.write_bytes(gzip.compress(archive, mtime=0) if INITRD_GZIP else archive)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def guest_image_cached() -> bool:
    """Is the guest image of the current recipe already built?"""
    return (cache_root() / f"guest-{_current_recipe().key()}").is_dir()
