"""Steps are typed variants: each step table parses to its own class, which says its label and
default id; verdict.json's "kind" stays the step table's key."""

from __future__ import annotations

import ast
import typing
from pathlib import Path

from coexist.scenario import steps
from coexist.scenario.model import parse
from coexist.scenario.steps import Admin, ApplyFix, AxisEvents, Boot, Events, Measure, RevertFix

HARNESS = Path(__file__).resolve().parents[2] / "harness" / "coexist"


def every_kind() -> list[dict[str, object]]:
    return [{"do": "boot"}, {"run": ["true"]}, {"event": ["firewalld-reload", "guest-restart"]},
            {"fix": "forward-accept"}, {"revert": "docker-user-libvirt"}, {"do": "measure"},
            {"axis": "after_fix"}]


def test_each_step_table_is_its_own_variant_with_its_label_and_id() -> None:
    scenario = parse({"scenario": {"name": "s", "summary": "s"}, "step": every_kind(),
                      "events": {"after_fix": ["dockerd-restart"]}})
    got = [(type(s), s.kind, s.id, s.label()) for s in scenario.steps]
    assert got == [
        (Boot, "do", "boot", "boot: daemons in start order, guests up"),
        (Admin, "run", "admin", "admin: host# true"),
        (Events, "event", "events", "event: firewalld-reload, guest-restart"),
        (ApplyFix, "fix", "forward-accept", "fix forward-accept"),
        (RevertFix, "revert", "revert-docker-user-libvirt", "revert docker-user-libvirt"),
        (Measure, "do", "measure", "measure again"),
        (AxisEvents, "axis", "after-fix", "event: dockerd-restart"),
    ]
    assert [list(steps.events_of(s)) for s in scenario.steps][2] == ["firewalld-reload", "guest-restart"]


def test_every_variant_has_a_step_key_and_every_key_a_variant() -> None:
    variants = typing.get_args(steps.Step)
    assert {v.kind for v in variants} == set(steps.STEP_KINDS)
    assert steps.STEP_KINDS == ("do", "run", "event", "fix", "revert", "axis")   # the error lists them so


def test_no_module_dispatches_on_a_step_kind_string() -> None:
    """Steps are matched by type; `kind` is only what verdict.json says."""
    found = []
    for path in HARNESS.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            sides = (node.left, *node.comparators) if isinstance(node, ast.Compare) else ()
            strings = [c for side in sides for c in ([side] if isinstance(side, ast.Constant) else
                                                     getattr(side, "elts", [])) if isinstance(c, ast.Constant)]
            if any(isinstance(side, ast.Attribute) and side.attr == "kind" for side in sides) and any(
                    isinstance(c.value, str) for c in strings):
                found.append(f"{path.relative_to(HARNESS)}:{node.lineno}")
    assert found == []
