"""Running a scenario end to end: lab up, then its steps in order, each measured, then the verdict."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import docker.errors

from coexist.base import interrupt, log
from coexist.guest import accel
from coexist.guest.guest import GUEST_IMAGE_DIR, Guest
from coexist.guest.sshkeys import GuestKeys
from coexist.host import containers, firewall, hostconfig, qemucaps
from coexist.host.guestnet import GuestNetwork, NetworkSpec, uplink_ipv6
from coexist.host.hostconfig import NotApplicable
from coexist.host.lab import Lab
from coexist.images.guestimage import GuestImage, build_guest_image
from coexist.images.hostimage import HostImage, build_host_image
from coexist.net import connectivity
from coexist.net.wan import Wan
from coexist.report.explain import explain_steps
from coexist.report.verdict import Verdict
from coexist.run import events
from coexist.run.measure import CommandRun, StepResult, host_facts, settle, wanted_facts
from coexist.sandbox import leftovers, processes
from coexist.sandbox.leftovers import WORK_ROOT
from coexist.sandbox.namespaces import ensure_root
from coexist.scenario.model import Host, Scenario
from coexist.scenario.steps import Step

WEB = "coexist-web"
PORT_TIMEOUT = 5.0   # how long the published port may take to answer from outside


@dataclass(frozen=True)
class Images:
    host: HostImage
    guest: GuestImage


def build_images(release: str) -> Images:
    with log.step(f"images: host ({release}) and guest"):
        return Images(build_host_image(release), build_guest_image())


@contextmanager
def lab_for(host: Host, images: Images, *, name: str = "lab") -> Iterator[Lab]:
    """A wan and a lab with `host`'s configuration files written, daemons not yet started."""
    ensure_root()
    leftovers.sweep()
    owner = processes.owner_token()
    leftovers.guard(owner)
    workdir = WORK_ROOT / f"{owner}-{name}"
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        with Wan(owner=owner, workdir=workdir / "wan", name=f"{name}-wan") as wan, Lab(
                images.host, wan, workdir=workdir / "lab", name=name,
                shares={GUEST_IMAGE_DIR: images.guest.kernel.parent}) as lab:
            configure(lab, host)
            yield lab
            qemucaps.keep(lab)   # libvirt's probe of qemu, for the next lab of this image
    finally:
        with interrupt.shielded():
            shutil.rmtree(workdir, ignore_errors=True)


def configure(lab: Lab, host: Host) -> None:
    """Settings that must be in place before the daemons start (kept across a host-reboot)."""
    _give_qemu_user_kvm(lab)
    # The stock network would autostart with libvirtd; the scenario's start order decides instead.
    autostart = lab.path("/etc/libvirt/qemu/networks/autostart/default.xml")
    if autostart.is_symlink() or autostart.exists():
        autostart.unlink()
    hostconfig.apply(lab, host.settings())
    qemucaps.restore(lab)


def boot_host(lab: Lab, host: Host, networks: list[NetworkSpec], *, wan_routes: bool = True) -> None:
    """What a host's boot does before and while its daemons start: the LAN bridge, IPv6 on the
    uplink, sysctls, then the daemons in `host.start_order` with the libvirt `networks`."""
    for spec in networks:
        spec.prepare_host(lab)
        if wan_routes:
            spec.prepare_wan(lab.wan)
    if any(spec.ipv6 for spec in networks):
        uplink_ipv6(lab)
    hostconfig.apply_sysctls(lab, host.settings())
    if wan_routes:
        lab.record_boot_sysctls()
    start_in_order(lab, host.start_order, networks)


def _give_qemu_user_kvm(lab: Lab, user: str = "libvirt-qemu") -> None:
    """Let libvirt's qemu user open /dev/kvm, as the `kvm` group lets it on a real host.

    The lab's /dev is the machine's, so /dev/kvm carries the machine's kvm GID, which the image's
    /etc/group may give to another group or to none (bookworm: kvm is 105, forky: 992, this
    machine: 993). libvirt then finds KVM "not usable" for its qemu user while its capability
    probe saw KVM, calls its cached capabilities invalid and re-probes qemu on every domain define
    (~44 s each). Adding the qemu user to the group owning /dev/kvm restores what udev guarantees
    on a real host; the guest still runs under the accelerator coexist.guest.accel decided.
    """
    device = lab.path("/dev/kvm")
    if not device.exists():
        return
    gid = device.stat().st_gid
    for entry in lab.path("/etc/passwd").read_text().splitlines():
        fields = entry.split(":")
        if fields[0] == user and len(fields) > 3 and fields[3] == str(gid):
            return  # its primary group already owns /dev/kvm (trixie's image on this machine)
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


def start_in_order(lab: Lab, order: tuple[str, ...], networks: list[NetworkSpec] | None = None) -> None:
    """Start `order`'s daemons one after the other; the system bus first if firewalld is in it.

    "libvirt" is libvirtd and the libvirt `networks` (default: the stock one), stock first.

    A Debian host has its D-Bus system bus before these daemons, and with firewalld that matters:
    libvirtd started without a bus disables its firewalld support for good ("DBus not available"),
    while with a bus it watches for firewalld and re-adds its rules and virbr0's zone when
    firewalld starts or reloads later. Without the bus first, an order with firewalld after libvirt
    describes no real host (bookworm: firewalld 1.3.3 flushes libvirt's rules, virbr0 stays in no
    zone, the guest never gets a DHCP lease). Without firewalld the bus changes nothing measured.
    """
    from coexist.host.guestnet import known

    networks = networks if networks is not None else [known()["default"]]
    if "firewalld" in order:
        lab.start("dbus")
    for item in order:
        if item == "libvirt":
            lab.start("libvirtd")
            for spec in sorted((n for n in networks if n.is_libvirt), key=lambda n: not n.stock):
                start_network(lab, spec)
        else:
            lab.start(item)


def start_network(lab: Lab, network: NetworkSpec) -> None:
    """Define (unless the host has) and start a libvirt network."""
    import libvirt

    name = network.libvirt_name
    assert name is not None, f"network {network.name} is no libvirt network"
    with log.step(f"libvirt network '{name}' up ({network.forward}, {network.bridge}, {network.ipv4})"):
        conn = lab.libvirt()
        try:
            existing = conn.networkLookupByName(name)   # Debian's package defines `default`
        except libvirt.libvirtError:
            existing = None
        if existing is None or network.ipv6:   # IPv6: the host's own definition, plus a /64
            base = (existing.XMLDesc(libvirt.VIR_NETWORK_XML_INACTIVE) if existing else
                    lab.path("/usr/share/libvirt/networks/default.xml").read_text())
            existing = conn.networkDefineXML(network.network_xml(base))
        if not existing.isActive():
            existing.create()


def accel_for(lab: Lab, images: Images) -> accel.AccelDecision:
    """KVM or TCG for this guest image (probed once per machine boot, see coexist.guest.accel)."""
    return accel.decide(lab, f"{GUEST_IMAGE_DIR}/{images.guest.kernel.name}",
                        f"{GUEST_IMAGE_DIR}/{images.guest.initrd.name}")


def guest_for(lab: Lab, images: Images, *, network: GuestNetwork | None = None,
              artifacts: Path | None = None, suffix: str = "", role: str = "guest",
              decision: accel.AccelDecision | None = None) -> Guest:
    """A guest with fresh keys on `network` (default: the stock one); it boots on `with`.
    Under `decision`'s accelerator, or the one accel_for decides."""
    keys = GuestKeys.generate(lab.workdir / f"keys{suffix}")
    return Guest(lab, images.guest, keys, name=f"coexist-{lab.owner}{suffix}",
                 accel=(decision or accel_for(lab, images)).accel, network=network,
                 artifacts=artifacts, role=role)


class Run:
    """A scenario running in its lab: the guests, the workload, and the steps as they happen."""

    def __init__(self, scenario: Scenario, lab: Lab, images: Images, artifacts: Path,
                 stack: ExitStack) -> None:
        self.scenario, self.lab, self.images, self.artifacts = scenario, lab, images, artifacts
        self.stack = stack
        self.networks = scenario.guest_networks()
        self.guests: dict[str, Guest] = {}
        self.decision: accel.AccelDecision | None = None
        self.snapshots: list[firewall.Snapshot] = []
        self.wanted = wanted_facts([step.expect for step in scenario.steps])
        self.timings: dict[str, float] = {}

    # -- the host's life ------------------------------------------------------------------------
    def boot(self) -> list[str]:
        """Daemons in start order, the workload, the guests up; returns Docker's refusals."""
        phase = time.monotonic()
        boot_host(self.lab, self.scenario.host, self.scenario.host_networks())
        self.timings["daemons"] = time.monotonic() - phase
        problems = self._start_workload()
        self.decision = accel_for(self.lab, self.images)
        self.snapshot("00-baseline")
        phase = time.monotonic()
        for index, (name, network) in enumerate(self.networks.items()):
            guest = guest_for(self.lab, self.images, network=network, artifacts=self.artifacts,
                              suffix="" if index == 0 else f"-{name}", role=name,
                              decision=self.decision)
            self.guests[name] = self.stack.enter_context(guest)
        self.timings["guests boot to SSH"] = time.monotonic() - phase
        return problems

    def reboot(self) -> None:
        """host-reboot: every daemon stopped and the runtime state gone (Lab.power_cycle),
        permanent configuration kept, the daemons started again in boot order; libvirtd starts
        the networks and guests marked autostart itself, as on a real host."""
        conn = self.lab.libvirt()
        for network in self.scenario.host_networks():
            if network.is_libvirt:
                conn.networkLookupByName(network.libvirt_name).setAutostart(1)
        for guest in self.guests.values():
            guest.domain().setAutostart(1)
            if guest.domain().isActive():
                guest.domain().destroy()   # the power goes
            guest.power_lost()
        self.lab.power_cycle()
        started = time.monotonic()
        boot_host(self.lab, self.scenario.host, self.scenario.host_networks(), wan_routes=False)
        for guest in self.guests.values():
            guest.wait_up(started, autostarted=True)

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
            if step.kind == "do" and step.do == "boot":
                result.problems = self.boot()
            elif step.kind == "run":
                result.commands = self._commands(step.commands)
            elif step.kind in ("event", "axis"):
                events.happen(self, step.events)
            elif step.kind in ("fix", "revert"):
                assert step.fix is not None
                missing = [d for d in step.fix.needs
                           if not self.lab.running("libvirtd" if d == "libvirt" else d)]
                if missing:
                    raise RuntimeError(f"fix {step.fix.name} needs {', '.join(missing)} running")
                result.commands = self._commands(step.fix.commands if step.kind == "fix"
                                                 else step.fix.revert)
            self._measure(step, result, number)
            if step.kind == "fix":
                assert step.fix is not None
                result.checks = [check.evaluate(self.lab) for check in step.fix.checks]
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
            with interrupt.Pool(max(len(self.guests), 3), thread_name_prefix="measure") as pool:
                settled = {name: pool.submit(settle, guest, limit=step.settle)
                           for name, guest in self.guests.items()}
                result.guests = {name: future.result() for name, future in settled.items()}
                port = pool.submit(self._published_port_answers) \
                    if workload.published_port is not None else None
                isolation = pool.submit(self._isolation_kept) if workload.isolated_networks else None
                facts = pool.submit(host_facts, self.lab, self.wanted)
                result.published_port = port.result() if port is not None else None
                result.docker_isolation = isolation.result() if isolation is not None else None
                result.facts = facts.result()
            self.snapshot(f"{number:02d}-{step.id}")

    def _published_port_answers(self) -> bool:
        port = self.scenario.workload.published_port
        assert port is not None
        return self._container_running(WEB) and \
            connectivity.published_port_answers(self.lab.wan, port, timeout=PORT_TIMEOUT)

    def _container_running(self, name: str) -> bool:
        if not self.lab.running("dockerd"):
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

    def snapshot(self, phase: str) -> None:
        snap = firewall.snapshot(self.lab, phase)
        snap.save(self.artifacts)
        self.snapshots.append(snap)


def run_scenario(scenario: Scenario, *, artifacts: Path, images: Images | None = None) -> Verdict:
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
        lab = stack.enter_context(lab_for(scenario.host, images))
        stack.callback(save_logs, lab, artifacts)
        stack.push(lambda kind, *_: kind is not None and _snapshot_failure(lab, artifacts))
        run = Run(scenario, lab, images, artifacts, stack)
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
        ending = time.monotonic()
        run.timings["steps"] = ending - stepping
        lab.power_off()   # nothing more to measure: no daemon or guest needs a graceful end
    run.timings["teardown"] = time.monotonic() - ending
    run.timings["total"] = time.monotonic() - started
    (artifacts / "verdict.txt").write_text(verdict.render() + "\n")
    (artifacts / "verdict.json").write_text(verdict.dumps() + "\n")
    return verdict


def _snapshot_failure(lab: Lab, artifacts: Path) -> bool:
    """On an exception: the firewall as it was when the run broke. Never swallows the error."""
    try:
        firewall.snapshot(lab, "x-at-failure").save(artifacts)
    except Exception as error:  # the original error matters more
        log.info(f"artifacts: no snapshot at failure: {error!r}")
    return False


def save_logs(lab: Lab, artifacts: Path) -> None:
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
    wan_dir = lab.wan.workdir
    if wan_dir.is_dir():
        shutil.copytree(wan_dir, target / "wan", dirs_exist_ok=True)
