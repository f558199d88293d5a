"""Fixes as data: the exact commands a post tells people to run, and what must hold afterwards."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.lab import Lab


@dataclass(frozen=True)
class HostCheck:
    """Something the fix promises on the host, checked after applying it."""

    description: str
    holds: Callable[[Lab], bool]
    evidence: Callable[[Lab], str]


@dataclass(frozen=True)
class Fix:
    name: str
    summary: str
    commands: tuple[str, ...]  # run verbatim, in order, on the lab host
    host_checks: tuple[HostCheck, ...] = ()
    needs: tuple[str, ...] = ()  # daemons that must be running (checked before applying)


def _forward_listing(lab: Lab) -> str:
    return lab.firewall.forward_path_listing()


def _direct_rules_listed(lab: Lab) -> bool:
    from harness.firewall import forward_accepts_for

    rules = forward_accepts_for(lab.firewall.forward_path_listing(), "virbr0")
    return {"in", "out"} <= {direction for direction, _ in rules}


def _masquerade_on(lab: Lab) -> bool:
    return lab.firewall.masquerade("libvirt")


SEED_FIREWALLD_DIRECT = Fix(
    name="seed-firewalld-direct",
    summary="firewalld: two --direct FORWARD ACCEPT rules for virbr0, masquerade in zone libvirt, reload",
    commands=(
        "firewall-cmd --permanent --direct --add-rule ipv4 filter FORWARD 0 -i virbr0 -j ACCEPT",
        "firewall-cmd --permanent --direct --add-rule ipv4 filter FORWARD 0 -o virbr0 -j ACCEPT",
        "firewall-cmd --permanent --zone=libvirt --add-masquerade",
        "firewall-cmd --reload",
    ),
    host_checks=(
        HostCheck(
            "`iptables -L FORWARD -n -v` (or a chain it jumps to) lists ACCEPT rules in and out "
            "of virbr0",
            _direct_rules_listed,
            _forward_listing,
        ),
        HostCheck(
            "`firewall-cmd --zone=libvirt --query-masquerade` says yes",
            _masquerade_on,
            lambda lab: lab.execute("firewall-cmd --zone=libvirt --query-masquerade").output,
        ),
    ),
    needs=("firewalld",),
)

DOCKER_USER_BRIDGE_RULE = "-i br0 -o br0 -j ACCEPT"

DOCKER_USER_BRIDGE = Fix(
    name="docker-user-bridge",
    summary="Docker's documented way for a host that forwards (\"Docker on a router\"): "
            "iptables -I DOCKER-USER -i br0 -o br0 -j ACCEPT, for the guests on host bridge br0",
    commands=(f"iptables -I DOCKER-USER {DOCKER_USER_BRIDGE_RULE}",),
    host_checks=(
        HostCheck(
            "`iptables -C DOCKER-USER -i br0 -o br0 -j ACCEPT` finds the rule",
            lambda lab: lab.execute(f"iptables -C DOCKER-USER {DOCKER_USER_BRIDGE_RULE}").returncode == 0,
            lambda lab: lab.execute("iptables -S DOCKER-USER").output,
        ),
    ),
    needs=("dockerd",),
)

ALL: dict[str, Fix] = {fix.name: fix for fix in (SEED_FIREWALLD_DIRECT, DOCKER_USER_BRIDGE)}
