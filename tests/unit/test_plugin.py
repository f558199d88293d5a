"""The pytest plugin without a lab: its options, its marker's validation, the README's example."""

from __future__ import annotations

import re
import shutil
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
    from coexist.pytest_plugin import setting

    assert setting(pytestconfig, "accel") in ("auto", "kvm", "tcg")


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
    pytester.runpytest("--coexist-release", "forky").assert_outcomes(passed=1)


SCENARIOS_INI = "[pytest]\ncoexist_scenarios = scenarios/*.toml\n"


def test_scenario_files_are_items_one_per_variant(pytester: pytest.Pytester) -> None:
    pytester.makeini(SCENARIOS_INI)
    folder = pytester.mkdir("scenarios")
    shutil.copy(ROOT / "scenarios" / "seed-firewalld-direct.toml", folder)
    result = pytester.runpytest("--collect-only", "-q", "--coexist-axis", "release=bookworm,trixie",
                                "--coexist-axis", "start_order=firewalld+dockerd+libvirt,dockerd+libvirt+firewalld")
    result.stdout.fnmatch_lines([
        "scenarios/seed-firewalld-direct.toml::seed-firewalld-direct[[]bookworm libvirt:nftables "
        "order:firewalld>dockerd>libvirt[]]",
        "*4 tests collected*"])


def test_a_scenario_file_is_an_item_only_when_asked(pytester: pytest.Pytester) -> None:
    folder = pytester.mkdir("scenarios")
    shutil.copy(ROOT / "scenarios" / "control-no-docker.toml", folder / "mine.toml")
    shutil.copy(ROOT / "scenarios" / "control-no-docker.toml", pytester.path / "other.toml")
    pytester.runpytest("--collect-only", "-q").stdout.fnmatch_lines(["*no tests collected*"])
    pytester.runpytest("--collect-only", "-q", "other.toml").stdout.fnmatch_lines(["*1 test collected*"])
    pytester.makeini(SCENARIOS_INI)   # the patterns name scenarios/*.toml, not other.toml
    pytester.runpytest("--collect-only", "-q").stdout.fnmatch_lines(
        ["scenarios/mine.toml::control-no-docker*", "*1 test collected*"])


def test_an_unrelated_project_with_scenarios_and_its_own_release_option_is_untouched(
        pytester: pytest.Pytester) -> None:
    # a project of its own: a `scenarios/` folder of load-test TOML and a --release option
    folder = pytester.mkdir("scenarios")
    (folder / "load.toml").write_text('[tool]\nusers = 100\n')
    pytester.makeconftest("""
        def pytest_addoption(parser):
            parser.addoption("--release", default="1.0")
    """)
    pytester.makepyfile(test_app="""
        def test_release(pytestconfig):
            assert pytestconfig.getoption("--release") == "2.5"
    """)
    result = pytester.runpytest("--release", "2.5", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert sorted(p.name for p in pytester.path.iterdir()) == ["conftest.py", "scenarios", "test_app.py"]
    assert pytester.runpytest("-p", "no:cacheprovider", "scenarios").ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_a_shard_runs_its_part_of_the_scenario_items_each_in_exactly_one(pytester: pytest.Pytester) -> None:
    pytester.makeini(SCENARIOS_INI)
    folder = pytester.mkdir("scenarios")
    shutil.copy(ROOT / "scenarios" / "seed-firewalld-direct.toml", folder)
    axes = ["--coexist-axis", "release=bookworm,trixie,forky", "--coexist-axis",
            "start_order=firewalld+dockerd+libvirt,dockerd+libvirt+firewalld"]
    parts = []
    for k in (1, 2, 3):
        result = pytester.runpytest("--collect-only", "-q", *axes, f"--coexist-shard={k}/3")
        parts.append([line for line in result.stdout.lines if ".toml::" in line])
        result.stdout.fnmatch_lines(["*2/6 tests collected (4 deselected)*"])
    every = [item for part in parts for item in part]
    assert len(every) == len(set(every)) == 6
    pytester.runpytest("--collect-only", "-q", "--coexist-shard=3/2").stderr.fnmatch_lines(
        ["*--coexist-shard '3/2': K/N, part K of N (1 <= K <= N)*"])


def test_warm_items_are_grouped_by_host_one_group_per_worker(pytester: pytest.Pytester) -> None:
    """--coexist-warm: the items of one host (release, settings, start order...) in as many
    xdist groups as workers; items of another host never share a group."""
    pytester.makeini(SCENARIOS_INI)
    folder = pytester.mkdir("scenarios")
    seed = (ROOT / "scenarios" / "seed-firewalld-direct.toml").read_text()
    for n in range(6):   # six scenarios of one host per release
        (folder / f"s{n}.toml").write_text(seed.replace('name = "seed-firewalld-direct"', f'name = "s{n}"'))
    pytester.makeconftest("""
        def pytest_collection_finish(session):
            for item in session.items:
                groups = [m.args[0] for m in item.iter_markers("xdist_group")]
                print("GROUP|" + item.name + "|" + ",".join(groups))
    """)
    axes = ["--coexist-axis", "release=trixie,forky", "-p", "no:cacheprovider"]

    def groups(*options: str) -> dict[str, str]:
        result = pytester.runpytest("--collect-only", "-q", "-s", *axes, *options)
        found = dict(line.split("|")[1:] for line in result.stdout.lines if line.startswith("GROUP|"))
        assert len(found) == 12, result.stdout.str()
        return found

    assert set(groups().values()) == {""}   # not warm: no groups
    one = groups("--coexist-warm")
    assert len(set(one.values())) == 2   # one per host (release): no xdist, one worker
    two = groups("--coexist-warm", "-n", "2", "--dist", "loadgroup")
    assert 2 < len(set(two.values())) <= 4
    for name, group in two.items():
        assert group.startswith(one[name][:-1]) and group.startswith(name.split("[")[1].split()[0])


def test_every_option_has_an_ini_setting_and_the_option_wins(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ncoexist_release = bookworm\ncoexist_artifacts = evidence\n")
    pytester.makepyfile("""
        import pytest
        from coexist.pytest_plugin import setting

        @pytest.mark.coexist(release="trixie")
        def test_it(coexist_scenario, pytestconfig):
            assert coexist_scenario.host.release == (pytestconfig.getoption("coexist_release") or "bookworm")
            assert setting(pytestconfig, "artifacts") == "evidence"
            assert setting(pytestconfig, "accel") == "auto"
    """)
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
    pytester.runpytest("-p", "no:cacheprovider", "--coexist-release", "forky").assert_outcomes(passed=1)
    pytester.makeini("[pytest]\ncoexist_accel = fast\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.stderr.fnmatch_lines(["*coexist_accel = 'fast': one of auto, kvm, tcg*"])


def test_a_machine_that_cannot_run_a_lab_ends_the_session_in_one_line(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("""
        import coexist.preflight

        coexist.preflight.before_labs = lambda **_: ["no /dev/net/tun: modprobe tun", "not enough space"]
    """)
    pytester.makepyfile("""
        def test_one(coexist_lab):
            pass

        def test_two(coexist_lab):
            pass
    """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines(["*coexist preflight: no /dev/net/tun: modprobe tun; not enough space*"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_a_broken_scenario_file_is_one_collection_error_line(pytester: pytest.Pytester) -> None:
    pytester.makeini(SCENARIOS_INI)
    folder = pytester.mkdir("scenarios")
    (folder / "bad.toml").write_text('[scenario]\nname = "../x"\nsummary = "s"\n[[step]]\ndo = "boot"\n')
    result = pytester.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(["coexist: invalid scenario: */scenarios/bad.toml:2: scenario.name: '../x': *"])
    assert "Traceback" not in result.stdout.str()


def test_axis_values_as_cross_takes_them() -> None:
    from coexist.pytest_plugin import axes_from

    assert axes_from(["release=trixie,forky", "after_fix=firewalld-reload+dockerd-restart,none",
                      "ipv6=no,yes"]) == {
        "release": ["trixie", "forky"], "after_fix": [["firewalld-reload", "dockerd-restart"], []],
        "ipv6": [False, True]}
    with pytest.raises(pytest.UsageError, match="give NAME=VALUE"):
        axes_from(["release"])


FAKE_RUN = """
from coexist import preflight
from coexist.guest.accel import AccelDecision
from coexist.images import built
from coexist.net.connectivity import Connectivity, Probe
from coexist.report.verdict import Verdict
from coexist.run import runner
from coexist.report.results import Settled, StepResult


def run_scenario(scenario, *, artifacts, images, accel="auto", warm=None):
    # a measurement without a lab: the symptom after boot, online after the fix
    def reach(ok):
        return Connectivity(Probe("DNS", "nslookup", True, ""), Probe("ping", "ping", ok, ""),
                            Probe("TCP", "nc", ok, ""))
    steps = [StepResult(step, guests={"guest": Settled(reach(n > 0), 2, 4.0, True)},
                        published_port=True, docker_isolation=True)
             for n, step in enumerate(scenario.steps)]
    return Verdict(scenario, {"docker": "1"}, AccelDecision("tcg", "fake"), [], steps,
                   artifacts=str(artifacts))


built.build_images = lambda release, packages=(), upgrade_to=None: None
runner.run_scenario = run_scenario
preflight.before_labs = lambda **_: []
"""


@pytest.mark.parametrize("release, outcome", [("trixie", "failed"), ("bookworm", "skipped")])
def test_xdist_workers_hand_their_rows_to_the_controllers_matrix(
        pytester: pytest.Pytester, release: str, outcome: str) -> None:
    """Through xdist's own channel: the controller writes the report the rows would have made in
    one process. (A fake measurement, no lab: on trixie it differs from the file, so the items
    fail; on bookworm both variants are not applicable.)"""
    import json

    pytester.makeini(SCENARIOS_INI)
    folder = pytester.mkdir("scenarios")
    shutil.copy(ROOT / "scenarios" / "seed-firewalld-direct.toml", folder)
    pytester.makeconftest(FAKE_RUN)
    reports = {}
    for workers in ("0", "2"):
        out = pytester.path / f"artifacts-{workers}"
        result = pytester.runpytest_subprocess(
            "-p", "no:cacheprovider", "-n", workers, f"--coexist-axis=release={release}",
            "--coexist-axis", "start_order=firewalld+dockerd+libvirt,dockerd+libvirt+firewalld",
            "--coexist-artifacts", str(out))
        result.assert_outcomes(**{outcome: 2})
        letters = [line for line in result.stdout.lines if re.fullmatch(r"[.FEsx]+( *\[ *\d+%\])?", line.strip())]
        assert not letters, "a scenario item's own line says it; no progress letters beside it"
        said = {"failed": "UNEXPECTED", "skipped": "not applicable"}[outcome]
        result.stdout.fnmatch_lines([f"[[]1/2[]] seed-firewalld-direct[[]{release} libvirt:nftables order:*[]]: {said} (* s)",
                                     f"[[]2/2[]] seed-firewalld-direct[[]{release} libvirt:nftables order:*[]]: {said} (* s)"])
        matrix = out / "matrix"
        assert sorted(p.name for p in matrix.iterdir()) == ["matrix.html", "matrix.json", "matrix.md"]
        report = json.loads((matrix / "matrix.json").read_text())
        for row in report["rows"]:
            row.pop("seconds")
            row["artifacts"] = row["artifacts"].replace(str(out), "")
            if row["verdict"]:
                row["verdict"]["artifacts"] = row["verdict"]["artifacts"].replace(str(out), "")
        reports[workers] = report
    assert reports["2"]["rows"] == reports["0"]["rows"]
    assert reports["2"]["summary"]["runs"] == 2
    applicable = release == "trixie"
    assert [row["verdict"] is not None for row in reports["2"]["rows"]] == [applicable] * 2
