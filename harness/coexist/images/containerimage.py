"""The lab's container image: a busybox root filesystem, as a tar for `docker import`.

Its busybox is Debian's busybox-static of SUITE, fetched from that release's mirror (the host
recipe's, images/host.toml) with apt's own signature checks, and cached by recipe as the other
images are; the same image on every release, so that containers behave alike everywhere.

Not the machine's own busybox: Debian 12's busybox-static 1.35 crashes on `wget -T` (SIGSEGV,
exit 139), which a user's own container probe is likely to write. trixie's 1.37 does not
(measured 2026-12-06: `wget -T 2` of a local httpd's page exits 0, of a closed port 1; 1.35 exits
139 on both).
"""

from __future__ import annotations

import io
import shlex
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from coexist.base import log
from coexist.base.commands import CommandFailed, run
from coexist.images.cache import build_lock, cache_root, recipe_key
from coexist.images.hostimage import DEBIAN_KEYRING, HostRecipe, load_recipe

SUITE = "trixie"
PACKAGE = "busybox-static"
PAGE = b"coexist-container-ok"   # what the image's httpd serves at / (its www/index.html)
BUILD_VERSION = "1"   # raise when the image's making changes (it is part of the cache key)
_LOCK_TIMEOUT = 600.0


@dataclass(frozen=True)
class ContainerImage:
    rootfs: Path   # a tar: bin/busybox, a link per applet, /tmp, /www/index.html
    version: str   # the busybox-static package's version


def build_container_image() -> ContainerImage:
    """The container image, built unless cached (as root: apt-get fetches into a private list)."""
    recipe = load_recipe(SUITE)
    folder = image_folder(recipe)
    cache_root().mkdir(parents=True, exist_ok=True)
    with build_lock(folder.with_name(folder.name + ".lock"), timeout=_LOCK_TIMEOUT):
        if (folder / "version").is_file():
            return ContainerImage(folder / "rootfs.tar", (folder / "version").read_text().strip())
        with log.step(f"image: container (busybox from {recipe.suite}'s {PACKAGE})"):
            with tempfile.TemporaryDirectory(dir=cache_root(), prefix=f"{folder.name}.") as work:
                busybox, version = _fetch(Path(work), recipe.suite, recipe.mirror)
                staging = Path(work) / "image"
                staging.mkdir()
                (staging / "rootfs.tar").write_bytes(rootfs_tar(busybox))
                (staging / "version").write_text(version + "\n")
                staging.rename(folder)
        return ContainerImage(folder / "rootfs.tar", version)


def _fetch(work: Path, suite: str, mirror: str) -> tuple[Path, str]:
    """busybox from `suite`'s PACKAGE: downloaded into `work` through an apt configuration of its
    own (the machine's sources, lists and cache untouched), unpacked, checked to be static."""
    (work / "lists" / "partial").mkdir(parents=True)
    (work / "cache").mkdir()
    (work / "sources.list").write_text(f"deb [signed-by={DEBIAN_KEYRING}] {mirror} {suite} main\n")
    options = [f"-oDir::Etc::SourceList={work / 'sources.list'}", "-oDir::Etc::SourceParts=/dev/null",
               f"-oDir::State::Lists={work / 'lists'}", f"-oDir::Cache={work / 'cache'}",
               "-oDebug::NoLocking=1", "-oAPT::Sandbox::User=root", "-q"]
    apt = shlex.join(["apt-get", *options])
    try:
        run(["sh", "-ec", f"cd {shlex.quote(str(work))}\n{apt} update\n{apt} download {PACKAGE}"],
            timeout=300, where="the machine (apt-get download)")
    except CommandFailed as error:
        raise RuntimeError(f"cannot fetch {suite}'s {PACKAGE} from {mirror}: {error}") from None
    deb = next(work.glob(f"{PACKAGE}_*.deb"))
    version = run(["dpkg-deb", "--field", str(deb), "Version"]).output.strip()
    run(["dpkg-deb", "--extract", str(deb), str(work / "unpacked")])
    busybox = next(path for path in (work / "unpacked/usr/bin/busybox", work / "unpacked/bin/busybox")
                   if path.is_file())
    if "not a dynamic executable" not in run(["ldd", str(busybox)], check=False).output:
        raise RuntimeError(f"{suite}'s {PACKAGE} {version}: its busybox is not static")
    return busybox, version


def rootfs_tar(busybox: Path) -> bytes:
    """A tar of a root filesystem holding `busybox` and a link per applet it has, /tmp, and
    /www/index.html saying PAGE."""
    applets = run([str(busybox), "--list"]).output.split()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for directory in ("bin", "tmp", "www", "etc"):
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if directory == "tmp" else 0o755
            tar.addfile(info)
        with busybox.open("rb") as binary:
            info = tar.gettarinfo(fileobj=binary, arcname="bin/busybox")
            info.mode, info.uid, info.gid, info.uname, info.gname = 0o755, 0, 0, "root", "root"
            tar.addfile(info, binary)
        for applet in applets:
            if applet == "busybox":
                continue
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
        page = PAGE + b"\n"
        info = tarfile.TarInfo("www/index.html")
        info.size = len(page)
        tar.addfile(info, io.BytesIO(page))
    return buffer.getvalue()


def image_folder(recipe: HostRecipe | None = None) -> Path:
    """Where the image is cached: named by the digest of what it is made from (`recipe`: SUITE's
    host recipe, read unless given)."""
    recipe = recipe or load_recipe(SUITE)
    return cache_root() / f"container-{recipe_key(PACKAGE, recipe.suite, recipe.mirror, PAGE, BUILD_VERSION)}"


def container_image_cached() -> bool:
    """Is the container image built already (no network needed to use it)?"""
    return (image_folder() / "version").is_file()
