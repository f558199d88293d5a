"""Running a scenario end to end: lab up, then its steps in order, each measured, then the verdict."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import assert_never

import docker.errors
import paramiko

from coexist.base import interrupt, log
from coexist.guest.accel import AccelDecision
from coexist.guest.guest import Guest, accel_for, guest_for
from coexist.host import containers, firewall
from coexist.host.daemons import Daemon, NotApplicable
from coexist.host.hostconfig import HostSettings
from coexist.host.testbed import Testbed
from coexist.images.built import Images, build_images
from coexist.net import connectivity
from coexist.net.wan import LAB_UPLINK
from coexist.report.explain import explain_steps
from coexist.report.results import CommandRun, StepResult
from coexist.report.verdict import CONTROL_BLIND, CONTROL_SEEN, Verdict
from coexist.run import events
from coexist.run.measure import host_facts, settle, wanted_facts
from coexist.scenario.model import Scenario
from coexist.scenario.steps import Admin, ApplyFix, AxisEvents, Boot, Events, Measure, RevertFix, Step

WEB = "coexist-web"
FLUSH = ("nft flush ruleset",   # iptables-nft's rules too; then iptables-legacy's, where it has tables
         "for t in $(cat /proc/net/ip_tables_names); do iptables-legacy -t $t -F; iptables-legacy -t $t -X; "
         "done; if grep -qx filter /proc/net/ip_tables_names; then iptables-legacy -P FORWARD ACCEPT; fi",
         "for t in $(cat /proc/net/ip6_tables_names); do ip6tables-legacy -t $t -F; done",
         "sysctl -qw net.ipv4.ip_forward=1")

PORT_TIMEOUT = 5.0   # how long the published port may take to answer from outside


class Run:
    """A scenario running in its lab: the guests, the workload, and the steps as they happen."""

    def __init__(self, scenario: Scenario, bed: Testbed, artifacts: Path, stack: ExitStack, *,
                 accel: str = "auto") -> None:
        self.scenario, self.bed, self.lab, self.artifacts = scenario, bed, bed.lab, artifacts
        self.accel = accel   # auto: KVM if a guest really boots under it here, else TCG; or forced
        self.images = bed.images
        self.stack = stack
        self.networks = scenario.guest_networks()
        self.guests: dict[str, Guest] = {}
        self.decision: AccelDecision | None = None
        self.snapshots: list[firewall.Snapshot] = []
        self.wanted = wanted_facts([step.expect for step in scenario.steps])
        self.timings: dict[str, float] = {}

    # -- the host's life ------------------------------------------------------------------------
    def boot(self) -> list[str]:
        """Daemons in start order, the workload, the guests up; returns Docker's refusals."""
        phase = time.monotonic()
        self.bed.boot()
        self.timings["daemons"] = time.monotonic() - phase
        problems = self._start_workload()
        self.decision = accel_for(self.lab, self.images.guest, asked=self.accel)
        self.snapshot("00-baseline")
        phase = time.monotonic()
        for index, (name, network) in enumerate(self.networks.items()):
            guest = guest_for(self.lab, self.images.guest, network=network, artifacts=self.artifacts,
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
                case _:
                    assert_never(step)
            self._measure(step, result, number)
            if isinstance(step, ApplyFix):
                result.checks = [check.evaluate(self.lab) for check in step.fix.checks]
                result.added = firewall.added_rules(self.snapshots[-2], self.snapshots[-1])
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
                settled = {name: pool.submit(settle, guest, limit=step.settle)
                           for name, guest in self.guests.items()}
                result.guests = {name: future.result() for name, future in settled.items()}
                port = pool.submit(self._published_port_answers) \
                    if workload.published_port is not None else None
                isolation = pool.submit(self._isolation_kept) if workload.isolated_networks else None
                asked = {name: pool.submit(getattr(self, f"_{name}")) for name in probes}
                own = pool.submit(self._own_probes) if self.scenario.probes else None
                facts = pool.submit(host_facts, self.lab, self.wanted)
                result.published_port = port.result() if port is not None else None
                result.docker_isolation = isolation.result() if isolation is not None else None
                for name, future in asked.items():
                    setattr(result, name, future.result())
                result.probes = own.result() if own is not None else {}
                result.facts = facts.result()
            self.snapshot(f"{number:02d}-{step.id}")

    def _published_port_answers(self) -> bool:
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

    def _isolation_kept(self) -> bool | None:
        """Are Docker's two networks still kept apart? None: the probe's server is not running."""
        if not self._container_running(containers.ISOLATED_SERVER):
            return None
        server = self.lab.docker().containers.get(containers.ISOLATED_SERVER)
        return not containers.reaches_across(self.lab, server)

    # -- the cost probes ([workload] probes), one method each, named as the probe ---------------
    def _container_egress(self) -> bool:
        """Containers on docker0 and on a user-defined network fetch the internet's page."""
        if not self.lab.running(Daemon.DOCKERD):
            return False
        far = self.lab.wan.endpoints
        return all(containers.egress(self.lab, far.http_host, far.http_port, far.http_body).values())

    def _guests_closed(self) -> bool | None:
        """No guest accepts a new connection from the simulated internet (None: a guest has no
        address)."""
        seen = [self._inbound(guest) for guest in self.guests.values()]
        return None if None in seen else all(outcome != "open" for outcome in seen)

    def _inbound(self, guest: Guest) -> str | None:
        if guest.address is None:
            return None
        subnet = guest.network.spec.ipv4
        if subnet is None:   # on the uplink's LAN: the internet's router reaches it as it is
            return connectivity.inbound(self.lab.wan, guest.address)
        with self.lab.wan.routed(subnet, via=LAB_UPLINK):
            return connectivity.inbound(self.lab.wan, guest.address)

    def _containers_closed(self) -> bool | None:
        """No guest gets the isolated server's page from its address and unpublished port
        (None: the server is not running, or a guest could not be asked)."""
        if not self._container_running(containers.ISOLATED_SERVER):
            return None
        where = containers.address(self.lab.docker().containers.get(containers.ISOLATED_SERVER))
        seen = [self._guest_fetches(guest, where) for guest in self.guests.values()]
        return None if None in seen else not any(seen)

    @staticmethod
    def _guest_fetches(guest: Guest, where: str) -> bool | None:
        try:
            _, output = guest.execute(connectivity.http_get(where), timeout=20)
        except (paramiko.SSHException, OSError, EOFError) as error:
            log.info(f"guest {guest.role} -> container {where}:80: not measured ({error!r})")
            return None
        reached = connectivity.PAGE.decode() in output
        log.info(f"guest {guest.role} -> container {where}:80 (unpublished): "
                 f"{'REACHED' if reached else 'blocked'}")
        return reached

    def _own_probes(self) -> dict[str, CommandRun]:
        """The scenario's own probes ([[probe]]), one after the other, each where it says."""
        first = next(iter(self.guests.values()), None)
        found = {}
        for probe in self.scenario.probes:
            command = probe.command(first.address if first else None)
            match probe.where:
                case "guest":
                    runs = [self._in_guest(guest, command) for guest in self.guests.values()]
                    failed = [run for run in runs if run.returncode != 0]
                    found[probe.id] = (failed or runs or [CommandRun(command, 1, "no guest")])[0]
                case "container":
                    if self.lab.running(Daemon.DOCKERD):
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
    def _in_guest(guest: Guest, command: str) -> CommandRun:
        try:
            rc, output = guest.execute(command, timeout=20)
        except (paramiko.SSHException, OSError, EOFError) as error:
            return CommandRun(command, 255, f"not measured: the host lost its SSH session ({error!r})")
        return CommandRun(command, rc, output)

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
            return {name: CONTROL_SEEN if getattr(self, f"_{name}")() is False else
                    f"{CONTROL_BLIND} (the probe still said closed or could not ask)" for name in wanted}

    def snapshot(self, phase: str) -> None:
        self.snapshots.append(self.bed.snapshot(phase))


def run_scenario(scenario: Scenario, *, artifacts: Path, images: Images | None = None,
                 accel: str = "auto") -> Verdict:
    """Run `scenario` for real and return the verdict (it does not raise on unexpected outcomes).
    NotApplicable: the release cannot do what the scenario asks (before or while it runs)."""
    why = scenario.not_applicable()
    if why is not None:
        raise NotApplicable(why)
    started = time.monotonic()
    artifacts.mkdir(parents=True, exist_ok=True)
    images = images or build_images(scenario.host.release)
    built = time.monotonic()
    results: list[StepResult] = []
    with log.step(f"scenario {scenario.name} on {scenario.host.release}"), ExitStack() as stack:
        bed = stack.enter_context(Testbed(scenario.host_plan(), images, artifacts=artifacts))
        lab = bed.lab
        run = Run(scenario, bed, artifacts, stack, accel=accel)
        # durations, each phase on its own ("daemons" and "guests boot to SSH" are inside "steps")
        run.timings["images"] = built - started
        run.timings["lab"] = time.monotonic() - built
        stepping = time.monotonic()
        for number, step in enumerate(scenario.steps, 1):
            results.append(run.do(step, number))
        assert run.decision is not None
        verdict = Verdict(scenario, dict(images.host.manifest), run.decision, list(lab.deviations),
                          results, timings=run.timings, artifacts=str(artifacts))
        verdict.explanation = explain_steps(run.snapshots, results, run.networks)
        verdict.controls = run.controls()
        ending = time.monotonic()
        run.timings["steps"] = ending - stepping
        lab.power_off()   # nothing more to measure: no daemon or guest needs a graceful end
    run.timings["teardown"] = time.monotonic() - ending
    run.timings["total"] = time.monotonic() - started
    (artifacts / "verdict.txt").write_text(verdict.render() + "\n")
    (artifacts / "verdict.json").write_text(verdict.dumps() + "\n")
    return verdict
