"""libvirt's qemu capabilities kept beside the host image and handed to the next lab."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from coexist.host import qemucaps


class FakeLab:
    def __init__(self, image_root: Path, lab_root: Path) -> None:
        self.image = SimpleNamespace(root=image_root)
        self.root = lab_root

    def path(self, inside: str) -> Path:
        return self.root / inside.lstrip("/")


def test_the_probe_of_one_lab_reaches_the_next(tmp_path: Path) -> None:
    image = tmp_path / "host-trixie-abc"
    image.mkdir()
    first = FakeLab(image, tmp_path / "lab1")
    assert qemucaps.restore(first) == 0 and qemucaps.keep(first) == 0   # nothing yet, no error
    probed = first.path(qemucaps.INSIDE)
    probed.mkdir(parents=True)
    (probed / "f00d.xml").write_text("<qemuCaps/>")
    assert qemucaps.keep(first) == 1
    assert qemucaps.kept(first) == tmp_path / "host-trixie-abc.qemu-capabilities"
    second = FakeLab(image, tmp_path / "lab2")
    assert qemucaps.restore(second) == 1
    assert (second.path(qemucaps.INSIDE) / "f00d.xml").read_text() == "<qemuCaps/>"
    assert not list(qemucaps.kept(first).glob(".*"))   # no staging file left behind
