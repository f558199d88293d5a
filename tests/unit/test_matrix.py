from __future__ import annotations

import json
from pathlib import Path

from coexist.guest.accel import AccelDecision
from coexist.net.connectivity import Connectivity, Probe
from coexist.report import matrix
from coexist.report.results import Settled, StepResult
from coexist.report.verdict import Verdict
from coexist.scenario.model import Scenario, parse

BASE = parse({
    "scenario": {"name": "seed", "summary": "s"},
    "workload": {"published_port": 8080},
    "step": [{"do": "boot", "expect": {"symptom": True}},
             {"fix": "seed-firewalld-direct", "expect": {"online": True, "published_port": True}},
             {"axis": "after_fix", "expect": {"online": True}}],
    "case": [{"release": "bookworm", "expect": {"boot": {"symptom": False}}, "note": "own rules"}],
})


def reach(dns: bool, ping: bool, tcp: bool, *ipv6: bool) -> Connectivity:
    six = tuple(Probe(w, w, ok, "") for w, ok in zip(("ping6", "TCP6"), ipv6, strict=False))
    return Connectivity(Probe("DNS", "nslookup", dns, ""), Probe("ping", "ping", ping, ""),
                        Probe("TCP", "nc", tcp, ""), ipv6=six)


def verdict(scenario: Scenario, *measured: Connectivity, port: bool = True) -> Verdict:
    results = []
    for step, conn in zip(scenario.steps, measured, strict=False):
        results.append(StepResult(step, guests={"guest": Settled(conn, 2, 4.0, True)},
                                  published_port=port))
    return Verdict(scenario, {}, AccelDecision("tcg", "test"), [], results)


def test_cross_makes_every_combination() -> None:
    variants = matrix.cross([BASE], {"release": ["bookworm", "trixie"],
                                     "start_order": [["dockerd", "libvirt", "firewalld"],
                                                     ["firewalld", "dockerd", "libvirt"]],
                                     "after_fix": []})
    assert len(variants) == 4
    assert {v.host.release for v in variants} == {"bookworm", "trixie"}
    assert variants[0].steps[0].expect.guest == {"symptom": False}
    assert variants[2].steps[0].expect.guest == {"symptom": True}


def test_cells_say_what_happened_and_mark_mismatches_apart(tmp_path: Path) -> None:
    trixie = BASE.variant(release="trixie", after_fix=["firewalld-reload"])
    bookworm = BASE.variant(release="bookworm", after_fix=["firewalld-reload"])
    online = reach(True, True, True)
    rows = [
        matrix.Row(trixie, verdict(trixie, reach(True, False, False), online, online)),
        matrix.Row(bookworm, verdict(bookworm, reach(True, False, False), reach(True, False, False),
                                     online, port=False)),
        matrix.Row(BASE.variant(release="forky"), error="RuntimeError: dockerd exited"),
    ]
    good = rows[0].cells()
    assert good["boot"] == matrix.Cell("symptom", "cut")   # cut off, as the file expects
    assert good["seed-firewalld-direct"] == matrix.Cell("online", "online")
    bad = rows[1].cells()
    assert bad["boot"].mismatch == "guest guest: symptom expected no, measured yes (DNS ok, ping FAILS, " \
                                   "TCP FAILS; symptom)"
    assert bad["seed-firewalld-direct"].text == "symptom; port lost"
    assert "published_port: expected reachable, measured UNREACHABLE" in bad["seed-firewalld-direct"].mismatch
    assert bad["after-fix"] == matrix.Cell("online; port lost", "docker")   # nothing expected of the port
    assert rows[2].cells()["boot"].colour == "error"

    matrix.write_reports(rows, tmp_path, total=3, seconds=12.0)
    report = json.loads((tmp_path / "matrix.json").read_text())
    assert report["summary"] == {"runs": 3, "planned": 3, "as_expected": 1, "unexpected": 1,
                                 "errors": 1, "unsupported": 0, "wall_seconds": 12.0}
    markdown = (tmp_path / "matrix.md").read_text()
    assert "| scenario / axes | bookworm: boot | bookworm: seed-firewalld-direct |" in markdown
    assert "**UNEXPECTED**" in markdown
    page = (tmp_path / "matrix.html").read_text()
    assert page.count("class='miss'") == 2 and matrix.COLOURS["docker"] in page
    assert matrix.COLOURS["online"] in page and matrix.COLOURS["error"] in page


def test_an_axis_step_without_events_is_left_out() -> None:
    assert [s.id for s in BASE.steps] == ["boot", "seed-firewalld-direct"]
    measured = verdict(BASE, reach(True, False, False), reach(True, True, True))
    assert measured.mismatches() == []
    with_events = BASE.variant(after_fix=["firewalld-reload"])
    measured = verdict(with_events, reach(True, False, False), reach(True, True, True),
                       reach(True, False, True))
    assert measured.mismatches() == [
        "[after-fix] guest guest: online expected yes, measured no (DNS ok, ping FAILS, TCP ok; partial)"]


def test_contradictions_of_the_post_are_listed() -> None:
    trixie = BASE.variant(release="trixie")
    online = verdict(trixie, reach(True, True, True), reach(True, True, True))
    assert matrix.contradictions(online) == ["no symptom after boot: guest DNS ok, ping ok, TCP ok"]
    cut = verdict(trixie, reach(True, False, False), reach(True, True, True))
    cut.steps[1].published_port = False
    assert matrix.contradictions(cut) == ["seed-firewalld-direct cuts Docker's published port off"]
    failed = verdict(trixie, reach(True, False, False), reach(True, False, False))
    assert matrix.contradictions(failed) == ["seed-firewalld-direct does not restore every guest"]


def test_ipv6_failing_beside_an_online_ipv4_is_shown() -> None:
    v6 = BASE.variant(ipv6=True)
    row = matrix.Row(v6, verdict(v6, reach(True, False, False, True, True), reach(True, True, True, False, False)))
    assert row.cells()["seed-firewalld-direct"].text == "online (IPv6 fails)"
    assert "online expected yes, measured no" in row.cells()["seed-firewalld-direct"].mismatch


def test_the_verdict_labels_every_measurement_with_its_step() -> None:
    measured = verdict(BASE, reach(True, False, False), reach(True, True, True))
    text = measured.render()
    assert "Symptom reproduced: YES" in text
    assert "Fix seed-firewalld-direct [seed-firewalld-direct]: effective: YES   (guests online after it)" in text
    assert "[boot] guest guest: DNS ok, ping FAILS, TCP FAILS; symptom" in text
    assert "[seed-firewalld-direct] guest guest: DNS ok, ping ok, TCP ok; online" in text
    assert "As expected by the scenario." in text
    assert json.loads(measured.dumps())["steps"][1]["id"] == "seed-firewalld-direct"


def test_a_row_comes_back_from_its_json_as_it_was() -> None:
    # what an xdist worker hands the controller (coexist.pytest_plugin): xdist's channel carries
    # plain data only (JSON's is the narrower set), and the controller's report must be the one
    # the worker's rows would have made
    from coexist.report.results import CommandRun
    from coexist.scenario.fixes import CheckResult
    from coexist.scenario.model import load

    seed = load(Path(__file__).parents[2] / "scenarios" / "seed-firewalld-direct.toml")
    variant = seed.variant(release="trixie", start_order=["dockerd", "libvirt", "firewalld"],
                           after_fix=["firewalld-reload"], ipv6=True)
    measured = verdict(variant, reach(True, False, False, True, False), reach(True, True, True, True, True),
                       reach(True, True, True, False, False))
    measured.versions, measured.deviations = {"docker": "26.1.5"}, ["no real NIC"]
    first, fix = measured.steps[0], measured.steps[1]
    first.guests["guest"] = Settled(first.guests["guest"].final, 5, 6.5, False, ("0.5s: DNS FAILS",))
    fix.commands = [CommandRun("firewall-cmd --reload", 0, "success")]
    fix.facts = {"forward_policy": "DROP", "legacy_forward_policy": None, "ip_forward": True,
                 "iptables": {"x": True}, "zone_of": {"virbr0": "libvirt"}}
    fix.checks = [CheckResult("direct", "rules in place", False, "none")]
    fix.problems, fix.docker_isolation, fix.seconds = ["docker refused"], False, 3.2
    measured.explanation, measured.timings = ["FORWARD dropped"], {"steps": 41.5}
    measured.artifacts = "/artifacts/seed"
    rows = [matrix.Row(variant, measured, seconds=52.3, artifacts="/artifacts/seed"),
            matrix.Row(seed.variant(release="bookworm"), unsupported="no nftables backend"),
            matrix.Row(seed.variant(), error="RuntimeError: dockerd exited\nmore")]
    for row in rows:
        sent = json.loads(json.dumps(row.to_json()))
        assert matrix.Row.from_json(sent) == row


def test_every_variant_of_a_five_axis_cross_has_an_evidence_folder_of_its_own() -> None:
    import itertools

    from coexist.report.matrix import evidence_folder, slug
    from coexist.scenario.model import load

    seed = load(Path(__file__).parents[2] / "scenarios" / "seed-firewalld-direct.toml")
    crossed = {"release": ("trixie", "forky"), "libvirt_firewall_backend": ("iptables", "nftables"),
               "docker_iptables": ("nft", "legacy"), "after_fix": (["firewalld-reload"], ["dockerd-restart"]),
               "start_order": (["firewalld", "dockerd", "libvirt"], ["dockerd", "libvirt", "firewalld"])}
    variants = [seed.variant(**dict(zip(crossed, values, strict=True)))
                for values in itertools.product(*crossed.values())]
    folders = [evidence_folder(variant) for variant in variants]
    assert len(set(folders)) == len(variants) == 32
    assert all(len(f) <= 81 and f.startswith("seed-firewalld-direct-") for f in folders)
    assert folders == [evidence_folder(variant) for variant in variants]   # the same variant, the same folder
    assert len({slug(variant.label()) for variant in variants}) < 32   # what the label cut at 80 did


def test_reports_travel_with_their_folder_and_link_each_cell_to_its_evidence(tmp_path: Path) -> None:
    import json
    import re

    from coexist.report.matrix import Row, write_reports
    from coexist.scenario.model import load

    seed = load(Path(__file__).parents[2] / "scenarios" / "seed-firewalld-direct.toml")
    rows = []
    for release in ("trixie", "forky"):
        variant = seed.variant(release=release)
        folder = tmp_path / "scenarios" / f"seed-{release}"
        folder.mkdir(parents=True)
        (folder / "verdict.txt").write_text("the verdict\n")
        measured = verdict(variant, reach(True, False, False, True, False), reach(True, True, True, True, True),
                           reach(True, True, True, False, False))
        measured.artifacts = str(folder)
        measured.versions = {"docker.io": "26.1.5"}
        rows.append(Row(variant, measured, seconds=40.0, artifacts=str(folder)))
    rows.append(Row(seed.variant(release="bookworm"), error="RuntimeError: dockerd exited with 1",
                    artifacts=str(tmp_path / "scenarios" / "seed-bookworm")))
    write_reports(rows, tmp_path, total=3, seconds=90)
    reports = {name: (tmp_path / name).read_text() for name in ("matrix.json", "matrix.md", "matrix.html")}
    for name, text in reports.items():
        assert str(tmp_path) not in text, f"{name} holds an absolute path of this machine"
    data = json.loads(reports["matrix.json"])
    assert [row["artifacts"] for row in data["rows"]] == ["scenarios/seed-trixie", "scenarios/seed-forky",
                                                          "scenarios/seed-bookworm"]
    assert data["environment"]["versions"]["trixie"] == {"docker.io": "26.1.5"}
    links = re.findall(r'href="([^"]+)"', reports["matrix.html"])
    assert links and all((tmp_path / link).is_file() for link in links)   # none broken
    assert not any("bookworm" in link for link in links)   # it broke before it had a folder: no link
    assert "<h2>Environment</h2>" in reports["matrix.html"] and "coexist " in reports["matrix.html"]
    assert "error: RuntimeError: dockerd exited with 1" in reports["matrix.html"]   # why it broke
    assert "[scenarios/seed-trixie](scenarios/seed-trixie/verdict.txt)" in reports["matrix.md"]
    # and read back (to make another report of it, e.g. the fix catalogue's): the same links
    from coexist.report.matrix import read_report

    assert [row.evidence for row in read_report(tmp_path)] == [
        "scenarios/seed-trixie/verdict.txt", "scenarios/seed-forky/verdict.txt", ""]


def test_the_headline_says_what_a_fix_changed_and_what_it_cost() -> None:
    from coexist.scenario.fixes import CheckResult

    cut, online = reach(True, False, False), reach(True, True, True)
    paid = verdict(BASE, cut, online)
    paid.steps[0].docker_isolation, paid.steps[1].docker_isolation = True, False
    paid.steps[1].published_port = False
    paid.steps[1].checks = [CheckResult("post-listing", "the post's listing", False)]
    assert paid.headline()[1] == ("Fix seed-firewalld-direct [seed-firewalld-direct]: effective: YES, but "
                                  "published port BROKEN, Docker isolation BROKEN, check post-listing FAILS"
                                  "   (guests online after it)")
    assert verdict(BASE, online, online).headline()[1].endswith(
        "nothing to fix (guests already online before it: guest online)")
    assert verdict(BASE, cut, cut).headline()[1].endswith(
        "effective: NO   (guests still cut off after it: guest symptom)")


def test_every_way_of_being_cut_off_is_the_symptom() -> None:
    offline = verdict(BASE, reach(False, False, False), reach(True, True, True))
    assert offline.symptom and offline.headline()[0] == "Symptom reproduced: YES   (after boot: guest offline)"
    v6 = BASE.variant(ipv6=True)
    only_ipv6 = verdict(v6, reach(True, True, True, False, False), reach(True, True, True, True, True))
    assert only_ipv6.headline()[0] == "Symptom reproduced: YES   (after boot: guest online (IPv6 fails))"
    assert "effective: YES" in only_ipv6.headline()[1]


def test_an_admins_commands_get_a_line_and_their_whole_output() -> None:
    from coexist.report.results import CommandRun

    by_hand = parse({"scenario": {"name": "hand", "summary": "s"},
                     "step": [{"do": "boot"}, {"run": ["iptables -P FORWARD ACCEPT; iptables -S FORWARD"]}]})
    measured = verdict(by_hand, reach(True, False, False), reach(True, True, True))
    measured.steps[1].commands = [CommandRun("iptables -P FORWARD ACCEPT; iptables -S FORWARD", 0,
                                             "-P FORWARD ACCEPT\n-A FORWARD -j DOCKER-USER\n")]
    assert measured.headline()[1] == "Commands [admin]: effective: YES   (guests online after it)"
    text = measured.render()
    assert "               -P FORWARD ACCEPT\n               -A FORWARD -j DOCKER-USER" in text
