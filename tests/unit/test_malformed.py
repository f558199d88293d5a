"""Bad input, as a bug reporter or a typo hands it over: one line naming file, field and what is
allowed, exit 2, never a traceback (the corpus in data/malformed/, plus what cannot be committed:
unreadable, special and huge files, and CLI values)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from coexist import cli

CORPUS = Path(__file__).parent / "data" / "malformed"

# file -> (the field the error names, words of what it says)
EXPECTED = {
    "bad-table-header.toml": ("file", "not valid TOML: Expected ']'"),
    "binary.toml": ("file", "binary data (NUL bytes)"),
    "bookworm-nftables-backend.toml": ("host", "libvirt 9.0 (bookworm) has no firewall_backend"),
    "case-unknown-axis.toml": ("case[0].kernel", "unknown key; allowed: release"),
    "case-unknown-step.toml": ("case[0].expect.nosuchstep", "no such step; steps: boot"),
    "comment-only.toml": ("scenario.name", "is required"),
    "cp1252-quotes.toml": ("file", "not UTF-8 (byte 0x93 at offset 33); save it as UTF-8"),
    "deep-array-in-scenario.toml": ("file", "nested too deeply"),
    "deep-array.toml": ("file", "nested too deeply"),
    "deep-inline-table.toml": ("file", "nested too deeply"),
    "duplicate-key.toml": ("file", "not valid TOML: Cannot overwrite a value"),
    "empty.toml": ("scenario.name", "is required"),
    "expect-bad-state.toml": ("step[0].expect.state", "'maybe' is not allowed; allowed: online"),
    "expect-unknown-key.toml": ("step[0].expect.reachable", "unknown key; allowed: state"),
    "expect-wrong-type.toml": ("step[0].expect.dns", "must be a boolean, got 'yes'"),
    "fix-needs-unstarted-daemon.toml": ("host", "needs firewalld, which host.start_order does not start"),
    "guest-unknown-network.toml": ("guest[0].network", "'nowhere' is not allowed; allowed: default"),
    "gzipped.toml": ("file", "binary data (NUL bytes)"),
    "inline-fix-no-commands.toml": ("fix.mine.commands", "is required"),
    "latin1.toml": ("file", "not UTF-8 (byte 0xe9 at offset 36)"),
    "name-300.toml": ("scenario.name", "(302 characters): letters, digits"),
    "name-dotdot.toml": ("scenario.name", "'../../../../x': letters, digits"),
    "name-empty.toml": ("scenario.name", "'': letters, digits"),
    "name-leading-dot.toml": ("scenario.name", "'.hidden': letters, digits"),
    "name-missing.toml": ("scenario.name", "is required"),
    "name-newline.toml": ("scenario.name", "'a\\nb': letters, digits"),
    "name-not-a-string.toml": ("scenario.name", "must be a string, got 5"),
    "name-slash.toml": ("scenario.name", "'a/b': letters, digits"),
    "name-unicode.toml": ("scenario.name", "'séed': letters, digits"),
    "network-bad-cidr.toml": ("network[0].ipv4", "'192.168.999.0/24' is no IPv4 subnet"),
    "network-bad-forward.toml": ("network[0].forward", "'teleport' is not allowed; allowed: nat"),
    "not-toml-json.toml": ("file", "not valid TOML: Invalid statement"),
    "not-toml-yaml.toml": ("file", "not valid TOML: Expected '='"),
    "old-expect-table.toml": ("[expect]", "unknown table; allowed: scenario"),
    "port-boolean.toml": ("workload.published_port", "must be an integer, got true"),
    "port-out-of-range.toml": ("workload.published_port", "must be 1..65535, got 70000"),
    "port-string.toml": ("workload.published_port", "must be an integer, got '8080'"),
    "release-number.toml": ("host.release", "must be a string, got 13"),
    "release-unknown.toml": ("host.release", "'sid' is not allowed; allowed: bookworm, trixie, forky"),
    "run-not-a-list.toml": ("step[1].run", "must be an array, got 'iptables"),
    "scenario-not-a-table.toml": ("scenario", "must be a table"),
    "settle-string.toml": ("step[0].settle", "must be a number, got '30s'"),
    "start-order-string.toml": ("host.start_order", "must be an array, got 'firewalld,dockerd'"),
    "start-order-twice.toml": ("host.start_order", "names a daemon twice"),
    "start-order-unknown-daemon.toml": ("host.start_order", "'podman' is not allowed; allowed: firewalld"),
    "step-duplicate-id.toml": ("step[1].id", "two steps are called 'a'"),
    "step-no-kind.toml": ("step[0]", "give exactly one of do, run, event, fix, revert, axis"),
    "step-not-an-array.toml": ("step", "must be an array of tables ([[step]])"),
    "step-two-kinds.toml": ("step[0]", "not do and event"),
    "step-unknown-event.toml": ("step[1].event", "'firewalld-explode' is not allowed; did you mean 'firewalld-reload'? allowed: firewalld-reload"),
    "step-unknown-fix.toml": ("step[1].fix", "unknown fix 'make-it-work'; allowed: seed-firewalld-direct"),
    "sysctl-not-net.toml": ("host.sysctl.kernel.panic", "only network sysctls (net.*)"),
    "unclosed-string.toml": ("file", "not valid TOML: Illegal character"),
    "unknown-host-key.toml": ("host.kernel", "unknown key; allowed: release"),
    "unknown-table.toml": ("[hosts]", "unknown table; did you mean 'host'? allowed: scenario"),
    "unterminated-array.toml": ("file", "not valid TOML: Unclosed array"),
    "utf16.toml": ("file", "UTF-16 text; save it as UTF-8"),
    "whitespace-only.toml": ("scenario.name", "is required"),
}


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err
    return lines[0]


# files with more than one mistake: each is said (an empty file has neither name nor steps)
SEVERAL = {"comment-only.toml": 2, "empty.toml": 2, "whitespace-only.toml": 2,
           "scenario-not-a-table.toml": 2}


def test_the_corpus_is_all_listed_and_large_enough() -> None:
    assert sorted(p.name for p in CORPUS.glob("*.toml")) == sorted(EXPECTED)
    assert len(EXPECTED) >= 40


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_malformed_file_is_said_line_by_line_naming_file_and_field(name: str,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    field, words = EXPECTED[name]
    path = CORPUS / name
    assert cli.main(["check", str(path)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert "Traceback" not in captured.err
    assert len(lines) == SEVERAL.get(name, 1), captured.err
    assert all(re.match(rf"{re.escape(str(path))}(:\d+)?: [^ ]+: ", line) for line in lines), lines
    assert any(re.match(rf"{re.escape(str(path))}(:\d+)?: {re.escape(field)}: .*{re.escape(words)}", line)
               for line in lines), lines


def test_check_reports_every_bad_file_not_only_the_first(capsys: pytest.CaptureFixture[str]) -> None:
    good = Path(__file__).parents[2] / "scenarios" / "control-no-docker.toml"
    bad = [CORPUS / "latin1.toml", CORPUS / "deep-array.toml", CORPUS / "name-dotdot.toml"]
    assert cli.main(["check", str(bad[0]), str(good), str(bad[1]), str(bad[2])]) == 2
    captured = capsys.readouterr()
    assert [line.split(":")[0] for line in captured.err.splitlines()] == [str(p) for p in bad]
    assert f"{good}: ok" in captured.out


def test_a_real_process_prints_no_traceback_for_the_worst_files() -> None:
    worst = [CORPUS / n for n in ("deep-array.toml", "binary.toml", "utf16.toml", "name-300.toml")]
    result = subprocess.run([sys.executable, "-m", "coexist.cli", "check", *map(str, worst)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) == len(worst)


def test_files_that_cannot_be_committed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    huge = tmp_path / "huge.toml"
    huge.write_text('[scenario]\nname = "m"\nsummary = "' + "x" * 1_100_000 + '"\n')
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    dangling = tmp_path / "dangling.toml"
    dangling.symlink_to(tmp_path / "gone.toml")
    folder = tmp_path / "folder.toml"
    folder.mkdir()
    cases = {huge: "larger than 1000000 bytes", fifo: "not a regular file", "/dev/zero": "not a regular file",
             dangling: "no such scenario file", folder: "is a folder", tmp_path / "nope.toml": "no such scenario file"}
    for path, words in cases.items():
        assert cli.main(["check", str(path)]) == 2
        line = one_error_line(capsys)
        assert line.startswith(f"{path}: file: ") and words in line, line


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv")
def test_an_unreadable_file(tmp_path: Path) -> None:
    secret = tmp_path / "secret.toml"
    shutil.copy(Path(__file__).parents[2] / "scenarios" / "control-no-docker.toml", secret)
    secret.chmod(0)
    tmp_path.chmod(0o755)
    repo = Path(__file__).parents[2]
    result = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                             sys.executable, "-m", "coexist.cli", "check", str(secret)],
                            capture_output=True, text=True, timeout=60, cwd=repo,
                            env={"PATH": os.environ["PATH"], "PYTHONPATH": str(repo)})
    assert result.returncode == 2, result.stderr
    assert result.stderr == f"{secret}: file: cannot read it: Permission denied\n"


@pytest.mark.parametrize("argv, words", [
    (["images", "--release", "sid"], "argument --release: invalid choice: 'sid'"),
    (["matrix", "scenarios", "--release", ","], "argument --release: an empty value in ','"),
    (["matrix", "scenarios", "--release", "trixie,sid"], "'sid' in 'trixie,sid'; allowed: bookworm"),
    (["matrix", "scenarios", "--start-order", "firewalld+firewalld"], "names a service twice"),
    (["matrix", "scenarios", "--after-fix", "firewalld-explode"], "'firewalld-explode'; did you mean"),
    (["matrix", "scenarios", "--libvirt-firewall-backend", "nft"], "'nft'; allowed: default"),
    (["matrix", "scenarios", "--libvirt-backend", "nft"], "'nft'; allowed: default"),   # the old spelling
    (["run", "scenarios/control-no-docker.toml", "--release", "buster"], "'buster'; allowed: bookworm"),
])
def test_cli_values_outside_their_choices(argv: list[str], words: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        cli.main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err
    assert len(err.splitlines()) == 1 and err.endswith(" --help)\n"), err   # no usage block


def test_matrix_of_an_empty_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["matrix", str(tmp_path)]) == 2
    assert one_error_line(capsys) == f"coexist: {tmp_path}: no scenario files (*.toml) in this folder"


def test_a_run_with_a_file_as_artifacts_root_is_refused_before_anything_starts(
        capsys: pytest.CaptureFixture[str]) -> None:
    if os.geteuid() != 0:
        pytest.skip("as non-root, preflight stops at root first")
    scenario = Path(__file__).parents[2] / "scenarios" / "control-no-docker.toml"
    assert cli.main(["run", str(scenario), "--artifacts", "/etc/passwd"]) == 2
    line = one_error_line(capsys)
    assert line == "coexist: preflight: artifacts root /etc/passwd: /etc/passwd is not a folder"


def test_preflight_says_not_root_first(monkeypatch: pytest.MonkeyPatch) -> None:
    from coexist import preflight

    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert preflight.problems(artifacts_root=Path("artifacts"), build_host=True, build_guest=True) == [
        "not root: coexist builds namespaces, mounts and bridges (run it with sudo)"]


@pytest.mark.skipif(os.geteuid() != 0, reason="preflight past the root check needs root")
def test_preflight_names_a_cache_that_is_a_file_and_a_full_disk(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from coexist import preflight

    blocker = tmp_path / "cache"
    blocker.write_text("not a folder")
    monkeypatch.setenv("COEXIST_CACHE", str(blocker))
    monkeypatch.setattr(preflight, "IMAGE_BUILD_BYTES", 10**18)
    found = preflight.problems(artifacts_root=tmp_path / "artifacts", build_host=True, build_guest=False)
    assert found == [f"image cache ($COEXIST_CACHE) {blocker}: {blocker} is not a folder"]
    monkeypatch.setenv("COEXIST_CACHE", str(tmp_path / "fresh"))
    found = preflight.problems(artifacts_root=tmp_path / "artifacts", build_host=True, build_guest=False)
    assert len(found) == 1 and "GB free, needs 1000000000.0 GB" in found[0]


@pytest.mark.skipif(os.geteuid() != 0, reason="a read-only mount needs root (in a private mount namespace)")
def test_a_read_only_cache_is_one_preflight_line(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    repo = Path(__file__).parents[2]
    script = (f"mount -t tmpfs -o ro tmpfs {cache} && "
              f"exec {sys.executable} -m coexist.cli images --release trixie")
    result = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                            capture_output=True, text=True, timeout=60, cwd=repo,
                            env={**os.environ, "COEXIST_CACHE": str(cache), "PYTHONPATH": str(repo)})
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines()[-1] == (
        f"coexist: preflight: image cache ($COEXIST_CACHE) {cache} is not writable: Read-only file system")
    assert "Traceback" not in result.stderr
