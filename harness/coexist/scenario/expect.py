"""What must hold after a step, as data: the keys a scenario's `expect` tables may use, their
validation, and judging a measurement against them.

Guest keys hold for every guest, unless a nested table named after a guest says otherwise
(`expect = { ping = false, vm2 = { ping = true } }`). Host keys are facts about the host read from
the tools' machine-readable output, and Docker's workload as seen from outside. Keys a step does
not state are measured and shown, never judged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from coexist.base.schema import FieldError

STATES = ("online", "symptom", "offline", "partial")
POLICIES = ("ACCEPT", "DROP")

# key -> (type, allowed values or None, what it means)
GUEST_KEYS: dict[str, tuple[type, tuple[str, ...] | None, str]] = {
    "state": (str, STATES, "online (DNS, ping, TCP work) | symptom (DNS works, ping and TCP fail) "
                           "| offline (nothing works) | partial"),
    "symptom": (bool, None, "the reported symptom: DNS works, ping and TCP to the outside fail"),
    "online": (bool, None, "every probe works (IPv6 ones too where the network has IPv6)"),
    "dns": (bool, None, "the guest resolves example.test through its network's resolver"),
    "ping": (bool, None, "ping 198.51.100.1 (forwarded) answers"),
    "tcp": (bool, None, "HTTP to 198.51.100.1 (forwarded) answers"),
    "ipv6": (bool, None, "ping6 and TCP6 to 2001:db8:feed::1 both work"),
    "ping6": (bool, None, "ping6 2001:db8:feed::1 answers"),
    "tcp6": (bool, None, "HTTP over IPv6 to 2001:db8:feed::1 answers"),
}
TABLE_KEYS: dict[str, tuple[type, tuple[str, ...] | None, str]] = {
    "iptables": (bool, None, "`iptables -C <rule>` finds the rule (key: `[-t table] CHAIN rule...`)"),
    "chains": (bool, None, "iptables chain exists (key: `table CHAIN`, e.g. \"filter DOCKER-USER\")"),
    "nft_tables": (bool, None, "nft table exists (key: `family name`, e.g. \"ip libvirt_network\")"),
    "zone_of": (str, None, "firewalld's zone of an interface (key: interface; \"\" for none)"),
    "masquerade": (bool, None, "firewalld's zone masquerades (key: zone)"),
    "checks": (bool, None, "a host check of the step's fix holds (key: the check's id)"),
}
HOST_KEYS: dict[str, tuple[type, tuple[str, ...] | None, str]] = {
    "published_port": (bool, None, "the container's published port answers from outside"),
    "docker_isolation": (bool, None, "a container on one Docker network cannot reach another's"),
    "forward_policy": (str, POLICIES, "iptables (nft) filter FORWARD policy"),
    "legacy_forward_policy": (str, POLICIES, "iptables-legacy filter FORWARD policy"),
    "ip_forward": (bool, None, "net.ipv4.ip_forward is 1"),
    "commands": (bool, None, "every command of the step exited 0 (default: expected)"),
    **TABLE_KEYS,
}


@dataclass(frozen=True)
class Expect:
    """One step's expectations: host keys, guest keys for all guests, and per-guest overrides."""

    host: Mapping[str, Any] = field(default_factory=dict)
    guest: Mapping[str, Any] = field(default_factory=dict)
    per_guest: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def for_guest(self, name: str) -> dict[str, Any]:
        return {**self.guest, **self.per_guest.get(name, {})}

    def merged(self, other: Expect) -> Expect:
        """`other` over this one (a case over the step's own), tables merged key by key."""
        host = dict(self.host)
        for key, value in other.host.items():
            host[key] = {**host.get(key, {}), **value} if key in TABLE_KEYS else value
        per_guest = {g: dict(v) for g, v in self.per_guest.items()}
        for name, values in other.per_guest.items():
            per_guest.setdefault(name, {}).update(values)
        return Expect(host, {**self.guest, **other.guest}, per_guest)

    def keys(self) -> set[str]:
        return {*self.host, *self.guest, *(k for v in self.per_guest.values() for k in v)}

    def is_empty(self) -> bool:
        return not self.keys()


def parse_expect(data: Any, guests: tuple[str, ...]) -> Expect:
    """Validate an `expect` table; FieldError names the key (dotted) and what is allowed."""
    if not isinstance(data, dict):
        raise FieldError("", "must be a table, e.g. expect = { dns = true, ping = false }")
    host: dict[str, Any] = {}
    guest: dict[str, Any] = {}
    per_guest: dict[str, dict[str, Any]] = {}
    for key, value in data.items():
        if key in GUEST_KEYS:
            guest[key] = _value(key, value, GUEST_KEYS[key])
        elif key in TABLE_KEYS:
            if not isinstance(value, dict) or not value:
                raise FieldError(key, f"must be a table, e.g. {key} = {{ {_example(key)} }}")
            host[key] = {str(k): _value(f"{key}.{k}", v, TABLE_KEYS[key]) for k, v in value.items()}
        elif key in HOST_KEYS:
            host[key] = _value(key, value, HOST_KEYS[key])
        elif key in guests:
            if not isinstance(value, dict):
                raise FieldError(key, f"a guest's own expectations are a table: {key} = {{ ping = true }}")
            for sub, item in value.items():
                if sub not in GUEST_KEYS:
                    raise FieldError(f"{key}.{sub}", f"unknown guest key; allowed: {', '.join(GUEST_KEYS)}")
                per_guest.setdefault(key, {})[sub] = _value(f"{key}.{sub}", item, GUEST_KEYS[sub])
        else:
            raise FieldError(key, f"unknown key; allowed: {', '.join([*GUEST_KEYS, *HOST_KEYS])}"
                                  f"{', or a guest name: ' + ', '.join(guests) if guests else ''}")
    return Expect(host, guest, per_guest)


def _value(key: str, value: Any, spec: tuple[type, tuple[str, ...] | None, str]) -> Any:
    kind, allowed, _ = spec
    if not isinstance(value, kind) or (kind is str and isinstance(value, bool)):
        raise FieldError(key, f"must be a {'boolean' if kind is bool else 'string'}, got {value!r}")
    if allowed is not None and value not in allowed:
        raise FieldError(key, f"{value!r} is not allowed; allowed: {', '.join(allowed)}")
    return value


def _example(key: str) -> str:
    return {"iptables": '"FORWARD -i virbr0 -j ACCEPT" = true',
            "chains": '"filter DOCKER-USER" = true', "nft_tables": '"ip libvirt_network" = true',
            "zone_of": 'virbr0 = "libvirt"', "masquerade": "libvirt = true",
            "checks": "masquerade = true"}[key]


def describe(key: str, value: Any) -> str:
    """A measured or expected value in words."""
    if isinstance(value, bool):
        return {"published_port": ("reachable", "UNREACHABLE"),
                "docker_isolation": ("kept", "BROKEN"), "commands": ("all exit 0", "one FAILED"),
                "checks": ("holds", "FAILS"), "ip_forward": ("1", "0"),
                **dict.fromkeys(("iptables", "chains", "nft_tables", "masquerade", "symptom", "online",
                                 "ipv6"), ("yes", "no")),
                }.get(key, ("ok", "FAILS"))[0 if value else 1]
    return "none" if value in ("", None) else str(value)
