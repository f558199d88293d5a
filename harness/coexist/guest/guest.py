"""The guest: a libvirt domain on one of the lab's guest networks, driven over SSH (paramiko).

with Guest(lab, image, keys, name="coexist-1234-guest", accel="tcg") as guest:
    guest.succeed("nslookup example.test 192.168.122.1")
    guest.fail("ping -c1 -W1 198.51.100.1")
"""

from __future__ import annotations

import random
import shlex
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import paramiko

from coexist.base import interrupt, log
from coexist.base.commands import Command, ExpectationFailed, Result, Verbs
from coexist.base.retry import retry
from coexist.guest import accel
from coexist.guest.accel import Accel, AccelDecision, tcg_clock_args
from coexist.guest.domain import DomainSpec, domain_xml
from coexist.guest.sshkeys import GuestKeys
from coexist.host.daemons import Daemon
from coexist.host.guestnet import GuestNetwork, guest_network
from coexist.host.lab import Lab
from coexist.host.testbed import GUEST_IMAGE_DIR
from coexist.images.guestimage import FAILED_LINE, GuestImage
from coexist.net.connectivity import Connectivity, measure

if TYPE_CHECKING:
    import libvirt

READY_LINE = "COEXIST-GUEST-READY"
RECV_TICK = 0.5   # seconds between a running command's checks for a signal


@dataclass(frozen=True)
class BootTimes:
    """Seconds from `virsh start` to each milestone."""

    ready_line: float
    lease: float       # the harness has the guest's address (libvirt's lease, or the static one)
    first_ssh: float


class Guest(Verbs):
    """A booted guest with an SSH session; the domain is destroyed and undefined on exit."""

    def __init__(
        self,
        lab: Lab,
        image: GuestImage,
        keys: GuestKeys,
        *,
        name: str,
        accel: Accel,
        network: GuestNetwork | None = None,
        artifacts: Path | None = None,
        role: str = "guest",
    ) -> None:
        self.lab = lab
        self.image = image
        self.keys = keys
        self.name = name
        self.role = role   # the scenario's name for it
        self.where = f"guest {role}"
        self._console_history = ""
        self._session = threading.RLock()   # held while a broken SSH session is replaced
        self.accel = accel
        self.network = network or guest_network("default")
        self.artifacts = artifacts
        self.mac = "52:54:00:" + ":".join(f"{byte:02x}" for byte in random.randbytes(3))
        self.serial_log_path = f"/var/log/libvirt/qemu/{name}-serial.log"
        self.address: str | None = None
        self.boot_times: BootTimes | None = None
        self._ssh: paramiko.SSHClient | None = None

    # -- lifetime -------------------------------------------------------------------------------
    def __enter__(self) -> Guest:
        with log.step(f"boot guest {self.role} ({self.name}, {self.accel}) on network '{self.network.name}'"):
            try:
                self._boot()
            except BaseException:
                self.__exit__(*sys.exc_info())
                raise
        return self

    def _boot(self) -> None:
        import libvirt

        kernel_dir = GUEST_IMAGE_DIR
        spec = DomainSpec(
            name=self.name,
            kernel=f"{kernel_dir}/{self.image.kernel.name}",
            initrd=f"{kernel_dir}/{self.image.initrd.name}",
            cmdline=self.image.cmdline(self.keys.kernel_args(), self.network.kernel_args(),
                                       *(tcg_clock_args() if self.accel == "tcg" else ())),
            serial_log=self.serial_log_path,
            mac=self.mac,
            network=self.network.libvirt_network,
            bridge=None if self.network.libvirt_network else self.network.bridge,
            accel=self.accel,
        )
        conn = self.lab.libvirt()
        try:
            old = conn.lookupByName(self.name)
        except libvirt.libvirtError:
            old = None
        if old is not None:
            if old.isActive():
                old.destroy()
            old.undefine()
        domain = conn.defineXML(domain_xml(spec))
        started = time.monotonic()
        domain.create()
        self.wait_up(started)

    def domain(self) -> libvirt.virDomain:
        return self.lab.libvirt().lookupByName(self.name)

    def restart(self) -> None:
        """Power-cycle the guest (`virsh destroy` + `virsh start`), then wait until it answers SSH
        again: a fresh boot, a fresh DHCP request."""
        with log.step(f"guest {self.role}: restart (destroy + start)"):
            domain = self.domain()
            if domain.isActive():
                domain.destroy()
            self.power_lost()
            started = time.monotonic()
            domain.create()
            self.wait_up(started)

    def connectivity(self) -> Connectivity:
        """One round of the probes from inside this guest: DNS through its network's resolver,
        ping and HTTP to the simulated internet, and over IPv6 when its network has it."""
        return measure(self, self.lab.wan.endpoints, resolver=self.network.dns, ipv6=self.network.ipv6)

    def reconnect(self) -> bool:
        """A new SSH session after the old one broke (one try; threads share the result)."""
        with self._session:
            transport = self._ssh.get_transport() if self._ssh is not None else None
            if transport is not None and transport.is_active():
                return True   # another probe's thread reconnected meanwhile
            if self._ssh is not None:
                self._ssh.close()
                self._ssh = None
            ok = self._try_ssh(True)
            log.info(f"guest {self.role}: SSH session lost; reconnect {'worked' if ok else 'FAILED'}")
            return ok

    def power_lost(self) -> None:
        """The guest is gone (its host rebooting, or a restart): close SSH, keep its console."""
        if self._ssh is not None:
            self._ssh.close()
            self._ssh = None
        path = self.lab.path(self.serial_log_path)
        if path.exists():
            self._console_history += path.read_text(errors="replace")
            path.write_text("")

    def wait_up(self, started: float, *, autostarted: bool = False) -> None:
        """Wait for the ready line, the address and the first SSH command (`started`: when the
        domain was started; `autostarted`: libvirtd starts it itself, wait for that first)."""
        if autostarted:
            retry(lambda last: self.domain().isActive() == 1, timeout=120,
                  what=f"libvirtd autostarts guest {self.role}", interval=0.2)

        def ready_line(last_try: bool) -> float | None:
            console = self.serial_log()
            if FAILED_LINE in console:  # e.g. no DHCP lease: waiting longer changes nothing
                tail = "\n".join(console.strip().splitlines()[-15:])
                raise ExpectationFailed(self.where, "/init", f"should print {READY_LINE}", Result(1, tail))
            return time.monotonic() if READY_LINE in console else None

        ready = retry(
            ready_line,
            timeout=120,
            what=f"guest {self.name} prints {READY_LINE}",
            interval=0.05,
        )
        if self.network.static_address is not None:
            self.address = self.network.static_address.split("/")[0]
        else:
            self.address = retry(lambda last: self._lease(), timeout=60,
                                 what=f"a DHCP lease for {self.mac}", interval=0.05)
        leased = time.monotonic()
        first_ssh = retry(
            lambda last: self._try_ssh(last) and time.monotonic(),
            timeout=60,
            what=f"SSH to {self.address}",
            interval=0.1,
        )
        self.boot_times = BootTimes(ready - started, leased - started, first_ssh - started)
        if self.network.ipv6:   # SLAAC: a default route from the RA, an address past DAD
            self.wait_until_succeeds("ip -6 route show default | grep -q via && "
                                     "ip -6 -o addr show scope global | grep -v tentative | "
                                     "grep -q inet6", timeout=30)
        log.info(
            f"guest {self.role} up at {self.address}: ready line {self.boot_times.ready_line:.1f}s, "
            f"first SSH command {self.boot_times.first_ssh:.1f}s after start"
        )

    def _lease(self) -> str | None:
        assert self.network.libvirt_network is not None
        network = self.lab.libvirt().networkLookupByName(self.network.libvirt_network)
        for lease in network.DHCPLeases(self.mac):
            if lease.get("ipaddr"):
                return str(lease["ipaddr"])
        return None

    def _try_ssh(self, last_try: bool) -> bool:
        assert self.address is not None
        client = paramiko.SSHClient()
        self.keys.pin(client, self.address)
        try:
            sock = self.lab.holder.connect(self.address, 22, timeout=3)
            client.connect(
                self.address,
                username="root",
                pkey=self.keys.client_key,
                sock=sock,
                allow_agent=False,
                look_for_keys=False,
                timeout=5,
                banner_timeout=5,
                auth_timeout=5,
            )
        except (OSError, paramiko.SSHException) as error:
            client.close()
            if last_try:
                log.info(f"last SSH attempt to {self.address} failed: {error!r}")
            return False
        self._ssh = client
        return self.execute("true")[0] == 0

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        with interrupt.shielded():
            self._teardown()

    def _teardown(self) -> None:
        import libvirt

        if self._ssh is not None:
            self._ssh.close()
            self._ssh = None
        if self.artifacts is not None:
            self.artifacts.mkdir(parents=True, exist_ok=True)
            suffix = "" if self.role == "guest" else f"-{self.role}"
            (self.artifacts / f"guest{suffix}-serial.log").write_text(
                self._console_history + self.serial_log())
        if interrupt.stopping() or not self.lab.running(Daemon.LIBVIRTD):
            return   # the lab's teardown (or power_off) kills qemu with the rest
        try:
            domain = self.lab.libvirt().lookupByName(self.name)
            if domain.isActive():
                domain.destroy()
            domain.undefine()
        except libvirt.libvirtError as error:
            log.info(f"guest {self.name}: cleanup: {error}")

    # -- the verbs ------------------------------------------------------------------------------
    def serial_log(self) -> str:
        path = self.lab.path(self.serial_log_path)
        return path.read_text(errors="replace") if path.exists() else ""

    def execute(self, command: Command, *, timeout: float | None = None) -> Result:
        """Run `command` in the guest's shell (an argv is quoted for it). Asserts nothing."""
        with self._session:   # another thread replacing a broken session: use its new one
            client = self._ssh
        transport = client.get_transport() if client is not None else None
        if transport is None:   # never connected, or the reconnect failed: the session is lost
            raise paramiko.SSHException(f"guest {self.name} is not connected")
        timeout = timeout or self.timeout
        command = command if isinstance(command, str) else shlex.join(command)
        channel = transport.open_session(timeout=timeout)
        channel.set_combine_stderr(True)
        channel.settimeout(RECV_TICK)
        channel.exec_command(command)
        deadline = time.monotonic() + timeout
        chunks = []
        try:
            while True:
                try:
                    data = channel.recv(65536)
                except TimeoutError:   # a probe's thread stops with the run, not at its timeout
                    interrupt.check()
                    if time.monotonic() >= deadline:
                        raise
                    continue
                if not data:
                    break
                chunks.append(data)
                deadline = time.monotonic() + timeout   # a timeout of silence, as settimeout's
            rc = channel.recv_exit_status()
        finally:
            channel.close()
        return Result(rc, b"".join(chunks).decode(errors="replace"))


def accel_for(lab: Lab, image: GuestImage, *, asked: str = "auto") -> AccelDecision:
    """KVM or TCG for this guest image: as `asked` (accel.ACCELS), auto probing once per machine
    boot (see coexist.guest.accel)."""
    return accel.decide(lab, f"{GUEST_IMAGE_DIR}/{image.kernel.name}",
                        f"{GUEST_IMAGE_DIR}/{image.initrd.name}", asked=asked)


def guest_for(lab: Lab, image: GuestImage, *, network: GuestNetwork | None = None,
              artifacts: Path | None = None, suffix: str = "", role: str = "guest",
              decision: AccelDecision | None = None) -> Guest:
    """A guest with fresh keys on `network` (default: the stock one); it boots on `with`.
    Under `decision`'s accelerator, or the one accel_for decides."""
    keys = GuestKeys.generate(lab.workdir / f"keys{suffix}")
    return Guest(lab, image, keys, name=f"coexist-{lab.owner}{suffix}",
                 accel=(decision or accel_for(lab, image)).accel, network=network,
                 artifacts=artifacts, role=role)
