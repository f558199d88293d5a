"""`coexist check` warns about commands that reach outside the lab, and about nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest
from coexist.scenario import fixes, reach
from coexist.scenario.model import load

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("command", [
    "modprobe br_netfilter",
    "sudo insmod ./x.ko",
    "iptables -L; rmmod br_netfilter",
    "env LANG=C /sbin/modprobe -r nf_tables",
    "sysctl -w kernel.printk=3",
    "sysctl vm.swappiness=10",
    "sysctl -p",
    "sysctl --system",
    "echo 1 > /proc/sys/kernel/sysrq",
    "echo 0 >/proc/sys/vm/overcommit_memory",
    "date -s '2020-01-01'",
    "date --set=tomorrow",
    "hwclock --systohc",
    "mount /dev/sdb1 /mnt",
    "FOO=1 modprobe x",
    "docker info && modprobe overlay",
])
def test_a_command_that_reaches_the_machines_kernel_is_warned(command: str) -> None:
    assert reach.why(command) is not None


@pytest.mark.parametrize("command", [
    "sysctl -w net.ipv4.ip_forward=1",
    "sysctl net.ipv4.ip_forward",
    "sysctl kernel.printk",   # reading is harmless
    "echo 1 > /proc/sys/net/ipv4/ip_forward",
    "cat /proc/sys/kernel/hostname > /tmp/name",
    "nsenter -t 1 -n ip addr",   # PID 1 is the lab's own init
    "unshare -n true",
    "mount -t tmpfs tmpfs /mnt",
    "mount --bind /var/lib/x /mnt",
    "grep modprobe /etc/modules",
    "echo 'sysctl -w kernel.x=1'",
    "date",
    "hwclock --show",
    "iptables -P FORWARD ACCEPT",
    "firewall-cmd --permanent --direct --add-rule ipv4 filter FORWARD 0 -i virbr0 -j ACCEPT",
    "echo 'unbalanced",
])
def test_a_command_that_stays_in_the_lab_is_not_warned(command: str) -> None:
    assert reach.why(command) is None


def test_no_committed_scenario_or_builtin_fix_is_warned() -> None:
    scenarios = sorted((ROOT / "scenarios").glob("*.toml"))
    assert scenarios
    for path in scenarios:
        assert reach.warnings(load(path)) == [], path
    for fix in fixes.builtin().values():
        assert [c for c in (*fix.commands, *fix.revert) if reach.why(c)] == [], fix.name


def test_a_warning_names_the_step_the_command_and_why(tmp_path: Path) -> None:
    file = tmp_path / "report.toml"
    file.write_text('[scenario]\nname = "report"\nsummary = "s"\n\n[[step]]\ndo = "boot"\n\n'
                    '[[step]]\nid = "load-module"\nrun = ["ip a", "modprobe br_netfilter"]\n')
    assert reach.warnings(load(file)) == [
        f"step 'load-module' run: `modprobe br_netfilter`: {reach._MODULES}"]


def test_check_prints_the_warning_and_still_accepts_the_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from coexist.cli import main

    file = tmp_path / "report.toml"
    file.write_text('[scenario]\nname = "report"\nsummary = "s"\n\n'
                    '[[step]]\ndo = "boot"\n\n[[step]]\nrun = ["sysctl -w kernel.printk=3"]\n')
    assert main(["check", str(file)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{file}: ok")
    assert out[1].startswith(f"{file}: warning: step 'admin' run: `sysctl -w kernel.printk=3`: sets a kernel")
