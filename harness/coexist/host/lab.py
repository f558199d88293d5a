"""The lab: a KVM host in a box.

A network namespace and a private mount namespace pivoted onto an overlay of the host image, with
proc, a fresh sysfs, the cgroup hierarchies, /dev (kvm, net/tun), tmpfs on /run and /tmp, and a
resolv.conf pointing at the simulated internet. Real daemons start inside it in the order the caller
chooses; nothing of it is visible in, or changes, the root network namespace.
"""

from __future__ import annotations

import json
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Protocol

from coexist.base import interrupt, log
from coexist.base.commands import Command, Result, Verbs
from coexist.base.retry import retry
from coexist.host import daemons
from coexist.host.daemons import Daemon, Service
from coexist.host.firewall import HostFirewall
from coexist.images.containerimage import ContainerImage
from coexist.images.hostimage import HostImage
from coexist.net.wan import LAB_UPLINK, ROUTER, Wan
from coexist.sandbox import cgroups, processes
from coexist.sandbox.namespaces import Executor, Holder

if TYPE_CHECKING:
    import docker
    import libvirt

CGROUP_V1 = ("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids")
# Kept in the overlay's upper layer would put docker's overlay2 on overlayfs, which does not work.
REAL_DIRS = ("/var/lib/docker", "/var/lib/containerd")
TC_SHIM = """#!/bin/sh
# coexist lab shim: this kernel lacks CONFIG_NET_ACT_CSUM. libvirt's nftables backend asks tc for
# a DHCP checksum fix ('action csum'); pretend it worked, run the real tc for anything else.
case " $* " in
  *" action csum "*) echo "coexist tc shim: skipped: tc $*" >> /var/log/coexist-tc-shim.log; exit 0 ;;
esac
exec /usr/sbin/tc.coexist-real "$@"
"""


class Commands(Protocol):
    """What Lab.apply runs: a fix, or anything with a name, the services it needs and commands."""

    @property
    def name(self) -> str: ...

    @property
    def needs(self) -> tuple[Service, ...]: ...

    @property
    def commands(self) -> tuple[str, ...]: ...


def _mount_script(image: Path, work: Path, root: Path, shares: dict[str, Path], hostname: str) -> str:
    r = shlex.quote(str(root))
    lines = [
        f"mount -t overlay overlay -o lowerdir={image},upperdir={work}/upper,workdir={work}/ovl {r}",
        f"echo {shlex.quote(hostname)} > {r}/etc/hostname",
    ]
    for inside in REAL_DIRS:
        lines += [f"mkdir -p {r}{inside}", f"mount --bind {work}/real{inside} {r}{inside}"]
    for inside, outside in shares.items():
        lines += [
            f"mkdir -p {r}{inside}",
            f"mount --bind {shlex.quote(str(outside))} {r}{inside}",
            f"mount -o remount,bind,ro {r}{inside}",
        ]
    lines += [
        f"mount -t proc proc {r}/proc",
        # Only the lab's own network sysctls may change: the rest of /proc/sys is the machine's.
        f"mount --bind {r}/proc/sys {r}/proc/sys",
        f"mount -o remount,bind,ro {r}/proc/sys",
        f"mount --bind {r}/proc/sys/net {r}/proc/sys/net",
        f"mount -o remount,bind,rw {r}/proc/sys/net",
        f"mount -t sysfs sysfs {r}/sys",
        f"mount -t tmpfs cgroup {r}/sys/fs/cgroup",
    ]
    for controller in CGROUP_V1:
        lines += [
            f"mkdir {r}/sys/fs/cgroup/{controller}",
            f"mount -t cgroup -o {controller} cgroup {r}/sys/fs/cgroup/{controller}",
        ]
    lines += [
        f"mkdir {r}/sys/fs/cgroup/systemd",
        f"mount -t cgroup -o none,name=systemd cgroup {r}/sys/fs/cgroup/systemd",
        f"mkdir {r}/sys/fs/cgroup/unified",
        f"mount -t cgroup2 cgroup2 {r}/sys/fs/cgroup/unified",
        f"mount --rbind /dev {r}/dev",
        f"mount -t tmpfs tmpfs {r}/dev/shm",
        # POSIX message queues of the lab's own IPC namespace, where the machine's /dev has them
        f"if [ -d {r}/dev/mqueue ]; then mount -t mqueue mqueue {r}/dev/mqueue; fi",
        f"mount -t tmpfs tmpfs {r}/run",
        f"mount -t tmpfs tmpfs {r}/tmp",
        f"touch {r}/etc/resolv.conf",
        f"mount --bind {work}/resolv.conf {r}/etc/resolv.conf",
        "ip link set lo up",
    ]
    return "\n".join(lines)


class Lab(Verbs):
    """A Debian host (the image's release) with its own network, daemons and firewall."""

    def __init__(
        self,
        image: HostImage,
        wan: Wan,
        *,
        workdir: Path,
        name: str = "lab",
        shares: dict[str, Path] | None = None,
        container_image: ContainerImage | None = None,
    ) -> None:
        self.image = image
        self.container_image = container_image   # what its dockerd imports for the lab's containers
        self.wan = wan
        self.owner = wan.owner
        self.name = name
        self.where = f"lab {name}"
        self.hostname = f"{name}-{image.release}"   # its own: the lab is a host of its own
        self.timeout = 120.0
        self.quiet = True   # its commands are mostly the harness's own; steps say what they do
        self.workdir = workdir
        self.logdir = workdir / "logs"
        self.shares = dict(shares or {})
        self.deviations: list[str] = []   # ways this lab differs from a real host, for the verdict
        self.upgraded = False   # upgraded in place (coexist.host.upgrade): no longer its image
        self.daemon_env: dict[Daemon, dict[str, str]] = {}   # per daemon, over the default env
        self._holder: Holder | None = None
        self.cgroup = cgroups.RunCgroup(self.owner, name)
        self._boot_sysctls: dict[str, str] = {}
        self._daemons: dict[Daemon, tuple[subprocess.Popen[str], IO[str]]] = {}
        self._after_start: dict[Daemon, list[str]] = {}
        self._libvirt: libvirt.virConnect | None = None
        self._docker: docker.DockerClient | None = None

    # -- lifetime -------------------------------------------------------------------------------
    def __enter__(self) -> Lab:
        with log.step(f"lab '{self.name}': {self.image.release} host in its own namespaces"):
            self.workdir.mkdir(parents=True, exist_ok=True)
            self.logdir.mkdir(exist_ok=True)
            for sub in ("upper", "ovl", "root", *(f"real{d}" for d in REAL_DIRS)):
                (self.workdir / sub).mkdir(parents=True, exist_ok=True)
            (self.workdir / "resolv.conf").write_text(f"nameserver {ROUTER}\n")
            setup = _mount_script(self.image.root, self.workdir, self.workdir / "root", self.shares,
                                  self.hostname)
            try:
                self._holder = Holder(self.name, mount=True, setup=setup, owner=self.owner,
                                      root=self.workdir / "root", cgroup=self.cgroup.create(),
                                      hostname=self.hostname)
                self.wan.plug(self._holder)
            except BaseException:
                self.__exit__(*sys.exc_info())
                raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        with interrupt.shielded(), log.step(f"lab '{self.name}': teardown"):
            self._close_clients()
            # Everything the lab runs is in its cgroup (containers, qemu, dnsmasq included): the
            # holder's stop kills it as one; namespaces and mounts go with the last process.
            if self._holder is not None:
                self._holder.stop()
                self._holder = None
            for proc, logfile in self._daemons.values():
                proc.wait()
                logfile.close()
            self._daemons.clear()
            self.cgroup.remove()
            shutil.rmtree(self.workdir / "upper", ignore_errors=True)
            shutil.rmtree(self.workdir / "real", ignore_errors=True)

    @property
    def holder(self) -> Holder:
        assert self._holder is not None, "the lab is not up"
        return self._holder

    # -- commands -------------------------------------------------------------------------------
    @property
    def executor(self) -> Executor:
        return Executor(self.holder, mount=True, where=f"lab {self.name}")

    @property
    def network_executor(self) -> Executor:
        """Runs the machine's own programs in the lab's network (and cgroup) namespaces only."""
        return Executor(self.holder, mount=False, where=f"lab {self.name}'s network")

    def execute(self, command: Command, *, timeout: float | None = None) -> Result:
        """Run a command on the lab host; asserts nothing. A string runs through /bin/sh."""
        return self.executor.run(_argv(command), check=False, timeout=timeout or self.timeout)

    def path(self, inside: str) -> Path:
        """A path inside the lab as seen from the machine."""
        return self.holder.path(inside)

    def socket_accepts(self, inside: str) -> bool:
        with socket.socket(socket.AF_UNIX) as sock:
            try:
                sock.connect(str(self.path(inside)))
            except OSError:
                return False
        return True

    # -- daemons --------------------------------------------------------------------------------
    def start(self, name: Daemon | str) -> None:
        """Start a daemon in the foreground and wait until it answers."""
        daemon = Daemon(name)
        spec = daemons.spec(daemon, owner=self.owner)
        for needed in spec.requires:
            if needed not in self._daemons:
                self.start(needed)
        if daemon in self._daemons:
            return
        with log.step(f"start {daemon}"):
            for argv in spec.prepare:
                self.succeed(list(argv))
            logfile = open(self.logdir / f"{daemon}.log", "a")
            logfile.write(f"--- coexist: starting {' '.join(spec.argv)} at {time.ctime()}\n")
            logfile.flush()
            proc = self.executor.spawn(list(spec.argv), log=logfile, env=self.daemon_env.get(daemon))
            self._daemons[daemon] = (proc, logfile)

            def answers(last_try: bool) -> bool:
                if proc.poll() is not None:
                    tail = (self.logdir / f"{daemon}.log").read_text()[-3000:]
                    refusal = daemons.dockerd_refusal(tail, self.image.release)
                    if daemon is Daemon.DOCKERD and refusal is not None:
                        self._daemons.pop(daemon)
                        raise refusal
                    raise RuntimeError(f"{daemon} exited with {proc.returncode} while starting:\n{tail}")
                return spec.ready(self, last_try)

            retry(answers, timeout=spec.ready_timeout, what=f"{daemon} ready", interval=0.1)
            for command in self._after_start.get(daemon, []):   # as ExecStartPost= runs them
                done = self.execute(command)
                log.info(f"host# {command}  -> exit {done.returncode} (after {daemon} started)")

    def after_start(self, name: Daemon | str, commands: Iterable[str]) -> None:
        """Commands to run right after `name` starts, at every start from now on (as a systemd
        drop-in's ExecStartPost=; the service is not restarted for it)."""
        self._after_start.setdefault(Daemon(name), []).extend(commands)

    def after_start_commands(self) -> dict[Daemon, list[str]]:
        """Every daemon's commands run right after it starts (a copy)."""
        return {daemon: list(commands) for daemon, commands in self._after_start.items()}

    def set_after_start(self, commands: dict[Daemon, list[str]]) -> None:
        """Replace every daemon's after-start commands (as drop-ins put back as they were)."""
        self._after_start = {daemon: list(run) for daemon, run in commands.items()}

    def stop(self, name: Daemon | str, *, timeout: float = 30) -> None:
        """Stop a daemon (SIGTERM, then SIGKILL after `timeout`)."""
        daemon = Daemon(name)
        if daemon not in self._daemons:
            return
        if daemon is Daemon.LIBVIRTD:
            self._close_clients(libvirt_only=True)
        if daemon is Daemon.DOCKERD:
            self._close_clients(docker_only=True)
        proc, logfile = self._daemons.pop(daemon)
        with log.step(f"stop {daemon}"):
            proc.terminate()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            logfile.close()

    def restart(self, name: Daemon | str) -> None:
        self.stop(name)
        self.start(name)

    def running(self, name: Daemon | str) -> bool:
        daemon = Daemon(name)
        return daemon in self._daemons and self._daemons[daemon][0].poll() is None

    def check_needs(self, fix: Commands) -> None:
        """RuntimeError unless the daemon of every service the fix `needs` is running."""
        missing = [need for need in fix.needs if not self.running(Service(need).daemon)]
        if missing:
            raise RuntimeError(f"fix {fix.name} needs {', '.join(missing)} running")

    # -- clients --------------------------------------------------------------------------------
    def libvirt(self) -> libvirt.virConnect:
        """A libvirt-python connection to the lab's libvirtd."""
        if self._libvirt is None:
            import libvirt

            # libvirt prints every error to stderr by default, expected ones too ("no domain
            # with matching name"); coexist reports the errors it does not expect itself.
            libvirt.registerErrorHandler(lambda _ctx, _error: None, None)
            sock = self.path("/run/libvirt/libvirt-sock")
            self._libvirt = libvirt.open(f"qemu:///system?socket={sock}")
        return self._libvirt

    def libvirt_ping(self) -> bool:
        import libvirt

        try:
            self.libvirt().getLibVersion()
        except libvirt.libvirtError:
            self._libvirt = None
            return False
        return True

    def docker(self) -> docker.DockerClient:
        """A docker-py client for the lab's dockerd."""
        if self._docker is None:
            import docker

            self._docker = docker.DockerClient(
                base_url=f"unix://{self.path('/run/docker.sock')}", timeout=120
            )
        return self._docker

    def docker_ping(self) -> bool:
        try:
            return bool(self.docker().ping())
        except Exception:  # docker-py raises several kinds while the daemon starts
            self._docker = None
            return False

    def _close_clients(self, *, libvirt_only: bool = False, docker_only: bool = False) -> None:
        if self._libvirt is not None and not docker_only:
            try:
                self._libvirt.close()
            except Exception:
                pass
            self._libvirt = None
        if self._docker is not None and not libvirt_only:
            self._docker.close()
            self._docker = None

    @property
    def firewall(self) -> HostFirewall:
        return HostFirewall(self)

    def apply(self, fix: Commands) -> None:
        """Run a fix's commands verbatim, in order; each must succeed."""
        __tracebackhide__ = True
        self.check_needs(fix)
        with log.step(f"apply fix {fix.name}"):
            for command in fix.commands:
                output = self.succeed(command, timeout=120).strip()
                log.info(f"host# {command}  -> {output or 'ok'}")

    def power_off(self) -> None:
        """The power goes: every process of the lab killed at once (daemons, containers, the
        guests' qemu), the namespaces and files kept until teardown. For the end of a run, once
        nothing more is measured: a graceful stop of each daemon and guest would only cost time
        (libvirt's destroy + undefine of each guest: bench/speed.py)."""
        with log.step(f"lab '{self.name}': power off"):
            self._close_clients()

            def gone(last_try: bool) -> bool:
                processes.end(self.cgroup.members() - self.holder.pids, grace=0)
                return not self.cgroup.members() - self.holder.pids

            retry(gone, timeout=10, what=f"every process of lab {self.name} killed", interval=0.02)
            for proc, logfile in self._daemons.values():
                proc.wait()
                logfile.close()
            self._daemons.clear()

    # -- a reboot ---------------------------------------------------------------------------------
    BOOT_SYSCTLS = ("net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding",
                    "net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables")

    def sysctl(self, key: str, value: str | None = None) -> str | None:
        """Read (and with `value`, first write) a network sysctl of the lab's own namespace; None
        if the lab's kernel has no such key. Always from inside the lab: /proc/sys/net shows the
        namespace of the process that reads it, so the machine's path would be the machine's."""
        path = "/proc/sys/" + key.replace(".", "/")
        script = f'[ -e {path} ] || exit 3\n' + (f"echo {shlex.quote(value)} > {path}\n" if value else "")
        result = self.execute(["sh", "-ec", script + f"cat {path}"])
        if result.returncode == 3:
            return None
        if result.returncode != 0:
            raise RuntimeError(f"sysctl {key}: {result.output.strip()}")
        return result.output.strip()

    def record_boot_sysctls(self) -> None:
        """Remember the forwarding sysctls as the host boots with them (restored by power_cycle)."""
        self._boot_sysctls = {key: value for key in self.BOOT_SYSCTLS
                              if (value := self.sysctl(key)) is not None}

    def power_cycle(self) -> None:
        """As a host going down and coming back up, short of starting anything: every daemon and
        process stopped, the runtime firewall state gone (nft tables, iptables nft and legacy,
        forwarding sysctls back to their boot values), bridges, taps and veths gone, /run and
        /tmp empty; the uplink as the host's network configuration brings it up. Permanent
        configuration (the image's /etc and /var, Docker's and libvirt's state) is kept."""
        with log.step(f"lab '{self.name}': power cycle (daemons stopped, runtime state gone)"):
            for name in reversed(list(self._daemons)):
                self.stop(name, timeout=5)   # as a shutdown's stop timeout; libvirtd 11.3 can hang
            processes.end(self.cgroup.members() - self.holder.pids)
            links = json.loads(self.succeed(["ip", "-j", "link", "show"]))
            script = ["nft flush ruleset"]
            # iptables-legacy's tables only where the kernel has them: naming one creates it, and
            # a legacy table, once made, stays in the namespace (nothing unloads it here)
            for tool, names in (("iptables-legacy", "ip_tables_names"),
                                ("ip6tables-legacy", "ip6_tables_names")):
                tables = f"$(cat /proc/net/{names} 2>/dev/null)"
                script += [f"for t in {tables}; do {tool} -t $t -F; {tool} -t $t -X; done",
                           f"if grep -qx filter /proc/net/{names} 2>/dev/null; then "
                           f"for c in INPUT FORWARD OUTPUT; do {tool} -P $c ACCEPT; done; fi"]
            script += [f"ip link del {link['ifname']} 2>/dev/null || true" for link in links
                       if link["ifname"] not in ("lo", "uplink")]
            script += ["ip -4 addr flush dev uplink", "ip -6 addr flush dev uplink scope global",
                       f"ip addr add {LAB_UPLINK}/24 dev uplink", "ip link set uplink up",
                       f"ip route replace default via {ROUTER}",
                       # Docker's network namespaces are bind mounts under /run/docker/netns
                       "awk '$2 ~ \"^/(run|tmp|dev/shm)/\" {print $2}' /proc/self/mounts | sort -r"
                       " | while read -r m; do umount -l \"$m\"; done",
                       "find /run /tmp /dev/shm -mindepth 1 -delete"]
            self.succeed(["sh", "-c", "\n".join(script)])
            for key, value in self._boot_sysctls.items():
                self.sysctl(key, value)

    # -- deviations from a real host ------------------------------------------------------------
    def install_tc_csum_shim(self) -> None:
        """Make `tc ... action csum` a no-op (this kernel lacks act_csum); recorded as a deviation.
        The tc found where the shim belongs goes behind it: the image's, or an upgrade's."""
        real = self.path("/usr/sbin/tc")
        if b"coexist lab shim" not in real.read_bytes():
            real.replace(self.path("/usr/sbin/tc.coexist-real"))
            real.write_text(TC_SHIM)
            real.chmod(0o755)
        self.deviations.append(
            "tc shim: this kernel lacks CONFIG_NET_ACT_CSUM, so libvirt's `tc ... action csum` "
            "(DHCP checksum fix of the nftables backend) is skipped in the lab"
        )


def _argv(command: Command) -> list[str]:
    return ["/bin/sh", "-c", command] if isinstance(command, str) else list(command)
