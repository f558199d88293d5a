"""The host's permanent configuration (/etc) as files: captured, compared and put back.

A warm lab (coexist.run.warm) measures one fix after another on one host: what a fix wrote into
/etc (daemon.json, network.conf, firewalld.conf and its direct.xml and zones, /etc/sysctl.d, a
libvirt hook) must be gone before the next fix, and the proof is a comparison with /etc as the
fresh host had it. Read and written from the machine's side through the lab's root, so nothing
runs inside the lab for it.
"""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from coexist.host.lab import Lab

ROOTS = ("/etc",)
SKIPPED = ("/etc/resolv.conf",)   # the lab's bind mount to the simulated internet's resolver


class Kind(StrEnum):
    FILE = "file"
    LINK = "link"
    DIR = "dir"


@dataclass(frozen=True)
class Entry:
    """One path's kind, owner, mode and content (a symlink's target; a directory has none)."""

    kind: Kind
    mode: int
    uid: int
    gid: int
    content: bytes = b""


Files = dict[str, Entry]   # path inside the lab -> what is there


def capture(lab: Lab) -> Files:
    """Every file, symlink and directory under ROOTS as the lab has it now."""
    found: Files = {}
    for root in ROOTS:
        base = lab.path(root)
        for where, dirs, names in os.walk(base):
            for name in (*dirs, *names):
                path = Path(where) / name
                inside = "/" + str(path.relative_to(lab.path("/")))
                if inside in SKIPPED:
                    continue
                info = path.lstat()
                if stat.S_ISLNK(info.st_mode):
                    entry = Entry(Kind.LINK, 0, info.st_uid, info.st_gid, os.readlink(path).encode())
                elif stat.S_ISDIR(info.st_mode):
                    entry = Entry(Kind.DIR, stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid)
                elif stat.S_ISREG(info.st_mode):
                    entry = Entry(Kind.FILE, stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid,
                                  path.read_bytes())
                else:
                    continue   # sockets, fifos: runtime, not configuration
                found[inside] = entry
    return found


def differences(before: Files, after: Files) -> list[str]:
    """`+ path` new in `after`, `- path` gone from it, `~ path` changed (content, mode, owner)."""
    changed = [f"+ {path}" for path in sorted(after.keys() - before.keys())]
    changed += [f"- {path}" for path in sorted(before.keys() - after.keys())]
    changed += [f"~ {path}" for path in sorted(before.keys() & after.keys()) if before[path] != after[path]]
    return changed


def restore(lab: Lab, saved: Files) -> list[str]:
    """Put /etc back as `saved` has it: what was added removed, what was changed or removed
    written back with its mode and owner. Returns what it changed (differences' lines)."""
    now = capture(lab)
    changed = differences(saved, now)
    for path in sorted(now.keys() - saved.keys(), reverse=True):   # deepest first
        target = lab.path(path)
        if now[path].kind is Kind.DIR:
            shutil.rmtree(target, ignore_errors=True)
        else:
            target.unlink(missing_ok=True)
    for path in sorted(saved):   # parents before children
        entry = saved[path]
        if now.get(path) == entry:
            continue
        target = lab.path(path)
        if entry.kind is Kind.DIR:
            if target.is_symlink() or (target.exists() and not target.is_dir()):
                target.unlink()
            target.mkdir(exist_ok=True)
            target.chmod(entry.mode)
        else:
            if target.is_symlink() or target.is_file():
                target.unlink()
            elif target.is_dir():
                shutil.rmtree(target)
            if entry.kind is Kind.LINK:
                target.symlink_to(entry.content.decode())
            else:
                target.write_bytes(entry.content)
                target.chmod(entry.mode)
        os.chown(target, entry.uid, entry.gid, follow_symlinks=False)
    return changed
