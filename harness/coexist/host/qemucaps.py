"""libvirt's cache of what the lab's qemu can do, carried from one lab to the next.

At its first domain define a libvirtd probes the qemu binary (starts it, asks QMP) and caches the
answer under /var/cache/libvirt/qemu/capabilities/. A lab starts from the host image, so every run
paid that probe again before the first guest's `virsh start` (its cost: bench/speed.py). A real
host probes once and keeps the file. So does coexist now: the file is kept beside the host image
and put into each new lab before libvirtd starts. libvirt itself decides whether a cached file
still holds (it compares the qemu binary, libvirtd, the kernel, the microcode and /dev/kvm's
access with what the file records) and probes again when not, so a stale file costs only the probe.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from coexist.host.lab import Lab

INSIDE = "/var/cache/libvirt/qemu/capabilities"


def kept(lab: Lab) -> Path:
    """Where this lab's host image keeps the files between labs."""
    return lab.image.root.with_name(lab.image.root.name + ".qemu-capabilities")


def restore(lab: Lab) -> int:
    """Put the kept files into the lab (before libvirtd starts); returns how many."""
    source = kept(lab)
    if not source.is_dir():
        return 0
    target = lab.path(INSIDE)
    target.mkdir(parents=True, exist_ok=True)
    copied = 0
    for file in source.glob("*.xml"):
        shutil.copy2(file, target / file.name)
        copied += 1
    return copied


def keep(lab: Lab) -> int:
    """Keep the lab's files for the next lab (each replaced atomically: labs run side by side)."""
    source = lab.path(INSIDE)
    if not source.is_dir():
        return 0
    target = kept(lab)
    target.mkdir(exist_ok=True)
    kept_files = 0
    for file in source.glob("*.xml"):
        staging = target / f".{file.name}.{os.getpid()}"
        shutil.copy2(file, staging)
        staging.replace(target / file.name)
        kept_files += 1
    return kept_files
