"""The pytest plugin without a lab: its options, its marker's validation, the README's example."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parents[2]


def test_the_readme_example_is_the_tested_file() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Use it from your own tests", 1)[1]
    example = re.search(r"```python\n(.*?)```", section, re.S)
    assert example, "README: no python example under 'Use it from your own tests'"
    tested = (ROOT / "tests" / "e2e" / "test_plugin_example.py").read_text()
    for line in example.group(1).strip().splitlines():
        assert line in tested.splitlines(), line


def test_the_plugin_is_registered_by_its_entry_point(pytestconfig: pytest.Config) -> None:
    assert pytestconfig.pluginmanager.has_plugin("coexist")
    assert pytestconfig.getoption("--accel") in ("auto", "kvm", "tcg")


def test_a_bad_marker_fails_the_test_in_one_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.coexist(kernel="6.1")
        def test_unknown_key(coexist_scenario):
            pass

        @pytest.mark.coexist(network="nowhere")
        def test_unknown_network(coexist_scenario):
            pass

        @pytest.mark.coexist(release="trixie", start_order=["dockerd", "libvirt"])
        def test_good(coexist_scenario):
            assert coexist_scenario.host.start_order == ("dockerd", "libvirt")
            assert not coexist_scenario.docker or coexist_scenario.host.release == "trixie"
    """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=2)
    result.stdout.fnmatch_lines([
        "*coexist: test_a_bad_marker_fails_the_test_in_one_line.py::test_unknown_key "
        "(@pytest.mark.coexist): host.kernel: unknown key; allowed: release*",
        "*guest[[]0[]].network: 'nowhere' is not allowed; allowed: default*",
    ])
    assert "Traceback" not in result.stdout.str()


def test_release_option_overrides_the_marker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.coexist(release="trixie")
        def test_it(coexist_scenario):
            assert coexist_scenario.host.release == "forky"
    """)
    pytester.runpytest("--release", "forky").assert_outcomes(passed=1)
