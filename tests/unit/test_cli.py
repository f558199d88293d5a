"""The command line's conventions: --version, -n, and one set of exit codes for run and matrix."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from coexist import cli


def test_version_says_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        cli.main(["--version"])
    assert stopped.value.code == 0
    assert capsys.readouterr().out.startswith("coexist ")


@pytest.mark.parametrize(("given", "labs"), [("1", 1), ("3", 3), ("auto", len(os.sched_getaffinity(0)))])
def test_matrix_takes_a_number_of_labs_or_auto(given: str, labs: int) -> None:
    assert cli._parser().parse_args(["matrix", "scenarios", "-n", given]).n == labs


@pytest.mark.parametrize("given", ["0", "-2", "two", ""])
def test_matrix_refuses_another_number_of_labs_in_one_line(
        given: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        cli._parser().parse_args(["matrix", "scenarios", "-n", given])
    assert stopped.value.code == 2
    [said] = capsys.readouterr().err.splitlines()   # one line, not argparse's usage first
    assert said.startswith("coexist matrix: argument -n: ") and said.endswith(
        "a number of labs at once (1 or more), or auto (see coexist matrix --help)")


def _report(tmp_path: Path, *errors: str | None) -> Path:
    report = tmp_path / "matrix.json"
    report.write_text(json.dumps({"summary": {}, "rows": [{"error": e} for e in errors]}))
    return report


@pytest.mark.parametrize(("errors", "pytest_code", "code"), [
    ((None, None), 0, 0),                     # every run as expected
    ((None, None), 1, 1),                     # an unexpected outcome fails its item
    ((None, "RuntimeError: dockerd exited"), 1, 3),   # a run broke: as `run`, 3
    (("RuntimeError: x", None), 0, 3),
])
def test_matrix_exits_as_run_does(tmp_path: Path, errors: tuple[str | None, ...], pytest_code: int,
                                  code: int) -> None:
    assert cli.matrix_exit_code(_report(tmp_path, *errors), pytest_code) == code


SEED = Path(__file__).resolve().parents[2] / "scenarios" / "seed-firewalld-direct.toml"


@pytest.mark.parametrize(("axis", "said"), [
    ("relase=bookworm", "coexist: --axis relase: unknown axis; did you mean 'release'? allowed: release, "),
    ("release=bookworm,forky", "coexist: --axis release: one value for a run (2 given); `coexist matrix` "
                               "crosses several"),
    ("ipv6=maybe", "coexist: --axis 'ipv6=maybe': ipv6 is true or false"),
    ("release", "coexist: --axis 'release': give NAME=VALUE[,VALUE...]"),
])
def test_run_refuses_a_bad_axis_in_one_line_that_blames_the_flag(
        axis: str, said: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["run", str(SEED), "--axis", axis]) == 2
    assert capsys.readouterr().err.strip().startswith(said)


def test_run_axis_picks_one_variant_as_the_matrix_would(monkeypatch: pytest.MonkeyPatch) -> None:
    chosen = cli._one_value_each(["start_order=dockerd+libvirt+firewalld", "after_fix=firewalld-reload",
                                  "ipv6=yes"])
    assert chosen == {"start_order": ["dockerd", "libvirt", "firewalld"],
                      "after_fix": ["firewalld-reload"], "ipv6": True}
    from coexist.scenario.model import load

    variant = load(SEED).variant(**chosen)
    assert list(variant.axes()["start_order"]) == ["dockerd", "libvirt", "firewalld"]
    assert variant.axes()["ipv6"] is True


def test_a_run_that_breaks_keeps_its_traceback_in_its_artifacts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "seed-run"

    def broken(args: object) -> int:
        folder.mkdir()
        cli._partial.append(folder)
        raise RuntimeError("dockerd exited with 1 while starting")

    monkeypatch.setattr(cli, "_run", broken)
    monkeypatch.setattr(cli, "_partial", [])
    assert cli.main(["run", str(SEED)]) == 3
    err = capsys.readouterr().err
    assert f"coexist: traceback for a bug report: {folder / 'traceback.txt'}" in err
    kept = (folder / "traceback.txt").read_text()
    assert kept.startswith("Traceback (most recent call last):")
    assert kept.strip().endswith("RuntimeError: dockerd exited with 1 while starting")


def test_check_json_has_a_record_per_file_and_the_same_exit_code(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.toml"
    assert cli.main(["check", "--json", str(SEED), str(missing)]) == 2
    captured = capsys.readouterr()
    files = json.loads(captured.out)["files"]
    assert [(f["path"], f["ok"]) for f in files] == [(str(SEED), True), (str(missing), False)]
    assert files[0]["steps"][0] == "boot" and files[0]["warnings"] == []
    assert files[1]["error"] == f"{missing}: file: no such scenario file"
    assert captured.err == ""   # everything is in the document


@pytest.mark.parametrize(("flag", "printed"), [([], "the verdict as text"), (["--json"], '{"format": 2}')])
def test_run_prints_the_verdict_as_text_or_as_json(
        flag: list[str], printed: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from coexist.run import runner

    class Verdict:
        def render(self) -> str:
            return "the verdict as text"

        def dumps(self) -> str:
            return '{"format": 2}'

        def mismatches(self) -> list[str]:
            return []

    monkeypatch.setattr(cli, "_preflight", lambda **_: None)
    monkeypatch.setattr(cli, "_partial", [])
    asked: dict[str, object] = {}

    def run_scenario(*_: object, **given: object) -> Verdict:
        asked.update(given)
        return Verdict()

    monkeypatch.setattr(runner, "run_scenario", run_scenario)
    assert cli.main(["run", str(SEED), "--artifacts", str(tmp_path), *flag]) == 0
    assert capsys.readouterr().out.strip() == printed
    assert asked["accel"] == "auto"
    assert cli.main(["run", str(SEED), "--artifacts", str(tmp_path), "--accel", "tcg"]) == 0
    assert asked["accel"] == "tcg"


class _Terminal:
    def __init__(self, tty: bool) -> None:
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize(("tty", "no_color", "coloured"), [
    (True, None, True), (True, "", True), (True, "1", False), (False, None, False)])
def test_unexpected_and_fails_are_red_on_a_terminal_unless_no_color(
        tty: bool, no_color: str | None, coloured: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if no_color is None:
        monkeypatch.delenv("NO_COLOR", raising=False)
    else:
        monkeypatch.setenv("NO_COLOR", no_color)
    text = "  UNEXPECTED: reality differs\n  [fix] host check c1: FAILS x\n  as expected"
    shown = cli.painted(text, _Terminal(tty))
    if coloured:
        assert shown == text.replace("UNEXPECTED", "\033[1;31mUNEXPECTED\033[0m").replace(
            "FAILS", "\033[1;31mFAILS\033[0m")
    else:
        assert shown == text


def test_what_follows_two_dashes_goes_to_pytest_as_it_is() -> None:
    args = cli._parser().parse_args(["matrix", "scenarios", "-n", "2"])
    assert args.n == 2
    seen: dict[str, object] = {}

    def matrix(parsed: object) -> int:
        seen["args"] = parsed
        return 0

    import unittest.mock

    with unittest.mock.patch.object(cli, "_matrix", matrix):
        assert cli.main(["matrix", str(SEED), "-n", "2", "--", "-k", "nftables", "-x"]) == 0
    parsed = seen["args"]
    assert parsed.scenarios == [SEED] and parsed.to_pytest == ["-k", "nftables", "-x"]  # type: ignore[attr-defined]
    argv = cli.pytest_argv([SEED], Path("/out"), ["release=trixie"], 2, ["-k", "nftables", "-x"])
    assert argv[-5:] == ["-n", "2", "-k", "nftables", "-x"] and "no:cacheprovider" in argv
    assert "no:cacheprovider" not in cli.pytest_argv([SEED], Path("/out"), [], 1, ["--lf"])


def test_every_subcommand_has_a_description_an_example_and_help_on_every_argument() -> None:
    import argparse

    sub = next(a for a in cli._parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name, parser in sub.choices.items():
        assert parser.description, name
        assert (parser.epilog or "").startswith("example: coexist ") or \
            (parser.epilog or "").startswith("example: sudo coexist "), name
        for action in parser._actions:
            assert action.help, f"{name} {action.dest}"


@pytest.mark.parametrize(("flags", "shown"), [
    # the deepest step shown says itself once, when it ends, with its time
    ([], ["- phase", "  - step", "    - part (0.0s)", "    (step: 0.0s)", "  (phase: 0.0s)"]),
    (["-q"], ["- phase (0.0s)"]),
    (["-v"], ["- phase", "  - step", "    - part", "      - detail", "        a line", "        (detail: 0.0s)",
              "      (part: 0.0s)", "    (step: 0.0s)", "  (phase: 0.0s)"]),
])
def test_progress_shows_the_outline_unless_asked_for_more_or_less(
        flags: list[str], shown: list[str], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from coexist.base import log

    def run(_args: object) -> int:
        with log.step("phase"), log.step("step"), log.step("part"), log.step("detail"):
            log.info("a line")
        return 0

    monkeypatch.setattr(cli, "_run", run)
    assert cli.main(["run", *flags, str(SEED)]) == 0
    assert capsys.readouterr().err.splitlines() == shown


def test_a_step_inside_which_nothing_is_shown_is_one_line(monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from coexist.base import log

    def run(_args: object) -> int:
        with log.step("quiet phase"):
            log.debug("a command's own line")
        with log.step("phase"), log.step("step"):
            log.info("shown")
        return 0

    monkeypatch.setattr(cli, "_run", run)
    assert cli.main(["run", str(SEED)]) == 0
    assert capsys.readouterr().err.splitlines() == [
        "- quiet phase (0.0s)", "- phase", "  - step", "    shown", "    (step: 0.0s)", "  (phase: 0.0s)"]


def test_a_failure_is_shown_however_deep(monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    from coexist.base import log

    def run(_args: object) -> int:
        with log.step("phase"), log.step("step"), log.step("part"), log.step("detail"):
            raise cli.UserError("no")

    monkeypatch.setattr(cli, "_run", run)
    assert cli.main(["run", "-q", str(SEED)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert "        ! detail: failed after 0.0s (UserError)" in err and "coexist: no" in err


@pytest.mark.parametrize(("flags", "said"), [
    (["--network", "wifi"], "coexist: --network wifi: guest.network: 'wifi' is not allowed; allowed: default, "),
    (["--axis", "docker_iptables=nfts"],
     "coexist: --axis docker_iptables=nfts: host.docker_iptables: 'nfts' is not allowed; did you mean 'nft'?"),
])
def test_an_error_a_flag_caused_is_blamed_on_the_flag_not_the_file(
        flags: list[str], said: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["run", str(SEED), *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(said) and err.endswith(f"(with {SEED})") and "{" not in err, err


def test_shell_gets_its_own_command_not_the_whole_command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    # main() once kept the whole command line in args.argv, the shell's own argument's name
    seen = {}
    monkeypatch.setattr(cli, "_shell", lambda args: seen.setdefault("argv", args.argv) and 0)
    cli.main(["shell", "123.4-lab", "--", "ip -br link"])
    assert seen["argv"] in (["ip -br link"], ["--", "ip -br link"])   # the shell drops a leading --


@pytest.mark.parametrize(("option", "said"), [
    ("relase=trixie", "coexist: --axis relase: unknown axis; did you mean 'release'?"),
    ("start_order=dockerd+libvrt", "coexist: --axis start_order: 'libvrt' is not allowed; did you mean 'libvirt'?"),
    ("ipv6=maybe", "coexist: --axis 'ipv6=maybe': ipv6 is true or false"),
])
def test_matrix_axis_refuses_a_bad_axis_in_one_line(option: str, said: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["matrix", str(SEED), "--axis", option]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(said), line


def test_matrix_axis_crosses_as_the_flags_do(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """`--axis NAME=VALUES` and the axis flags reach pytest alike (`--ipv6` alone: true; TOML's
    true and the older yes are one value)."""
    import pytest as pytest_module
    seen: list[list[str]] = []
    monkeypatch.setattr(cli, "_preflight", lambda **_: None)
    monkeypatch.setattr(cli, "_partial", [])
    monkeypatch.setattr(pytest_module, "main", lambda argv: seen.append(argv) or 5)
    for axes in (["--axis", "ipv6=true", "--axis", "start_order=dockerd+libvirt,libvirt+dockerd"],
                 ["--ipv6", "--start-order", "dockerd+libvirt,libvirt+dockerd"],
                 ["--ipv6", "yes", "--start-order", "dockerd+libvirt", "--start-order", "libvirt+dockerd"]):
        assert cli.main(["matrix", str(SEED), "--out", str(tmp_path), *axes]) == 2   # pytest ran nothing
    crossed = [sorted(arg for arg in argv if arg.startswith("--coexist-axis=")) for argv in seen]
    assert crossed[0] == ["--coexist-axis=ipv6=true", "--coexist-axis=start_order=dockerd+libvirt,libvirt+dockerd"]
    assert crossed[1] == crossed[2] == crossed[0]
    assert capsys.readouterr().err.count("before any scenario ran") == 3
