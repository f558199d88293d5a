"""The host daemons a lab runs: their names, the services a scenario starts and a fix needs, how
each daemon starts, how we know it is ready, and how dockerd says a release cannot do a setting."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from coexist.base.commands import Machine
from coexist.host.firewalld import Firewalld


class Daemon(StrEnum):
    """A process the lab runs in the foreground, logged to logs/<name>.log."""

    DBUS = "dbus"
    FIREWALLD = "firewalld"
    DOCKERD = "dockerd"
    VIRTLOGD = "virtlogd"
    LIBVIRTD = "libvirtd"


class Service(StrEnum):
    """What a scenario's start_order starts and a fix `needs`, by the names users write."""

    FIREWALLD = "firewalld"
    DOCKERD = "dockerd"
    LIBVIRT = "libvirt"   # libvirtd and the libvirt networks

    @property
    def daemon(self) -> Daemon:
        """The daemon that must run for this service (the one mapping of needs to daemons)."""
        return Daemon.LIBVIRTD if self is Service.LIBVIRT else Daemon(self.value)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(service.value for service in cls)


class NotApplicable(RuntimeError):
    """The scenario asks for something the selected release cannot do (not a failure)."""


# dockerd's own words for a daemon.json key it does not know (moby daemon/config, 20.10 to 28)
DOCKERD_UNKNOWN_KEY = re.compile(r"the following directives don't match any configuration option: (.*)")


def dockerd_refusal(log_tail: str, release: str) -> NotApplicable | None:
    """dockerd refused a daemon.json key it does not know: not applicable on this release."""
    match = DOCKERD_UNKNOWN_KEY.search(log_tail)
    if match is None:
        return None
    return NotApplicable(f"dockerd on {release} does not know daemon.json key(s) "
                         f"{match[1].strip()} (it refuses to start): not applicable on this release")


class DaemonHost(Machine, Protocol):
    """What a daemon's readiness check asks of the host it runs on."""

    def socket_accepts(self, inside: str) -> bool: ...

    def docker_ping(self) -> bool: ...

    def libvirt_ping(self) -> bool: ...


Ready = Callable[[DaemonHost, bool], bool]


@dataclass(frozen=True)
class DaemonSpec:
    """How a daemon starts in the lab and how we know it answers."""

    name: Daemon
    argv: tuple[str, ...]
    ready: Ready
    prepare: tuple[tuple[str, ...], ...] = ()
    ready_timeout: float = 60
    requires: tuple[Daemon, ...] = field(default=())


def _socket(path: str) -> Ready:
    def ready(host: DaemonHost, last_try: bool) -> bool:
        return host.socket_accepts(path)

    return ready


def _firewalld_ready(host: DaemonHost, last_try: bool) -> bool:
    return Firewalld(host).running()   # `firewall-cmd --state`, asked on the bus


def _docker_ready(host: DaemonHost, last_try: bool) -> bool:
    return host.socket_accepts("/run/docker.sock") and host.docker_ping()


def _libvirt_ready(host: DaemonHost, last_try: bool) -> bool:
    return host.socket_accepts("/run/libvirt/libvirt-sock") and host.libvirt_ping()


def dbus() -> DaemonSpec:
    return DaemonSpec(
        name=Daemon.DBUS,
        argv=("dbus-daemon", "--system", "--nofork", "--nopidfile"),
        prepare=(("mkdir", "-p", "/run/dbus"), ("dbus-uuidgen", "--ensure")),
        ready=_socket("/run/dbus/system_bus_socket"),
        ready_timeout=20,
    )


def firewalld() -> DaemonSpec:
    return DaemonSpec(
        name=Daemon.FIREWALLD,
        argv=("firewalld", "--nofork", "--nopid"),
        ready=_firewalld_ready,
        ready_timeout=60,
        requires=(Daemon.DBUS,),
    )


def dockerd(cgroup_parent: str) -> DaemonSpec:
    # The data root is a real directory bind-mounted by the lab (overlay2 cannot sit on overlayfs).
    # Containers' cgroups go under `cgroup_parent`, so a dead run's containers can be found again.
    return DaemonSpec(
        name=Daemon.DOCKERD,
        argv=(
            "dockerd",
            "--host",
            "unix:///run/docker.sock",
            "--data-root",
            "/var/lib/docker",
            "--exec-root",
            "/run/docker",
            "--pidfile",
            "/run/docker.pid",
            "--cgroup-parent",
            cgroup_parent,
            "--exec-opt",
            "native.cgroupdriver=cgroupfs",
        ),
        ready=_docker_ready,
        ready_timeout=60,
    )


def virtlogd() -> DaemonSpec:
    return DaemonSpec(
        name=Daemon.VIRTLOGD,
        argv=("virtlogd",),
        prepare=(("mkdir", "-p", "/run/libvirt", "/var/log/libvirt/qemu"),),
        ready=_socket("/run/libvirt/virtlogd-sock"),
        ready_timeout=20,
    )


def libvirtd() -> DaemonSpec:
    return DaemonSpec(
        name=Daemon.LIBVIRTD,
        argv=("libvirtd",),
        prepare=(("mkdir", "-p", "/run/libvirt", "/var/log/libvirt/qemu"),),
        ready=_libvirt_ready,
        ready_timeout=120,
        requires=(Daemon.VIRTLOGD,),
    )


def spec(daemon: Daemon, *, owner: str) -> DaemonSpec:
    """How `daemon` runs in the lab of the run `owner` (dockerd puts its containers' cgroups
    under /coexist-<owner>, so a dead run's containers can be found again)."""
    if daemon is Daemon.DOCKERD:
        return dockerd(f"/coexist-{owner}")
    return {Daemon.DBUS: dbus, Daemon.FIREWALLD: firewalld, Daemon.VIRTLOGD: virtlogd,
            Daemon.LIBVIRTD: libvirtd}[daemon]()
