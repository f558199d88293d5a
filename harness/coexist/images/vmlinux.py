"""The ELF `vmlinux` inside a bzImage, found the way the kernel's scripts/extract-vmlinux does.

Booting the ELF directly (PVH entry) spares the guest from decompressing itself under emulation,
which is about half of a TCG boot. No Debian package ships vmlinux, so it is carved out of
/boot/vmlinuz-*: find the magic of each known compression format, decompress from there, and keep
the first result that is an ELF file.
"""

from __future__ import annotations

import bz2
import lzma
import shutil
import struct
import tempfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from coexist.base.commands import run

ELF_MAGIC = b"\x7fELF"


class NoVmlinuxFound(ValueError):
    """No compressed payload in the image decompressed to an ELF file."""


@dataclass(frozen=True)
class _Format:
    name: str
    magic: bytes
    decompress: Callable[[bytes], bytes | None]
    tool: str | None = None  # the program `decompress` runs, if the stdlib cannot do it


class _Decompressor(Protocol):
    """The incremental interface of lzma's and bz2's decompressors (and of `_Zlib`)."""

    def decompress(self, data: bytes, max_length: int = -1) -> bytes: ...


def _probe_then_finish(new: Callable[[], _Decompressor], data: bytes) -> bytes | None:
    """Decompress the first bytes only; finish the job only if they are an ELF header.

    A magic found by chance (lzma's is `5d 00 00 00`) can decode garbage for megabytes before
    failing; the probe rejects it after a few bytes.
    """
    decompressor = new()
    try:
        head = decompressor.decompress(data, len(ELF_MAGIC))
        if head != ELF_MAGIC:
            return None
        return head + decompressor.decompress(b"", -1)
    except (OSError, EOFError, lzma.LZMAError, zlib.error):
        return None


class _Zlib:
    """zlib's gzip decompressor with the `max_length` calling convention of lzma and bz2."""

    def __init__(self) -> None:
        self._inner = zlib.decompressobj(wbits=31)

    def decompress(self, data: bytes, max_length: int = -1) -> bytes:
        if data:
            return self._inner.decompress(data, max(max_length, 0))
        return self._inner.decompress(self._inner.unconsumed_tail)


def _with_tool(tool: str) -> Callable[[bytes], bytes | None]:
    """Decompress with `<tool> -dc` (lzop, lz4, zstd: no stdlib module for them).

    The tools complain about the bytes that follow the payload in a bzImage; as in
    extract-vmlinux, their exit code is ignored and their output judged by its ELF magic.
    """

    def decompress(data: bytes) -> bytes | None:
        with tempfile.TemporaryDirectory(prefix="coexist-vmlinux-") as scratch:
            src, dst = Path(scratch, "payload"), Path(scratch, "out")
            src.write_bytes(data)
            # stdout to a file keeps what was decompressed before the error; -o would delete it
            run(
                ["sh", "-c", '"$0" -dcq "$1" > "$2"', tool, str(src), str(dst)],
                check=False,
                where=tool,
            )
            with dst.open("rb") as out:
                if out.read(len(ELF_MAGIC)) != ELF_MAGIC:
                    return None
            return dst.read_bytes()

    return decompress


# The order and magics of scripts/extract-vmlinux.
FORMATS = (
    _Format("gzip", b"\x1f\x8b\x08", lambda data: _probe_then_finish(_Zlib, data)),
    _Format(
        "xz",
        b"\xfd7zXZ\x00",
        lambda data: _probe_then_finish(lambda: lzma.LZMADecompressor(lzma.FORMAT_XZ), data),
    ),
    _Format("bzip2", b"BZh", lambda data: _probe_then_finish(bz2.BZ2Decompressor, data)),
    _Format(
        "lzma",
        b"\x5d\x00\x00\x00",
        lambda data: _probe_then_finish(lambda: lzma.LZMADecompressor(lzma.FORMAT_ALONE), data),
    ),
    _Format("lzo", b"\x89LZO", _with_tool("lzop"), "lzop"),
    _Format("lz4", b"\x02\x21\x4c\x18", _with_tool("lz4"), "lz4"),
    _Format("zstd", b"\x28\xb5\x2f\xfd", _with_tool("zstd"), "zstd"),
)


def _offsets(data: bytes, magic: bytes) -> Iterator[int]:
    offset = data.find(magic)
    while offset != -1:
        yield offset
        offset = data.find(magic, offset + 1)


def extract_vmlinux_bytes(image: bytes) -> tuple[str, bytes]:
    """The ELF kernel inside `image` and the name of the format it was compressed with."""
    if image.startswith(ELF_MAGIC):
        return "none", image
    missing: list[str] = []
    for fmt in FORMATS:
        if fmt.tool is not None and shutil.which(fmt.tool) is None:
            missing.append(f"{fmt.name} (needs the `{fmt.tool}` program)")
            continue
        for offset in _offsets(image, fmt.magic):
            elf = fmt.decompress(image[offset:])
            if elf is not None and elf.startswith(ELF_MAGIC):
                return fmt.name, elf
    tried = ", ".join(fmt.name for fmt in FORMATS if fmt.tool is None or shutil.which(fmt.tool))
    skipped = f"; not tried: {', '.join(missing)}" if missing else ""
    raise NoVmlinuxFound(f"no compressed ELF kernel found (tried {tried}{skipped})")


def extract_vmlinux(bzimage: Path, destination: Path) -> str:
    """Write the ELF kernel inside `bzimage` to `destination`; return the compression's name."""
    try:
        compression, elf = extract_vmlinux_bytes(bzimage.read_bytes())
    except NoVmlinuxFound as error:
        raise NoVmlinuxFound(f"{bzimage}: {error}") from None
    destination.write_bytes(elf)
    return compression


PT_NOTE = 4
XEN_ELFNOTE_PHYS32_ENTRY = 18  # the PVH entry point qemu's -kernel and libvirt's <kernel> need


def has_pvh_entry(elf: bytes) -> bool:
    """Whether a 64-bit little-endian ELF kernel carries the Xen PVH entry note."""
    if elf[:6] != ELF_MAGIC + b"\x02\x01":  # ELFCLASS64, little-endian
        return False
    try:
        (program_headers,) = struct.unpack_from("<Q", elf, 0x20)
        entry_size, entries = struct.unpack_from("<HH", elf, 0x36)
        for index in range(entries):
            kind, _, offset, _, _, size = struct.unpack_from(
                "<IIQQQQ", elf, program_headers + index * entry_size
            )
            if kind == PT_NOTE and _notes_have(
                elf[offset : offset + size], XEN_ELFNOTE_PHYS32_ENTRY
            ):
                return True
    except struct.error:
        return False
    return False


def _notes_have(notes: bytes, wanted: int) -> bool:
    position = 0
    while position + 12 <= len(notes):
        namesz, descsz, note_type = struct.unpack_from("<III", notes, position)
        name = notes[position + 12 : position + 12 + namesz].rstrip(b"\0")
        if name == b"Xen" and note_type == wanted:
            return True
        position += 12 + _align4(namesz) + _align4(descsz)
    return False


def _align4(size: int) -> int:
    return (size + 3) & ~3
