"""What must hold after a step, as data: an `expect` table validated against the expectation
keys (coexist.scenario.keys, one record each), and merged with a case's.

Guest keys hold for every guest, unless a nested table named after a guest says otherwise
(`expect = { ping = false, vm2 = { ping = true } }`). Host keys are facts about the host read from
the tools' machine-readable output, and Docker's workload as seen from outside. Keys a step does
not state are measured and shown, never judged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from coexist.base.schema import FieldError, not_allowed, shown, unknown
from coexist.scenario.keys import GUEST_KEYS, KEYS, Key, Source


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
            host[key] = {**host.get(key, {}), **value} if KEYS[key].table else value
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
    for name, value in data.items():
        key = KEYS.get(name)
        if key is not None and key.source is Source.GUEST:
            guest[name] = _value(name, value, key)
        elif key is not None and key.table:
            if not isinstance(value, dict) or not value:
                raise FieldError(name, f"must be a table, e.g. {name} = {{ {key.example} }}")
            host[name] = {str(k): _value(f"{name}.{k}", v, key) for k, v in value.items()}
        elif key is not None:
            host[name] = _value(name, value, key)
        elif name in guests:
            if not isinstance(value, dict):
                raise FieldError(name, f"a guest's own expectations are a table: {name} = {{ ping = true }}")
            for sub, item in value.items():
                if sub not in GUEST_KEYS:
                    raise FieldError(f"{name}.{sub}", unknown("guest key", sub, GUEST_KEYS))
                per_guest.setdefault(name, {})[sub] = _value(f"{name}.{sub}", item, KEYS[sub])
        else:
            raise FieldError(name, unknown("key", name, KEYS)
                             + (f", or a guest name: {', '.join(guests)}" if guests else ""))
    return Expect(host, guest, per_guest)


def _value(where: str, value: Any, key: Key) -> Any:
    if not isinstance(value, key.type) or (key.type is not bool and isinstance(value, bool)):
        kind = {bool: "boolean", int: "whole number"}.get(key.type, "string")
        raise FieldError(where, f"must be a {kind}, got {shown(value)}")
    if key.allowed is not None and value not in key.allowed:
        raise FieldError(where, not_allowed(value, key.allowed))
    return value
