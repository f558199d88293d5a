"""The testbed: the one place a lab is assembled, booted, rebooted and taken apart.

As the NixOS test driver's `Driver`, one context manager builds everything a test needs and
releases each part in its own `try`, logging and carrying on:

    with Testbed(scenario.host_plan(), images, artifacts=folder) as bed:
        bed.boot()                    # sysctls, the LAN bridge, daemons in start order, networks
        bed.lab.apply(fix)
        bed.reboot(guests)            # power cycle, then the host's boot again (autostart)

On entry: a sweep of what dead runs left, a guardian for this run, the simulated internet, the lab
on the release's image, and the host's settings written before any daemon starts. On exit: the
daemons' and libvirt's logs and (on an error) the firewall as it was, saved into `artifacts`;
libvirt's qemu probe kept for the next lab; the lab, the wan and the work folder gone.
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Protocol

from coexist.base import interrupt, log
from coexist.base.retry import retry
from coexist.host import firewall, hostconfig, qemucaps, sysctlfiles
from coexist.host.daemons import Daemon, NotApplicable, Service
from coexist.host.guestnet import NetworkSpec, known, uplink_ipv6
from coexist.host.hostconfig import HostSettings
from coexist.host.lab import Lab
from coexist.images.built import Images
from coexist.net.wan import Wan
from coexist.sandbox import leftovers, processes
from coexist.sandbox.leftovers import WORK_ROOT
from coexist.sandbox.namespaces import ensure_root

if TYPE_CHECKING:
    import libvirt

GUEST_IMAGE_DIR = "/var/lib/coexist/guest"  # where a lab sees the guest image (read-only)


@dataclass(frozen=True)
class HostPlan:
    """What a host is: its release, its settings (written before boot), the services its boot
    starts in order, and its networks (the stock one first)."""

    release: str = "trixie"
    settings: HostSettings = HostSettings()
    start_order: tuple[Service, ...] = (Service.FIREWALLD, Service.DOCKERD, Service.LIBVIRT)
    networks: tuple[NetworkSpec, ...] = ()

    def libvirt_networks(self) -> list[NetworkSpec]:
        """The libvirt networks its boot starts (none named: the stock one), stock first."""
        networks = self.networks or (known()["default"],)
        return sorted((n for n in networks if n.is_libvirt), key=lambda n: not n.stock)


class Autostarted(Protocol):
    """A guest as a host's reboot sees it: a libvirt domain that loses power and comes back."""

    def domain(self) -> libvirt.virDomain: ...

    def power_lost(self) -> None: ...

    def wait_up(self, started: float, *, autostarted: bool = False) -> None: ...


class Testbed:
    """A wan and a lab with the plan's settings written; `boot()` starts its daemons."""

    __test__ = False   # a class whose name starts with "Test", imported by test modules: not a test

    def __init__(self, plan: HostPlan, images: Images, *, name: str = "lab",
                 artifacts: Path | None = None) -> None:
        if plan.release != images.host.release:
            raise ValueError(f"plan for {plan.release}, image of {images.host.release}")
        self.plan, self.images, self.name, self.artifacts = plan, images, name, artifacts
        self.owner = processes.owner_token()
        self.workdir = WORK_ROOT / f"{self.owner}-{name}"
        self._wan: Wan | None = None
        self._lab: Lab | None = None

    @property
    def lab(self) -> Lab:
        assert self._lab is not None, "the testbed is not up"
        return self._lab

    @property
    def wan(self) -> Wan:
        assert self._wan is not None, "the testbed is not up"
        return self._wan

    # -- assembly -------------------------------------------------------------------------------
    def __enter__(self) -> Testbed:
        ensure_root()
        leftovers.sweep()
        leftovers.guard(self.owner)
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self._wan = Wan(owner=self.owner, workdir=self.workdir / "wan",
                            name=f"{self.name}-wan").__enter__()
            self._lab = Lab(self.images.host, self._wan, workdir=self.workdir / "lab", name=self.name,
                            shares={GUEST_IMAGE_DIR: self.images.guest.kernel.parent},
                            container_image=self.images.container).__enter__()
            self._configure()
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise
        return self

    def _configure(self) -> None:
        """Settings that must be in place before the daemons start (kept across a reboot)."""
        _give_qemu_user_kvm(self.lab)
        # The stock network would autostart with libvirtd; the plan's start order decides instead.
        autostart = self.lab.path("/etc/libvirt/qemu/networks/autostart/default.xml")
        if autostart.is_symlink() or autostart.exists():
            autostart.unlink()
        hostconfig.apply(self.lab, self.plan.settings)
        qemucaps.restore(self.lab)

    def reconfigure(self, settings: HostSettings) -> None:
        """An admin's change to the daemons' settings on the running host: the files merged into
        what is there (kept across a reboot), the sysctls set now and at every boot after (a file
        in /etc/sysctl.d and `sysctl -p`). No daemon is restarted: the fix's events say."""
        with log.step("settings written, as an admin edits the files"):
            hostconfig.apply(self.lab, settings)
            hostconfig.apply_sysctls(self.lab, settings)
        self.plan = dataclasses.replace(self.plan, settings=self.plan.settings.merged(settings))

    def reorder(self, order: tuple[Service, ...]) -> None:
        """The daemons' boot order changed by an admin (as systemd's After= would): from the next
        boot on."""
        log.info(f"lab: boot order from now on: {' > '.join(order)}")
        self.plan = dataclasses.replace(self.plan, start_order=order)

    def boot(self, *, first: bool = True) -> None:
        """What a host's boot does before and while its daemons start: the LAN bridge, IPv6 on
        the uplink, the sysctl files, then the daemons in the plan's start order with its networks. The
        `first` boot also routes the networks upstream and records the forwarding sysctls a
        reboot restores."""
        for spec in self.plan.networks:
            spec.prepare_host(self.lab)
            if first:
                spec.prepare_wan(self.wan)
        if any(spec.ipv6 for spec in self.plan.networks):
            uplink_ipv6(self.lab, self.plan.networks)
        if first:   # before the sysctl files: a reboot starts from the kernel's values again
            self.lab.record_boot_sysctls()
        now = sysctlfiles.apply_at_boot(self.lab)
        if missing := [key for key in self.plan.settings.sysctl if key not in now]:
            raise NotApplicable(f"sysctl {', '.join(missing)} does not exist in the "
                                f"{self.lab.image.release} lab's kernel")
        self.start(self.plan.start_order, autostart=not first)

    def start(self, order: Iterable[Service | str], *, autostart: bool = False) -> None:
        """Start `order`'s services one after the other; the system bus first if firewalld is in it.

        `libvirt` is libvirtd and the plan's libvirt networks (none: the stock one), stock first;
        with `autostart` (a reboot: reboot() marked them so), libvirtd starts them itself, as on a
        real host, and they are waited for. Starting them as well raced libvirtd's own autostart:
        two creates of one network at once, one tearing down the bridge the other was setting up
        ("Failed to add IP address 2001:db8:122::1/64 to virbr0"; at the second reboot of an
        IPv6 network each time, and an IPv6 network left without its IPv6 forward now and then).

        A Debian host has its D-Bus system bus before these daemons, and with firewalld that
        matters: libvirtd started without a bus disables its firewalld support for good ("DBus not
        available"), while with a bus it watches for firewalld and re-adds its rules and virbr0's
        zone when firewalld starts or reloads later. Without the bus first, an order with firewalld
        after libvirt describes no real host (firewalld 1.3 flushes libvirt's rules, virbr0 stays in
        no zone, the guest never gets a DHCP lease). Without firewalld the bus changes nothing.
        """
        services = [Service(item) for item in order]
        if Service.FIREWALLD in services:
            self.lab.start(Daemon.DBUS)
        for service in services:
            self.lab.start(service.daemon)
            if service is Service.LIBVIRT:
                for spec in self.plan.libvirt_networks():
                    if autostart:
                        self.autostarted_network(spec)
                    else:
                        self.start_network(spec)

    def start_network(self, network: NetworkSpec) -> None:
        """Define (unless the host has) and start a libvirt network."""
        import libvirt

        name = network.libvirt_name
        assert name is not None, f"network {network.name} is no libvirt network"
        with log.step(f"libvirt network '{name}' up ({network.forward}, {network.bridge}, {network.ipv4})"):
            conn = self.lab.libvirt()
            try:
                existing = conn.networkLookupByName(name)   # Debian's package defines `default`
            except libvirt.libvirtError:
                existing = None
            if existing is None or network.ipv6:   # IPv6: the host's own definition, plus a /64
                base = (existing.XMLDesc(libvirt.VIR_NETWORK_XML_INACTIVE) if existing else
                        self.lab.path("/usr/share/libvirt/networks/default.xml").read_text())
                existing = conn.networkDefineXML(network.network_xml(base))
            if not existing.isActive():
                existing.create()

    def autostarted_network(self, network: NetworkSpec) -> None:
        """Wait for libvirtd to have started a network marked autostart."""
        name = network.libvirt_name
        with log.step(f"libvirt network '{name}' up by libvirtd's autostart ({network.bridge})"):
            conn = self.lab.libvirt()
            retry(lambda _: conn.networkLookupByName(name).isActive(), timeout=60, interval=0.1,
                  what=f"libvirtd autostarts network '{name}' (its log says why not)")

    # -- the host's life ------------------------------------------------------------------------
    def mark_autostart(self, guests: Iterable[Autostarted] = ()) -> None:
        """The plan's libvirt networks and `guests` marked autostart, as a host that reboots has
        them (libvirt's symlinks in /etc/libvirt)."""
        conn = self.lab.libvirt()
        for network in self.plan.libvirt_networks():
            conn.networkLookupByName(network.libvirt_name).setAutostart(1)
        for guest in guests:
            guest.domain().setAutostart(1)

    def reboot(self, guests: Iterable[Autostarted] = (), *,
               while_down: Callable[[], None] | None = None) -> None:
        """host-reboot: every daemon stopped and the runtime state gone (Lab.power_cycle),
        permanent configuration kept (`while_down`: what an admin changes while the host is
        down), the daemons started again in boot order; libvirtd starts the networks and `guests`
        (marked autostart) itself, as on a real host."""
        guests = list(guests)
        self.mark_autostart(guests)
        for guest in guests:
            if guest.domain().isActive():
                guest.domain().destroy()   # the power goes
            guest.power_lost()
        self.lab.power_cycle()
        if while_down is not None:
            while_down()
        started = time.monotonic()
        self.boot(first=False)
        for guest in guests:
            guest.wait_up(started, autostarted=True)

    def snapshot(self, phase: str) -> firewall.Snapshot:
        """The firewall now, saved into the artifacts (if any) under `phase`."""
        snap = firewall.snapshot(self.lab, phase)
        if self.artifacts is not None:
            snap.save(self.artifacts)
        return snap

    # -- taking it apart ------------------------------------------------------------------------
    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        """Each part released in its own `try`: one that fails is logged, the rest still go."""
        with interrupt.shielded():
            if self._lab is not None:
                if (artifacts := self.artifacts) is not None:
                    if exc_type is not None:
                        _carry_on("the firewall at failure", lambda: self.snapshot("x-at-failure"))
                    _carry_on("the logs", lambda: save_logs(self.lab, self.wan, artifacts))
                if exc_type is None and not self.lab.upgraded:   # an upgraded libvirt's is not the image's
                    _carry_on("libvirt's qemu probe", lambda: qemucaps.keep(self.lab))
                _carry_on("the lab", lambda: self.lab.__exit__(exc_type, exc, tb))
                self._lab = None
            if self._wan is not None:
                _carry_on("the wan", lambda: self.wan.__exit__(exc_type, exc, tb))
                self._wan = None
            shutil.rmtree(self.workdir, ignore_errors=True)


def _carry_on(what: str, action: Callable[[], object]) -> None:
    try:
        action()
    except Exception as error:  # the run's own error, if any, matters more: log and go on
        log.info(f"testbed: {what}: not done: {error!r}")


def _give_qemu_user_kvm(lab: Lab, user: str = "libvirt-qemu") -> None:
    """Let libvirt's qemu user open /dev/kvm, as the `kvm` group lets it on a real host.

    The lab's /dev is the machine's, so /dev/kvm carries the machine's kvm GID, which the image's
    /etc/group may give to another group or to none (each release's image numbers its groups its
    own way). libvirt then finds KVM "not usable" for its qemu user while its capability probe saw
    KVM, calls its cached capabilities invalid and re-probes qemu on every domain define (tens of
    seconds each). Adding the qemu user to the group owning /dev/kvm restores what udev
    guarantees on a real host; the guest still runs under the accelerator the guest layer decides.
    """
    device = lab.path("/dev/kvm")
    if not device.exists():
        return
    gid = device.stat().st_gid
    for entry in lab.path("/etc/passwd").read_text().splitlines():
        fields = entry.split(":")
        if fields[0] == user and len(fields) > 3 and fields[3] == str(gid):
            return  # its primary group already owns /dev/kvm
    group_file = lab.path("/etc/group")
    lines = group_file.read_text().splitlines()
    for index, line in enumerate(lines):
        fields = line.split(":")
        if len(fields) != 4 or fields[2] != str(gid):
            continue
        name, password, number, members = fields
        listed = [m for m in members.split(",") if m]
        if user not in listed:
            lines[index] = ":".join((name, password, number, ",".join([*listed, user])))
            log.info(f"lab: {user} joins group {name} ({gid}), the owner of /dev/kvm")
        break
    else:
        lines.append(f"coexist-kvm:x:{gid}:{user}")
        log.info(f"lab: /dev/kvm's group {gid} is unnamed in the image: coexist-kvm, with {user}")
    group_file.write_text("\n".join(lines) + "\n")


def save_logs(lab: Lab, wan: Wan, artifacts: Path) -> None:
    """Copy the lab's daemon logs, libvirt's logs and the wan's logs into `artifacts/logs`."""
    target = artifacts / "logs"
    if lab.logdir.is_dir():
        shutil.copytree(lab.logdir, target, dirs_exist_ok=True)
    for inside in ("/var/log/libvirt", "/var/log/firewalld", "/var/log/coexist-tc-shim.log"):
        source = lab.path(inside)
        try:
            if source.is_dir():
                shutil.copytree(source, target / inside.strip("/").replace("/", "_"),
                                dirs_exist_ok=True)
            elif source.exists():
                shutil.copy(source, target / source.name)
        except OSError as error:
            log.info(f"artifacts: could not copy {inside}: {error}")
    wan_dir = wan.workdir
    if wan_dir.is_dir():
        shutil.copytree(wan_dir, target / "wan", dirs_exist_ok=True)
