"""Fixtures compose coexist's objects; the objects work without pytest too (see harness.cli)."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.scenario import RELEASES

ROOT = Path(__file__).resolve().parents[1]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--release", default=None, choices=RELEASES,
                     help="host release for end-to-end tests (default: each scenario's own)")
    parser.addoption("--artifacts-dir", default=str(ROOT / "artifacts"),
                     help="where end-to-end tests keep logs, rulesets and verdicts")


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
def artifacts(request: pytest.FixtureRequest) -> Path:
    """A per-test folder for logs, rulesets and the verdict; named in the report on failure."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid.split("::", 1)[-1])
    folder = Path(request.config.getoption("--artifacts-dir")) / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    request.node.coexist_artifacts = folder
    return folder


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    folder = getattr(item, "coexist_artifacts", None)
    if folder is not None and report.failed:
        report.sections.append(("coexist artifacts", f"logs, rulesets and verdict: {folder}"))
