"""Running a scenario end to end: lab up, then its steps in order, each measured, then the verdict."""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import assert_never

import docker.errors

from coexist.base import interrupt, log
from coexist.guest.accel import AccelDecision
from coexist.guest.guest import Guest, accel_for, guest_for
from coexist.host import containers, firewall, upgrade
from coexist.host.daemons import Daemon, NotApplicable
from coexist.host.hostconfig import HostSettings
from coexist.host.testbed import Testbed
from coexist.images.built import Images, build_images
from coexist.report.explain import explain_steps
from coexist.report.results import CommandRun, StepResult
from coexist.report.verdict import CONTROL_BLIND, CONTROL_NOT_RUN, CONTROL_SEEN, Verdict
from coexist.run import events
from coexist.run.measure import host_facts, settle, wanted_facts
from coexist.run.probing import WEB, Probing
from coexist.run.warm import ResetLeftovers, WarmLab, WarmLabs
from coexist.scenario.model import Scenario
from coexist.scenario.steps import (
    Admin,
    ApplyFix,
    AxisEvents,
    Boot,
    Events,
    Measure,
    RevertFix,
    Step,
    Upgrade,
    events_of,
    touches_firewalld,
)

FLUSH = ("nft flush ruleset",   # iptables-nft's rules too; then iptables-legacy's, where it has tables
         "for t in $(cat /proc/net/ip_tables_names); do iptables-legacy -t $t -F; iptables-legacy -t $t -X; "
         "done; if grep -qx filter /proc/net/ip_tables_names; then iptables-legacy -P FORWARD ACCEPT; fi",
         "for t in $(cat /proc/net/ip6_tables_names); do ip6tables-legacy -t $t -F; done",
         "sysctl -qw net.ipv4.ip_forward=1")


class Run:
    """A scenario running in its lab: the guests, the workload, and the steps as they happen."""

    def __init__(self, scenario: Scenario, bed: Testbed, artifacts: Path, stack: ExitStack, *,
                 accel: str = "auto", warm: WarmLab | None = None) -> None:
        self.scenario, self.bed, self.lab, self.artifacts = scenario, bed, bed.lab, artifacts
        self.accel = accel   # auto: KVM if a guest really boots under it here, else TCG; or forced
        self.images = bed.images
        self.stack = stack
        self.warm = warm     # a lab booted before, for other scenarios of this host: reset, not booted
        self.networks = scenario.guest_networks()
        self.guests: dict[str, Guest] = dict(warm.guests) if warm is not None else {}
        self.decision: AccelDecision | None = warm.decision if warm is not None else None
        self.snapshots: list[firewall.Snapshot] = []
        self.before_fix: dict[str, firewall.Snapshot] = {}   # a fix's name -> the firewall before it
        self.before_upgrade: firewall.Snapshot | None = None   # the firewall before an upgrade step
        self.etc_at_boot: dict[str, bytes] = {}   # with an upgrade step: /etc after the boot step
        self.wanted = wanted_facts([step.expect for step in scenario.steps])
        self.timings: dict[str, float] = {}
        self.probing = Probing(self.lab, scenario, self.guests)

    # -- the host's life ------------------------------------------------------------------------
    def boot(self) -> list[str]:
        """Daemons in start order, the workload, the guests up; returns Docker's refusals.
        A warm lab booted before is reset instead (coexist.run.warm)."""
        if self.warm is not None and self.warm.booted:
            self.timings["reset"] = self.warm.reset()
            self.snapshot("00-baseline")
            return []
        phase = time.monotonic()
        self.bed.boot()
        self.timings["daemons"] = time.monotonic() - phase
        problems = self._start_workload()
        self.decision = accel_for(self.lab, self.images.guest, asked=self.accel)
        self.snapshot("00-baseline")
        phase = time.monotonic()
        for index, (name, network) in enumerate(self.networks.items()):
            guest = guest_for(self.lab, self.images.guest, network=network,
                              artifacts=self.warm.folder if self.warm is not None else self.artifacts,
                              suffix="" if index == 0 else f"-{name}", role=name,
                              decision=self.decision)
            self.guests[name] = self.stack.enter_context(guest)
        self.timings["guests boot to SSH"] = time.monotonic() - phase
        return problems

    def _start_workload(self) -> list[str]:
        """The containers the scenario asks for; Docker refusing (measured: e.g. firewalld 1.3.3
        flushed Docker's chains) is a finding the verdict states, not a broken run."""
        problems = []
        workload = self.scenario.workload
        starts: list[tuple[str, Callable[[], object]]] = []
        if workload.published_port is not None:
            port = workload.published_port
            starts.append(("the web container did not start",
                           lambda: containers.run_web(self.lab, name=WEB, published_port=port)))
        if workload.isolated_networks:
            starts.append(("the isolation probe could not start",
                           lambda: containers.run_isolated_server(self.lab)))
        for failure, start in starts:
            try:
                start()
            except docker.errors.APIError as error:
                problems.append(f"{failure}: {error.explanation or error}")
                log.info(problems[-1])
        return problems

    # -- steps ----------------------------------------------------------------------------------
    def do(self, step: Step, number: int) -> StepResult:
        started = time.monotonic()
        result = StepResult(step)
        with log.step(f"step {number} [{step.id}]: {step.label()}"):
            match step:
                case Boot():
                    result.problems = self.boot()
                case Measure():
                    pass
                case Admin(commands=commands):
                    result.commands = self._commands(commands)
                case Events(events=happening) | AxisEvents(events=happening):
                    events.happen(self.bed, self.guests, happening)
                case ApplyFix(fix=fix):
                    self.lab.check_needs(fix)
                    if fix.settings:
                        tables = fix.settings
                        self.bed.reconfigure(HostSettings(
                            docker=tables.get("docker", {}), libvirt=tables.get("libvirt", {}),
                            firewalld=tables.get("firewalld", {}), sysctl=tables.get("sysctl", {}),
                            zones=tables.get("zones", {})))
                    for service, run in fix.after_start.items():
                        self.lab.after_start(service.daemon, run)
                    if fix.start_before is not None:
                        self.bed.reorder(fix.boot_order(self.bed.plan.start_order))
                    result.commands = self._commands(fix.commands)
                    events.happen(self.bed, self.guests, fix.then)
                case RevertFix(fix=fix):
                    self.lab.check_needs(fix)
                    result.commands = self._commands(fix.revert)
                case Upgrade(target=target, conffiles=conffiles):
                    prepared = self.images.upgrade
                    if prepared is None or prepared.target != target:
                        raise ValueError(f"the images hold no upgrade to {target}: "
                                         "build_images(..., upgrade_to=scenario.upgrade_target())")
                    apt_log = self.artifacts / f"{number:02d}-{step.id}-apt.log"
                    result.upgrade = upgrade.upgrade(
                        self.lab, prepared, conffiles, apt_log, at_boot=self.etc_at_boot,
                        settings=self.bed.plan.settings)
                    self.bed.plan = dataclasses.replace(self.bed.plan, release=target)
                    events.happen(self.bed, self.guests, events_of(step))   # the reboot into it
                case _:
                    assert_never(step)
            self._measure(step, result, number)
            if isinstance(step, Boot) and self.scenario.upgrade_target() is not None:
                self.etc_at_boot = upgrade.etc_contents(self.lab)   # what the scenario changes is after it
            if isinstance(step, Boot) and self.warm is not None:
                self.warm.after_boot(self.snapshots[-1], guests=self.guests, decision=self.decision,
                                     problems=result.problems)
            if isinstance(step, ApplyFix):
                result.checks = [check.evaluate(self.lab) for check in step.fix.checks]
                result.added = firewall.added_rules(self.snapshots[-2], self.snapshots[-1])
                self.before_fix.setdefault(step.fix.name, self.snapshots[-2])   # its first time
            if touches_firewalld(step):
                result.docker_rules = firewall.docker_rules(self.snapshots[-2], self.snapshots[-1])
            if isinstance(step, Upgrade):
                self.before_upgrade = self.snapshots[-2]
            if self.before_upgrade is not None:   # this step and every one after the upgrade
                result.since_upgrade = firewall.differences(self.before_upgrade, self.snapshots[-1])
            if isinstance(step, RevertFix) and step.fix.name in self.before_fix:
                before, now = self.before_fix[step.fix.name], self.snapshots[-1]
                result.unreverted = firewall.differences(before, now)
        result.seconds = time.monotonic() - started
        for line in result.mismatches():
            log.info(f"UNEXPECTED {line}")
        return result

    def _commands(self, commands: tuple[str, ...]) -> list[CommandRun]:
        ran = []
        for command in commands:
            outcome = self.lab.execute(command)
            ran.append(CommandRun(command, outcome.returncode, outcome.output))
            shown = outcome.output.strip().splitlines()[-1:] or ["ok"]
            log.info(f"host# {command}  -> exit {outcome.returncode}: {shown[0][:120]}")
        return ran

    def _measure(self, step: Step, result: StepResult, number: int) -> None:
        """The guests until they settle, then Docker's workload and the host's facts, all at once
        (none changes what another measures), then the firewall snapshot of the step.

        The host side waits for the guests: right after a `firewall-cmd --reload` Docker's
        isolation too is briefly not what it settles to (measured on trixie: kept at once,
        broken a few seconds later), and the guests' settling is what says the step is over."""
        with log.step(f"measure after [{step.id}] (until settled, at most {step.settle:.0f}s)"):
            workload = self.scenario.workload
            probes = workload.probes
            with interrupt.Pool(max(len(self.guests), 6), thread_name_prefix="measure") as pool:
                rules = functools.partial(firewall.ruleset_now, self.lab)
                settled = {name: pool.submit(settle, guest, limit=step.settle, firewall=rules)
                           for name, guest in self.guests.items()}
                result.guests = {name: future.result() for name, future in settled.items()}
                probing = self.probing
                port = pool.submit(probing.published_port) if workload.published_port is not None else None
                isolation = pool.submit(probing.docker_isolation) if workload.isolated_networks else None
                asked = {name: pool.submit(getattr(probing, name)) for name in probes}
                own = pool.submit(probing.own) if self.scenario.probes else None
                facts = pool.submit(host_facts, self.lab, self.wanted)
                result.published_port = port.result() if port is not None else None
                result.docker_isolation = isolation.result() if isolation is not None else None
                for name, future in asked.items():
                    setattr(result, name, future.result())
                result.probes = own.result() if own is not None else {}
                result.facts = facts.result()
            self.snapshot(f"{number:02d}-{step.id}")

    def controls(self) -> dict[str, str]:
        """The positive controls of the probes that look for a bad outcome (guests_closed,
        containers_closed), once per run after its last measurement: with the lab's firewall
        flushed (firewalld stopped first: from 2.0 it owns its table, which `nft flush ruleset`
        leaves in place while it runs) and forwarding on, each must now see the path OPEN. A
        probe that still says "closed" cannot see an open path, and its "closed" proved nothing:
        the verdict says so.
        Nothing is measured after this (the lab is powered off next)."""
        probes = self.scenario.workload.probes
        wanted = [name for name in ("guests_closed", "containers_closed") if name in probes]
        if not wanted or not self.guests:
            return {}
        with log.step(f"positive controls of {', '.join(wanted)}: the lab's firewall flushed"):
            if self.lab.running(Daemon.FIREWALLD):   # firewalld >= 2 owns its nft table: a flush
                self.lab.stop(Daemon.FIREWALLD)       # leaves it while firewalld runs
            self._commands(FLUSH)
            self.snapshot("99-controls-flushed")
            seen = {name: getattr(self.probing, name)() for name in wanted}
            return {name: CONTROL_SEEN if closed is False else CONTROL_BLIND if closed else
                    CONTROL_NOT_RUN for name, closed in seen.items()}

    def snapshot(self, phase: str) -> None:
        snap = firewall.snapshot(self.lab, phase)
        snap.save(self.artifacts)
        self.snapshots.append(snap)


def run_scenario(scenario: Scenario, *, artifacts: Path, images: Images | None = None,
                 accel: str = "auto", warm: WarmLabs | None = None) -> Verdict:
    """Run `scenario` for real and return the verdict (it does not raise on unexpected outcomes).
    `warm`: in the warm lab of the scenario's host, reset rather than booted if it ran a scenario
    before (coexist.run.warm); a reset that did not bring back the fresh host, and the scenario
    runs again in a fresh lab, its verdict saying so.
    NotApplicable: the release cannot do what the scenario asks (before or while it runs)."""
    why = scenario.not_applicable()
    if why is not None:
        raise NotApplicable(why)
    started = time.monotonic()
    artifacts.mkdir(parents=True, exist_ok=True)
    images = images or build_images(scenario.host.release, scenario.host.packages,
                                    upgrade_to=scenario.upgrade_target())
    missing = [p for p in scenario.host.packages if p not in images.host.manifest]
    if missing:
        raise ValueError(f"the host image given has not {', '.join(missing)} ([host] packages): "
                         "build_images(release, packages)")
    built = time.monotonic()
    if scenario.upgrade_target() is not None:
        warm = None   # an upgraded host is no longer the one a warm lab is reset to
    if warm is None:
        with ExitStack() as stack:
            bed = stack.enter_context(Testbed(scenario.host_plan(), images, artifacts=artifacts))
            return _run(Run(scenario, bed, artifacts, stack, accel=accel), started, built)
    note: str | None = None
    while True:
        lab = warm.lab_for(scenario, images)
        try:
            return _run(Run(scenario, lab.bed, artifacts, lab.stack, accel=accel, warm=lab), started, built,
                        note=note)
        except ResetLeftovers as leftovers:   # after a reset only: the lab made next boots fresh
            warm.close()
            log.info(f"{leftovers}: the scenario again, in a fresh lab")
            note = f"measured in a fresh lab: {leftovers}"
        except BaseException:
            warm.close()   # the lab's state is not known
            raise


def _run(run: Run, started: float, built: float, *, note: str | None = None) -> Verdict:
    """The scenario's steps in `run`'s lab, its verdict written into the run's artifacts. In a
    fresh lab (not warm) the lab's power goes at the end: nothing more is measured in it."""
    scenario, lab, artifacts = run.scenario, run.lab, run.artifacts
    results: list[StepResult] = []
    with log.step(f"scenario {scenario.name} on {scenario.host.release}"):
        # durations, each phase on its own ("daemons" and "guests boot to SSH" are inside "steps")
        run.timings["images"] = built - started
        run.timings["lab"] = time.monotonic() - built
        stepping = time.monotonic()
        for number, step in enumerate(scenario.steps, 1):
            results.append(run.do(step, number))
        assert run.decision is not None
        deviations = list(dict.fromkeys(lab.deviations)) + ([note] if note else [])
        verdict = Verdict(scenario, dict(run.images.host.manifest), run.decision, deviations,
                          results, timings=run.timings, artifacts=str(artifacts))
        verdict.explanation = explain_steps(run.snapshots, results, run.networks)
        verdict.controls = run.controls()
        ending = time.monotonic()
        run.timings["steps"] = ending - stepping
        if run.warm is None:
            lab.power_off()   # nothing more to measure: no daemon or guest needs a graceful end
        else:
            (artifacts / "warm-lab.txt").write_text(
                f"measured in warm lab {run.warm.key} (scenario {run.warm.uses} there); its daemons' "
                f"logs and the guests' consoles: {run.warm.folder}\n")
    run.timings["teardown"] = time.monotonic() - ending
    run.timings["total"] = time.monotonic() - started
    (artifacts / "verdict.txt").write_text(verdict.render() + "\n")
    (artifacts / "verdict.json").write_text(verdict.dumps() + "\n")
    return verdict
