"""What a step's measurement asks outside the guests' own connectivity: Docker's workload from
outside (the published port, isolation), the cost probes of `[workload] probes` (one method
each, named as its expectation key), and a scenario's own `[[probe]]`s."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import nullcontext

import docker.errors
import paramiko

from coexist.base import log
from coexist.guest.guest import Guest
from coexist.host import containers
from coexist.host.daemons import Daemon
from coexist.host.lab import Lab
from coexist.images.containerimage import PAGE
from coexist.net import connectivity
from coexist.net.wan import LAB_UPLINK
from coexist.report.results import CommandRun
from coexist.scenario.model import Scenario

WEB = "coexist-web"
PORT_TIMEOUT = 5.0   # how long the published port may take to answer from outside
LOST = "not measured: the host lost its SSH session to the guest"


class Probing:
    """The probes of one run: its lab, its scenario, its guests (filled in as they boot)."""

    def __init__(self, lab: Lab, scenario: Scenario, guests: Mapping[str, Guest]) -> None:
        self.lab, self.scenario, self.guests = lab, scenario, guests

    def published_port(self) -> bool:
        port = self.scenario.workload.published_port
        assert port is not None
        return self._container_running(WEB) and \
            connectivity.published_port_answers(self.lab.wan, port, timeout=PORT_TIMEOUT)

    def _container_running(self, name: str) -> bool:
        if not self.lab.running(Daemon.DOCKERD):
            return False
        try:
            return bool(self.lab.docker().containers.get(name).status == "running")
        except docker.errors.DockerException:
            return False

    def docker_isolation(self) -> bool | None:
        """Are Docker's two networks still kept apart? None: the probe's server is not running."""
        if not self._container_running(containers.ISOLATED_SERVER):
            return None
        server = self.lab.docker().containers.get(containers.ISOLATED_SERVER)
        return not containers.reaches_across(self.lab, server)

    # -- the cost probes ([workload] probes), one method each, named as the probe and its key ----
    def container_egress(self) -> bool:
        """Containers on docker0 and on a user-defined network fetch the internet's page."""
        if not self.lab.running(Daemon.DOCKERD):
            return False
        far = self.lab.wan.endpoints
        return all(containers.egress(self.lab, far.http_host, far.http_port, far.http_body).values())

    def guests_closed(self) -> bool | None:
        """No guest accepts a new connection from the simulated internet (None: a guest has no
        address)."""
        seen = [self._inbound(guest) for guest in self.guests.values()]
        return None if None in seen else all(outcome != "open" for outcome in seen)

    def _inbound(self, guest: Guest) -> str | None:
        if guest.address is None:
            return None
        subnet = guest.network.spec.ipv4   # None: on the uplink's LAN, reached as it is
        with nullcontext() if subnet is None else self.lab.wan.routed(subnet, via=LAB_UPLINK):
            return connectivity.inbound(self.lab.wan, guest.address)

    def containers_closed(self) -> bool | None:
        """No guest gets the isolated server's page from its address and unpublished port
        (None: the server is not running, or a guest could not be asked)."""
        if not self._container_running(containers.ISOLATED_SERVER):
            return None
        where = containers.address(self.lab.docker().containers.get(containers.ISOLATED_SERVER))
        seen = [self._guest_fetches(guest, where) for guest in self.guests.values()]
        return None if None in seen else not any(seen)

    @classmethod
    def _guest_fetches(cls, guest: Guest, where: str) -> bool | None:
        ran = cls._in_guest(guest, connectivity.http_get(where))
        if ran is None:
            return None
        reached = PAGE.decode() in ran.output
        log.info(f"guest {guest.role} -> container {where}:80 (unpublished): "
                 f"{'REACHED' if reached else 'blocked'}")
        return reached

    def own(self) -> dict[str, CommandRun]:
        """The scenario's own probes ([[probe]]), one after the other, each where it says."""
        first = next(iter(self.guests.values()), None)
        found = {}
        for probe in self.scenario.probes:
            command = probe.command(first.address if first else None)
            match probe.where:
                case "guest":
                    runs = [self._in_guest(guest, command) or CommandRun(command, 255, LOST)
                            for guest in self.guests.values()]
                    failed = [run for run in runs if run.returncode != 0]
                    found[probe.id] = (failed or runs or [CommandRun(command, 1, "no guest")])[0]
                case "container":
                    if self.lab.running(Daemon.DOCKERD):
                        containers.import_base_image(self.lab)
                        found[probe.id] = CommandRun(command, *containers.run_once(self.lab, command))
                    else:
                        found[probe.id] = CommandRun(command, 1, "dockerd is not running")
                case "wan":
                    done = self.lab.wan.execute(command)
                    found[probe.id] = CommandRun(command, done.returncode, done.output)
                case _:
                    done = self.lab.execute(command)
                    found[probe.id] = CommandRun(command, done.returncode, done.output)
            log.info(f"probe {probe.id} ({probe.where})$ {command}  -> exit {found[probe.id].returncode}")
        return found

    @staticmethod
    def _in_guest(guest: Guest, command: str) -> CommandRun | None:
        """`command` in `guest` over SSH (None: the host lost its session to the guest, logged)."""
        try:
            rc, output = guest.execute(command, timeout=20)
        except (paramiko.SSHException, OSError, EOFError) as error:
            log.info(f"guest {guest.role}$ {command}  -> {LOST} ({error!r})")
            return None
        return CommandRun(command, rc, output)

