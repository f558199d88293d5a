"""Fixtures compose coexist's objects; the objects work without pytest too (see coexist.cli)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    problem = e2e_unavailable()
    if problem is None or not any("e2e" in item.keywords for item in items):
        return
    if os.environ.get("COEXIST_REQUIRE_E2E") == "1":
        raise pytest.UsageError(f"end-to-end tests need {problem}, and COEXIST_REQUIRE_E2E=1 "
                                "forbids skipping them (ci/setup installs what they need)")
    for item in items:
        if "e2e" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=f"e2e needs {problem} (run ci/setup as root)"))


def e2e_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "root"
    for tool in ("debootstrap", "unshare", "nsenter", "busybox", "dropbearkey", "dnsmasq"):
        if shutil.which(tool) is None:
            return f"`{tool}` on PATH"
    return None


@pytest.fixture
def artifacts(coexist_artifacts: Path) -> Path:
    """A per-test folder for logs, rulesets and the verdict (the plugin's coexist_artifacts)."""
    return coexist_artifacts
