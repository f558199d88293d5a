"""CI on a KVM runner, as far as it can be checked here: the workflow's YAML and ci/setup's distro branch.

Neither is run for real here (no GitHub runner; ci/setup would install packages): the workflow is
parsed and its jobs and steps checked, each step's shell script is syntax-checked with `bash -n`,
and ci/setup is run with a fake /etc/os-release in its `--list-packages` mode, with apt-get and
dpkg-query stubbed to prove they are never called.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from coexist.images.hostimage import DEBIAN_KEYRING
from coexist.scenario.axes import RELEASES

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / "ci" / "github-actions.yml"


@pytest.fixture(scope="module")
def workflow() -> dict[Any, Any]:
    yaml = pytest.importorskip("yaml", reason="PyYAML is in the dev extra: pip install -e '.[dev]'")
    data = yaml.safe_load(WORKFLOW.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def steps(workflow: dict[Any, Any]) -> list[dict[str, Any]]:
    return list(workflow["jobs"]["e2e"]["steps"])


def step_running(steps: list[dict[str, Any]], pattern: str) -> dict[str, Any]:
    found = [s for s in steps if re.search(pattern, s.get("run", ""))]
    assert len(found) == 1, f"one step runs {pattern!r}: {found}"
    return found[0]


def test_the_workflow_runs_on_push_and_pull_requests(workflow: dict[Any, Any]) -> None:
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert {"push", "pull_request"} <= set(triggers)
    assert list(workflow["jobs"]) == ["e2e", "catalogue", "catalogue-report"]


def test_the_catalogue_runs_as_shards_merged_by_a_last_job(workflow: dict[Any, Any]) -> None:
    shards = workflow["jobs"]["catalogue"]
    count = len(shards["strategy"]["matrix"]["shard"])
    run = " ".join(step.get("run", "") for step in shards["steps"])
    assert f"coexist fixes --shard ${{{{ matrix.shard }}}}/{count}" in run
    merge = workflow["jobs"]["catalogue-report"]
    assert merge["needs"] == "catalogue"
    merged = " ".join(step.get("run", "") for step in merge["steps"])
    assert "coexist report merge" in merged and merged.count("catalogue-part-") == count


def test_the_release_matrix_is_spread_over_jobs_on_a_kvm_runner(workflow: dict[Any, Any]) -> None:
    job = workflow["jobs"]["e2e"]
    assert job["runs-on"] == "ubuntu-24.04"  # hosted Ubuntu with /dev/kvm; python3 >= 3.11
    assert job["strategy"]["matrix"]["release"] == list(RELEASES)
    assert job["strategy"]["fail-fast"] is False
    assert "${{ matrix.release }}" in job["name"]


def test_steps_enable_kvm_set_up_test_and_upload_artifacts_on_failure(
    steps: list[dict[str, Any]],
) -> None:
    assert steps[0]["uses"].startswith("actions/checkout@")
    kvm = step_running(steps, r"udev")
    assert 'KERNEL=="kvm"' in kvm["run"] and "/etc/udev/rules.d/" in kvm["run"]
    assert "udevadm trigger --name-match=kvm" in kvm["run"]
    setup = step_running(steps, r"^sudo ci/setup$")
    test = step_running(steps, r"^sudo ci/test ")
    assert '--coexist-release "${{ matrix.release }}"' in test["run"]
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["if"] == "failure()"
    assert upload["with"]["path"] == "artifacts/"  # the plugin's coexist_artifacts default
    assert "${{ matrix.release }}" in upload["with"]["name"]  # one upload per job, no clash
    assert steps.index(kvm) < steps.index(setup) < steps.index(test) < steps.index(upload)


def test_every_steps_script_is_valid_bash(steps: list[dict[str, Any]]) -> None:
    for step in steps:
        if "run" in step:
            script = re.sub(r"\$\{\{[^}]*\}\}", "x", step["run"])  # GitHub expressions
            result = subprocess.run(["bash", "-n", "-c", script], capture_output=True, text=True)
            assert result.returncode == 0, f"{step.get('name')}: {result.stderr}"


def test_readme_says_where_the_workflow_goes_and_that_it_was_not_run_here() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "ci/github-actions.yml" in readme and ".github/workflows/" in readme
    assert "not been run" in readme


@pytest.fixture
def no_apt(tmp_path: Path) -> dict[str, str]:
    """An environment whose apt-get, dpkg-query and pip record a call and fail."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("apt-get", "dpkg-query", "pip", "python3"):
        stub = bin_dir / tool
        stub.write_text(f'#!/bin/sh\necho {tool} >> "{tmp_path}/called"\nexit 1\n')
        stub.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}


def list_packages(tmp_path: Path, env: dict[str, str], os_release: str) -> tuple[int, str]:
    fake = tmp_path / "os-release"
    fake.write_text(os_release)
    result = subprocess.run([str(ROOT / "ci" / "setup"), "--list-packages"], capture_output=True,
                            text=True, env={**env, "COEXIST_OS_RELEASE": str(fake)})
    assert not (tmp_path / "called").exists(), "ci/setup --list-packages must install nothing"
    return result.returncode, result.stdout + result.stderr


UBUNTU = 'NAME="Ubuntu"\nVERSION_ID="24.04"\nID=ubuntu\nID_LIKE=debian\n'
DEBIAN = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nVERSION_ID="12"\nID=debian\n'
MINT = 'NAME="Linux Mint"\nID=linuxmint\nID_LIKE="ubuntu debian"\n'
FEDORA = 'NAME="Fedora Linux"\nID=fedora\n'


def test_ci_setup_on_ubuntu_adds_debians_archive_keyring(tmp_path: Path, no_apt: dict[str, str]) -> None:
    code, output = list_packages(tmp_path, no_apt, UBUNTU)
    assert code == 0, output
    distro, packages = output.strip().split(": ")
    assert distro == "ubuntu"
    assert {"debootstrap", "debian-archive-keyring", "libvirt-dev", "python3-venv"} <= set(packages.split())
    # the keyring that package installs is the one the host image build hands debootstrap
    assert DEBIAN_KEYRING == Path("/usr/share/keyrings/debian-archive-keyring.gpg")


def test_ci_setup_on_debian_needs_no_extra_keyring(tmp_path: Path, no_apt: dict[str, str]) -> None:
    code, output = list_packages(tmp_path, no_apt, DEBIAN)
    assert code == 0, output
    distro, packages = output.strip().split(": ")
    assert distro == "debian"
    assert "debootstrap" in packages.split() and "debian-archive-keyring" not in packages.split()


def test_ci_setup_treats_an_ubuntu_derivative_as_ubuntu(tmp_path: Path, no_apt: dict[str, str]) -> None:
    code, output = list_packages(tmp_path, no_apt, MINT)
    assert code == 0 and output.startswith("ubuntu: "), output


def test_ci_setup_refuses_other_distributions(tmp_path: Path, no_apt: dict[str, str]) -> None:
    code, output = list_packages(tmp_path, no_apt, FEDORA)
    assert code == 2 and "Debian or Ubuntu only" in output and "ID=fedora" in output


def _setup_with(tmp_path: Path, stubs: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """ci/setup as root on a Debian whose packages are all there (dpkg-query says so), with these
    tools stubbed; its log in tmp_path."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool, script in {"dpkg-query": "echo 'install ok installed'", **stubs}.items():
        (bin_dir / tool).write_text(f"#!/bin/sh\n{script}\n")
        (bin_dir / tool).chmod(0o755)
    fake = tmp_path / "os-release"
    fake.write_text('ID=debian\nVERSION_ID="12"\n')
    return subprocess.run([str(ROOT / "ci" / "setup")], capture_output=True, text=True,
                          env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}",
                               "COEXIST_OS_RELEASE": str(fake), "COEXIST_SETUP_LOG": str(tmp_path / "log")})


@pytest.mark.skipif(os.geteuid() != 0, reason="ci/setup runs as root")
def test_setup_refuses_an_old_python_before_pip_in_one_line(tmp_path: Path) -> None:
    old = "case \"$*\" in *version_info*) exit 1;; *python_version*) echo 3.9.2;; esac"
    result = _setup_with(tmp_path, {"python3": old})
    assert result.returncode == 2
    assert result.stderr.strip() == ("ci/setup: coexist needs Python 3.11 or newer; this machine's "
                                      "python3 is 3.9.2 (Debian 12 and Ubuntu 24.04 have 3.11 and 3.12)")


@pytest.mark.skipif(os.geteuid() != 0, reason="ci/setup runs as root")
def test_setup_prints_a_line_per_phase_and_the_log_tail_when_one_fails(tmp_path: Path) -> None:
    # no apt lists: an update is due, and it fails after printing a lot
    result = _setup_with(tmp_path, {"apt-get": "seq 1 500; echo 'E: the mirror is gone'; exit 100",
                                    "ls": "true"})
    assert result.returncode == 100
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == f"ci/setup: apt-get update failed (exit 100); the end of {tmp_path / 'log'}:"
    assert lines[-1] == "E: the mirror is gone" and len(lines) == 31


def test_no_two_test_modules_share_a_basename() -> None:
    """tests/ has no __init__.py: pytest imports each module by its basename, so a unit and an e2e
    module of one name make the second one a collection error (it ended .ci/run's serial stage
    twice: test_catalogue.py, then test_upgrade.py)."""
    import collections

    tests = Path(__file__).resolve().parents[1]
    names = collections.Counter(path.name for path in tests.rglob("test_*.py"))
    assert [name for name, count in names.items() if count > 1] == []
