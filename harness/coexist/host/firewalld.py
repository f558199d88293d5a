"""Questions to a lab's firewalld through its D-Bus API (jeepney on the lab's system bus).

The same answers `firewall-cmd` prints, without starting a Python client per question as
firewall-cmd does (how much sooner: bench/speed.py, bench/results/README.md). The
lab's bus socket is reached from the machine through the lab's root (a Unix socket needs no
network namespace), as root, which firewalld's D-Bus policy allows.

Only questions: the fixes themselves, and their checks, stay the verbatim `firewall-cmd` commands
a user types.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from jeepney import DBusAddress, Message, MessageType, Properties, new_method_call
from jeepney.auth import AuthenticationError
from jeepney.io.blocking import DBusConnection, open_dbus_connection

from coexist.base.commands import Machine

BUS_SOCKET = "/run/dbus/system_bus_socket"
NAME = "org.fedoraproject.FirewallD1"
PATH = "/org/fedoraproject/FirewallD1"
TIMEOUT = 10.0   # seconds for one call (firewalld answers in milliseconds when it is up)


class FirewalldUnavailable(RuntimeError):
    """No system bus in the lab, or firewalld not on it, or firewalld refused the question."""


class Firewalld:
    """firewalld of one lab, asked over its D-Bus API; every call opens its own short connection,
    so a firewalld or bus restarted by a step is never asked through a stale one."""

    def __init__(self, lab: Machine) -> None:
        self.lab = lab

    @contextmanager
    def _bus(self) -> Iterator[DBusConnection]:
        socket = self.lab.path(BUS_SOCKET)
        try:
            connection = open_dbus_connection(f"unix:path={socket}")
        except (OSError, AuthenticationError) as error:
            detail = getattr(error, "strerror", None) or str(error) or type(error).__name__
            raise FirewalldUnavailable(f"no system bus in the lab ({detail})") from error
        try:
            yield connection
        finally:
            connection.close()

    def _call(self, interface: str, method: str, signature: str | None = None,
              body: tuple[Any, ...] = (), path: str = PATH) -> Any:
        address = DBusAddress(path, bus_name=NAME, interface=interface)
        with self._bus() as bus:
            return _ask(bus, new_method_call(address, method, signature, body), f"{interface}.{method}")

    # -- questions ------------------------------------------------------------------------------
    def running(self) -> bool:
        """firewalld owns its bus name and says its state is RUNNING (`firewall-cmd --state`)."""
        try:
            with self._bus() as bus:
                owner = _ask(bus, new_method_call(
                    DBusAddress("/org/freedesktop/DBus", bus_name="org.freedesktop.DBus",
                                interface="org.freedesktop.DBus"),
                    "NameHasOwner", "s", (NAME,)), "NameHasOwner")
                if not owner[0]:
                    return False
                state = _ask(bus, Properties(DBusAddress(PATH, bus_name=NAME, interface=NAME))
                             .get("state"), "state")
            return bool(state[0][1] == "RUNNING")
        except FirewalldUnavailable:
            return False

    def zone_of(self, interface: str) -> str:
        """The zone `interface` is in ('' when none), as `--get-zone-of-interface`."""
        return str(self._call(f"{NAME}.zone", "getZoneOfInterface", "s", (interface,))[0])

    def masquerade(self, zone: str) -> bool:
        """`--zone=<zone> --query-masquerade` (runtime)."""
        return bool(self._call(f"{NAME}.zone", "queryMasquerade", "s", (zone,))[0])

    def active_zones(self) -> dict[str, dict[str, list[str]]]:
        """zone -> {'interfaces': [...], 'sources': [...]}, as `--get-active-zones`."""
        return dict(self._call(f"{NAME}.zone", "getActiveZones")[0])

    def direct_rules(self, *, permanent: bool = False) -> list[tuple[str, str, str, int, list[str]]]:
        """(ipv, table, chain, priority, args) of each direct rule, runtime or permanent
        (`[--permanent] --direct --get-all-rules`)."""
        if permanent:
            rules = self._call(f"{NAME}.config.direct", "getAllRules", path=f"{PATH}/config")[0]
        else:
            rules = self._call(f"{NAME}.direct", "getAllRules")[0]
        return [(ipv, table, chain, priority, list(args)) for ipv, table, chain, priority, args in rules]

    def report(self) -> str:
        """What a snapshot keeps of firewalld, in firewall-cmd's words where it has them."""
        if not self.running():
            return "firewalld not running\n"
        lines = ["# active zones"]
        for zone, members in sorted(self.active_zones().items()):
            lines.append(zone)
            lines += [f"  {kind}: {' '.join(values)}" for kind, values in sorted(members.items())]
        lines += ["# zone of virbr0", self.zone_of("virbr0") or "no zone"]
        for title, permanent in (("# direct rules", False), ("# permanent direct rules", True)):
            lines.append(title)
            lines += [" ".join([ipv, table, chain, str(priority), *args])
                      for ipv, table, chain, priority, args in self.direct_rules(permanent=permanent)]
        lines += ["# masquerade in zone libvirt",
                  "yes" if self._zone_known("libvirt") and self.masquerade("libvirt") else "no"]
        backend = [line for line in self.lab.path("/etc/firewalld/firewalld.conf").read_text(
            errors="replace").splitlines() if line.lower().startswith("firewallbackend")]
        lines += ["# backend", *backend]
        return "\n".join(lines) + "\n"

    def _zone_known(self, zone: str) -> bool:
        return zone in self._call(f"{NAME}.zone", "getZones")[0]


def _ask(bus: DBusConnection, message: Message, what: str) -> Any:
    """The reply's body; a bus that hangs up or stays silent, or an error reply, is
    FirewalldUnavailable (never a bare OSError from the middle of a snapshot)."""
    try:
        reply = bus.send_and_get_reply(message, timeout=TIMEOUT)
    except OSError as error:   # TimeoutError, ConnectionResetError, BrokenPipeError
        detail = error.strerror or str(error) or type(error).__name__
        raise FirewalldUnavailable(f"firewalld D-Bus {what}: no answer ({detail})") from error
    if reply.header.message_type == MessageType.error:
        detail = reply.body[0] if reply.body else reply.header.fields
        raise FirewalldUnavailable(f"firewalld D-Bus {what}: {detail}")
    return reply.body
