"""Holders that keep namespaces alive (network; mount; a host's PID, UTS, IPC), and ways in."""

from __future__ import annotations

import ctypes
import os
import shlex
import signal
import socket
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar

from coexist.base import interrupt
from coexist.base.commands import CommandFailed, Result
from coexist.sandbox import cgroups, processes

T = TypeVar("T")
_CLONE_NEWNET = 0x40000000
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# In a holder that is a host of its own, nsenter forks the command into the PID namespace and
# waits for it. The command gets nsenter's death as SIGKILL (as the holder's own processes get the
# run's): a command whose nsenter is killed (a timeout, a teardown) dies with it instead of living
# on as an orphan of the lab's init.
ENTERED = ("setpriv", "--pdeathsig", "KILL", "--")
# A host holder's init: the lab's PID 1, reaping what the lab's daemons daemonize (libvirtd's qemu
# and dnsmasq) the moment it exits, as systemd does on a real host. libvirt waits for its qemu's
# zombie (virProcessKillPainfully polls kill(pid, 0)) before a `virsh destroy` returns: an init
# that reaps late (this machine's PID 1 takes 1.6-1.8 s: bench/results/README.md, "subreaper")
# slows every destroy. The machine's tini, exec'd before the root is pivoted.
INIT = ("tini", "--")


class Holder:
    """A long-lived process in fresh namespaces; everything else enters them through it.

    It dies with the thread that started it (PR_SET_PDEATHSIG), so a killed run takes it along.
    With `cgroup`, it joins the run's cgroup first (and with `mount`, makes its own cgroup
    namespace rooted there: the lab's daemons see that cgroup as the root of every hierarchy), so
    the whole lab, whatever its daemons start, is killed as one. It runs in a session of its own:
    a Ctrl-C at the terminal reaches coexist, which tears the lab down in order. `setup` is shell
    run inside the new namespaces before the holder settles into `sleep`. With
    `root` (a mount point made by `setup`), the holder pivots the mount namespace onto it and
    detaches the machine's root: `root` is then the namespace's own root, for every command entered
    through the holder and for every namespace made inside it (a container's `docker exec` joins
    its container's root; under a mere chroot it landed on the machine's `/`).

    With `hostname`, the holder is a host of its own: a PID namespace whose PID 1 is its init
    (INIT, which reaps what the host's daemons leave behind; when it ends, the kernel kills
    everything in the namespace), a UTS namespace with that hostname and an IPC namespace. Its
    processes cannot see or signal the machine's or another holder's; `setup` mounts the `/proc`
    that shows them.
    """

    def __init__(
        self, name: str, *, mount: bool, setup: str = "", owner: str, root: Path | None = None,
        cgroup: cgroups.RunCgroup | None = None, hostname: str | None = None,
    ) -> None:
        assert hostname is None or mount, "a host of its own has files of its own"
        self.name = name
        self.owner = owner
        self.cgroup = cgroup
        self.cgroupns = mount and cgroup is not None
        self.host = hostname is not None
        flags = ["--net"] + (["--mount", "--propagation", "private"] if mount else [])
        flags += ["--cgroup"] if self.cgroupns else []
        # --kill-child: the init gets unshare's death as SIGKILL, and takes the namespace along
        flags += ["--pid", "--fork", "--kill-child", "--uts", "--ipc"] if self.host else []
        # The holder's PID as the machine sees it: read while /proc is still the machine's (dash's
        # `read` opens /proc/self itself, in the shell's own process).
        script = "set -e\nread -r pid _ < /proc/self/stat\n"
        script += f"hostname {shlex.quote(hostname)}\n" if hostname is not None else ""
        script += f"{setup}\n"
        if root is not None:
            # pivot_root(".", "."), then detach the old root stacked on top (as runc does).
            script += f"cd {shlex.quote(str(root))}\npivot_root . .\numount -l .\ncd /\n"
        script += 'echo "ready $pid"\nexec sleep infinity\n'
        # The script comes on stdin: the holder's command line (a host's PID 1's) stays short.
        self._proc = popen(
            ["unshare", *flags, "--", *(INIT if self.host else ()), "/bin/sh", "-s"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={"PATH": SYSTEM_PATH, processes.OWNER_VAR: owner},
            preexec_fn=self.preexec,
            start_new_session=True,
        )
        assert self._proc.stdin is not None and self._proc.stdout is not None
        try:
            with self._proc.stdin:
                self._proc.stdin.write(script)
        except BrokenPipeError:   # it died first: its output says why
            pass
        output = []
        for line in self._proc.stdout:
            word, _, pid = line.strip().partition(" ")
            if word == "ready" and pid.isdigit():
                break
            output.append(line)
        else:
            self._proc.wait()
            raise CommandFailed(f"namespace {name}", script, self._proc.returncode, "".join(output))
        self.pid = int(pid)
        # the holder's own processes: unshare, the init (a host's), and the one that holds
        self.init = processes.parent(self.pid) if self.host else self.pid   # PID 1 of a host
        self._init_started = processes.start_time(self.init)
        self.pids = frozenset({self._proc.pid, self.pid, self.init})

    def preexec(self) -> None:
        """In a child about to exec: die with this thread, and join the run's cgroup."""
        processes.die_with_parent()
        self.join()

    def join(self) -> None:
        """In a child about to exec: join the run's cgroup.

        An nsenter that forks into a host's PID namespace has only this: it ends when its
        command does, and the command when the host's init does (which dies with the run). Dying
        with the run itself, it would leave its command's exit to the machine's PID 1, which may
        read it late (1.6-1.8 s here), and the host's namespaces would live until it did."""
        if self.cgroup is not None:
            cgroups.join_self(self.cgroup.procs_files)

    def nsenter(self, *, mount: bool) -> list[str]:
        """The nsenter prefix that runs a command in this holder's namespaces (and with `mount`, its
        root, and a host's PID, UTS and IPC namespaces: the command is then nsenter's child)."""
        target = ["nsenter", "--target", str(self.pid), "--net"]
        target += ["--cgroup"] if self.cgroupns else []
        target += ["--mount", "--root", "--wd"] if mount else []
        return target + (["--pid", "--uts", "--ipc"] if mount and self.host else [])

    def path(self, inside: str) -> Path:
        """A path inside the holder's root as seen from outside (sockets, logs)."""
        return Path(f"/proc/{self.pid}/root{inside}")

    def in_netns(self, fn: Callable[[], T]) -> T:
        """Run `fn` on a thread that has joined this holder's network namespace.

        Sockets keep the namespace they were created in, so `fn` can return a connected socket.
        """
        box: dict[str, T | BaseException] = {}

        def target() -> None:
            try:
                with open(f"/proc/{self.pid}/ns/net") as ns:
                    libc = ctypes.CDLL(None, use_errno=True)
                    if libc.setns(ns.fileno(), _CLONE_NEWNET) != 0:
                        raise OSError(ctypes.get_errno(), "setns into the lab network namespace")
                box["value"] = fn()
            except BaseException as error:  # handed to the caller's thread
                box["error"] = error

        thread = threading.Thread(target=target, name=f"netns-{self.name}")
        thread.start()
        thread.join()
        if "error" in box:
            raise box["error"]  # type: ignore[misc]
        return box["value"]  # type: ignore[return-value]

    def connect(self, host: str, port: int, timeout: float = 5.0) -> socket.socket:
        """A TCP connection made from inside this namespace."""
        return self.in_netns(lambda: socket.create_connection((host, port), timeout=timeout))

    def stop(self) -> None:
        """End everything the holder holds, then the holder itself: with a cgroup, all of it at
        once, whether or not the holder still lives; without, what is left in its network
        namespace.

        A host's init goes first: its end makes the kernel kill every process in its PID
        namespace, and the nsenters waiting outside read their children's exits at once. Killed
        together with them, an nsenter leaves its child to the machine's PID 1, which may read it
        late (1.6-1.8 s here), and the namespace lives until it does."""
        if self.host and self._proc.poll() is None and processes.start_time(self.init) == self._init_started:
            os.kill(self.init, signal.SIGKILL)
            try:   # unshare reads its init's exit once the namespace is empty
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        if self.cgroup is not None:
            self.cgroup.kill()
        elif self._proc.poll() is None:
            processes.kill_all(processes.netns_members(self.pid))
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        if self._proc.stdout:
            self._proc.stdout.close()


class Executor:
    """Runs commands inside a holder's namespaces, marked as belonging to this run."""

    def __init__(self, holder: Holder, *, mount: bool, where: str) -> None:
        self.holder = holder
        self.mount = mount
        self.where = where

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = {
            "PATH": SYSTEM_PATH,
            "HOME": "/root",
            "LANG": "C.UTF-8",
            processes.OWNER_VAR: self.holder.owner,
        }
        env.update(extra or {})
        return env

    @property
    def forks(self) -> bool:
        """Does nsenter fork the command (into a host's PID namespace) rather than exec it?"""
        return self.mount and self.holder.host

    def argv(self, argv: Sequence[str]) -> list[str]:
        return [*self.holder.nsenter(mount=self.mount), "--", *(ENTERED if self.forks else ()), *argv]

    def run(
        self, argv: Sequence[str], *, check: bool = True, timeout: float = 120, input: str | None = None
    ) -> Result:
        """Run to completion; stdout and stderr merged."""
        __tracebackhide__ = True
        with popen(
            self.argv(argv),
            cls=Entered if self.forks else None,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            env=self.env(),
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            preexec_fn=self.holder.join if self.forks else self.holder.preexec,
            start_new_session=True,
        ) as proc:
            try:
                output, _ = proc.communicate(input, timeout=timeout)
            except BaseException:   # a timeout, a signal: as subprocess.run, never leave it running
                proc.kill()
                proc.wait()
                raise
        if check and proc.returncode != 0:
            raise CommandFailed(self.where, argv, proc.returncode, output)
        return Result(proc.returncode, output)

    def spawn(
        self, argv: Sequence[str], *, log: IO[str], env: Mapping[str, str] | None = None
    ) -> subprocess.Popen[str]:
        """Start a long-running process whose output goes to `log`; it dies with this run. Its
        signals (terminate, kill) reach the process itself, not the nsenter that forked it."""
        return popen(
            self.argv(argv),
            cls=Entered if self.forks else None,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            env=self.env(env),
            preexec_fn=self.holder.join if self.forks else self.holder.preexec,
            start_new_session=True,
        )


class Entered(subprocess.Popen[str]):
    """A process nsenter forked into a PID namespace: this Popen is nsenter's, which waits for its
    child and passes its exit status on, but forwards no signal. A signal sent here goes to the
    child (the command itself) once it exists; to nsenter before that, which the command outlives
    only for the instant its parent-death signal takes (ENTERED)."""

    def send_signal(self, sig: int) -> None:
        self.poll()
        if self.returncode is not None:
            return
        for pid in processes.children(self.pid) or {self.pid}:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass


def popen(argv: Sequence[str], *, cls: type[subprocess.Popen[str]] | None = None,
          **kwargs: Any) -> subprocess.Popen[str]:
    """subprocess.Popen with a preexec_fn, the first signal held off until the child exists.
    With a preexec_fn, Python runs its fork hooks (logging's, random's) in this process right
    after the fork, and the Interrupted that a Ctrl-C raises inside one is printed and dropped
    ("Exception ignored in: <function _releaseLock>"): the run went on as if never stopped
    (CI, SIGINT and SIGTERM while dockerd was being started). Here it is raised once Popen
    returns; the child, in the lab's cgroup, goes with the lab's teardown."""
    with interrupt.shielded():
        return (cls or subprocess.Popen)(argv, **kwargs)


def ensure_root() -> None:
    if os.geteuid() != 0:
        raise PermissionError("coexist builds namespaces, mounts and bridges: run it as root")
