"""Extracting the ELF kernel from a bzImage-like blob, without a real kernel or root."""

from __future__ import annotations

import bz2
import gzip
import lzma
import shutil
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from coexist.images.vmlinux import NoVmlinuxFound, extract_vmlinux, extract_vmlinux_bytes, has_pvh_entry

SETUP = b"MZ" + bytes(510) + b"HdrS" + bytes(1000)  # what precedes the payload in a bzImage
TRAILER = struct.pack("<I", 123456) + b"\xff" * 64  # what follows it (the size field, then padding)


def elf(notes: list[tuple[bytes, int]] = []) -> bytes:  # noqa: B006 (never mutated)
    """A minimal ELF64 little-endian file with one PT_NOTE segment holding `notes`."""
    body = b"".join(
        struct.pack("<III", len(name) + 1, 4, kind)
        + (name + b"\0").ljust((len(name) + 4) & ~3, b"\0")
        + bytes(4)
        for name, kind in notes
    )
    header_size, entry_size = 64, 56
    header = b"\x7fELF\x02\x01\x01" + bytes(9)
    header += struct.pack(
        "<HHIQQQIHHHHHH", 2, 62, 1, 0, header_size, 0, 0, header_size, entry_size, 1, 0, 0, 0
    )
    program_header = struct.pack(
        "<IIQQQQQQ", 4, 4, header_size + entry_size, 0, 0, len(body), len(body), 4
    )
    return header + program_header + body + b"kernel text " * 500


def xz(data: bytes) -> bytes:
    return lzma.compress(data, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32)


def lzma_alone(data: bytes) -> bytes:
    # the kernel's `lzma -9` writes a dictionary size whose low bytes are zero: magic 5d 00 00 00
    filters = [{"id": lzma.FILTER_LZMA1, "dict_size": 1 << 24}]
    return lzma.compress(data, format=lzma.FORMAT_ALONE, filters=filters)


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


@pytest.mark.parametrize(
    ("name", "compress"),
    [("xz", xz), ("gzip", gz), ("bzip2", bz2.compress), ("lzma", lzma_alone)],
)
def test_extracts_the_elf_kernel_compressed_with_the_stdlib(
    name: str, compress: Callable[[bytes], bytes]
) -> None:
    kernel = elf()
    assert extract_vmlinux_bytes(SETUP + compress(kernel) + TRAILER) == (name, kernel)


@pytest.mark.parametrize("tool", ["zstd", "lz4"])
def test_extracts_the_elf_kernel_compressed_with_a_tool(tool: str, tmp_path: Path) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"no {tool} program")
    kernel = elf()
    source = tmp_path / "kernel"
    source.write_bytes(kernel)
    # lz4 -l writes the legacy frame format, as the kernel's build does
    argv = ["zstd", "-q", "-19", "-c"] if tool == "zstd" else ["lz4", "-q", "-l", "-9", "-c"]
    payload = subprocess.run([*argv, str(source)], check=True, capture_output=True).stdout
    assert extract_vmlinux_bytes(SETUP + payload + TRAILER) == (tool, kernel)


def test_skips_magics_that_occur_by_chance() -> None:
    kernel = elf()
    decoys = (
        b"\x5d\x00\x00\x00"
        + bytes(40)
        + b"\x1f\x8b\x08"
        + b"junk" * 10
        + b"\xfd7zXZ\x00"
        + b"x" * 30
    )
    assert extract_vmlinux_bytes(SETUP + decoys + xz(kernel) + TRAILER) == ("xz", kernel)


def test_an_elf_file_is_returned_as_it_is() -> None:
    kernel = elf()
    assert extract_vmlinux_bytes(kernel) == ("none", kernel)


def test_no_payload_is_a_clear_error() -> None:
    with pytest.raises(NoVmlinuxFound, match="no compressed ELF kernel found"):
        extract_vmlinux_bytes(SETUP + b"not a kernel" * 100 + TRAILER)


def test_a_payload_that_is_not_elf_is_not_taken() -> None:
    with pytest.raises(NoVmlinuxFound):
        extract_vmlinux_bytes(SETUP + xz(b"#!/bin/sh\n" * 100) + TRAILER)


def test_extract_vmlinux_writes_the_file_and_names_the_image_on_error(tmp_path: Path) -> None:
    kernel = elf()
    image, destination = tmp_path / "vmlinuz-test", tmp_path / "vmlinux"
    image.write_bytes(SETUP + gz(kernel) + TRAILER)
    assert extract_vmlinux(image, destination) == "gzip"
    assert destination.read_bytes() == kernel
    image.write_bytes(SETUP)
    with pytest.raises(NoVmlinuxFound, match="vmlinuz-test"):
        extract_vmlinux(image, destination)


def test_pvh_entry_note_is_recognised() -> None:
    assert has_pvh_entry(elf([(b"Xen", 6), (b"Xen", 18)]))
    assert not has_pvh_entry(elf([(b"Xen", 6), (b"GNU", 18)]))
    assert not has_pvh_entry(elf())
    assert not has_pvh_entry(b"MZ" + bytes(100))
    assert not has_pvh_entry(elf()[:80])  # truncated program headers
