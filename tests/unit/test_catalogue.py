"""The fix catalogue without a lab: its setups and scenarios as data, and its report from
measured steps (recorded shapes, not a run)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from coexist import cli
from coexist.base.schema import toml_document
from coexist.guest.accel import AccelDecision
from coexist.net.connectivity import Connectivity, Probe
from coexist.report import catalogue as report
from coexist.report.matrix import Row
from coexist.report.results import Settled, StepResult
from coexist.report.verdict import CONTROL_BLIND, CONTROL_SEEN, Verdict, costs
from coexist.scenario import catalogue
from coexist.scenario.axes import RELEASES
from coexist.scenario.model import load

SEED = catalogue.setups()["seed"]


def test_every_fix_on_every_setup_and_release_is_a_scenario_or_says_why_not(tmp_path: Path) -> None:
    fixes = catalogue.chosen(None)
    assert len(fixes) >= 15
    for setup in catalogue.setups().values():
        for plan in catalogue.plan(setup, fixes, RELEASES):
            if plan.not_applicable:
                assert plan.not_applicable.startswith("step fix: fix "), plan.not_applicable
                continue
            scenario = load(plan.write(tmp_path / setup.name))
            assert scenario.name == plan.fix.name and scenario.host.release == plan.release
            assert [s.id for s in scenario.steps][:2] == ["boot", catalogue.FIX_STEP]


def test_why_a_fix_does_not_apply_names_the_release_or_the_daemon() -> None:
    nodrop = catalogue.chosen(["docker-ip-forward-no-drop"])
    reasons = {p.release: p.not_applicable for p in catalogue.plan(SEED, nodrop, RELEASES) if p.fix == nodrop[0]}
    assert reasons["forky"] is None
    assert "known on forky only, not on trixie" in (reasons["trixie"] or "")
    bridged = catalogue.setups()["bridged"]
    seed_fix = catalogue.plan(bridged, catalogue.chosen(["seed-firewalld-direct"]), ["trixie"])[1]
    assert "needs firewalld" in (seed_fix.not_applicable or "")
    # and a setup without firewalld has no reload to survive
    assert [step for step, _ in bridged.survival()] == ["after-docker-restart", "after-libvirtd-restart",
                                                         "after-guest-restart", "after-reboot"]


def test_a_release_without_the_setups_libvirt_backend_runs_its_only_one_and_says_so() -> None:
    plan = SEED.plan(catalogue.chosen(["docker-user-libvirt"])[0], "bookworm")
    assert "libvirt_firewall_backend" not in plan.data["host"]
    assert "bookworm" in (SEED.deviation("bookworm") or "") and SEED.deviation("trixie") is None
    assert plan.not_applicable is None


def test_written_toml_reads_back_equal() -> None:
    data = {"scenario": {"name": "x", "notes": ["a \"quoted\" é", "b\\c"]},
            "host": {"start_order": ["dockerd", "libvirt"], "ipv6": True, "docker": {"ip-forward": False}},
            "step": [{"do": "boot"}, {"fix": "f", "params": {"bridge": "virbr+"}, "settle": 2.5}]}
    assert tomllib.loads(toml_document(data)) == data


def test_unknown_fix_and_setup_are_one_line_each(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["fixes", "--fix", "seed-firewalld-dirct"]) == 2
    assert cli.main(["fixes", "--setup", "sed"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("coexist: --fix seed-firewalld-dirct: unknown fix; did you mean 'seed-firewalld-direct'?")
    assert err[1].startswith("coexist: --setup sed: unknown setup; did you mean 'seed'?")


# -- the report, from measured steps ------------------------------------------------------------
def reach(dns: bool, ping: bool, tcp: bool) -> Connectivity:
    return Connectivity(Probe("DNS", "nslookup", dns, ""), Probe("ping", "ping", ping, ""),
                        Probe("TCP", "nc", tcp, ""))


CUT, ONLINE = reach(True, False, False), reach(True, True, True)


def measured(folder: Path, fix: str, *steps: tuple[Connectivity, bool, bool],
             rules: str = "kept") -> tuple[catalogue.Planned, Row]:
    """A catalogue row as its run would measure it: per step of boot, the fix, after-reload,
    after-docker-restart and after-reboot, the guest's reach, the published port, Docker's
    isolation (the other events' steps measure what the step before them did; the fix applied
    again, what the reboot did, adding nothing); what firewalld's reload and restart did to
    Docker's rules (`rules`). `fix` "no-fix": the control row."""
    chosen = catalogue.CONTROL if fix == catalogue.CONTROL.name else catalogue.chosen([fix])[0]
    plan = SEED.plan(chosen, "trixie")
    scenario = load(plan.write(folder))
    given = dict(zip(["boot", "fix", "after-reload", "after-docker-restart", "after-reboot"], steps, strict=True))
    results, last = [], steps[0]
    for step in scenario.steps:
        conn, port, isolated = last = given.get(step.id, last)
        firewalld = step.id in ("after-reload", "after-firewalld-restart")
        results.append(StepResult(step, guests={"guest": Settled(conn, 1, 1.0, True)}, published_port=port,
                                  docker_isolation=isolated, docker_rules=(rules, "why") if firewalld else None))
    verdict = Verdict(scenario, {"docker.io": "26.1.5"}, AccelDecision("tcg", "test"), [], results)
    return plan, Row(scenario, verdict, evidence=f"scenarios/{fix}/verdict.txt")


def test_cells_say_what_happened_for_the_user_and_the_best_come_first(tmp_path: Path) -> None:
    good = measured(tmp_path, "docker-user-libvirt", (CUT, True, True), (ONLINE, True, True), (ONLINE, True, True),
                    (ONLINE, True, True), (ONLINE, True, True))
    costly = measured(tmp_path, "seed-firewalld-direct", (CUT, True, True), (ONLINE, True, False), (ONLINE, True, False),
                      (ONLINE, True, True), (CUT, True, True))
    useless = measured(tmp_path, "forward-accept-tagged", (CUT, True, True), (CUT, True, True), (CUT, True, True),
                       (CUT, True, True), (CUT, True, True))
    na = SEED.plan(catalogue.chosen(["docker-ip-forward-no-drop"])[0], "trixie")
    found = report.rows([good[0], costly[0], useless[0], na], [good[1], costly[1], useless[1]],
                        against_record=False)
    by_fix = {row.fix: row for row in found}

    assert by_fix["docker-user-libvirt"].free
    cells = by_fix["seed-firewalld-direct"].cells
    assert cells["boot"].text == "cut off (the symptom)" and cells["boot"].colour == "bad"
    assert (cells["fix"].text, cells["fix"].colour) == ("restored, but Docker isolation BROKEN", "cost")
    assert cells["after-docker-restart"].colour == "good"
    assert (cells["after-reboot"].text, cells["after-reboot"].colour) == ("LOST: cut off again", "bad")
    assert by_fix["seed-firewalld-direct"].costs == ["Docker isolation BROKEN (the fix)",
                                                     "guest LOST after a host reboot"]
    assert by_fix["forward-accept-tagged"].restores is False
    assert by_fix["docker-ip-forward-no-drop"].not_applicable

    picked = report.best(found, "trixie")
    assert picked["free"] == ["docker-user-libvirt"]
    assert picked["with_costs"] == ["seed-firewalld-direct (Docker isolation BROKEN (the fix); "
                                    "guest LOST after a host reboot)"]
    assert picked["not_restoring"] == ["forward-accept-tagged"]
    assert picked["not_applicable"] == ["docker-ip-forward-no-drop"]

    environment = {"coexist": "0", "date": "d", "command": "coexist fixes", "accelerator": ["tcg"],
                   "versions": {"trixie": {"docker.io": "26.1.5"}}}
    report.write_reports(SEED, found, tmp_path, environment=environment, seconds=12)
    data = json.loads((tmp_path / "fixes.json").read_text())
    assert data["best"]["trixie"]["free"] == ["docker-user-libvirt"]
    assert [row["free"] for row in data["rows"]] == [True, False, False, False]
    md = (tmp_path / "fixes.md").read_text()
    assert "restore the guest at no measured cost, best first: docker-user-libvirt" in md
    assert "[docker-user-libvirt](scenarios/docker-user-libvirt/verdict.txt)" in md
    assert "not applicable: step fix: fix docker-ip-forward-no-drop" in md
    page = (tmp_path / "fixes.html").read_text()
    assert page.count("data-colour=cost") == 3 and "href=\"scenarios/seed-firewalld-direct/verdict.txt\"" in page
    # the reports are made again from the JSON alone (a merged or recorded table)
    assert report.markdown(data) == md and report.page(data) == page


def test_a_guest_online_before_the_fix_is_nothing_to_fix_and_a_missing_run_says_so(tmp_path: Path) -> None:
    plan, row = measured(tmp_path, "forward-accept", (ONLINE, True, True), (ONLINE, True, True), (ONLINE, True, True),
                         (ONLINE, True, True), (ONLINE, True, True))
    other = SEED.plan(catalogue.chosen(["docker-user-router"])[0], "trixie")
    found = report.rows([plan, other], [row], against_record=False)
    assert found[0].cells["fix"].text == "nothing to fix" and found[0].restores is None
    assert found[1].error == "not run (the catalogue run stopped first)"
    assert report.best(found, "trixie")["nothing_to_fix"] == ["forward-accept"]


def test_the_record_keeps_what_every_run_agreed_on_and_a_new_run_is_compared_with_it(tmp_path: Path) -> None:
    def table(after_reboot: str) -> dict[str, object]:
        cells = {"fix": {"text": "restored", "colour": "good"},
                 "after-reboot": {"text": after_reboot, "colour": "bad"}}
        return {"setup": {"name": "seed"}, "rows": [{"release": "trixie", "fix": "forward-accept", "cells": cells,
                                                     "checks": {"policy": True}}]}

    made = catalogue.record([table("LOST: cut off again"), table("kept")], "two runs")
    assert made["setups"] == {"seed": {"trixie": {"forward-accept": {"cells": {"fix": "restored"},
                                                                     "checks": {"policy": True}}}}}
    assert made["varies"] == ["seed trixie forward-accept cells after-reboot: LOST: cut off again / kept"]

    plan, row = measured(tmp_path, "forward-accept", (CUT, True, True), (ONLINE, True, True),
                         (ONLINE, True, True), (ONLINE, True, True), (CUT, True, True))
    found = report._against(report.rows([plan], [row], against_record=False)[0], {"fix": "still cut off", "after-reboot": "LOST: cut off again"})
    assert found.mismatches == ["the fix: restored (recorded: still cut off)"]
    assert found.cells["after-reboot"].recorded == ""


def test_shards_split_the_rows_deterministically_each_row_in_exactly_one_part() -> None:
    planned = catalogue.plan(SEED, catalogue.chosen(None), RELEASES)
    parts = [catalogue.shard(planned, (k, 3)) for k in (1, 2, 3)]
    ids = [[(p.release, p.fix.name) for p in part] for part in parts]
    control = catalogue.CONTROL.name
    flat = [i for part in ids for i in part if i[1] != control]
    assert sorted(flat) == sorted((p.release, p.fix.name) for p in planned if p.fix.name != control)
    assert len(set(flat)) == len(flat)
    assert all([i for i in part if i[1] == control] == [(r, control) for r in RELEASES] for part in ids)
    assert ids == [[(p.release, p.fix.name) for p in catalogue.shard(planned, (k, 3))] for k in (1, 2, 3)]
    runnable = [len([p for p in part if p.not_applicable is None]) for part in parts]
    assert max(runnable) - min(runnable) <= 1 + len(RELEASES)   # the controls: in every part
    assert all(p.not_applicable is None for part in parts[1:] for p in part)   # those rows: part 1


def test_two_merged_shards_equal_one_run(tmp_path: Path) -> None:
    rows = [measured(tmp_path / "s", fix, (CUT, True, True), (ONLINE, True, True), (ONLINE, True, False),
                     (ONLINE, True, True), (CUT, True, True))
            for fix in ("no-fix", "docker-user-libvirt", "forward-accept", "docker-user-router")]
    planned = [plan for plan, _ in rows] + [SEED.plan(catalogue.chosen(["docker-ip-forward-no-drop"])[0], "trixie")]
    environment = {"coexist": "0", "date": "d", "command": "coexist fixes", "accelerator": ["tcg"],
                   "versions": {"trixie": {"docker.io": "26.1.5"}}}
    whole = tmp_path / "whole"
    whole.mkdir()
    report.write_reports(SEED, report.rows(planned, [row for _, row in rows], against_record=False), whole,
                         environment=environment, seconds=30)
    for k in (1, 2):
        part = tmp_path / f"part-{k}"
        part.mkdir()
        mine = catalogue.shard(planned, (k, 2))
        report.write_reports(SEED, report.rows(mine, [row for _, row in rows], against_record=False), part,
                             environment={**environment, "command": f"coexist fixes --shard {k}/2"}, seconds=10 + k)
    merged = tmp_path / "merged"
    assert cli.main(["report", "merge", "--out", str(merged), str(tmp_path / "part-2"), str(tmp_path / "part-1")]) == 0
    one, two = (json.loads((folder / "fixes.json").read_text()) for folder in (whole, merged))
    same = ("release", "fix", "cells", "restores", "costs", "free", "not_applicable", "error")
    assert [{k: r[k] for k in same} for r in two["rows"]] == [{k: r[k] for k in same} for r in one["rows"]]
    assert two["best"] == one["best"]
    assert [r["evidence"] for r in two["rows"]][1:4] == [f"../part-{1 if i != 1 else 2}/{r['evidence']}"
                                                        for i, r in enumerate(one["rows"][1:4])]
    assert two["environment"]["command"].startswith("coexist report merge")
    assert "coexist fixes --shard 1/2" in two["environment"]["command"]


def test_merge_refuses_what_is_not_a_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["report", "merge", "--out", str(tmp_path / "o"), str(tmp_path)]) == 2
    assert "neither fixes.json nor matrix.json" in capsys.readouterr().err


def test_a_later_part_replaces_an_earlier_ones_row_for_the_same_cell(tmp_path: Path) -> None:
    environment = {"coexist": "0", "date": "d", "command": "c", "accelerator": [], "versions": {}}
    for name, reboot in (("first", (CUT, True, True)), ("again", (ONLINE, True, True))):
        plan, row = measured(tmp_path / name, "forward-accept", (CUT, True, True), (ONLINE, True, True),
                             (ONLINE, True, True), (ONLINE, True, True), reboot)
        (tmp_path / name).mkdir(exist_ok=True)
        report.write_reports(SEED, report.rows([plan], [row], against_record=False), tmp_path / name, environment=environment, seconds=1)
    merged = report.merge([tmp_path / "first", tmp_path / "again"], tmp_path / "merged", command="m")
    assert len(merged) == 1 and merged[0].cells["after-reboot"].text == "kept"


def test_the_recorded_table_has_every_fix_that_runs_on_the_seeds_setup() -> None:
    """A fix added to fixes.toml is measured before it lands (bench/record_catalogue.py)."""
    missing = [f"{p.release} {p.fix.name}" for p in catalogue.plan(SEED, catalogue.chosen(None), RELEASES)
               if p.not_applicable is None and set(p.expected) != {
                   "boot", catalogue.FIX_STEP, *(step for step, _ in SEED.survival()), catalogue.AGAIN_STEP}]
    assert missing == []
    assert catalogue.recorded()["varies"] == []


def test_a_wrong_setup_names_its_own_field() -> None:
    with pytest.raises(catalogue.FieldError) as wrong:
        catalogue._setup("x", {"summary": "s", "host": {}, "workload": {}, "network": "wifi"})
    assert wrong.value.field == "network" and "'wifi' is not allowed" in wrong.value.problem


def test_the_cost_probes_are_costs_where_they_held_before_and_a_blind_probe_is_unexpected(tmp_path: Path) -> None:
    plan = SEED.plan(catalogue.chosen(["forward-accept"])[0], "trixie")
    scenario = load(plan.write(tmp_path))
    assert scenario.workload.probes == ("container_egress", "guests_closed", "containers_closed")
    boot = StepResult(scenario.steps[0], guests={"guest": Settled(CUT, 1, 1.0, True)}, container_egress=True,
                      guests_closed=True, containers_closed=True)
    fix = StepResult(scenario.steps[1], guests={"guest": Settled(ONLINE, 1, 1.0, True)}, container_egress=False,
                     guests_closed=False, containers_closed=False)
    assert costs(boot, fix) == ["container egress BROKEN", "guests OPEN to the outside",
                                "containers OPEN to the guests"]
    assert costs(fix, boot) == []   # closed again is no cost; nor is a probe that failed before
    verdict = Verdict(scenario, {}, AccelDecision("tcg", "test"), [], [boot, fix],
                      controls={"guests_closed": CONTROL_SEEN, "containers_closed": CONTROL_BLIND})
    assert verdict.mismatches()[-1].startswith("probe containers_closed is BLIND")
    boot.containers_closed = fix.containers_closed = None   # it never said "closed": nobody misled
    assert verdict.blind() == []
    again = Verdict.from_json(json.loads(verdict.dumps()), scenario)
    assert again.controls == verdict.controls and again.steps[1].guests_closed is False
    assert "guests from outside OPEN" in verdict.render()


def test_a_fix_whose_reload_flushes_dockers_rules_where_the_control_keeps_them_pays_for_it(tmp_path: Path) -> None:
    steps = ((CUT, True, True), (ONLINE, True, True), (ONLINE, True, True), (ONLINE, True, True), (ONLINE, True, True))
    control = measured(tmp_path / "c", "no-fix", *((CUT, True, True),) * 5)
    direct = measured(tmp_path / "d", "seed-firewalld-direct", *steps, rules="re-made")
    other = measured(tmp_path / "o", "docker-user-libvirt", *steps)
    pairs = [control, direct, other]
    found = {row.fix: row for row in report.rows([p for p, _ in pairs], [r for _, r in pairs], against_record=False)}

    cell = found["seed-firewalld-direct"].cells["after-reload"]
    assert (cell.text, cell.colour) == ("kept, but Docker's rules FLUSHED", "cost")
    assert cell.reason.endswith("without the fix (the control): kept")
    assert found["seed-firewalld-direct"].costs == ["Docker's rules FLUSHED (after firewall-cmd --reload)"]
    assert found["docker-user-libvirt"].free
    assert found["no-fix"].cells["fix"].text == "nothing applied (the control)"
    assert found["no-fix"].cells["again"].colour == "none"
    assert report.best(list(found.values()), "trixie")["not_restoring"] == []   # the control is no fix
    # where the control re-makes them too, it is what the host does anyway: no cost
    same = measured(tmp_path / "c2", "no-fix", *((CUT, True, True),) * 5, rules="re-made")
    again = report.rows([same[0], direct[0]], [same[1], direct[1]], against_record=False)
    assert again[1].free and again[1].docker_rules["after-reload"] == "re-made"
    # and without a control (not measured) the rules are information, not a cost
    alone = report.rows([direct[0]], [direct[1]], against_record=False)
    assert alone[0].free


def test_every_setup_in_one_command_a_report_folder_each_and_an_index(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """`coexist fixes --setup all`: each setup's runs through pytest in its own folder (pytest is
    not run here: the rows read "not run"), then an index of the setups' reports."""
    ran: list[list[str]] = []
    monkeypatch.setattr(cli, "_preflight", lambda **_: None)
    monkeypatch.setattr(pytest, "main", lambda argv: ran.append(argv) or 0)
    out = tmp_path / "all"
    code = cli.main(["fixes", "--setup", "all", "--release", "trixie", "--fix", "docker-ip-forward-no-drop",
                     "--out", str(out)])
    assert code == 3   # the controls did not run
    names = list(catalogue.setups())
    assert len(ran) == len(names)
    for name, argv in zip(names, ran, strict=True):
        files = [arg for arg in argv if arg.endswith(".toml")]
        assert files == [str(out / name / "scenarios" / "trixie" / "no-fix.toml")]
        rows = json.loads((out / name / "fixes.json").read_text())["rows"]
        assert [row["fix"] for row in rows] == ["no-fix", "docker-ip-forward-no-drop"]
    index = (out / "index.md").read_text()
    assert all(f"## [{name}]({name}/fixes.md)" in index for name in names)
    assert "not applicable here: docker-ip-forward-no-drop" in index
    assert 'href="seed/fixes.html"' in (out / "index.html").read_text()
    assert cli.main(["fixes", "--setup", "seed,brdged"]) == 2


def test_a_fix_run_alone_is_told_apart_from_the_recorded_control(tmp_path: Path) -> None:
    """The e2e tests run one fix without its control: the recorded control's rules stand in."""
    steps = ((CUT, True, True), (ONLINE, True, True), (ONLINE, True, True), (ONLINE, True, True), (ONLINE, True, True))
    direct = measured(tmp_path / "d", "seed-firewalld-direct", *steps, rules="re-made")
    found = report.against_control(report.rows([direct[0]], [direct[1]], against_record=False),
                                   {"trixie": {"after-reload": "kept"}})
    cell = found[0].cells["after-reload"]
    assert cell.text == "kept, but Docker's rules FLUSHED"
    assert cell.reason.endswith("without the fix (the recorded control): kept")
    record = catalogue.record([{"setup": {"name": "seed"}, "rows": [
        {"release": "trixie", "fix": "no-fix", "cells": {}, "docker_rules": {"after-reload": "kept"}}]}], "t")
    assert record["setups"]["seed"]["trixie"]["no-fix"]["docker_rules"] == {"after-reload": "kept"}
