"""Fixes that are settings (daemon.json, network.conf, firewalld.conf keys, sysctls, zone
bindings) and events after them: validated like [host]'s settings, not applicable where a release
does not know a key, said in the step's label."""

from __future__ import annotations

import pytest
from coexist.base.schema import FieldError
from coexist.scenario import fixes
from coexist.scenario.events import Event
from coexist.scenario.fixes import parse_fix
from coexist.scenario.model import parse
from coexist.scenario.steps import events_of


def scenario(fix: str, release: str = "trixie", **own: object) -> object:
    return parse({"scenario": {"name": "s", "summary": "s"}, "host": {"release": release},
                  "fix": own, "step": [{"do": "boot"}, {"fix": fix}]})


def test_the_catalogue_has_at_least_fifteen_fixes_each_with_a_source() -> None:
    catalogue = fixes.builtin()
    assert len(catalogue) >= 15
    assert [name for name, fix in catalogue.items() if not fix.source] == []


def test_a_settings_fix_needs_no_commands_and_says_its_settings_and_events() -> None:
    fix = parse_fix("mine", {"summary": "s", "settings": {"docker": {"ip-forward-no-drop": True}},
                             "then": ["host-reboot"]})
    assert fix.commands == () and fix.then == (Event.HOST_REBOOT,)
    step = parse({"scenario": {"name": "s", "summary": "s"}, "host": {"release": "forky"},
                  "fix": {"mine": {"summary": "s", "settings": {"docker": {"ip-forward-no-drop": True}},
                                   "then": ["host-reboot"]}},
                  "step": [{"do": "boot"}, {"fix": "mine"}]}).steps[1]
    assert step.label() == "fix mine (settings: docker ip-forward-no-drop = true), then host-reboot"
    assert events_of(step) == (Event.HOST_REBOOT,)


@pytest.mark.parametrize(("table", "said"), [
    ({"summary": "s"}, "commands: is required (at least one command), unless the fix is settings"),
    ({"summary": "s", "settings": {"docker": {"iptable": False}}},
     "settings.docker.iptable: unknown daemon.json key on every release"),
    ({"summary": "s", "settings": {"sysctls": {}}}, "settings.sysctls: unknown table; did you mean 'sysctl'?"),
    ({"summary": "s", "commands": ["true"], "then": ["reboot"]}, "then: 'reboot' is not allowed"),
])
def test_a_settings_fix_is_validated_like_the_hosts_settings(table: dict[str, object], said: str) -> None:
    with pytest.raises(FieldError) as error:
        parse_fix("mine", table)
    assert said in str(error.value), str(error.value)


def test_a_settings_fix_is_not_applicable_where_the_release_does_not_know_its_key() -> None:
    forky = scenario("docker-ip-forward-no-drop", "forky")
    assert forky.not_applicable() is None
    assert forky.variant(release="trixie").not_applicable() == (
        "step docker-ip-forward-no-drop: fix docker-ip-forward-no-drop: daemon.json key "
        "'ip-forward-no-drop' is known on forky only, not on trixie")
    assert "not on bookworm" in str(scenario("libvirt-backend-iptables").variant(
        release="bookworm").not_applicable())


def test_a_fix_whose_events_need_a_daemon_the_host_does_not_start_is_not_applicable() -> None:
    later = parse({"scenario": {"name": "s", "summary": "s"},
                   "host": {"release": "forky", "start_order": ["libvirt", "dockerd"]},
                   "step": [{"do": "boot"}, {"fix": "docker-ip-forward-no-drop-later"}]})
    assert later.not_applicable() is None
    assert "needs dockerd" in str(later.variant(start_order=["libvirt"]).not_applicable())


def test_a_fix_may_persist_as_a_start_hook_or_change_the_boot_order() -> None:
    from coexist.host.daemons import Service

    hook = parse_fix("mine", {"summary": "s", "params": {"bridge": "virbr0"},
                              "after_start": {"dockerd": ["iptables -I DOCKER-USER -i {bridge} -j ACCEPT"]}})
    assert hook.commands == ()
    assert hook.with_params({"bridge": "virbr9"}).after_start == {
        Service.DOCKERD: ("iptables -I DOCKER-USER -i virbr9 -j ACCEPT",)}
    order = parse_fix("mine", {"summary": "s", "start_before": ["libvirt", "dockerd"], "then": ["host-reboot"]})
    seed = (Service.FIREWALLD, Service.DOCKERD, Service.LIBVIRT)
    assert order.boot_order(seed) == (Service.FIREWALLD, Service.LIBVIRT, Service.DOCKERD)
    step = parse({"scenario": {"name": "s", "summary": "s"},
                  "fix": {"mine": {"summary": "s", "start_before": ["libvirt", "dockerd"], "then": ["host-reboot"]},
                          "hook": {"summary": "s", "after_start": {"dockerd": ["iptables -P FORWARD ACCEPT"]}}},
                  "step": [{"do": "boot"}, {"fix": "mine"}, {"fix": "hook"}]}).steps
    assert step[1].label() == "fix mine (libvirt now starts right before dockerd), then host-reboot"
    assert step[2].label() == "fix hook (after every start of dockerd: iptables -P FORWARD ACCEPT)"


@pytest.mark.parametrize(("table", "said"), [
    ({"after_start": {"sshd": ["true"]}}, "after_start.sshd: 'sshd' is not allowed"),
    ({"after_start": {"dockerd": []}}, "after_start.dockerd: a list of commands (at least one)"),
    ({"start_before": ["libvirt", "libvirt"]}, "start_before: two different services"),
    ({"start_before": ["libvirt"]}, "start_before: two different services"),
])
def test_hooks_and_orders_are_checked(table: dict[str, object], said: str) -> None:
    with pytest.raises(FieldError, match=None) as raised:
        parse_fix("mine", {"summary": "s", **table})
    assert str(raised.value).startswith(said), str(raised.value)


def test_an_order_or_hook_the_host_cannot_do_is_not_applicable_with_its_reason() -> None:
    def why(fix: dict[str, object], order: list[str]) -> str | None:
        return parse({"scenario": {"name": "s", "summary": "s"}, "host": {"start_order": order},
                      "fix": {"mine": {"summary": "s", **fix}},
                      "step": [{"do": "boot"}, {"fix": "mine"}]}, runnable=False).not_applicable()

    assert why({"start_before": ["libvirt", "dockerd"]}, ["libvirt", "dockerd"]) == (
        "step mine: fix mine: libvirt starts right before dockerd already (host.start_order): nothing to change")
    assert "names firewalld, which host.start_order does not start" in (
        why({"after_start": {"firewalld": ["true"]}}, ["dockerd", "libvirt"]) or "")
    assert why({"start_before": ["libvirt", "dockerd"]}, ["dockerd", "libvirt"]) is None
