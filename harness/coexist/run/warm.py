"""Warm labs: one lab and guest booted for many scenarios of the same host, reset between them.

The fix catalogue measures twenty fixes on one host setup per release; each fix's scenario starts
with the same `boot`. A warm lab boots that host once. Before each later scenario it is reset as a
host whose admin put /etc back and rebooted: power cycled (daemons stopped, runtime firewall,
links and /run gone, the guests' power lost), /etc restored to what the fresh host had, the
in-memory settings (boot order, ExecStartPost= commands, daemon environments) as at the first
boot, then booted again, libvirtd autostarting the networks and guests.

A reset is proven, never assumed: after the reset's `boot` step is measured, its firewall
(ruleset lines, base chain policies, forwarding sysctls, firewalld's zones) and /etc are compared
with the fresh boot's. Any difference: the lab is dropped, and the scenario runs again in a fresh
lab, its verdict saying why (coexist.run.runner.run_scenario).

One warm lab is alive at a time per process (a pytest-xdist worker has its own): a scenario for
another host closes the one before.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import time
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

from coexist.base import log
from coexist.host import configfiles, firewall
from coexist.host.testbed import Testbed
from coexist.images.built import Images
from coexist.scenario.model import Scenario

if TYPE_CHECKING:
    from coexist.guest.accel import AccelDecision
    from coexist.guest.guest import Guest


class ResetLeftovers(RuntimeError):
    """A warm lab's reset did not bring back the fresh host: `differences` says what differs."""

    def __init__(self, differences: list[str]) -> None:
        self.differences = differences
        more = f"; ... {len(differences) - 6} more" if len(differences) > 6 else ""
        shown = "; ".join(differences[:6]) + more
        super().__init__(f"the warm lab's reset left {len(differences)} difference(s) from its fresh "
                         f"boot: {shown}")


def host_key(scenario: Scenario) -> str:
    """What makes two scenarios' hosts the same host at boot: release, settings, boot order,
    networks, workload and guests (not the steps, name or expectations). A short digest."""
    shape = repr((scenario.host_plan(), scenario.workload, scenario.guest_networks(),
                  scenario.host.packages))   # the plan has the release
    return hashlib.sha256(shape.encode()).hexdigest()[:10]


class WarmLab:
    """One booted host for the scenarios of one host_key, with its fresh boot as the reference."""

    def __init__(self, key: str, bed: Testbed, stack: ExitStack, folder: Path) -> None:
        self.key, self.bed, self.stack, self.folder = key, bed, stack, folder
        self.guests: dict[str, Guest] = {}
        self.decision: AccelDecision | None = None
        self.reference: firewall.Snapshot | None = None   # the fresh boot's firewall, measured
        self.files: configfiles.Files = {}                # /etc after the fresh boot
        self.plan = bed.plan
        self.after_start = bed.lab.after_start_commands()
        self.daemon_env = copy.deepcopy(bed.lab.daemon_env)
        self.uses = 0
        self.reusable = True

    @property
    def booted(self) -> bool:
        return self.reference is not None

    def reset(self) -> float:
        """Power cycle, /etc and the in-memory settings back as at the fresh boot, boot again
        (libvirtd autostarts the networks and guests). Returns its seconds."""
        started = time.monotonic()
        lab = self.bed.lab

        def while_down() -> None:
            restored = configfiles.restore(lab, self.files)
            if restored:
                log.info(f"warm lab: /etc put back ({len(restored)} path(s): {', '.join(restored[:5])})")
            self.bed.plan = self.plan
            lab.set_after_start(self.after_start)
            lab.daemon_env = copy.deepcopy(self.daemon_env)

        with log.step(f"warm lab {self.key}: reset (scenario {self.uses + 1} in this lab)"):
            self.bed.reboot(self.guests.values(), while_down=while_down)
        return time.monotonic() - started

    def after_boot(self, measured: firewall.Snapshot, *, guests: dict[str, Guest],
                   decision: AccelDecision | None, problems: list[str]) -> None:
        """After a `boot` step's measurement (`measured`: its firewall): the fresh boot's state
        becomes the reference (the networks and guests marked autostart first, as the reset's
        reboot needs them); after a reset, the state is compared with it (ResetLeftovers if not
        the same)."""
        lab = self.bed.lab
        if self.reference is None:
            self.guests, self.decision = guests, decision
            self.reusable = not problems   # Docker refused the workload: nothing to come back to
            self.bed.mark_autostart(self.guests.values())
            self.files = configfiles.capture(lab)
            self.reference = measured
            return
        left = firewall.differences(self.reference, measured) + \
            [f"/etc {line}" for line in configfiles.differences(self.files, configfiles.capture(lab))]
        if left:
            raise ResetLeftovers(left)


_NAMES = itertools.count(1)   # a testbed's name makes its work folder: one of its own per warm lab


class WarmLabs:
    """The warm lab of this process (at most one alive): `lab_for()` a scenario's host."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.current: WarmLab | None = None

    def lab_for(self, scenario: Scenario, images: Images) -> WarmLab:
        """The warm lab for the scenario's host: the current one if it is that host's and can be
        used again, else a new testbed (not booted yet: the scenario's `boot` step boots it)."""
        key = host_key(scenario)
        if self.current is not None and (self.current.key != key or not self.current.reusable):
            self.close()
        if self.current is None:
            stack = ExitStack()
            folder = self.folder / f"lab-{scenario.host.release}-{key}"
            try:
                # named apart from the plugin's fixture labs ("lab") and from another warm lab of
                # this process (a `coexist fixes` run inside a test that holds one): two testbeds
                # of one name and process would share their work folder
                bed = stack.enter_context(Testbed(scenario.host_plan(), images, name=f"warm{next(_NAMES)}",
                                                  artifacts=folder))
            except BaseException:
                stack.close()
                raise
            self.current = WarmLab(key, bed, stack, folder)
        self.current.uses += 1
        return self.current

    def close(self) -> None:
        """Take the current lab apart (also when its state is not known: a scenario failed in it)."""
        if self.current is not None:
            current, self.current = self.current, None
            with log.step(f"warm lab {current.key}: taken apart after {current.uses} scenario(s)"):
                current.stack.close()
