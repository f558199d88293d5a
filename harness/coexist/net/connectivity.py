"""What the guest can reach, measured from inside it, and what the outside can reach of the host."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

import paramiko

from coexist.base import interrupt, log
from coexist.base.commands import Command, Result
from coexist.base.retry import DeadlineExceeded, retry
from coexist.images.containerimage import PAGE
from coexist.net.wan import LAB_UPLINK, Endpoints, Wan


class ProbeTarget(Protocol):
    """What the probes ask of the machine they run on (a guest): a command, and a new session when
    the old one broke."""

    @property
    def name(self) -> str: ...

    def execute(self, command: Command, *, timeout: float | None = None) -> Result: ...

    def reconnect(self) -> bool: ...


# Seconds a ping or TCP probe waits for its answer. The simulated internet is one veth hop past
# the lab: an answer takes milliseconds (under TCG too), so a probe still waiting after 1 s is
# dropped, not slow.
PROBE_WAIT = 1


@dataclass(frozen=True)
class Probe:
    what: str
    command: str
    ok: bool
    output: str


@dataclass(frozen=True)
class Connectivity:
    """One round of DNS, ping and TCP from the guest."""

    dns: Probe
    ping: Probe
    tcp: Probe
    ipv6: tuple[Probe, ...] = ()   # ping and TCP over IPv6, when the guest's network has IPv6

    @property
    def probes(self) -> tuple[Probe, ...]:
        return (self.dns, self.ping, self.tcp, *self.ipv6)

    @property
    def ipv6_ok(self) -> bool | None:
        """Ping and TCP over IPv6 both work (None: the guest has no IPv6)."""
        return all(probe.ok for probe in self.ipv6) if self.ipv6 else None

    @property
    def symptom(self) -> bool:
        """The reported symptom: DNS (INPUT path) works, the FORWARD path to the outside does not
        (IPv4; the IPv6 probes are reported on their own)."""
        return self.dns.ok and not self.ping.ok and not self.tcp.ok

    @property
    def all_ok(self) -> bool:
        return all(probe.ok for probe in self.probes)

    @property
    def state(self) -> str:
        """IPv4: online | symptom | offline (nothing works, DNS included) | partial (the rest)."""
        ipv4 = (self.dns, self.ping, self.tcp)
        if all(probe.ok for probe in ipv4):
            return "online"
        if self.symptom:
            return "symptom"
        return "offline" if not any(probe.ok for probe in ipv4) else "partial"

    def summary(self) -> str:
        return ", ".join(f"{p.what} {'ok' if p.ok else 'FAILS'}" for p in self.probes)


def http_get(host: str, port: int = 80) -> str:
    """A guest command that fetches http://host:port/ (busybox's wget segfaults in this guest)."""
    return f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w {PROBE_WAIT} {host} {port}"


def measure(guest: ProbeTarget, endpoints: Endpoints, *, resolver: str, ipv6: bool) -> Connectivity:
    """Ask the guest, over SSH, to resolve (through `resolver`, its network's), ping and fetch, and
    with `ipv6` ping and fetch over IPv6; the probes run at once, each on its own SSH channel, so a
    round takes as long as its slowest.

    If the host loses the guest (e.g. `net-destroy` unplugged its tap), the probes fail with
    that as their output: the guest is cut off, which is a measurement, not a broken run.
    """

    def probe(what: str, command: str, must_contain: str | None = None) -> Probe:
        started = time.monotonic()
        try:
            try:
                rc, output = guest.execute(command, timeout=20)
            except (paramiko.SSHException, OSError, EOFError):
                if not guest.reconnect():   # a broken session is not yet a guest cut off
                    raise
                rc, output = guest.execute(command, timeout=20)
        except (paramiko.SSHException, OSError, EOFError) as error:
            lost = f"not measured: the host lost its SSH session to the guest ({error!r})"
            log.info(f"guest {guest.name}$ {command}  -> {lost}")
            return Probe(what, command, False, lost)
        ok = rc == 0 and (must_contain is None or must_contain in output)
        log.info(f"guest {guest.name}$ {command}  -> {'ok' if ok else f'fails (exit {rc})'} "
                 f"({time.monotonic() - started:.1f}s)")
        return Probe(what, command, ok, output)

    probes = [("DNS", f"nslookup {endpoints.name} {resolver}", endpoints.name_address),
              ("ping", f"ping -c1 -W{PROBE_WAIT} {endpoints.ping_target}", None),
              ("TCP", http_get(endpoints.http_host, endpoints.http_port), endpoints.http_body)]
    if ipv6:
        probes += [("ping6", f"ping6 -c1 -W{PROBE_WAIT} {endpoints.far_host6}", None),
                   ("TCP6", http_get(endpoints.far_host6, endpoints.http_port), endpoints.http_body)]
    with interrupt.Pool(len(probes), thread_name_prefix="probe") as pool:
        done = list(pool.map(lambda args: probe(*args), probes))
    return Connectivity(dns=done[0], ping=done[1], tcp=done[2], ipv6=tuple(done[3:]))


def published_port_answers(wan: Wan, port: int, *, timeout: float = 10) -> bool:
    """Does an HTTP GET from the outside to the lab's uplink address and `port` get the page?"""

    def attempt(last_try: bool) -> bool:
        try:
            with wan.holder.connect(LAB_UPLINK, port, timeout=2) as sock:
                sock.sendall(f"GET / HTTP/1.0\r\nHost: {LAB_UPLINK}\r\n\r\n".encode())
                reply = b""
                while chunk := sock.recv(4096):
                    reply += chunk
        except OSError:
            return False
        return PAGE in reply

    try:
        return retry(attempt, timeout=timeout, what=f"published port {port} from outside")
    except DeadlineExceeded:
        return False


GUEST_PORT = 22   # a port every guest listens on (its SSH server): the inbound probe's target


def inbound(wan: Wan, address: str, port: int = GUEST_PORT, *, timeout: float = 2 * PROBE_WAIT) -> str:
    """A NEW TCP connection from the simulated internet to `address`:`port`: "open" (it
    connected), "refused" (a reset or an ICMP reject), or "dropped" (no answer in `timeout` s).

    The caller gives the wan a route to `address` where the internet would have none (Wan.routed)."""
    try:
        with wan.holder.connect(address, port, timeout=timeout):
            outcome = "open"
    except TimeoutError:
        outcome = "dropped"
    except (ConnectionRefusedError, ConnectionResetError):
        outcome = "refused"
    except OSError as error:   # EHOSTUNREACH, ENETUNREACH: an ICMP reject of another kind
        outcome = f"refused ({error.strerror or error})"
    log.info(f"wan -> {address}:{port} (a new connection from outside): {outcome}")
    return outcome
