from __future__ import annotations

import json
from pathlib import Path

from harness import matrix
from harness.accel import AccelDecision
from harness.connectivity import Connectivity, Probe
from harness.scenario import parse
from harness.verdict import Verdict

BASE = parse({
    "scenario": {"name": "seed", "summary": "s"},
    "fix": {"name": "seed-firewalld-direct"},
    "expect": {"symptom": True, "fix_effective": True,
               "case": [{"release": "bookworm", "symptom": False, "note": "own rules"}]},
})


def reach(dns: bool, ping: bool, tcp: bool) -> Connectivity:
    return Connectivity(Probe("DNS", "nslookup", dns, ""), Probe("ping", "ping", ping, ""),
                        Probe("TCP", "nc", tcp, ""))


def verdict(scenario, before: Connectivity, after: Connectivity) -> Verdict:
    return Verdict(scenario, {}, AccelDecision("tcg", "test"), [], before, after=after,
                   published_before=True, published_after=True)


def test_cross_makes_every_combination() -> None:
    variants = matrix.cross([BASE], {"release": ["bookworm", "trixie"],
                                     "start_order": [["dockerd", "libvirt"],
                                                     ["libvirt", "dockerd"]],
                                     "after_fix": []})
    assert len(variants) == 4
    assert {v.host.release for v in variants} == {"bookworm", "trixie"}
    assert variants[0].expect.symptom is False and variants[2].expect.symptom is True


def test_cells_show_expected_unexpected_and_errors(tmp_path: Path) -> None:
    trixie = BASE.variant(release="trixie")
    bookworm = BASE.variant(release="bookworm")
    rows = [
        matrix.Row(trixie, verdict(trixie, reach(True, False, False), reach(True, True, True))),
        matrix.Row(bookworm, verdict(bookworm, reach(True, False, False),
                                     reach(True, False, False))),
        matrix.Row(BASE.variant(release="forky"), error="RuntimeError: dockerd exited"),
    ]
    assert rows[0].cells()["symptom"] == ("yes", "expected")
    assert rows[1].cells()["symptom"] == ("yes (expected no)", "unexpected")
    assert rows[1].cells()["fix effective"] == ("no (expected yes)", "unexpected")
    assert rows[2].cells()["symptom"] == ("error", "error")
    assert rows[0].cells()["survives events"] == ("n/a", "none")

    matrix.write_reports(rows, tmp_path, total=3, seconds=12.0)
    report = json.loads((tmp_path / "matrix.json").read_text())
    assert report["summary"] == {"runs": 3, "planned": 3, "as_expected": 1, "unexpected": 1,
                                 "errors": 1, "unsupported": 0,
                                 "wall_seconds": 12.0}
    markdown = (tmp_path / "matrix.md").read_text()
    assert "| bookworm: symptom |" in markdown.replace("scenario / axes | ", "| ")
    assert "**UNEXPECTED**" in markdown and "**ERROR**" in markdown
    page = (tmp_path / "matrix.html").read_text()
    assert page.count("#f6b0b0") >= 2 and "#f0d080" in page and "#c8f0c8" in page


def test_an_expectation_for_events_that_did_not_happen_is_not_a_mismatch() -> None:
    with_events = parse({
        "scenario": {"name": "seed", "summary": "s"}, "fix": {"name": "seed-firewalld-direct"},
        "expect": {"symptom": True, "fix_effective": True, "survives_events": True}})
    measured = verdict(with_events, reach(True, False, False), reach(True, True, True))
    assert measured.mismatches() == []
    assert "Survives" not in measured.render()
    measured.after_events = reach(True, False, True)
    variant = with_events.variant(after_fix=["firewalld-reload"])
    measured.scenario = variant
    assert measured.mismatches() == [
        "connectivity after firewalld-reload expected kept, measured lost "
        "(DNS ok, ping FAILS, TCP ok)"]


def test_contradictions_of_the_post_are_listed() -> None:
    trixie = BASE.variant(release="trixie")
    online = verdict(trixie, reach(True, True, True), reach(True, True, True))
    assert matrix.contradictions(online) == ["no symptom: DNS ok, ping ok, TCP ok"]
    cut = verdict(trixie, reach(True, False, False), reach(True, True, True))
    cut.published_after = False
    assert matrix.contradictions(cut) == ["the fix cuts Docker's published port off"]
    failed = verdict(trixie, reach(True, False, False), reach(True, False, False))
    assert matrix.contradictions(failed) == [
        "the fix does not restore the guest: DNS ok, ping FAILS, TCP FAILS"]


def test_no_symptom_says_whether_the_guest_was_online_or_cut_off() -> None:
    bridged = parse({
        "scenario": {"name": "bridged", "summary": "s"},
        "guest": {"network": "bridged"},
        "expect": {"symptom": False, "dns_before": False},
    })
    offline = matrix.Row(bridged, verdict(bridged, reach(False, False, False), None))
    assert offline.cells()["symptom"] == ("no: offline", "expected")
    online = matrix.Row(bridged, verdict(bridged, reach(True, True, True), None))
    assert online.cells()["symptom"] == ("no: online", "unexpected")
    assert online.verdict.mismatches() == [
        "DNS before any fix expected to fail, measured working (DNS ok, ping ok, TCP ok)"]


def test_ipv6_is_reported_beside_the_symptom() -> None:
    v6 = parse({
        "scenario": {"name": "v6", "summary": "s"},
        "guest": {"ipv6": True},
        "expect": {"symptom": True, "ipv6_before": False},
    })
    before = reach(True, False, False)
    works = Connectivity(before.dns, before.ping, before.tcp,
                         ipv6=(Probe("ping6", "ping6", True, ""), Probe("TCP6", "nc", True, "")))
    row = matrix.Row(v6, verdict(v6, works, None))
    assert works.state == "symptom" and works.ipv6_ok is True and not works.all_ok
    assert row.cells()["symptom"] == ("yes; IPv6 ok", "unexpected")
    assert row.verdict.mismatches() == ["IPv6 (ping6, TCP6) before any fix expected to fail, "
                                        "measured working (DNS ok, ping FAILS, TCP FAILS, "
                                        "ping6 ok, TCP6 ok)"]


def test_a_fix_that_breaks_docker_isolation_is_unexpected_and_a_contradiction() -> None:
    seed = BASE.variant(release="trixie")
    broken = verdict(seed, reach(True, False, False), reach(True, True, True))
    broken.isolation_before, broken.isolation_after = True, False
    row = matrix.Row(seed, broken)
    assert row.cells()["isolation before fix"] == ("yes", "expected")
    assert row.cells()["isolation after fix"] == ("no (expected yes)", "unexpected")
    assert "Docker network isolation after the fix: expected kept, measured broken" in \
        broken.mismatches()
    assert "the fix breaks Docker's network isolation" in matrix.contradictions(broken)
    assert "after the fix: BROKEN" in broken.render()
