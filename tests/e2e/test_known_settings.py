"""The committed table of what each release's daemons know (coexist.host.known) is what the built
host images say: dockerd asked, the shipped configuration files and zones read; and the sysctls
are those of a fresh network namespace on this kernel."""

from __future__ import annotations

import json
import platform

import pytest
from coexist.host import known
from coexist.images.hostimage import build_host_image

pytestmark = pytest.mark.e2e
TABLE = json.loads(known.TABLE.read_text())


@pytest.mark.parametrize("release", list(TABLE["releases"]))
def test_the_table_is_what_the_release_image_knows(release: str) -> None:
    assert known.survey(build_host_image(release).root) == TABLE["releases"][release], (
        "remake it: sudo .venv/bin/python -m coexist.host.known")


def test_the_sysctls_are_those_of_a_lab_on_this_kernel() -> None:
    if platform.release() != TABLE["kernel"]:
        pytest.xfail(f"the table was made on Linux {TABLE['kernel']}, this is {platform.release()}")
    assert known.lab_sysctls() == TABLE["sysctls"]
