"""A scenario's own probes (`[[probe]]`): a command run after every step where the user says
(in each guest, in a one-shot container, on the simulated internet, or on the lab host), its exit
status the measurement; a step's `probe = { <id> = true }` expects it to succeed.

    [[probe]]
    id = "dns-forwarded"
    where = "guest"
    run = "nslookup example.test 203.0.113.1"   # the internet's resolver: DNS over the FORWARD path

`{guest}` in `run` is the first guest's address (e.g. `nc -z -w 2 {guest} 22` from "wan").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from coexist.base.schema import Collected, FieldError, not_allowed, shown, unknown

WHERE = {"guest": "in each guest, over SSH (succeeds where it succeeds in every guest)",
         "container": "in a one-shot container on Docker's default bridge (needs dockerd)",
         "wan": "on the simulated internet's router (its own network namespace)",
         "host": "on the lab host, as root"}
GUEST_ADDRESS = "{guest}"
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
_FIELDS = {"id", "where", "run", "note"}


@dataclass(frozen=True)
class OwnProbe:
    id: str
    where: str   # a key of WHERE
    run: str     # a shell command, verbatim but for {guest}

    def command(self, guest_address: str | None) -> str:
        """The command with {guest} replaced by the first guest's address."""
        return self.run.replace(GUEST_ADDRESS, guest_address or "{no guest address}")


def parse_probes(tables: Any) -> tuple[OwnProbe, ...]:
    """The [[probe]] tables, each validated on its own (all their errors said at once)."""
    if not isinstance(tables, list):
        raise FieldError("probe", "must be an array of tables ([[probe]])")
    found, probes = Collected(), list[OwnProbe]()
    for index, table in enumerate(tables):
        with found.part():
            probes.append(_probe(f"probe[{index}]", table, [p.id for p in probes]))
    found.check()
    return tuple(probes)


def _probe(where: str, table: Any, taken: list[str]) -> OwnProbe:
    if not isinstance(table, dict):
        raise FieldError(where, "must be a table ([[probe]])")
    for key in table:
        if key not in _FIELDS:
            raise FieldError(f"{where}.{key}", unknown("key", key, sorted(_FIELDS)))
    for key in ("id", "where", "run"):
        if key not in table:
            raise FieldError(f"{where}.{key}", "is required")
        if not isinstance(table[key], str) or not table[key].strip():
            raise FieldError(f"{where}.{key}", f"must be a non-empty string, got {shown(table[key])}")
    if not _ID.fullmatch(table["id"]):
        raise FieldError(f"{where}.id", f"{table['id']!r}: lower-case letters, digits, '-'")
    if table["id"] in taken:
        raise FieldError(f"{where}.id", f"two probes are called {table['id']!r}")
    if table["where"] not in WHERE:
        raise FieldError(f"{where}.where", not_allowed(table["where"], tuple(WHERE)))
    if "\n" in table["run"]:
        raise FieldError(f"{where}.run", "one command (join several with && or ;)")
    return OwnProbe(table["id"], table["where"], table["run"])
