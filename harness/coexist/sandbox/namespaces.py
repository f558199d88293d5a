"""Holder processes that keep a network (and mount) namespace alive, and ways to act inside them."""

from __future__ import annotations

import ctypes
import os
import shlex
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
# A daemon runs under a subreaper, so that what it daemonizes (libvirtd's qemu and dnsmasq) is
# reaped the moment it exits, as systemd does on a real host. Without it the orphans go to the
# machine's PID 1, which need not reap them at once (a container's or microVM's init may be slow:
# bench/results/README.md, "subreaper"), and libvirt waits for its qemu's zombie
# (virProcessKillPainfully polls kill(pid, 0)) before a `virsh destroy` returns. setpriv gives
# the daemon the parent-death signal the subreaper has (preexec): it still dies with the run.
SUBREAPER = ("tini", "-s", "--", "setpriv", "--pdeathsig", "KILL", "--")


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
    """

    def __init__(
        self, name: str, *, mount: bool, setup: str = "", owner: str, root: Path | None = None,
        cgroup: cgroups.RunCgroup | None = None,
    ) -> None:
        self.name = name
        self.owner = owner
        self.cgroup = cgroup
        self.cgroupns = mount and cgroup is not None
        flags = ["--net"] + (["--mount", "--propagation", "private"] if mount else [])
        flags += ["--cgroup"] if self.cgroupns else []
        settle = "echo ready; exec sleep infinity"
        if root is not None:
            # pivot_root(".", "."), then detach the old root stacked on top (as runc does).
            settle = (f"cd {shlex.quote(str(root))}\npivot_root . .\numount -l .\ncd /\n"
                      f"exec /bin/sh -c '{settle}'")
        script = f"set -e\n{setup}\n{settle}\n"
        self._proc = popen(
            ["unshare", *flags, "--", "/bin/sh", "-c", script],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={"PATH": SYSTEM_PATH, processes.OWNER_VAR: owner},
            preexec_fn=self.preexec,
            start_new_session=True,
        )
        assert self._proc.stdout is not None
        output = []
        for line in self._proc.stdout:
            if line.strip() == "ready":
                break
            output.append(line)
        else:
            self._proc.wait()
            raise CommandFailed(f"namespace {name}", script, self._proc.returncode, "".join(output))
        self.pid = self._proc.pid

    def preexec(self) -> None:
        """In a child about to exec: die with this thread, and join the run's cgroup."""
        processes.die_with_parent()
        if self.cgroup is not None:
            cgroups.join_self(self.cgroup.procs_files)

    def nsenter(self, *, mount: bool) -> list[str]:
        """The nsenter prefix that runs a command in this holder's namespaces (and root, if mount)."""
        target = ["nsenter", "--target", str(self.pid), "--net"]
        target += ["--cgroup"] if self.cgroupns else []
        return target + (["--mount", "--root", "--wd"] if mount else [])

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
        namespace."""
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

    def argv(self, argv: Sequence[str]) -> list[str]:
        return [*self.holder.nsenter(mount=self.mount), "--", *argv]

    def run(
        self, argv: Sequence[str], *, check: bool = True, timeout: float = 120, input: str | None = None
    ) -> Result:
        """Run to completion; stdout and stderr merged."""
        __tracebackhide__ = True
        with popen(
            self.argv(argv),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            env=self.env(),
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            preexec_fn=self.holder.preexec,
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
        self,
        argv: Sequence[str],
        *,
        log: IO[str],
        env: Mapping[str, str] | None = None,
        subreaper: bool = False,
    ) -> subprocess.Popen[str]:
        """Start a long-running process whose output goes to `log`; it dies with this run. With
        `subreaper`, under SUBREAPER (the Popen is then the subreaper's, signals reach the
        process through it)."""
        return popen(
            [*(SUBREAPER if subreaper else ()), *self.argv(argv)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            env=self.env(env),
            preexec_fn=self.holder.preexec,
            start_new_session=True,
        )


def popen(argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[str]:
    """subprocess.Popen with a preexec_fn, the first signal held off until the child exists.
    With a preexec_fn, Python runs its fork hooks (logging's, random's) in this process right
    after the fork, and the Interrupted that a Ctrl-C raises inside one is printed and dropped
    ("Exception ignored in: <function _releaseLock>"): the run went on as if never stopped
    (CI, SIGINT and SIGTERM while dockerd was being started). Here it is raised once Popen
    returns; the child, in the lab's cgroup, goes with the lab's teardown."""
    with interrupt.shielded():
        return subprocess.Popen(argv, **kwargs)


def ensure_root() -> None:
    if os.geteuid() != 0:
        raise PermissionError("coexist builds namespaces, mounts and bridges: run it as root")
