"""The host image: a Debian root filesystem per release, in which the lab runs the real daemons.

The recipe is data (images/host.toml). A build is `debootstrap --variant=minbase`, then the root's
own apt installs the packages, chrooted inside a private mount namespace where /proc/sys is
read-only and policy-rc.d refuses every start: no maintainer script starts a daemon or changes a
sysctl of the machine. Images are cached by the digest of their recipe and built once, whichever
of several parallel workers gets there first.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import tomllib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import IO, Any

from coexist.base import log
from coexist.base.commands import CommandFailed, run
from coexist.images.cache import build_lock, cache_root, recipe_key

# images/host.toml, shipped as package data (coexist/images/files links to the top-level images/).
RECIPE_FILE = resources.files("coexist.images") / "files" / "host.toml"

# Part of every image's cache key: bump it when the build steps below change what a root holds.
RECIPE_VERSION = "1"

# Debian's archive keys, which debootstrap checks the suite's Release file against. Debian has
# them installed; on Ubuntu, ci/setup installs debian-archive-keyring, whose keys Ubuntu's
# debootstrap would not pick for a Debian suite by itself. Not part of the recipe key: the root
# built is the same, only the check of what was fetched depends on the machine.
DEBIAN_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")

MANIFEST_PATH = "etc/coexist-image.json"  # inside the root
NETWORK_CONF_STUB = "# Added by coexist: this libvirt predates network.conf.\n"   # on bookworm
COMPLETE_MARKER = ".coexist-complete"  # at the top of the root, written last
MANIFEST_PACKAGES = (
    "docker.io", "containerd", "runc", "libvirt-daemon", "qemu-system-x86",
    "firewalld", "iptables", "nftables", "dnsmasq-base", "dbus",
)  # fmt: skip

_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BUILD_ENV = {
    "PATH": _PATH,
    "HOME": "/root",
    "LANG": "C.UTF-8",
    "DEBIAN_FRONTEND": "noninteractive",
    "DEBCONF_NONINTERACTIVE_SEEN": "true",
}
_LOCK_TIMEOUT = 3600.0
PRIVATE_MOUNTS = ("unshare", "--mount", "--propagation", "private", "--")
_FIELDS = {"suite", "script", "mirror", "check_valid_until", "packages"}
_PACKAGE_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")

_TAIL = 40   # lines of a failed build command's output shown; all of it is in the build's log

# Entered as `sh -c ENTER_ROOT enter-root <root> <command...>` inside `unshare --mount
# --propagation private`: every mount below vanishes with that namespace, whatever happens.
ENTER_ROOT = """set -e
root=$1; shift
mount -t proc proc "$root/proc"
mount --bind "$root/proc/sys" "$root/proc/sys"
mount -o remount,bind,ro "$root/proc/sys"
mount --rbind /dev "$root/dev"
exec chroot "$root" "$@"
"""


class RecipeError(ValueError):
    """images/host.toml, or the release asked of it, is not valid."""


class HostImageError(RuntimeError):
    """A host image cannot be built or reused."""


@dataclass(frozen=True)
class HostRecipe:
    """What one release's root is built from: a validated [release.<name>] table."""

    release: str
    suite: str
    mirror: str
    packages: tuple[str, ...]
    script: str | None = None
    check_valid_until: bool = True

    @property
    def key(self) -> str:
        """The digest of this recipe and of the build steps (RECIPE_VERSION)."""
        return recipe_key(json.dumps(asdict(self), sort_keys=True), RECIPE_VERSION)


@dataclass(frozen=True)
class HostImage:
    """A built root filesystem and the versions of the daemons in it."""

    release: str
    root: Path
    manifest: dict[str, str]


def load_recipes(path: Traversable = RECIPE_FILE) -> dict[str, HostRecipe]:
    """Every release's recipe in `path`, validated; unknown fields are errors."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise RecipeError(f"{path}: {error}") from error
    unknown = set(data) - {"release"}
    if unknown:
        raise RecipeError(
            f"{path}: unknown top-level key(s) {sorted(unknown)}; only [release.<name>]"
        )
    releases = data.get("release")
    if not isinstance(releases, dict) or not releases:
        raise RecipeError(f"{path}: no [release.<name>] table")
    return {name: _parse_release(path, name, table) for name, table in releases.items()}


def with_extra(recipe: HostRecipe, extra: Sequence[str]) -> HostRecipe:
    """`recipe` with the `extra` packages it does not have already (sorted, so the order a
    scenario gives them in makes no other image); the same recipe, and key, without any."""
    for package in extra:
        if not _PACKAGE_NAME.match(package):
            raise RecipeError(f"{package!r} is not a Debian package name")
    added = tuple(sorted(set(extra) - set(recipe.packages)))
    return dataclasses.replace(recipe, packages=recipe.packages + added) if added else recipe


def is_package_name(name: str) -> bool:
    """A Debian package's name as Policy 5.6.1 allows it."""
    return bool(_PACKAGE_NAME.match(name))


def load_recipe(release: str, path: Traversable = RECIPE_FILE) -> HostRecipe:
    """The recipe of `release`; an unknown release names the allowed ones."""
    recipes = load_recipes(path)
    if release not in recipes:
        allowed = ", ".join(recipes)
        raise RecipeError(f"unknown host release {release!r}: {path} defines {allowed}")
    return recipes[release]


def build_host_image(release: str = "trixie", extra: Sequence[str] = ()) -> HostImage:
    """The host image of `release`: reused from the cache if complete, else built (as root).
    `extra`: Debian packages a scenario wants on its host besides the recipe's (`[host] packages`,
    e.g. jq): an image of its own, cached by that recipe."""
    recipe = with_extra(load_recipe(release), extra)
    final = cache_root() / f"host-{release}-{recipe.key}"
    if (final / COMPLETE_MARKER).is_file():
        return _reuse(recipe, final)
    _require_build_tools(recipe)
    final.parent.mkdir(parents=True, exist_ok=True)
    with build_lock(final.parent / f"{final.name}.lock", timeout=_LOCK_TIMEOUT):
        if (final / COMPLETE_MARKER).is_file():  # another worker built it while we waited
            return _reuse(recipe, final)
        build_log = final.parent / f"{final.name}.build.log"
        with log.step(f"build host image {release} into {final} (output: {build_log})"), \
                open(build_log, "w") as sink, staged(final, recipe.key) as staging:
            staging.chmod(0o755)  # it becomes `/`: daemons' users must traverse it
            _bootstrap(recipe, staging, sink)
            _install_packages(recipe, staging, sink)
            _add_lab_tweaks(staging)
            _shrink(staging)
            manifest = _write_manifest(recipe, staging)
        log.info(", ".join(f"{name} {version}" for name, version in manifest.items()))
    return HostImage(release, final, manifest)


def _parse_release(path: Traversable, name: str, table: Any) -> HostRecipe:
    where = f"{path}: [release.{name}]"
    if not isinstance(table, dict):
        raise RecipeError(f"{where}: must be a table")
    unknown = set(table) - _FIELDS
    if unknown:
        raise RecipeError(
            f"{where}: unknown field(s) {sorted(unknown)}; allowed: {sorted(_FIELDS)}"
        )
    for field in ("suite", "mirror", "packages"):
        if field not in table:
            raise RecipeError(f"{where}: missing field {field!r}")
    for field in ("suite", "mirror", "script"):
        if field in table and not (isinstance(table[field], str) and table[field]):
            raise RecipeError(f"{where}: {field} must be a non-empty string")
    if not re.match(r"^https?://", table["mirror"]):
        raise RecipeError(f"{where}: mirror must be an http(s) URL, not {table['mirror']!r}")
    if "script" in table and not table["script"].startswith("/"):
        raise RecipeError(f"{where}: script must be an absolute path, not {table['script']!r}")
    if not isinstance(table.get("check_valid_until", True), bool):
        raise RecipeError(f"{where}: check_valid_until must be true or false")
    packages = table["packages"]
    if not isinstance(packages, list) or not packages:
        raise RecipeError(f"{where}: packages must be a non-empty list")
    for package in packages:
        if not (isinstance(package, str) and _PACKAGE_NAME.match(package)):
            raise RecipeError(f"{where}: packages: {package!r} is not a Debian package name")
    duplicates = sorted({package for package in packages if packages.count(package) > 1})
    if duplicates:
        raise RecipeError(f"{where}: packages listed twice: {duplicates}")
    return HostRecipe(
        release=name,
        suite=table["suite"],
        mirror=table["mirror"],
        packages=tuple(packages),
        script=table.get("script"),
        check_valid_until=table.get("check_valid_until", True),
    )


def _require_build_tools(recipe: HostRecipe) -> None:
    if os.geteuid() != 0:
        raise HostImageError(
            f"building the {recipe.release} host image needs root (debootstrap, mount, chroot): "
            f"run as root, or point COEXIST_CACHE at a cache that already holds it"
        )
    if shutil.which("debootstrap", path=_PATH) is None:
        raise HostImageError("debootstrap is not on PATH: install it (apt-get install debootstrap)")
    if recipe.script is not None and not Path(recipe.script).is_file():
        raise HostImageError(
            f"{recipe.release}: debootstrap script {recipe.script} does not exist"
            " (is debootstrap installed?)"
        )


def _reuse(recipe: HostRecipe, root: Path) -> HostImage:
    recorded = json.loads((root / MANIFEST_PATH).read_text())
    if recorded.get("recipe_key") != recipe.key:
        raise HostImageError(
            f"{root}/{MANIFEST_PATH} records key {recorded.get('recipe_key')!r}, not {recipe.key}"
        )
    log.info(f"- host image {recipe.release}: reusing {root}")
    return HostImage(recipe.release, root, dict(recorded["packages"]))


@contextmanager
def staged(final: Path, key: str) -> Iterator[Path]:
    """A folder to build the cache entry `final` in (the caller holds its build lock): what an
    interrupted build of it left is removed first; when the block ends, the folder gets the
    completion marker (`key`) and becomes `final`, or, if the block failed or was interrupted, is
    removed. Nothing is left mounted under either."""
    for leftover in sorted(final.parent.glob(f".{final.name}.*.tmp")):
        log.info(f"removing an interrupted build: {leftover}")
        remove_tree(leftover)
    if final.exists():  # present but without its marker: never finished
        log.info(f"removing an unfinished build: {final}")
        remove_tree(final)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        yield staging
        (staging / COMPLETE_MARKER).write_text(f"{key}\n")
        staging.rename(final)
    except BaseException:
        remove_tree(staging)
        raise
    finally:
        ensure_unmounted(staging)
        ensure_unmounted(final)


def debootstrap_argv(recipe: HostRecipe, root: Path, keyring: Path | None = DEBIAN_KEYRING) -> list[str]:
    """The debootstrap command line for `recipe`; Debian's keyring named when the machine has it."""
    argv = ["debootstrap", "--variant=minbase"]
    if keyring is not None and keyring.is_file():
        argv.append(f"--keyring={keyring}")
    argv += [recipe.suite, str(root), recipe.mirror]
    if recipe.script is not None:
        argv.append(recipe.script)
    return argv


def _bootstrap(recipe: HostRecipe, root: Path, sink: IO[str]) -> None:
    argv = debootstrap_argv(recipe, root)
    with log.step(f"debootstrap {recipe.suite} (minbase)"):
        # debootstrap mounts proc and sys in the target itself: keep those mounts private too.
        stream([*PRIVATE_MOUNTS, *argv], shown=shlex.join(argv), sink=sink, progress=_Stages())
        ensure_unmounted(root)


class _Stages:
    """debootstrap's progress: a line per stage (retrieving, extracting, unpacking, configuring
    the packages) with how many packages and seconds it took, instead of a line per package."""

    _STAGES = {"Retrieving": "retrieved", "Validating": "retrieved", "Extracting": "extracted",
               "Unpacking": "unpacked", "Configuring": "configured"}

    def __init__(self) -> None:
        self.stage: str | None = None
        self.packages = 0
        self.started = time.monotonic()

    def __call__(self, line: str) -> None:
        words = line.split()
        stage = self._STAGES.get(words[1]) if len(words) > 2 and words[0] == "I:" else None
        if stage is not None and stage != self.stage:
            self.done()
            self.stage, self.packages, self.started = stage, 0, time.monotonic()
        if stage is not None and words[1] != "Validating" and not line.endswith(" packages..."):
            self.packages += 1
        if line.startswith("I: Base system installed"):
            self.done()

    def done(self) -> None:
        if self.stage is not None:
            log.info(f"debootstrap: {self.packages} {self.stage} "
                     f"({time.monotonic() - self.started:.0f} s)")
        self.stage = None


class _PackagesSetUp:
    """apt-get install's progress: `Setting up` lines counted against the number of packages apt
    announced (`N newly installed`), a line at each quarter."""

    def __init__(self) -> None:
        self.total = 0
        self.done = 0
        self.shown = 0

    def __call__(self, line: str) -> None:
        if found := re.match(r"\d+ upgraded, (\d+) newly installed", line):
            self.total = int(found[1])
            log.info(f"{self.total} packages to install")
        elif line.startswith("Setting up ") and self.total:
            self.done += 1
            if (quarter := self.done * 4 // self.total) > self.shown:
                self.shown = quarter
                log.info(f"{self.done}/{self.total} packages set up")


def _install_packages(recipe: HostRecipe, root: Path, sink: IO[str]) -> None:
    policy = root / "usr/sbin/policy-rc.d"  # debootstrap removed its own
    policy.write_text("#!/bin/sh\n# coexist: the lab starts every daemon itself.\nexit 101\n")
    policy.chmod(0o755)
    if not recipe.check_valid_until:
        (root / "etc/apt/apt.conf.d/99coexist-no-valid-until").write_text(
            'Acquire::Check-Valid-Until "false";\n'
        )
    apt = ["apt-get", "-o", "Dpkg::Use-Pty=0"]
    try:
        with log.step("apt-get update (in the root)"):
            _in_root(root, [*apt, "update"], sink=sink)
        with log.step(f"apt-get install {len(recipe.packages)} packages (in the root)"):
            _in_root(
                root,
                [*apt, "install", "-y", "--no-install-recommends", *recipe.packages],
                timeout=3600, sink=sink, progress=_PackagesSetUp(),
            )
        _in_root(root, [*apt, "clean"], sink=sink)
    finally:
        ensure_unmounted(root)


def _add_lab_tweaks(root: Path) -> None:
    """What the lab expects to find in every root, whatever the release ships."""
    network_conf = root / "etc/libvirt/network.conf"
    if not network_conf.exists():  # libvirt < 10.4 (bookworm) reads none; keep one path for all
        network_conf.write_text(NETWORK_CONF_STUB)
    (root / "etc/docker").mkdir(exist_ok=True)


def _shrink(root: Path) -> None:
    """Drop apt's package lists (apt-get update refetches them); `apt-get clean` took the debs."""
    lists = root / "var/lib/apt/lists"
    for entry in lists.iterdir():
        if entry.name in ("partial", "lock"):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _write_manifest(recipe: HostRecipe, root: Path) -> dict[str, str]:
    fields = "-f=${Package}\\t${Version}\\t${db:Status-Abbrev}\\n"
    extra = [p for p in recipe.packages if p not in load_recipe(recipe.release).packages]
    query = ["chroot", str(root), "dpkg-query", "-W", fields, *MANIFEST_PACKAGES, *extra]
    output = run(query, env=BUILD_ENV, where=f"host image {recipe.release}").output
    packages: dict[str, str] = {}
    for line in output.splitlines():
        name, version, status = line.split("\t")
        if status.strip() != "ii":
            raise HostImageError(
                f"{recipe.release}: {name} {version} is not fully installed ({status.strip()})"
            )
        packages[name] = version
    recorded = {
        "release": recipe.release,
        "suite": recipe.suite,
        "recipe_key": recipe.key,
        "built": datetime.now(UTC).isoformat(timespec="seconds"),
        "packages": packages,
    }
    (root / MANIFEST_PATH).write_text(json.dumps(recorded, indent=2, sort_keys=True) + "\n")
    return packages


def _in_root(root: Path, argv: Sequence[str], *, timeout: float = 1800, sink: IO[str],
             progress: Callable[[str], None] | None = None) -> str:
    """Run `argv` chrooted in `root`, in a private mount namespace with proc and /dev mounted."""
    enter = [*PRIVATE_MOUNTS, "sh", "-c", ENTER_ROOT, "enter-root", str(root)]
    return stream([*enter, *argv], shown=f"chroot {root} {shlex.join(argv)}", timeout=timeout,
                   sink=sink, progress=progress)


def stream(argv: Sequence[str], *, shown: str, timeout: float = 1800, sink: IO[str],
            progress: Callable[[str], None] | None = None) -> str:
    """Run `argv`, its output line by line into `sink` (the build's log) and to `progress`; raise
    CommandFailed on failure, with the output's last lines and where the rest is."""
    __tracebackhide__ = True
    lines: list[str] = []
    sink.write(f"$ {shown}\n")
    sink.flush()
    proc = subprocess.Popen(
        list(argv),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        errors="replace",
        env=BUILD_ENV,
        start_new_session=True,  # a process group of its own, to kill on timeout or interrupt
    )
    killer = threading.Timer(timeout, _kill_group, (proc.pid,))
    killer.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            sink.write(line)
            line = line.rstrip()
            lines.append(line)
            if progress is not None:
                progress(line)
        returncode = proc.wait()
    except BaseException:  # e.g. Ctrl-C: stop it before the caller removes its target
        _kill_group(proc.pid)
        proc.wait()
        raise
    finally:
        killer.cancel()
        sink.flush()
        if proc.stdout is not None:
            proc.stdout.close()
    if returncode != 0:
        if returncode == -signal.SIGKILL:
            lines.append(f"(killed after {timeout:.0f}s)")
        tail = "\n".join(lines[-_TAIL:])
        raise CommandFailed("host image build", shown, returncode,
                            f"{tail}\n(its last {min(len(lines), _TAIL)} lines; all of it: {sink.name})")
    return "\n".join(lines)


def _kill_group(pid: int) -> None:
    with suppress(ProcessLookupError):  # it ended just now
        os.killpg(pid, signal.SIGKILL)


def _mounts_under(path: Path) -> list[str]:
    """Mount points at or below `path`, deepest first, as /proc/mounts lists them."""
    prefix = str(path.resolve())
    found = []
    for line in Path("/proc/mounts").read_text().splitlines():
        point = _OCTAL_ESCAPE.sub(lambda m: chr(int(m[1], 8)), line.split()[1])  # \040: space
        if point == prefix or point.startswith(prefix + "/"):
            found.append(point)
    return sorted(found, key=len, reverse=True)


def ensure_unmounted(path: Path) -> None:
    """Check that nothing is left mounted under `path`; detach it if something is, and say so."""
    leftovers = _mounts_under(path)
    if not leftovers:
        return
    log.info(f"! still mounted under {path} (detaching): {', '.join(leftovers)}")
    for point in leftovers:
        run(["umount", "--lazy", point], check=False)
    still = _mounts_under(path)
    if still:
        raise HostImageError(f"cannot unmount {', '.join(still)}")


def remove_tree(path: Path) -> None:
    """Delete a (partial) root, never through a mount: a bound /dev or /proc must not be emptied."""
    if not path.exists():
        return
    ensure_unmounted(path)
    shutil.rmtree(path)


def host_image_cached(release: str) -> bool:
    """Is the host image of `release` already built (nothing to download)?"""
    recipe = load_recipe(release)
    return (cache_root() / f"host-{release}-{recipe.key}" / COMPLETE_MARKER).is_file()
