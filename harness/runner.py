"""Running a scenario end to end: lab up, daemons in order, guest, symptom, fix, verdict."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import docker.errors
from docker.models.containers import Container

from harness import accel, connectivity, containers, events, firewall, fixes, log, processes
from harness.explain import explain, fix_scope
from harness.guest import GUEST_IMAGE_DIR, Guest
from harness.guestimage import GuestImage, build_guest_image
from harness.guestnet import STOCK_NETWORK, GuestNetwork, guest_network
from harness.hostimage import HostImage, build_host_image
from harness.lab import Lab
from harness.namespaces import SYSTEM_PATH, ensure_root
from harness.scenario import Host, Scenario
from harness.sshkeys import GuestKeys
from harness.verdict import CheckResult, Verdict
from harness.wan import Wan

WORK_ROOT = Path("/var/tmp/coexist")
FIX_SETTLE_TIMEOUT = 20.0   # how long the guest may take to regain connectivity after a fix


class ScenarioUnsupported(RuntimeError):
    """The scenario asks for something the selected release cannot do."""


def sweep_leftovers() -> None:
    """End processes and remove work folders of earlier runs that died; touch nothing else."""
    stale = processes.stale_owners()
    if stale:
        with log.step(f"sweep leftovers of dead runs {sorted(stale)}"):
            processes.kill_all(processes.leftovers(stale))
            for owner in stale:
                processes.remove_cgroups(f"coexist-{owner}")
    if WORK_ROOT.is_dir():
        for folder in WORK_ROOT.iterdir():
            if not processes.owner_alive(folder.name.split("-", 1)[0]):
                shutil.rmtree(folder, ignore_errors=True)


@dataclass(frozen=True)
class Images:
    host: HostImage
    guest: GuestImage


def build_images(release: str) -> Images:
    with log.step(f"images: host ({release}) and guest"):
        return Images(build_host_image(release), build_guest_image())


@contextmanager
def lab_for(host: Host, images: Images, *, name: str = "lab",
            network: GuestNetwork | None = None) -> Iterator[Lab]:
    """A wan and a lab configured as `host` says (and ready for the guest's `network`), daemons
    not yet started."""
    ensure_root()
    sweep_leftovers()
    owner = processes.owner_token()
    workdir = WORK_ROOT / f"{owner}-{name}"
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        with Wan(owner=owner, workdir=workdir / "wan") as wan, Lab(
                images.host, wan, workdir=workdir / "lab", name=name,
                shares={GUEST_IMAGE_DIR: images.guest.kernel.parent}) as lab:
            configure(lab, host)
            if network is not None:
                network.prepare_host(lab)
                network.prepare_wan(wan)
            yield lab
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def configure(lab: Lab, host: Host) -> None:
    """Settings that must be in place before the daemons start."""
    _give_qemu_user_kvm(lab)
    # The stock network would autostart with libvirtd; the scenario's start order decides instead.
    autostart = lab.path("/etc/libvirt/qemu/networks/autostart/default.xml")
    if autostart.is_symlink() or autostart.exists():
        autostart.unlink()
    if host.libvirt_firewall_backend != "default":
        conf = lab.path("/etc/libvirt/network.conf")
        if not conf.exists() or "firewall_backend" not in conf.read_text():
            raise ScenarioUnsupported(
                f"libvirt on {host.release} has no firewall_backend setting "
                f"(/etc/libvirt/network.conf); use libvirt_firewall_backend = \"default\"")
        with conf.open("a") as handle:
            handle.write(f'\n# coexist scenario\nfirewall_backend = "{host.libvirt_firewall_backend}"\n')
        if host.libvirt_firewall_backend == "nftables":
            lab.install_tc_csum_shim()
    if host.firewalld_backend != "default":
        _set_firewalld_backend(lab, host.firewalld_backend)
    if host.docker_iptables != "default":
        _give_dockerd_iptables(lab, host.docker_iptables)


def _set_firewalld_backend(lab: Lab, backend: str) -> None:
    conf = lab.path("/etc/firewalld/firewalld.conf")
    lines = conf.read_text().splitlines()
    if not any(line.startswith("FirewallBackend=") for line in lines):
        raise ScenarioUnsupported(f"{conf.name} has no FirewallBackend= line to set")
    conf.write_text("\n".join(f"FirewallBackend={backend}" if line.startswith("FirewallBackend=")
                              else line for line in lines) + "\n")


def _give_dockerd_iptables(lab: Lab, variant: str) -> None:
    """dockerd alone finds iptables-<variant> first on its PATH; other daemons keep the default."""
    bindir = "/usr/local/lib/coexist/docker-iptables"
    lab.path(bindir).mkdir(parents=True, exist_ok=True)
    for tool in ("iptables", "ip6tables", "iptables-save", "iptables-restore", "ip6tables-save",
                 "ip6tables-restore"):
        target = lab.path(f"/usr/sbin/{tool.replace('tables', 'tables-' + variant, 1)}")
        if not target.exists():
            raise ScenarioUnsupported(f"{lab.image.release} has no {target.name}")
        lab.path(f"{bindir}/{tool}").symlink_to(f"/usr/sbin/{target.name}")
    lab.daemon_env["dockerd"] = {"PATH": f"{bindir}:{SYSTEM_PATH}"}


def _give_qemu_user_kvm(lab: Lab, user: str = "libvirt-qemu") -> None:
    """Let libvirt's qemu user open /dev/kvm, as the `kvm` group lets it on a real host.

    The lab's /dev is the machine's, so /dev/kvm carries the machine's kvm GID, which the image's
    /etc/group may give to another group or to none (bookworm: kvm is 105, forky: 992, this
    machine: 993). libvirt then finds KVM "not usable" for its qemu user while its capability
    probe saw KVM, calls its cached capabilities invalid and re-probes qemu on every domain define
    (~44 s each). Adding the qemu user to the group owning /dev/kvm restores what udev guarantees
    on a real host; the guest still runs under the accelerator harness.accel decided.
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


def start_in_order(lab: Lab, order: tuple[str, ...], network: GuestNetwork | None = None) -> None:
    """Start `order`'s daemons one after the other; the system bus first if firewalld is in it.

    "libvirt" is libvirtd, its stock `default` network and the guest's `network` if that is
    another libvirt network.

    A Debian host has its D-Bus system bus before these daemons, and with firewalld that matters:
    libvirtd started without a bus disables its firewalld support for good ("DBus not available"),
    while with a bus it watches for firewalld and re-adds its rules and virbr0's zone when
    firewalld starts or reloads later. Without the bus first, an order with firewalld after libvirt
    describes no real host (bookworm: firewalld 1.3.3 flushes libvirt's rules, virbr0 stays in no
    zone, the guest never gets a DHCP lease). Without firewalld the bus changes nothing measured,
    and `firewall-cmd --state` (firewall snapshots) waits ~10 s for firewalld on a bus without it.
    """
    if "firewalld" in order:
        lab.start("dbus")
    for item in order:
        if item == "libvirt":
            lab.start("libvirtd")
            is_stock = network is not None and network.libvirt_network == STOCK_NETWORK
            start_network(lab, network if is_stock else None)
            if network is not None and network.defined_here:
                start_network(lab, network)
        else:
            lab.start(item)


def start_network(lab: Lab, network: GuestNetwork | None = None) -> None:
    """Define (if the host has not) and start a libvirt network (default: the stock one)."""
    import libvirt

    network = network or guest_network("default")
    name = network.libvirt_network
    assert name is not None, f"the {network.kind} guest network is no libvirt network"
    with log.step(f"libvirt network '{name}' up"):
        conn = lab.libvirt()
        try:
            existing = conn.networkLookupByName(name)   # Debian's package defines `default`
        except libvirt.libvirtError:
            existing = None
        if existing is None or network.ipv6:   # IPv6: the host's own definition, plus a /64
            base = (existing.XMLDesc(libvirt.VIR_NETWORK_XML_INACTIVE) if existing else
                    lab.path(f"/usr/share/libvirt/networks/{STOCK_NETWORK}.xml").read_text())
            existing = conn.networkDefineXML(network.network_xml(base))
        if not existing.isActive():
            existing.create()


def accel_for(lab: Lab, images: Images) -> accel.AccelDecision:
    """KVM or TCG for this guest image (probed once per machine boot, see harness.accel)."""
    return accel.decide(lab, f"{GUEST_IMAGE_DIR}/{images.guest.kernel.name}",
                        f"{GUEST_IMAGE_DIR}/{images.guest.initrd.name}")


def guest_for(lab: Lab, images: Images, *, network: GuestNetwork | None = None,
              artifacts: Path | None = None, suffix: str = "",
              decision: accel.AccelDecision | None = None) -> Guest:
    """A guest with fresh keys on `network` (default: the stock one); it boots on `with`.
    Under `decision`'s accelerator, or the one accel_for decides."""
    keys = GuestKeys.generate(lab.workdir / f"keys{suffix}")
    return Guest(lab, images.guest, keys, name=f"coexist-{lab.owner}{suffix}",
                 accel=(decision or accel_for(lab, images)).accel, network=network,
                 artifacts=artifacts)


def run_scenario(scenario: Scenario, *, artifacts: Path, images: Images | None = None) -> Verdict:
    """Run `scenario` for real and return the verdict (it does not raise on unexpected outcomes)."""
    fix = fixes.ALL[scenario.fix] if scenario.fix else None
    missing = [d for d in (fix.needs if fix else ()) if d not in scenario.host.start_order]
    if missing:
        raise ScenarioUnsupported(f"fix {scenario.fix} needs {', '.join(missing)}, which "
                                  f"host.start_order does not start")
    for field, wanted in (("workload.published_port", scenario.workload.published_port is not None),
                          ("workload.isolated_networks", scenario.workload.isolated_networks)):
        if wanted and "dockerd" not in scenario.host.start_order:
            raise ScenarioUnsupported(f"{field} needs dockerd in host.start_order")
    if scenario.host.libvirt_firewall_backend != "default" and scenario.host.release == "bookworm":
        raise ScenarioUnsupported("libvirt 9.0 (bookworm) has no firewall_backend setting")
    timings: dict[str, float] = {}
    started = time.monotonic()
    artifacts.mkdir(parents=True, exist_ok=True)
    images = images or build_images(scenario.host.release)
    timings["images"] = time.monotonic() - started
    workload_problems: list[str] = []   # containers that could not start: said in the verdict
    port = scenario.workload.published_port
    web: Container | None = None
    isolated: Container | None = None

    def start_workload(failure: str, start: Callable[[], Container]) -> Container | None:
        """Start a container; Docker refusing (measured: e.g. firewalld 1.3.3 flushed Docker's
        chains) is a finding the verdict states, not a broken run."""
        try:
            return start()
        except docker.errors.APIError as error:
            workload_problems.append(f"{failure}: {error.explanation or error}")
            log.info(workload_problems[-1])
            return None

    def isolation_kept() -> bool | None:
        """Are Docker's two networks still kept apart? None: the scenario does not probe it."""
        return None if isolated is None else not containers.reaches_across(lab, isolated)

    def port_answers() -> bool | None:
        """Does the published port answer from outside? None: the scenario publishes none."""
        if port is None:
            return None
        return web is not None and connectivity.published_port_answers(lab.wan, port)

    with log.step(f"scenario {scenario.name} on {scenario.host.release}"), ExitStack() as stack:
        network = guest_network(scenario.guest.network, ipv6=scenario.guest.ipv6)
        lab = stack.enter_context(lab_for(scenario.host, images, network=network))
        stack.callback(save_logs, lab, artifacts)
        stack.push(lambda kind, *_: kind is not None and _snapshot_failure(lab, artifacts))
        phase = time.monotonic()
        start_in_order(lab, scenario.host.start_order, network)
        timings["daemons"] = time.monotonic() - phase
        if port is not None:
            web = start_workload("the web container did not start", lambda: containers.run_web(
                lab, name="coexist-web", published_port=port))
        if scenario.workload.isolated_networks:
            isolated = start_workload("the isolation probe could not start",
                                      lambda: containers.run_isolated_server(lab))
        decision = accel_for(lab, images)
        baseline = firewall.snapshot(lab, "1-baseline")
        baseline.save(artifacts)
        phase = time.monotonic()
        guest = stack.enter_context(guest_for(lab, images, network=network, artifacts=artifacts,
                                              decision=decision))
        timings["guest boot to SSH"] = time.monotonic() - phase
        events.happen(lab, scenario.events.after_setup, network)
        with log.step("before any fix: what can the guest reach?"):
            before = connectivity.measure(guest, lab.wan.endpoints)
        symptom = firewall.snapshot(lab, "2-symptom")
        symptom.save(artifacts)
        verdict = Verdict(scenario, dict(images.host.manifest), decision, list(lab.deviations),
                          before, timings=timings, artifacts=str(artifacts))
        verdict.published_before = port_answers()
        verdict.isolation_before = isolation_kept()
        after_fix = after_probed = None
        if fix is not None:
            lab.apply(fix)
            verdict.fix_checks = [CheckResult(c.description, c.holds(lab), c.evidence(lab))
                                  for c in fix.host_checks]
            after_fix = firewall.snapshot(lab, "3-after-fix")
            after_fix.save(artifacts)
            with log.step("after the fix: what can the guest reach?"):
                verdict.after = connectivity.measure_until_ok(guest, lab.wan.endpoints,
                                                              timeout=FIX_SETTLE_TIMEOUT)
            after_probed = firewall.snapshot(lab, "4-after-fix-probed")
            after_probed.save(artifacts)
            verdict.published_after = port_answers()
            verdict.isolation_after = isolation_kept()
            if scenario.events.after_fix:
                events.happen(lab, scenario.events.after_fix, network)
                with log.step(f"after {', '.join(scenario.events.after_fix)}: still reachable?"):
                    verdict.after_events = connectivity.measure_until_ok(
                        guest, lab.wan.endpoints, timeout=FIX_SETTLE_TIMEOUT)
                    verdict.published_after_events = port_answers()
                firewall.snapshot(lab, "5-after-events").save(artifacts)
        verdict.explanation = explain(baseline, symptom, before, after_fix, after_probed,
                                      verdict.after)
        if fix is not None and verdict.after is not None and not verdict.after.all_ok:
            verdict.explanation += fix_scope(fix.commands, network.bridge)
        verdict.explanation += workload_problems
        timings["scenario"] = time.monotonic() - started
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
    for sub in ("wan",):
        wan_dir = lab.wan.workdir
        if wan_dir.is_dir():
            shutil.copytree(wan_dir, target / sub, dirs_exist_ok=True)
