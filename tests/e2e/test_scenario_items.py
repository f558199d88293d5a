"""`pytest scenarios/`: scenario files run as test items, the verdict is the failure report, the
upstream link a JUnit property, and the matrix report is written from the items' results."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def test_scenario_items_pass_fail_with_their_verdict_and_make_the_matrix(tmp_path: Path) -> None:
    folder = tmp_path / "scenarios"
    folder.mkdir()
    control = (ROOT / "scenarios" / "control-no-docker.toml").read_text()
    (folder / "control-no-docker.toml").write_text(control)
    wrong = control.replace('name = "control-no-docker"', 'name = "control-expects-the-symptom"')
    wrong = wrong.replace('expect = { state = "online", forward_policy', 'expect = { state = "symptom", forward_policy')
    assert wrong.count('"symptom"') == 1
    (folder / "control-expects-the-symptom.toml").write_text(wrong)
    # scenario files are items when asked: here by the ini setting, given on the command line
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", str(folder),
                             "-o", "coexist_scenarios=scenarios/*.toml",
                             "--coexist-artifacts", str(tmp_path / "artifacts"),
                             "--junitxml", str(tmp_path / "junit.xml")],
                            capture_output=True, text=True, timeout=900, cwd=tmp_path)
    out = result.stdout
    assert result.returncode == 1, out[-4000:]
    assert "1 failed, 1 passed" in out, out[-4000:]
    assert "UNEXPECTED" in out and "Traceback" not in out, out[-4000:]
    report = (tmp_path / "artifacts" / "matrix" / "matrix.md").read_text()
    assert "2/2 runs: 1 as expected, 1 unexpected" in report, report
    assert (tmp_path / "artifacts" / "matrix" / "matrix.html").is_file()
    cases = list(ET.parse(tmp_path / "junit.xml").getroot().iter("testcase"))
    upstream = {c.get("name"): [p.get("value") for p in c.iter("property") if p.get("name") == "upstream"]
                for c in cases}
    assert upstream == {name: ["control for seed-firewalld-direct"] for name in upstream}, upstream
    for case in cases:   # where its evidence is, and what it ran on
        properties = {p.get("name"): p.get("value") for p in case.iter("property")}
        assert properties["release"] == "trixie" and properties["accelerator"] in ("kvm", "tcg"), properties
        assert Path(properties["artifacts"], "verdict.txt").is_file(), properties
