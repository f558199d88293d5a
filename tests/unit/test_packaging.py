"""What an installed coexist needs is package data, found through importlib.resources; builds nothing."""

from __future__ import annotations

import fnmatch
import tomllib
from importlib import resources
from pathlib import Path

from harness import guestimage, hostimage

ROOT = Path(__file__).resolve().parents[2]


def package_data_globs() -> list[str]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return list(pyproject["tool"]["setuptools"]["package-data"]["harness"])


def test_images_stay_at_the_top_and_harness_images_links_to_them() -> None:
    link = ROOT / "harness" / "images"
    assert link.is_symlink() and link.readlink() == Path("../images")
    assert (ROOT / "images" / "host.toml").is_file()


def test_every_file_under_images_is_shipped_as_package_data() -> None:
    files = sorted(
        path.relative_to(ROOT / "harness").as_posix()
        for path in (ROOT / "harness" / "images").rglob("*")
        if path.is_file()
    )
    assert "images/host.toml" in files and "images/guest/init" in files
    unshipped = [f for f in files if not any(fnmatch.fnmatch(f, g) for g in package_data_globs())]
    assert unshipped == [], "add them to [tool.setuptools.package-data] in pyproject.toml"


def test_recipes_and_guest_files_are_reached_through_importlib_resources() -> None:
    images = resources.files("harness") / "images"
    assert hostimage.RECIPE_FILE == images / "host.toml"
    assert guestimage.GUEST_FILES == images / "guest"
    assert list(hostimage.load_recipes()) == ["bookworm", "trixie", "forky"]
    for name in ("init", "udhcpc.script"):
        shipped = (guestimage.GUEST_FILES / name).read_bytes()
        assert shipped == (ROOT / "images" / "guest" / name).read_bytes()
        assert shipped.startswith(b"#!/bin/sh")


def test_the_other_data_files_are_package_data_too() -> None:
    for name in ("py.typed", "fixes.toml", "networks.toml"):
        assert (resources.files("harness") / name).is_file()
        assert name in package_data_globs()
