"""The simulated internet: a namespace on documentation ranges with DNS, HTTP and pingable hosts."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

from coexist.base import interrupt, log
from coexist.base.commands import Result
from coexist.base.retry import retry
from coexist.sandbox import cgroups
from coexist.sandbox.namespaces import Executor, Holder

ROUTER = "203.0.113.1"  # the lab's default gateway and resolver
LAB_UPLINK = "203.0.113.2"  # the lab's address on the uplink
WEB_HOST = "203.0.113.10"  # example.test
FAR_HOST = "198.51.100.1"  # another network, reachable only through routing
ROUTER6 = "2001:db8:ff::1"   # IPv6 on the same link (used when a guest network has IPv6)
LAB_UPLINK6 = "2001:db8:ff::2"
UPLINK_LAN6 = "2001:db8:ff::/64"   # the router's and the lab's link (a LAN bridge's guests too)
FAR_HOST6 = "2001:db8:feed::1"
EXTERNAL_NAME = "example.test"
HTTP_PORT = 80
HTTP_BODY = "coexist-wan-ok"
WAN_SUBNETS = ("203.0.113.0/24", "198.51.100.0/24")   # the simulated internet's IPv4 ranges

_HTTP_SERVER = f'''
import http.server, socket, socketserver, sys
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"{HTTP_BODY}\\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, fmt, *args):
        sys.stderr.write("http %s %s\\n" % (self.client_address[0], fmt % args))
        sys.stderr.flush()
class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    address_family = socket.AF_INET6   # dual stack: IPv4 arrives as ::ffff:a.b.c.d
    allow_reuse_address = True
    daemon_threads = True
Server(("::", {HTTP_PORT}), Handler).serve_forever()
'''


@dataclass(frozen=True)
class Endpoints:
    """What a guest should be able to reach on the simulated internet."""

    name: str = EXTERNAL_NAME
    name_address: str = WEB_HOST
    ping_target: str = FAR_HOST
    http_host: str = FAR_HOST
    http_port: int = HTTP_PORT
    http_body: str = HTTP_BODY
    far_host6: str = FAR_HOST6   # pinged and fetched over IPv6 when the guest has IPv6


class Wan:
    """A network namespace standing in for the internet; the lab plugs into it by a veth.

    The router and DNS sit at 203.0.113.1; the "external hosts" 203.0.113.10 and 198.51.100.1 on its
    loopback (and 2001:db8:feed::1 for IPv6, the router being 2001:db8:ff::1 on the same link).
    dnsmasq answers example.test; an HTTP server answers on port 80 on every address.
    It has no route back to any private range (traffic that was not NATed gets no answer) unless
    a routed guest network asks for one, as its upstream router must have.
    """

    def __init__(self, *, owner: str, workdir: Path, name: str = "wan") -> None:
        self.owner = owner
        self.workdir = workdir
        self.cgroup = cgroups.RunCgroup(owner, name)
        self.endpoints = Endpoints()
        self._holder: Holder | None = None
        self._logs: list[IO[str]] = []
        self._services: list[subprocess.Popen[str]] = []
        self._routes = threading.Lock()   # probes towards guests, one at a time

    @property
    def holder(self) -> Holder:
        assert self._holder is not None, "the wan is not up"
        return self._holder

    def __enter__(self) -> Wan:
        with log.step("simulated internet (wan): namespace, DNS, HTTP"):
            setup = "\n".join(
                [
                    "ip link set lo up",
                    f"ip addr add {WEB_HOST}/32 dev lo",
                    f"ip addr add {FAR_HOST}/32 dev lo",
                    f"ip -6 addr add {FAR_HOST6}/128 dev lo",
                    "ip link add lab0 type veth peer name uplink",
                    f"ip addr add {ROUTER}/24 dev lab0",
                    f"ip -6 addr add {ROUTER6}/64 dev lab0 nodad",
                    "ip link set lab0 up",
                ]
            )
            try:
                self._holder = Holder("wan", mount=False, setup=setup, owner=self.owner,
                                      cgroup=self.cgroup.create())
                self._start_services()
            except BaseException:
                self.__exit__(*sys.exc_info())
                raise
        return self

    def _start_services(self) -> None:
        wan = Executor(self.holder, mount=False, where="wan")
        self.workdir.mkdir(parents=True, exist_ok=True)
        dns_log = open(self.workdir / "wan-dnsmasq.log", "w")
        http_log = open(self.workdir / "wan-http.log", "w")
        self._logs += [dns_log, http_log]
        self._services.append(
            wan.spawn(
                [
                    "dnsmasq",
                    "--keep-in-foreground",
                    "--conf-file=/dev/null",
                    "--no-resolv",
                    "--no-hosts",
                    "--log-queries",
                    "--log-facility=-",
                    "--user=root",
                    "--pid-file",
                    f"--listen-address={ROUTER}",
                    "--bind-interfaces",
                    # A local name: A is answered, AAAA gets "no data" (without --local dnsmasq
                    # REFUSES it, having no upstream, and busybox nslookup then exits 1)
                    f"--host-record={EXTERNAL_NAME},{WEB_HOST}",
                    f"--local=/{EXTERNAL_NAME}/",
                ],
                log=dns_log,
            )
        )
        self._services.append(wan.spawn([sys.executable, "-u", "-c", _HTTP_SERVER], log=http_log))

        def listening(last_try: bool) -> bool:
            sockets = wan.run(["ss", "-lntu"]).output
            if last_try:
                log.info(f"wan sockets:\n{sockets}")
            return f"{ROUTER}:53" in sockets and f":{HTTP_PORT} " in sockets

        retry(listening, timeout=10, what="wan DNS and HTTP listening")

    def plug(self, lab: Holder) -> None:
        """Hand the veth's other end to the lab: its address, and its default route via the wan."""
        Executor(self.holder, mount=False, where="wan").run(
            ["ip", "link", "set", "uplink", "netns", str(lab.pid)]
        )
        inside = Executor(lab, mount=False, where="lab")
        inside.run(["ip", "addr", "add", f"{LAB_UPLINK}/24", "dev", "uplink"])
        inside.run(["ip", "link", "set", "uplink", "up"])
        inside.run(["ip", "route", "add", "default", "via", ROUTER])

    def route(self, subnet: str, *, via: str) -> None:
        """A route on the wan's router to `subnet` through `via` (the lab host, for a routed net)."""
        Executor(self.holder, mount=False, where="wan").run(["ip", "route", "add", subnet, "via", via])

    def execute(self, command: str, *, timeout: float = 30) -> Result:
        """A shell command on the router, in the wan's network namespace (a scenario's probe)."""
        return Executor(self.holder, mount=False, where="wan").run(["sh", "-c", command], check=False,
                                                                   timeout=timeout)

    @contextmanager
    def routed(self, subnet: str, *, via: str) -> Iterator[None]:
        """While in the block, the router has a route to `subnet` through `via`, as a LAN
        neighbour of the host has (a NAT network's subnet is not routed on the internet: the route
        lives only as long as a probe towards the guests needs it). A route already there (a
        routed network's) is used and left alone."""
        wan = Executor(self.holder, mount=False, where="wan")
        with self._routes:
            if wan.run(["ip", "route", "show", "exact", subnet]).output.strip():
                yield
                return
            wan.run(["ip", "route", "add", subnet, "via", via])
            try:
                yield
            finally:
                wan.run(["ip", "route", "del", subnet, "via", via])

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        with interrupt.shielded():
            if self._holder is not None:   # its stop kills the wan's cgroup: dnsmasq, HTTP
                self._holder.stop()
                self._holder = None
            for service in self._services:
                service.wait(timeout=10)
            self._services.clear()
            for handle in self._logs:
                handle.close()
            self._logs.clear()
            self.cgroup.remove()
