"""The host daemons a lab runs, how each starts, and how we know it is ready."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from coexist.host.lab import Lab


@dataclass(frozen=True)
class Daemon:
    """A daemon run in the foreground inside the lab, logged to logs/<name>.log."""

    name: str
    argv: tuple[str, ...]
    ready: Callable[[Lab, bool], bool]
    prepare: tuple[tuple[str, ...], ...] = ()
    ready_timeout: float = 60
    requires: tuple[str, ...] = field(default=())


def _socket(path: str) -> Callable[[Lab, bool], bool]:
    def ready(lab: Lab, last_try: bool) -> bool:
        return lab.socket_accepts(path)

    return ready


def _firewalld_ready(lab: Lab, last_try: bool) -> bool:
    from coexist.host.firewalld import Firewalld

    return Firewalld(lab).running()   # `firewall-cmd --state`, asked on the bus


def _docker_ready(lab: Lab, last_try: bool) -> bool:
    return lab.socket_accepts("/run/docker.sock") and lab.docker_ping()


def _libvirt_ready(lab: Lab, last_try: bool) -> bool:
    return lab.socket_accepts("/run/libvirt/libvirt-sock") and lab.libvirt_ping()


def dbus() -> Daemon:
    return Daemon(
        name="dbus",
        argv=("dbus-daemon", "--system", "--nofork", "--nopidfile"),
        prepare=(("mkdir", "-p", "/run/dbus"), ("dbus-uuidgen", "--ensure")),
        ready=_socket("/run/dbus/system_bus_socket"),
        ready_timeout=20,
    )


def firewalld() -> Daemon:
    return Daemon(
        name="firewalld",
        argv=("firewalld", "--nofork", "--nopid"),
        ready=_firewalld_ready,
        ready_timeout=60,
        requires=("dbus",),
    )


def dockerd(cgroup_parent: str) -> Daemon:
    # The data root is a real directory bind-mounted by the lab (overlay2 cannot sit on overlayfs).
    # Containers' cgroups go under `cgroup_parent`, so a dead run's containers can be found again.
    return Daemon(
        name="dockerd",
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


def virtlogd() -> Daemon:
    return Daemon(
        name="virtlogd",
        argv=("virtlogd",),
        prepare=(("mkdir", "-p", "/run/libvirt", "/var/log/libvirt/qemu"),),
        ready=_socket("/run/libvirt/virtlogd-sock"),
        ready_timeout=20,
    )


def libvirtd() -> Daemon:
    return Daemon(
        name="libvirtd",
        argv=("libvirtd",),
        prepare=(("mkdir", "-p", "/run/libvirt", "/var/log/libvirt/qemu"),),
        ready=_libvirt_ready,
        ready_timeout=120,
        requires=("virtlogd",),
    )
