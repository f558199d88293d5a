"""What a lab host needs to upgrade itself to the next Debian release without reaching any
mirror: the next suite's apt lists and every .deb `apt-get full-upgrade` would fetch, prepared
beforehand in the machine's root namespace (where the package registry is reachable) and cached
by recipe, as the images are.

The preparation runs the source release's own image with the target's sources, on an overlay
(the image stays as it is), chrooted in a private mount namespace as the image build is:
`apt-get update`, `apt-get -s full-upgrade` (the plan, kept), `apt-get --download-only
full-upgrade`. What apt would install is recorded as `candidates.json`: the versions the lab's
upgrade must end with.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from coexist.base import log
from coexist.images.cache import build_lock, cache_root, recipe_key
from coexist.images.hostimage import (
    COMPLETE_MARKER,
    ENTER_ROOT,
    PRIVATE_MOUNTS,
    HostImage,
    HostImageError,
    build_host_image,
    load_recipe,
    staged,
    stream,
)

RECIPE_VERSION = "1"   # bump when the preparation below changes what a set holds
RELEASES_IN_ORDER = ("bookworm", "trixie", "forky")
_APT = ("apt-get", "-o", "Dpkg::Use-Pty=0", "-o", "APT::Get::Show-Versions=1")
# `Inst docker.io [20.10.24+dfsg1-1+b3] (26.1.5+dfsg1-9+deb13u1 Debian:13.2/stable [amd64])`
_INST = re.compile(r"^Inst (\S+) (?:\[([^\]]+)\] )?\((\S+) ")


def next_release(release: str) -> str | None:
    """The Debian release after `release` among those coexist builds (None: the last)."""
    index = RELEASES_IN_ORDER.index(release)
    return RELEASES_IN_ORDER[index + 1] if index + 1 < len(RELEASES_IN_ORDER) else None


@dataclass(frozen=True)
class UpgradeSet:
    """A prepared upgrade: `lists/` (the target suite's apt lists), `archives/` (the .debs),
    `sources.list`, the plan apt printed and the versions it would install."""

    source: str
    target: str
    folder: Path
    candidates: dict[str, str] = field(repr=False)   # package -> the version the upgrade installs
    image_manifest: dict[str, str] = field(repr=False, default_factory=dict)   # the target's image's
    image_packages: frozenset[str] = field(repr=False, default=frozenset())    # all the image has

    @property
    def lists(self) -> Path:
        return self.folder / "lists"

    @property
    def archives(self) -> Path:
        return self.folder / "archives"

    @property
    def sources_list(self) -> str:
        return (self.folder / "sources.list").read_text()

    @property
    def apt_conf(self) -> str:
        """Apt settings the target's lists need (forky's Release is past its Valid-Until)."""
        return (self.folder / "apt.conf").read_text()


def parse_plan(simulated: str) -> dict[str, str]:
    """`apt-get -s full-upgrade`'s `Inst` lines: package -> the version it installs."""
    return {found[1]: found[3] for line in simulated.splitlines() if (found := _INST.match(line))}


def prepare_upgrade(image: HostImage, target: str) -> UpgradeSet:
    """The upgrade of `image`'s release to `target` (and the target's own host image, whose
    versions the upgraded host is held to): reused from the cache if complete, else prepared (as
    root, with the Debian mirror of the target's recipe reachable)."""
    target_image = build_host_image(target)
    return dataclasses.replace(_prepared(image, target), image_manifest=dict(target_image.manifest),
                               image_packages=installed_packages(target_image.root))


def installed_packages(root: Path) -> frozenset[str]:
    """The packages installed in the root at `root`, from dpkg's status file."""
    stanzas = (root / "var/lib/dpkg/status").read_text().split("\n\n")
    fields = [dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line and line[0] != " ")
              for stanza in stanzas]
    return frozenset(f["Package"] for f in fields if f.get("Status") == "install ok installed")


def _prepared(image: HostImage, target: str) -> UpgradeSet:
    recipe = load_recipe(target)
    source_key = json.loads((image.root / "etc/coexist-image.json").read_text())["recipe_key"]
    key = recipe_key(source_key, recipe.suite, recipe.mirror, str(recipe.check_valid_until),
                     RECIPE_VERSION)
    final = cache_root() / f"upgrade-{image.release}-{target}-{key}"
    if (final / COMPLETE_MARKER).is_file():
        log.info(f"- upgrade {image.release} -> {target}: reusing {final}")
        return _read(image.release, target, final)
    final.parent.mkdir(parents=True, exist_ok=True)
    with build_lock(final.parent / f"{final.name}.lock", timeout=3600):
        if (final / COMPLETE_MARKER).is_file():
            return _read(image.release, target, final)
        build_log = final.parent / f"{final.name}.build.log"
        with log.step(f"prepare the upgrade {image.release} -> {target} (apt lists and packages, "
                      f"output: {build_log})"), open(build_log, "w") as sink, staged(final, key) as staging:
            _prepare(image, recipe.suite, recipe.mirror, recipe.check_valid_until, staging, sink)
    prepared = _read(image.release, target, final)
    size = sum(p.stat().st_size for p in prepared.archives.iterdir()) / 1e6
    log.info(f"upgrade {image.release} -> {target}: {len(prepared.candidates)} packages, {size:.0f} MB")
    return prepared


def _read(source: str, target: str, folder: Path) -> UpgradeSet:
    return UpgradeSet(source, target, folder, json.loads((folder / "candidates.json").read_text()))


def _prepare(image: HostImage, suite: str, mirror: str, check_valid_until: bool, staging: Path,
             sink: IO[str]) -> None:
    upper, work, root = staging / "upper", staging / "work", staging / "root"
    for folder in (upper, work, root):
        folder.mkdir()
    sources = f"deb {mirror} {suite} main\n"
    apt_conf = "" if check_valid_until else 'Acquire::Check-Valid-Until "false";\n'
    (staging / "sources.list").write_text(sources)
    (staging / "apt.conf").write_text(apt_conf)
    # written into the upper layer before the overlay is mounted (never while it is)
    (upper / "etc/apt/apt.conf.d").mkdir(parents=True)
    (upper / "etc/apt/sources.list").write_text(sources)
    (upper / "etc/apt/apt.conf.d/99coexist-upgrade").write_text(apt_conf)
    # the source's own sources go (a deb822 file would keep its suite beside the target's)
    _in_overlay(image.root, staging, ["sh", "-c", "rm -f /etc/apt/sources.list.d/*"], sink)
    with log.step(f"apt-get update ({suite})"):
        _in_overlay(image.root, staging, [*_APT, "update"], sink)
    with log.step("apt-get -s full-upgrade (the plan)"):
        plan = _in_overlay(image.root, staging, [*_APT, "-s", "full-upgrade"], sink)
    (staging / "plan.txt").write_text(plan + "\n")
    candidates = parse_plan(plan)
    if not candidates:
        raise HostImageError(f"apt plans no upgrade of {image.release} to {suite} (see {sink.name})")
    with log.step(f"apt-get --download-only full-upgrade ({len(candidates)} packages)"):
        _in_overlay(image.root, staging, [*_APT, "-y", "--download-only", "full-upgrade"], sink,
                    timeout=3600)
    (staging / "candidates.json").write_text(json.dumps(candidates, indent=1, sort_keys=True) + "\n")
    shutil.move(upper / "var/cache/apt/archives", staging / "archives")
    for leftover in ("partial", "lock"):
        path = staging / "archives" / leftover
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    lists = staging / "lists"
    lists.mkdir()
    for entry in (upper / "var/lib/apt/lists").iterdir():
        if entry.is_file() and entry.name != "lock":
            shutil.move(entry, lists / entry.name)
    shutil.rmtree(upper)
    shutil.rmtree(work)
    root.rmdir()


def _in_overlay(image: Path, staging: Path, argv: Sequence[str], sink: IO[str], *,
                timeout: float = 1800) -> str:
    """Run `argv` chrooted in the image with `staging`'s upper layer over it, in a private mount
    namespace (the overlay and every mount below it vanish with it)."""
    mount = (f"mount -t overlay overlay -o lowerdir={shlex.quote(str(image))},"
             f"upperdir={shlex.quote(str(staging / 'upper'))},workdir={shlex.quote(str(staging / 'work'))} "
             f"{shlex.quote(str(staging / 'root'))}\n")
    script = ENTER_ROOT.replace("set -e\n", "set -e\n" + mount, 1)
    enter = [*PRIVATE_MOUNTS, "sh", "-c", script, "enter-root", str(staging / "root")]
    return stream([*enter, *argv], shown=f"chroot {image}+overlay {shlex.join(argv)}", timeout=timeout,
                  sink=sink)
