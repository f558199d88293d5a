"""The lab's boot reads the sysctl files as a Debian host's systemd-sysctl does, for the keys the
lab owns (net.*: its own network namespace); the rest of /proc/sys is the machine's.

systemd-sysctl (systemd 252 in bookworm, 257 in trixie) reads `*.conf` in /etc/sysctl.d,
/run/sysctl.d, /usr/local/lib/sysctl.d, /usr/lib/sysctl.d and /lib/sysctl.d: a name in an earlier
folder hides the same name in a later one, a file linked to /dev/null is masked, and the files are
read in the order of their names, a later assignment of a key overriding an earlier one. It does
not read /etc/sysctl.conf itself: bookworm's systemd ships /etc/sysctl.d/99-sysctl.conf, a link to
it; trixie's does not. Lines: `#` and `;` comments, `key = value`, a leading `-` for "ignore a
failure", a key written with `/` for `.`, globs (`net.ipv4.conf.*.rp_filter`), and `-key` alone:
that key left out of the globs (trixie's linux-sysctl-defaults, which an upgrade from bookworm
brings as a Recommends, writes `net.ipv4.conf.*.rp_filter = 2` and `-net.ipv4.conf.all.rp_filter`).
An interface made later gets the `default` values, as systemd's udev rule would set it.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import PurePosixPath

from coexist.base import log
from coexist.host.lab import Lab

FOLDERS = ("/etc/sysctl.d", "/run/sysctl.d", "/usr/local/lib/sysctl.d", "/usr/lib/sysctl.d", "/lib/sysctl.d")
_SWAP = str.maketrans("./", "/.")
OWNED = "net."   # the lab's own namespace's keys; any other is the machine's kernel's


@dataclass(frozen=True)
class Assignment:
    key: str            # dotted: net.ipv4.ip_forward
    value: str
    file: str           # where it is written, inside the lab host
    ignore_failure: bool = False
    excluded: bool = False   # `-key` alone: the key is left out of every glob, not set

    @property
    def glob(self) -> bool:
        return any(c in self.key for c in "*?[")

    @property
    def proc_path(self) -> str:
        return "/proc/sys/" + self.key.translate(_SWAP)   # eth0/100 in a key is eth0.100 there


def _resolve(lab: Lab, path: str, depth: int = 8) -> str | None:
    """`path` inside the lab with its links followed inside the lab's root (an absolute link
    names the lab's file, not the machine's); None for a missing file or a link to /dev/null."""
    for _ in range(depth):
        if path == "/dev/null":
            return None
        outside = lab.path(path)
        if not outside.is_symlink():
            return path if outside.is_file() else None
        target = os.readlink(outside)
        path = os.path.normpath(target if target.startswith("/") else PurePosixPath(path).parent / target)
    return None


def files(lab: Lab) -> list[tuple[str, str | None]]:
    """(the file as found, what it reads: None when masked or dangling) in the order read."""
    found: dict[str, str] = {}
    for folder in FOLDERS:
        inside = lab.path(folder)
        if not inside.is_dir() or (folder == "/lib/sysctl.d" and lab.path("/lib").is_symlink()):
            continue   # merged /usr: /lib/sysctl.d is /usr/lib/sysctl.d, already read
        for entry in inside.iterdir():
            if entry.name.endswith(".conf"):
                found.setdefault(entry.name, f"{folder}/{entry.name}")
    return [(found[name], _resolve(lab, found[name])) for name in sorted(found)]


def parse(text: str, file: str) -> list[Assignment]:
    """The assignments of one sysctl file (systemd-sysctl's syntax); a line that is not one is
    logged and skipped, as systemd-sysctl does."""
    assignments = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        ignore = line.startswith("-")
        line = line.lstrip("-").strip()
        key, equals, value = line.partition("=")
        key = key.strip()
        if "/" in key and ("." not in key or key.index("/") < key.index(".")):
            key = key.translate(_SWAP)   # slashes first: the path as written; kept dotted here
        if not equals and ignore:   # `-key`: no glob sets this key (systemd >= 245, sysctl.d(5))
            assignments.append(Assignment(key, "", file, ignore_failure=True, excluded=True))
        elif not equals:
            log.info(f"lab: {file}:{number}: not an assignment, ignored (as systemd-sysctl does): {raw!r}")
        else:
            assignments.append(Assignment(key, value.strip(), file, ignore))
    return assignments


def read(lab: Lab) -> list[Assignment]:
    """Every assignment the host's boot would make, in order, the later of two for one key kept."""
    final: dict[str, Assignment] = {}
    for file, target in files(lab):
        if target is not None:
            for assignment in parse(lab.path(target).read_text(errors="replace"), file):
                final.pop(assignment.key, None)
                final[assignment.key] = assignment
    return list(final.values())


def apply_at_boot(lab: Lab) -> dict[str, str]:
    """Set the lab's own keys as the boot would (globs expanded inside the lab, explicit keys
    winning over a glob's); returns the keys set and their values now. A missing key is logged
    (unless `-`), as systemd-sysctl does; other keys are the machine's and are left (logged once)."""
    assignments = read(lab)
    owned = [a for a in assignments if a.key.startswith(OWNED)]
    others = sorted({a.key for a in assignments} - {a.key for a in owned})
    if others:
        log.debug(f"lab: sysctl files also set {', '.join(others)}: the machine's kernel's, not set in a lab")
    explicit = {a.proc_path for a in owned if not a.glob}   # the excluded ones among them
    owned = [a for a in owned if not a.excluded]
    script = []
    for a in sorted(owned, key=lambda a: not a.glob):   # globs first: explicit keys then win
        paths = a.proc_path if a.glob else shlex.quote(a.proc_path)
        skip = "".join(f'[ "$p" = {path} ] && continue; ' for path in explicit) if a.glob else ""
        script.append(f'for p in {paths}; do {skip}if [ ! -e "$p" ]; then echo "missing {a.key}"; '
                      f'elif echo {shlex.quote(a.value)} 2>/dev/null > "$p"; then echo "set $p $(cat "$p")"; '
                      f'else echo "failed {a.key}"; fi; done')
    if not script:
        return {}
    output = lab.succeed(["sh", "-c", "\n".join(script)])
    by_key = {a.key: a for a in owned}
    now: dict[str, str] = {}
    for line in output.splitlines():
        word, _, rest = line.partition(" ")
        if word == "set":
            path, _, value = rest.partition(" ")
            now[path.removeprefix("/proc/sys/").translate(_SWAP)] = value
        elif not by_key[rest].ignore_failure:
            why = "no such key in the lab's kernel" if word == "missing" else "the kernel refused the value"
            log.info(f"lab: {by_key[rest].file}: sysctl {rest} = {by_key[rest].value}: {why}, "
                     f"ignored (as systemd-sysctl does)")
    for key, value in now.items():
        log.info(f"lab: sysctl {key} = {value} (at boot, from the sysctl files)")
    return now
