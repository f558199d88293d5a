"""The containers' image without a network: its root filesystem from a busybox, and the cache."""

from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path

import pytest
from coexist.images import containerimage


def test_the_rootfs_has_busybox_a_link_per_applet_and_the_page() -> None:
    busybox = shutil.which("busybox")
    if busybox is None:
        pytest.skip("no busybox on this machine")
    tar = tarfile.open(fileobj=io.BytesIO(containerimage.rootfs_tar(Path(busybox))))
    binary = tar.getmember("bin/busybox")
    assert binary.isfile() and binary.mode == 0o755 and binary.uid == 0
    assert tar.getmember("bin/wget").issym() and tar.getmember("bin/wget").linkname == "busybox"
    assert tar.getmember("tmp").mode == 0o1777
    page = tar.extractfile("www/index.html")
    assert page is not None and page.read() == containerimage.PAGE + b"\n"


def test_a_built_image_is_taken_from_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COEXIST_CACHE", str(tmp_path))
    assert not containerimage.container_image_cached()
    monkeypatch.setattr(containerimage, "_fetch", lambda *_: pytest.fail("fetched although cached"))
    built = containerimage.image_folder()   # as a build leaves it
    assert built.parent == tmp_path and built.name.startswith("container-")
    built.mkdir()
    (built / "rootfs.tar").write_bytes(b"tar")
    (built / "version").write_text("1:1.37.0-6\n")
    assert containerimage.container_image_cached()
    image = containerimage.build_container_image()
    assert image.version == "1:1.37.0-6" and image.rootfs == built / "rootfs.tar"
