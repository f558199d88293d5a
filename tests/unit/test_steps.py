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
    assert steps.STEP_KINDS == ("do", "run", "event", "fix", "revert", "axis", "upgrade")   # the error lists them so


def compares_kind_with_a_string(node: ast.AST) -> bool:
    """`x.kind == "fix"`, `x.kind != "do"`, `x.kind in ("fix", "revert")` and the like."""
    if not isinstance(node, ast.Compare):
        return False
    sides = [node.left, *node.comparators]
    constants = [c for side in sides for c in (side.elts if isinstance(side, ast.Tuple) else [side])]
    return any(isinstance(side, ast.Attribute) and side.attr == "kind" for side in sides) and any(
        isinstance(c, ast.Constant) and isinstance(c.value, str) for c in constants)


def test_no_module_dispatches_on_a_step_kind_string() -> None:
    """Steps are matched by type; `kind` is only what verdict.json says."""
    assert compares_kind_with_a_string(ast.parse('step.kind in ("fix", "revert")').body[0].value)  # type: ignore[attr-defined]
    found = [f"{path.relative_to(HARNESS)}:{node.lineno}" for path in HARNESS.rglob("*.py")
             for node in ast.walk(ast.parse(path.read_text())) if compares_kind_with_a_string(node)]
    assert found == []
