"""Warm labs for real: scenarios of one host in one lab, reset between them, the reset proven; a
state the reset cannot undo (a Docker network kept in /var/lib/docker) is found by the proof and
the scenario runs again in a fresh lab, its verdict saying so."""

from __future__ import annotations

from pathlib import Path

import pytest
from coexist.images.built import build_images
from coexist.run.runner import run_scenario
from coexist.run.warm import WarmLabs
from coexist.scenario.model import Scenario, parse

pytestmark = pytest.mark.e2e
RELEASE = "trixie"


def scenario(name: str, *commands: str) -> Scenario:
    steps: list[dict[str, object]] = [{"do": "boot"}]
    if commands:
        steps.append({"run": list(commands), "id": "admin"})
    return parse({"scenario": {"name": name, "summary": name}, "host": {"release": RELEASE},
                  "workload": {"published_port": 8080}, "step": steps}, f"{name}.toml")


def test_a_reset_puts_etc_back_and_what_it_cannot_undo_sends_the_scenario_to_a_fresh_lab(tmp_path: Path) -> None:
    images = build_images(RELEASE)
    labs = WarmLabs(tmp_path / "labs")
    try:
        first = run_scenario(scenario("first", "echo left > /etc/coexist-left"), artifacts=tmp_path / "1",
                             images=images, warm=labs)
        lab = labs.current
        assert lab is not None and lab.uses == 1
        assert lab.bed.lab.path("/etc/coexist-left").exists()
        second = run_scenario(scenario("second", "docker network create coexist-left"),
                              artifacts=tmp_path / "2", images=images, warm=labs)
        assert labs.current is lab and lab.uses == 2, "the first left only /etc: the reset undid it"
        assert "reset" in second.timings and "daemons" not in second.timings
        assert not lab.bed.lab.path("/etc/coexist-left").exists()
        assert not any("fresh lab" in line for line in first.deviations + second.deviations)
        third = run_scenario(scenario("third"), artifacts=tmp_path / "3", images=images, warm=labs)
        assert labs.current is not lab, "Docker's network outlived the reset: a fresh lab"
        note = next(line for line in third.deviations if "measured in a fresh lab" in line)
        assert "br-" in note, note   # the network's bridge and its rules, named
        assert third.steps[0].guests["guest"].final.state == second.steps[0].guests["guest"].final.state
    finally:
        labs.close()
