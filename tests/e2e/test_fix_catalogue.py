"""Every fix of the catalogue, for real, against the recorded table (measured.json): one release
each (trixie, or the first where the fix applies), on the seed's setup, as `coexist fixes` runs it:
in warm labs (a lab per release and worker, reset between fixes), while the recorded table was
measured in a fresh lab per fix, so a reset that changed an outcome is a mismatch here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from coexist.images.built import build_images
from coexist.pytest_plugin import setting
from coexist.report import catalogue as report
from coexist.report.matrix import Row
from coexist.run.runner import run_scenario
from coexist.run.warm import WarmLabs
from coexist.scenario import catalogue
from coexist.scenario.model import load

pytestmark = pytest.mark.e2e
SETUP = catalogue.setups()["seed"]
PREFERRED = ("trixie", "forky", "bookworm")


def plan_for(fix: str, release: str | None) -> catalogue.Planned:
    """The fix on the release given, or on the first of PREFERRED where it applies."""
    chosen = catalogue.chosen([fix])[0]
    plans = [SETUP.plan(chosen, r) for r in ([release] if release else PREFERRED)]
    return next((p for p in plans if p.not_applicable is None), plans[0])


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "fix" in metafunc.fixturenames:   # by release: a worker's warm lab serves a run of them
        names = [fix.name for fix in catalogue.chosen(None)]
        metafunc.parametrize("fix", sorted(names, key=lambda name: PREFERRED.index(plan_for(name, None).release)))


@pytest.fixture(scope="module")
def warm_labs(request: pytest.FixtureRequest) -> Iterator[WarmLabs]:
    labs = WarmLabs(Path(setting(request.config, "artifacts")).resolve() / "labs")
    yield labs
    labs.close()


def test_a_fix_does_on_its_release_what_the_recorded_table_says(fix: str, artifacts: Path, warm_labs: WarmLabs,
                                                                 request: pytest.FixtureRequest) -> None:
    plan = plan_for(fix, setting(request.config, "release"))
    if plan.not_applicable:
        pytest.skip(f"{plan.release}: {plan.not_applicable}")
    assert plan.expected, f"nothing recorded for {fix} on {plan.release} (setup seed): record it first"
    scenario = load(plan.write(artifacts / "scenario"))
    verdict = run_scenario(scenario, artifacts=artifacts, images=build_images(plan.release), warm=warm_labs)
    row = report.rows([plan], [Row(scenario, verdict)])[0]
    print("\n".join(f"{column}: {cell.text} ({cell.reason})" for column, cell in row.cells.items()))
    assert row.restores is not None or row.cells["fix"].text == "nothing to fix", verdict.render()
    assert not row.mismatches, "\n".join(row.mismatches) + "\n\n" + verdict.render()


def test_coexist_fixes_writes_the_table_a_person_and_a_program_read(tmp_path: Path) -> None:
    """The command as a user runs it: one fix that runs on trixie, one that does not apply there."""
    import json

    from coexist import cli

    out = tmp_path / "fixes"
    code = cli.main(["fixes", "--release", "trixie", "--fix", "forward-accept,docker-ip-forward-no-drop",
                     "--out", str(out)])
    data = json.loads((out / "fixes.json").read_text())
    rows = {row["fix"]: row for row in data["rows"]}
    assert code == 0, rows
    assert rows["docker-ip-forward-no-drop"]["not_applicable"].endswith("not on trixie")
    assert rows[catalogue.CONTROL.name]["cells"]["fix"]["text"] == "nothing applied (the control)"
    assert rows["forward-accept"]["cells"]["fix"]["text"] == catalogue.setups()["seed"].plan(
        catalogue.chosen(["forward-accept"])[0], "trixie").expected["fix"]
    assert (out / rows["forward-accept"]["evidence"]).is_file()
    assert "data-colour=" in (out / "fixes.html").read_text()
