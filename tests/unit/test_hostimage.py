"""The host image recipe: loaded, validated, keyed. Needs no root and builds nothing."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from coexist.images import hostimage
from coexist.images.hostimage import HostImageError, RecipeError, load_recipe, load_recipes

TRIXIE = """
[release.trixie]
suite = "trixie"
mirror = "http://deb.debian.org/debian"
packages = [{packages}]
{extra}
"""


def recipe_file(
    tmp_path: Path, packages: str = '"docker.io", "firewalld"', extra: str = ""
) -> Path:
    path = tmp_path / "host.toml"
    path.write_text(TRIXIE.format(packages=packages, extra=extra))
    return path


def test_the_project_recipe_defines_the_three_releases() -> None:
    recipes = load_recipes()
    assert list(recipes) == ["bookworm", "trixie", "forky"]
    for recipe in recipes.values():
        assert {"docker.io", "libvirt-daemon-system", "firewalld", "qemu-system-x86"} <= set(
            recipe.packages
        )


def test_docker_cli_only_where_docker_io_ships_none() -> None:
    assert "docker-cli" not in load_recipe("bookworm").packages
    assert "docker-cli" in load_recipe("trixie").packages
    assert "docker-cli" in load_recipe("forky").packages


def test_forky_uses_the_sid_script_and_ignores_valid_until() -> None:
    forky = load_recipe("forky")
    assert forky.suite == "forky"
    assert forky.script == "/usr/share/debootstrap/scripts/sid"
    assert forky.check_valid_until is False
    assert load_recipe("trixie").check_valid_until is True
    assert load_recipe("trixie").script is None


def test_an_unknown_release_names_the_allowed_ones() -> None:
    with pytest.raises(RecipeError, match=r"'buster'.*bookworm, trixie, forky"):
        load_recipe("buster")


def test_build_rejects_an_unknown_release_before_anything_else() -> None:
    with pytest.raises(RecipeError, match="bookworm, trixie, forky"):
        hostimage.build_host_image("sid")


def test_the_key_changes_when_the_package_list_changes(tmp_path: Path) -> None:
    before = load_recipe("trixie", recipe_file(tmp_path)).key
    same = load_recipe("trixie", recipe_file(tmp_path)).key
    after = load_recipe("trixie", recipe_file(tmp_path, '"docker.io", "firewalld", "ipset"')).key
    assert before == same
    assert before != after


def test_the_key_changes_with_the_build_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    before = load_recipe("trixie").key
    monkeypatch.setattr(hostimage, "RECIPE_VERSION", hostimage.RECIPE_VERSION + "-next")
    assert load_recipe("trixie").key != before


def test_releases_have_distinct_keys() -> None:
    keys = {recipe.key for recipe in load_recipes().values()}
    assert len(keys) == 3


def test_an_unknown_field_is_an_error_naming_file_and_field(tmp_path: Path) -> None:
    path = recipe_file(tmp_path, extra='include = ["systemd"]')
    with pytest.raises(
        RecipeError, match=r"host\.toml: \[release\.trixie\]: unknown field.*include"
    ):
        load_recipe("trixie", path)


def test_a_missing_field_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "host.toml"
    path.write_text('[release.trixie]\nsuite = "trixie"\npackages = ["dbus"]\n')
    with pytest.raises(RecipeError, match="missing field 'mirror'"):
        load_recipe("trixie", path)


@pytest.mark.parametrize(
    ("packages", "extra", "complaint"),
    [
        ("", "", "non-empty list"),
        ('"Docker IO"', "", "not a Debian package name"),
        ('"dbus", "dbus"', "", "listed twice"),
        ('"dbus"', 'check_valid_until = "no"', "true or false"),
        ('"dbus"', 'script = "scripts/sid"', "absolute path"),
    ],
)
def test_bad_values_are_errors(tmp_path: Path, packages: str, extra: str, complaint: str) -> None:
    with pytest.raises(RecipeError, match=complaint):
        load_recipe("trixie", recipe_file(tmp_path, packages, extra))


def test_an_unknown_top_level_key_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "host.toml"
    path.write_text(TRIXIE.format(packages='"dbus"', extra="") + '\n[defaults]\nmirror = "x"\n')
    with pytest.raises(RecipeError, match="unknown top-level"):
        load_recipes(path)


def test_building_needs_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("COEXIST_CACHE", str(tmp_path))
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(HostImageError, match="needs root"):
        hostimage.build_host_image("trixie")


def test_building_needs_debootstrap(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("COEXIST_CACHE", str(tmp_path))
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(shutil, "which", lambda name, path=None: None)
    with pytest.raises(HostImageError, match=r"apt-get install debootstrap"):
        hostimage.build_host_image("trixie")
    assert list(tmp_path.iterdir()) == []  # nothing created before the checks


def test_a_complete_image_is_reused_without_root(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    recipe = load_recipe("trixie")
    root = tmp_path / f"host-trixie-{recipe.key}"
    (root / "etc").mkdir(parents=True)
    (root / hostimage.MANIFEST_PATH).write_text(
        f'{{"recipe_key": "{recipe.key}", "packages": {{"docker.io": "26.1.5"}}}}'
    )
    (root / hostimage.COMPLETE_MARKER).write_text(recipe.key)
    monkeypatch.setenv("COEXIST_CACHE", str(tmp_path))
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    image = hostimage.build_host_image("trixie")
    assert image.root == root
    assert image.manifest == {"docker.io": "26.1.5"}


def test_debootstrap_checks_against_debians_keyring_when_the_machine_has_it(tmp_path: Path) -> None:
    forky = load_recipe("forky")
    keyring = tmp_path / "debian-archive-keyring.gpg"
    keyring.write_bytes(b"keys")
    assert hostimage.debootstrap_argv(forky, tmp_path / "root", keyring) == [
        "debootstrap", "--variant=minbase", f"--keyring={keyring}",
        "forky", str(tmp_path / "root"), forky.mirror, "/usr/share/debootstrap/scripts/sid",
    ]  # fmt: skip
    absent = hostimage.debootstrap_argv(forky, tmp_path / "root", tmp_path / "absent.gpg")
    assert not any(arg.startswith("--keyring") for arg in absent)
    assert hostimage.DEBIAN_KEYRING == Path("/usr/share/keyrings/debian-archive-keyring.gpg")


def _logged(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    said: list[str] = []
    monkeypatch.setattr(hostimage.log, "info", said.append)
    return said


DEBOOTSTRAP = """I: Retrieving InRelease
I: Checking Release signature
I: Valid Release signature (key id 4D64FEC119C2029067D6E791F8D2585B8783D481)
I: Retrieving Packages
I: Validating Packages
I: Resolving dependencies of required packages...
I: Checking component main on http://deb.debian.org/debian...
I: Retrieving libacl1 2.3.1-3
I: Validating libacl1 2.3.1-3
I: Retrieving adduser 3.134
I: Validating adduser 3.134
I: Extracting libacl1...
I: Extracting adduser...
I: Installing core packages...
I: Unpacking required packages...
I: Unpacking libacl1:amd64...
I: Configuring required packages...
I: Configuring libacl1:amd64...
I: Base system installed successfully."""


def test_debootstrap_says_each_stage_once_not_each_package(monkeypatch: pytest.MonkeyPatch) -> None:
    said = _logged(monkeypatch)
    stages = hostimage._Stages()
    for line in DEBOOTSTRAP.splitlines():
        stages(line)
    assert [re.sub(r"\(\d+ s\)", "(s)", line) for line in said] == [
        "debootstrap: 4 retrieved (s)",   # InRelease, Packages and two packages
        "debootstrap: 2 extracted (s)",
        "debootstrap: 1 unpacked (s)",
        "debootstrap: 1 configured (s)"]


def test_apt_install_counts_the_packages_set_up_by_quarters(monkeypatch: pytest.MonkeyPatch) -> None:
    said = _logged(monkeypatch)
    progress = hostimage._PackagesSetUp()
    progress("0 upgraded, 8 newly installed, 0 to remove and 0 not upgraded.")
    for n in range(8):
        progress(f"Setting up package{n} (1.0) ...")
    assert said == ["8 packages to install", "2/8 packages set up", "4/8 packages set up",
                    "6/8 packages set up", "8/8 packages set up"]


def test_a_failed_build_command_shows_its_last_lines_and_where_the_rest_is(tmp_path: Path) -> None:
    from coexist.base.commands import CommandFailed

    build_log = tmp_path / "host-trixie-x.build.log"
    with open(build_log, "w") as sink, pytest.raises(CommandFailed) as failed:
        hostimage.stream(["sh", "-c", "seq 1 100; echo 'E: Unable to locate package docker-cli'; exit 100"],
                          shown="apt-get install docker-cli", sink=sink)
    output = str(failed.value)
    assert "E: Unable to locate package docker-cli" in output and "\n62\n" in output and "\n61\n" not in output
    assert f"(its last 40 lines; all of it: {build_log})" in output
    kept = build_log.read_text().splitlines()
    assert kept[0] == "$ apt-get install docker-cli" and kept[1] == "1" and len(kept) == 102


def test_a_scenarios_extra_packages_make_an_image_of_their_own() -> None:
    trixie = load_recipe("trixie")
    assert hostimage.with_extra(trixie, ()) == trixie   # no extra: the same image
    assert hostimage.with_extra(trixie, ["docker.io"]).key == trixie.key   # in the recipe already
    jq = hostimage.with_extra(trixie, ["jq", "iputils-ping"])
    assert jq.packages == (*trixie.packages, "iputils-ping", "jq") and jq.key != trixie.key
    assert hostimage.with_extra(trixie, ["iputils-ping", "jq"]).key == jq.key   # order aside
    with pytest.raises(RecipeError, match="'Jq' is not a Debian package name"):
        hostimage.with_extra(trixie, ["Jq"])


def test_a_staged_build_becomes_the_cache_entry_or_leaves_nothing(tmp_path: Path) -> None:
    final = tmp_path / "upgrade-bookworm-trixie-k"
    (tmp_path / ".upgrade-bookworm-trixie-k.abc.tmp").mkdir()   # an interrupted build's
    final.mkdir()                                                # an entry without its marker
    with pytest.raises(RuntimeError), hostimage.staged(final, "k") as staging:
        (staging / "half").write_text("done")
        raise RuntimeError("the build failed")
    assert list(tmp_path.iterdir()) == []
    with hostimage.staged(final, "k") as staging:
        (staging / "plan.txt").write_text("Inst x\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == [final.name]
    assert (final / hostimage.COMPLETE_MARKER).read_text() == "k\n" and (final / "plan.txt").exists()
