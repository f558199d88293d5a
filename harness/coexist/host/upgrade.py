"""A running lab host upgraded to the next Debian release, as an admin does it, and the upgrade's
own health.

What an admin runs, with the packages from the set prepared beforehand
(coexist.images.upgradeset) instead of a mirror: the next suite in sources.list, its lists and
.debs where `apt-get update` and the download would have put them, then

    apt-get full-upgrade -y --no-download -o Dpkg::Options::=--force-confdef \\
        -o Dpkg::Options::=--force-confold        (conffiles = "keep"; "new": --force-confnew;
                                                   "default": --force-confdef alone)

with DEBIAN_FRONTEND=noninteractive and ucf told the same (UCF_FORCE_CONFFOLD / CONFFNEW; nothing
for "default": ucf's own default answer, through debconf's noninteractive frontend). The
image's policy-rc.d (exit 101) keeps every maintainer script from starting or restarting a
daemon: the daemons run on with the old binaries until the host reboots (a `host-reboot` step).

The health of it: the versions after equal those apt planned (the prepared set's candidates),
`dpkg --audit` says nothing, no package is left half-installed or half-configured; and what
happened to each configuration file the scenario had changed (it differs from the image's):
kept, replaced (the old one kept as .dpkg-old/.ucf-old), kept with the package's new one beside it
(.dpkg-dist/.ucf-dist), changed by a maintainer script, or removed.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coexist.base import log
from coexist.host import configfiles
from coexist.host.hostconfig import DAEMON_JSON, FIREWALLD_CONF, NETWORK_CONF, SYSCTL_FILE, HostSettings
from coexist.host.lab import Lab
from coexist.images.hostimage import MANIFEST_PACKAGES, NETWORK_CONF_STUB
from coexist.images.upgradeset import UpgradeSet

CONFFILES = {"keep": ("--force-confdef", "--force-confold", "UCF_FORCE_CONFFOLD=1"),
             "new": ("--force-confnew", "UCF_FORCE_CONFFNEW=1"),
             "default": ("--force-confdef",)}
# files of /etc a lab writes for itself, not the scenario (its hostname, its resolver, libvirt's
# and Docker's own state)
_PLUMBING = ("etc/hostname", "etc/resolv.conf", "etc/hosts", "etc/libvirt/qemu/", "etc/docker/key.json",
             "etc/apt/", "etc/ld.so.cache", "etc/machine-id")
_BESIDE = (".dpkg-dist", ".ucf-dist", ".dpkg-new")
_OLD = (".dpkg-old", ".ucf-old", ".dpkg-bak")


@dataclass
class Upgraded:
    """What an upgrade did and how healthy it left the host."""

    source: str
    target: str
    conffiles: str
    returncode: int = 0
    seconds: float = 0.0
    audit: str = ""                                     # `dpkg --audit`: empty when healthy
    not_installed: list[str] = field(default_factory=list)   # `<status> <package>` not ii/rc
    versions: dict[str, tuple[str, str]] = field(default_factory=dict)   # the manifest's: before, after
    differ: list[str] = field(default_factory=list)    # versions not apt's plan, or not the target image's
    config: dict[str, str] = field(default_factory=dict)   # /etc file the scenario changed -> its fate
    beyond_image: list[str] = field(default_factory=list)   # the upgrade installed, the image has not
    left_over: list[str] = field(default_factory=list)      # the source's, still there, not in the image
    log: str = ""                                       # apt's whole output, in the artifacts

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "healthy": self.healthy}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Upgraded:
        fields = {f.name for f in dataclasses.fields(cls)}
        given = {k: v for k, v in data.items() if k in fields}
        given["versions"] = {name: tuple(pair) for name, pair in given.get("versions", {}).items()}
        return cls(**given)

    @property
    def healthy(self) -> bool:
        return self.returncode == 0 and not self.audit and not self.not_installed and not self.differ

    def lines(self) -> list[str]:
        """The verdict's lines about it."""
        said = [f"upgrade {self.source} -> {self.target} (conffiles: {self.conffiles}): apt exit "
                f"{self.returncode} in {self.seconds:.0f}s; healthy: {'yes' if self.healthy else 'NO'}"]
        said += [f"  {name} {before or '-'} -> {after or '-'}"
                 for name, (before, after) in self.versions.items()]
        if self.audit:
            said.append("  dpkg --audit: " + " / ".join(self.audit.strip().splitlines()[:3]))
        said += [f"  not fully installed: {line}" for line in self.not_installed[:10]]
        said += [f"  not the version expected: {line}" for line in self.differ[:10]]
        said += [f"  /{path}: {fate}" for path, fate in self.config.items()] or [
            "  /etc: the scenario had changed no file there"]
        for names, what in ((self.beyond_image, f"installed by the upgrade, not in {self.target}'s image "
                                                 f"(Recommends: the image is built without)"),
                            (self.left_over, f"left from {self.source}, not in {self.target}'s image "
                                             f"(apt removes none; autoremove would take some)")):
            if names:
                said.append(f"  {len(names)} package(s) {what}: {', '.join(names[:10])}"
                            f"{', ...' if len(names) > 10 else ''}")
        return said


def upgrade(lab: Lab, prepared: UpgradeSet, conffiles: str, log_file: Path, *,
            at_boot: Mapping[str, bytes], settings: HostSettings) -> Upgraded:
    """Upgrade the running `lab` to `prepared.target`; it is that release from then on (its
    image relabelled: the daemons' settings are checked against the new release's). The files
    the scenario changed: those of /etc that differ from `at_boot` (etc_contents after the boot
    step: what the daemons wrote for themselves is not the scenario's), and those the host's
    `settings` wrote before it."""
    done = Upgraded(prepared.source, prepared.target, conffiles)
    before = _versions(lab)
    changed = changed_config(lab, at_boot, settings)
    _drop_stub(lab)
    with log.step(f"put {prepared.target}'s apt lists and {len(list(prepared.archives.iterdir()))} "
                  "packages where apt would have fetched them"):
        _place(prepared, lab)
    options = CONFFILES[conffiles]
    dpkg = " ".join(f"-o Dpkg::Options::={o}" for o in options if o.startswith("--"))
    env = " ".join(["DEBIAN_FRONTEND=noninteractive", *(o for o in options if "=" in o and
                                                         not o.startswith("--"))])
    command = (f"env {env} apt-get -o Dpkg::Use-Pty=0 -y --no-download {dpkg} full-upgrade "
               f"</dev/null")
    with log.step(f"host# {command}"):
        started = time.monotonic()
        outcome = lab.execute(command, timeout=3600)
        done.seconds = time.monotonic() - started
    done.returncode = outcome.returncode
    log_file.write_text(f"$ {command}\n{outcome.output}")
    done.log = str(log_file)
    log.info(f"apt exit {outcome.returncode} after {done.seconds:.0f}s (its output: {log_file})")
    _keep_tc_shim(lab)
    lab.execute("apt-get clean")
    after = _versions(lab)
    done.audit = lab.execute("dpkg --audit").output.strip()
    done.not_installed = [f"{status} {name}" for name, (_version, status) in after.items()
                          if status not in ("ii", "rc")]
    done.versions = {name: (before.get(name, ("", ""))[0], after.get(name, ("", ""))[0])
                     for name in MANIFEST_PACKAGES}
    done.differ = [f"{name} {after.get(name, ('none', ''))[0]} (planned {version})"
                   for name, version in prepared.candidates.items()
                   if after.get(name, ("", ""))[0] != version]
    done.differ += [f"{name} {after.get(name, ('none', ''))[0]} ({prepared.target}'s image has {version})"
                    for name, version in prepared.image_manifest.items()
                    if after.get(name, ("", ""))[0] != version]
    done.config = {path: _fate(lab, path, text) for path, text in changed.items()}
    if prepared.image_packages:
        extra = sorted(name for name, (_version, status) in after.items()
                       if status == "ii" and name not in prepared.image_packages)
        installed_before = {name for name, (_version, status) in before.items() if status == "ii"}
        done.beyond_image = [name for name in extra if name not in installed_before]
        done.left_over = [name for name in extra if name in installed_before]
    manifest = {name: after[name][0] for name in MANIFEST_PACKAGES if name in after}
    lab.image = dataclasses.replace(lab.image, release=prepared.target, manifest=manifest)
    lab.upgraded = True
    for line in done.lines():
        log.info(line)
    return done


def _versions(lab: Lab) -> dict[str, tuple[str, str]]:
    """Every package dpkg knows: name -> (version, status abbreviation)."""
    listed = lab.execute(["dpkg-query", "-W", "-f=${Package}\t${Version}\t${db:Status-Abbrev}\n"]).output
    versions = {}
    for line in listed.splitlines():
        parts = line.split("\t")
        if len(parts) == 3:
            versions[parts[0]] = (parts[1], parts[2].strip())
    return versions


def etc_contents(lab: Lab) -> dict[str, bytes]:
    """Every regular file under the lab's /etc but its plumbing: path (relative) -> content (read
    by configfiles.capture, as a warm lab's reset reads /etc)."""
    return {relative: entry.content for inside, entry in configfiles.capture(lab).items()
            if entry.kind is configfiles.Kind.FILE
            and not (relative := inside.lstrip("/")).startswith(_PLUMBING)}


def changed_config(lab: Lab, at_boot: Mapping[str, bytes], settings: HostSettings) -> dict[str, bytes | None]:
    """The files of /etc the scenario changed: path (relative) -> content now (None: removed)."""
    now = etc_contents(lab)
    changed: dict[str, bytes | None] = {
        path: now.get(path) for path in sorted(set(at_boot) | set(now)) if at_boot.get(path) != now.get(path)}
    image = lab.image.root
    for path in _settings_files(settings):
        if path in now and (not (image / path).is_file() or (image / path).read_bytes() != now[path]):
            changed.setdefault(path, now[path])
    return dict(sorted(changed.items()))


def _settings_files(settings: HostSettings) -> list[str]:
    """The files of /etc the host's settings write before boot (coexist.host.hostconfig)."""
    files = [path for path, table in ((DAEMON_JSON, settings.docker), (NETWORK_CONF, settings.libvirt),
                                      (FIREWALLD_CONF, settings.firewalld), (SYSCTL_FILE, settings.sysctl))
             if table]
    files += [f"/etc/firewalld/zones/{zone}.xml" for zone in settings.zones]
    return [path.lstrip("/") for path in files]


def _fate(lab: Lab, relative: str, before: bytes | None) -> str:
    now = lab.path("/" + relative)
    beside = [suffix for suffix in _BESIDE if lab.path(f"/{relative}{suffix}").exists()]
    old = [suffix for suffix in _OLD if lab.path(f"/{relative}{suffix}").exists()]
    if before is None:
        return "removed by the scenario; " + ("still absent" if not now.exists() else "back (the package's)")
    if not now.exists():
        name = relative.rsplit("/", 1)[-1]
        return (f"MOVED ASIDE by the upgrade (the package dropped it; the scenario's kept as {name}{old[0]}, "
                f"which nothing reads)" if old else "REMOVED by the upgrade")
    if now.read_bytes() == before:
        return "kept" + (f", the package's new version beside it ({relative.rsplit('/', 1)[-1]}"
                         f"{beside[0]})" if beside else "")
    if old:
        return f"REPLACED by the package's (the scenario's kept as {relative.rsplit('/', 1)[-1]}{old[0]})"
    return "CHANGED by the upgrade (a maintainer script merged or rewrote it)"


def _drop_stub(lab: Lab) -> None:
    """coexist's network.conf stub (bookworm's libvirt has none) would stand in for the file
    libvirt 11 ships: a host that never had one upgrades without it."""
    conf = lab.path("/etc/libvirt/network.conf")
    if conf.is_file() and conf.read_text() == NETWORK_CONF_STUB:
        conf.unlink()
        log.info("lab: coexist's /etc/libvirt/network.conf stub removed before the upgrade (a real "
                 "bookworm host has none)")


def _place(prepared: UpgradeSet, lab: Lab) -> None:
    (lab.path("/etc/apt/sources.list")).write_text(prepared.sources_list)
    for entry in lab.path("/etc/apt/sources.list.d").glob("*"):
        entry.unlink()
    conf = lab.path("/etc/apt/apt.conf.d/99coexist-upgrade")
    conf.write_text(prepared.apt_conf)
    lists = lab.path("/var/lib/apt/lists")
    for entry in lists.iterdir():
        if entry.is_file() and entry.name != "lock":
            entry.unlink()
    for entry in prepared.lists.iterdir():
        shutil.copy2(entry, lists / entry.name)
    archives = lab.path("/var/cache/apt/archives")
    for entry in prepared.archives.iterdir():
        shutil.copy2(entry, archives / entry.name)


def _keep_tc_shim(lab: Lab) -> None:
    """An upgraded iproute2 puts its own tc where the lab's shim was: behind the shim it goes."""
    if lab.path("/usr/sbin/tc.coexist-real").exists():
        lab.install_tc_csum_shim()
