"""The HTML report as a person sees it: headless Chromium (Debian's package; Chrome on GitHub's
runners) renders a report made from a recorded run's JSON at laptop width (1366 px). It fails on
horizontal overflow, on a link to evidence that is not there, and on a cell whose colour is not
its outcome's. The checks are shown to fail on pages made to fail them."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from coexist.report.matrix import COLOURS, read_report, write_reports

pytestmark = pytest.mark.e2e
RECORDED = Path(__file__).resolve().parents[1] / "unit" / "data" / "report-trixie-2026-12-06"
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
# after the page has loaded: its overflow and each cell's outcome and painted colour, as JSON
CHECK = """<script>
window.addEventListener('load', () => {
  const seen = {overflow: document.documentElement.scrollWidth - window.innerWidth, cells: []};
  for (const td of document.querySelectorAll('td[data-outcome]')) {
    seen.cells.push([td.dataset.outcome, getComputedStyle(td).backgroundColor]);
  }
  const pre = document.createElement('pre');
  pre.id = 'coexist-check';
  pre.textContent = JSON.stringify(seen);
  document.body.appendChild(pre);
});
</script>"""


def browser() -> str:
    found = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    if found is None:
        if os.environ.get("COEXIST_REQUIRE_E2E") == "1":
            pytest.fail(f"none of {', '.join(BROWSERS)} (ci/setup installs Debian's chromium)")
        pytest.skip(f"none of {', '.join(BROWSERS)}")
    return found


def seen(page: Path, tmp_path: Path) -> dict[str, Any]:
    """What the browser made of `page` at 1366 px."""
    checked = page.with_name(f"checked-{page.name}")   # beside it: its links resolve the same
    checked.write_text(page.read_text() + CHECK)
    done = subprocess.run([browser(), "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--window-size=1366,900", "--virtual-time-budget=3000", "--dump-dom",
                           checked.as_uri()], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HOME": str(tmp_path)})
    found = re.search(r'<pre id="coexist-check">(.*?)</pre>', done.stdout, re.S)
    assert found, f"the browser did not render the page: {done.stderr[-2000:]}"
    return json.loads(found.group(1).replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">"))


def rgb(colour: str) -> str:
    red, green, blue = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgb({red}, {green}, {blue})"


def problems(report: Path, tmp_path: Path) -> list[str]:
    found = []
    page = seen(report, tmp_path)
    if page["overflow"] > 0:
        found.append(f"{page['overflow']} px wider than 1366 px")
    found += [f"a {outcome} cell painted {painted}" for outcome, painted in page["cells"]
              if painted != rgb(COLOURS[outcome])]
    found += [f"a link to {link}, which is not there" for link in
              re.findall(r'href="([^"]+)"', report.read_text()) if not (report.parent / link).exists()]
    return found


@pytest.fixture
def report(tmp_path: Path) -> Path:
    """The report made again, now, from the recorded run's JSON and evidence."""
    out = tmp_path / "report"
    shutil.copytree(RECORDED / "scenarios", out / "scenarios")   # the evidence, moved elsewhere
    rows = [dataclasses.replace(row, artifacts=str(out / Path(row.artifacts).relative_to(RECORDED)))
            for row in read_report(RECORDED)]
    write_reports(rows, out, total=4, seconds=48)
    return out / "matrix.html"


def test_the_report_fits_a_laptop_links_its_evidence_and_paints_each_outcome(report: Path,
                                                                             tmp_path: Path) -> None:
    assert problems(report, tmp_path) == []
    cells = seen(report, tmp_path)["cells"]
    assert {outcome for outcome, _ in cells} >= {"online", "docker", "cut", "none"}, cells


def test_the_checks_see_a_page_too_wide_a_wrong_colour_and_a_missing_evidence(report: Path,
                                                                             tmp_path: Path) -> None:
    text = report.read_text()
    broken = text.replace("data-outcome=online", "data-outcome=cut", 1)
    broken = broken.replace("verdict.txt", "verdict.missing", 1)
    broken = broken.replace("<h1>", "<div style='width:2000px'>too wide</div><h1>", 1)
    report.write_text(broken)
    found = problems(report, tmp_path)
    assert any("wider than 1366 px" in p for p in found), found
    assert any(p.startswith("a cut cell painted rgb(191, 232, 191)") for p in found), found
    assert any("verdict.missing, which is not there" in p for p in found), found
