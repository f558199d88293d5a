"""What an installed coexist needs is package data, found through importlib.resources; builds nothing."""

from __future__ import annotations

import ast
import fnmatch
import re
import subprocess
import sys
import tomllib
import zipfile
from importlib import metadata, resources
from pathlib import Path

from coexist.images import guestimage, hostimage

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "harness" / "coexist"


FIRST_PARTY = {"coexist", "conftest", "__future__"}


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def package_data_globs(package: str) -> list[str]:
    return list(pyproject()["tool"]["setuptools"]["package-data"][package])


def normalized(requirement: str) -> str:
    name = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert name, requirement
    return re.sub(r"[-_.]+", "-", name[0]).lower()


def imported_top_levels(folder: Path) -> dict[str, str]:
    """Every third-party top-level module imported under `folder`, with one file importing it."""
    found: dict[str, str] = {}
    siblings = {path.stem for path in folder.rglob("*.py")}   # bench/speed.py imports guest_boot
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names | FIRST_PARTY | siblings:
                    found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def undeclared(imports: dict[str, str], declared: set[str]) -> list[str]:
    distributions = metadata.packages_distributions()
    missing = []
    for module, where in sorted(imports.items()):
        dists = {normalized(d) for d in distributions.get(module, [])}
        if not dists & declared:
            missing.append(f"{module} (imported by {where}; distribution {sorted(dists) or '?'})")
    return missing


def test_images_stay_at_the_top_and_the_images_layer_links_to_them() -> None:
    link = PACKAGE / "images" / "files"
    assert link.is_symlink() and link.readlink() == Path("../../../images")
    assert (ROOT / "images" / "host.toml").is_file()


def test_every_file_under_images_is_shipped_as_package_data() -> None:
    files = sorted(
        path.relative_to(PACKAGE / "images").as_posix()
        for path in (PACKAGE / "images" / "files").rglob("*")
        if path.is_file()
    )
    assert "files/host.toml" in files and "files/guest/init" in files
    globs = package_data_globs("coexist.images")
    unshipped = [f for f in files if not any(fnmatch.fnmatch(f, g) for g in globs)]
    assert unshipped == [], "add them to [tool.setuptools.package-data] in pyproject.toml"


def test_recipes_and_guest_files_are_reached_through_importlib_resources() -> None:
    images = resources.files("coexist.images") / "files"
    assert hostimage.RECIPE_FILE == images / "host.toml"
    assert guestimage.GUEST_FILES == images / "guest"
    assert list(hostimage.load_recipes()) == ["bookworm", "trixie", "forky"]
    for name in ("init", "udhcpc.script"):
        shipped = (guestimage.GUEST_FILES / name).read_bytes()
        assert shipped == (ROOT / "images" / "guest" / name).read_bytes()
        assert shipped.startswith(b"#!/bin/sh")


def test_the_other_data_files_are_package_data_too() -> None:
    for package, name in (("coexist", "py.typed"), ("coexist.scenario", "fixes.toml"),
                          ("coexist.host", "networks.toml")):
        assert (resources.files(package) / name).is_file()
        assert name in package_data_globs(package)


def test_every_imported_distribution_is_declared() -> None:
    project = pyproject()["project"]
    runtime = {normalized(r) for r in project["dependencies"]}
    dev = {normalized(r) for r in project["optional-dependencies"]["dev"]}
    package = imported_top_levels(PACKAGE)
    assert {"cryptography", "docker", "libvirt", "paramiko"} <= set(package)
    assert undeclared(package, runtime) == [], "coexist needs them at run time: [project] dependencies"
    others = {**imported_top_levels(ROOT / "tests"), **imported_top_levels(ROOT / "bench")}
    assert undeclared(others, runtime | dev) == []


def test_every_declared_dependency_says_why_on_its_line() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    for block in re.findall(r"^(?:dependencies|dev) = \[\n(.*?)^\]", text, re.M | re.S):
        for line in block.splitlines():
            assert re.match(r'\s*"[^"]+",\s+# \S', line), f"no justification: {line.strip()}"


def test_a_wheel_installs_coexist_and_no_harness(tmp_path: Path) -> None:
    """What `pip install .` puts into a fresh environment: the package `coexist` with its data, its
    command and its pytest plugin; never a top-level `harness` (a name users' own helpers take)."""
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                            "-w", str(tmp_path / "dist"), str(ROOT)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("coexist-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names} == {"coexist", wheel.name.split("-")[0] + "-0.1.0.dist-info"}
    assert {"coexist/images/files/host.toml", "coexist/images/files/guest/init",
            "coexist/scenario/fixes.toml", "coexist/host/networks.toml", "coexist/py.typed"} <= set(names)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    target = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    zipfile.ZipFile(wheel).extractall(target)   # what pip does with a pure-Python wheel's files
    # the dependencies from this environment, behind the wheel (its .pth files, the editable
    # install's among them, are not read: a path listed in a .pth is only added to sys.path)
    (target / "dependencies.pth").write_text(next(p for p in sys.path if p.endswith("site-packages")))
    probe = ("import importlib.util as u, importlib.metadata as m, coexist.cli, coexist.pytest_plugin;"
             "print(u.find_spec('harness') is None, [e.value for e in m.entry_points(group='pytest11')"
             " if e.name == 'coexist'], coexist.__file__)")
    seen = subprocess.run([str(venv / "bin" / "python"), "-I", "-c", probe], capture_output=True, text=True,
                          cwd=tmp_path)
    assert seen.returncode == 0, seen.stderr
    assert seen.stdout.split()[:2] == ["True", "['coexist.pytest_plugin']"], seen.stdout
    assert seen.stdout.split()[2].startswith(str(target)), seen.stdout
