"""Errors as a linter says them: every mistake of a file at once, each `file:line: field: problem`
with a suggestion; the daemons' own settings checked against what each release knows, at load
time; a flag's mistake blamed on the flag."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from coexist import cli
from coexist.base.schema import fields_lines, line_of
from coexist.host import known
from coexist.scenario.fixes import builtin
from coexist.scenario.model import load, parse

HEAD = '[scenario]\nname = "s"\nsummary = "s"\n'
BOOT = '\n[[step]]\ndo = "boot"\n'


def errors_of(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> list[str]:
    file = tmp_path / "report.toml"
    file.write_text(text)
    assert cli.main(["check", str(file)]) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return [line.removeprefix(f"{file}:") for line in captured.err.splitlines()]


def test_three_mistakes_are_three_lines_in_one_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (HEAD + '\n[host]\nrelease = "trixy"\n'            # line 6
            + '\n[[step]]\ndo = "boot"\nexepct = { symptom = true }\n'   # line 10
            + '\n[[step]]\nfix = "seed-firewald-direct"\nexpect = { symtpom = false }\n')  # 13, 14
    *first, last = errors_of(tmp_path, text, capsys)
    assert first == [
        "6: host.release: 'trixy' is not allowed; did you mean 'trixie'? allowed: bookworm, trixie, forky",
        "10: step[0].exepct: unknown key; did you mean 'expect'? allowed: id, do, run, event, fix, revert, "
        "axis, upgrade, params, expect, settle, note, conffiles",
        "13: step[1].fix: unknown fix 'seed-firewald-direct'; did you mean 'seed-firewalld-direct'? allowed: "
        "seed-firewalld-direct, docker-user-bridge, " + ", ".join(list(builtin())[2:]) + " (or define "
        "[fix.seed-firewald-direct])"]
    assert last.startswith("14: step[1].expect.symtpom: unknown key; did you mean 'symptom'? allowed: ")


def _error(text: str, word: str) -> str:
    import tomllib

    from coexist.base.schema import ScenarioError

    try:
        parse(tomllib.loads(text), "x.toml", text)
    except ScenarioError as error:
        return next(e.problem for e in error.errors if word in e.where)
    raise AssertionError("no error")


def test_check_json_lists_every_error_with_its_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "two.toml"
    file.write_text(HEAD + '\n[host]\nrelease = "trixy"\nipv6 = "yes"\n' + BOOT)
    assert cli.main(["check", "--json", str(file)]) == 2
    [record] = json.loads(capsys.readouterr().out)["files"]
    assert [(e["line"], e["field"]) for e in record["errors"]] == [(6, "host.release"), (7, "host.ipv6")]


@pytest.mark.parametrize(("table", "said"), [
    ('[host.docker]\niptable = false', "host.docker.iptable: unknown daemon.json key on every release "
     "(bookworm, trixie, forky); did you mean 'iptables'?"),
    ('[host.sysctl]\n"net.ipv4.ip_forwad" = 1', "host.sysctl.net.ipv4.ip_forwad: no such network sysctl"),
    ('[host.firewalld]\nFirewallBakend = "iptables"', "did you mean 'FirewallBackend'?"),
    ('[host.zones]\ntrsuted = ["virbr0"]', "host.zones.trsuted: unknown firewalld zone on every release "
     "(bookworm, trixie, forky); did you mean 'trusted'?"),
    ('[host.libvirt]\nfirewall_bakend = "iptables"', "did you mean 'firewall_backend'?"),
], ids=["docker", "sysctl", "firewalld", "zones", "libvirt"])
def test_a_typo_in_a_daemons_settings_is_refused_at_load_time(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], table: str, said: str) -> None:
    [error] = errors_of(tmp_path, HEAD + "\n" + table + "\n" + BOOT, capsys)
    assert error.startswith("6: ") and said in error, error


def test_the_sysctl_typo_gets_its_suggestion_and_per_interface_names_are_known() -> None:
    assert "did you mean 'net.ipv4.ip_forward'?" in _error(
        HEAD + '[host.sysctl]\n"net.ipv4.ip_forwad" = 1\n' + BOOT, "sysctl")
    assert known.sysctl_known("net.ipv4.conf.virbr0.forwarding")
    assert known.sysctl_known("net.ipv6.conf.all.forwarding")
    assert not known.sysctl_known("net.ipv4.conf.virbr0.forwardin")


def test_a_setting_only_another_release_knows_is_not_applicable_at_load_time() -> None:
    forky = parse({"scenario": {"name": "s", "summary": "s"}, "step": [{"do": "boot"}],
                   "host": {"release": "forky", "docker": {"ip-forward-no-drop": True}}})
    assert forky.not_applicable() is None
    why = forky.variant(release="trixie").not_applicable()
    assert why == "daemon.json key 'ip-forward-no-drop' is known on forky only, not on trixie"
    with pytest.raises(ValueError, match="host: cannot run as written: daemon.json key 'ip-forward-no-drop'"):
        parse({"scenario": {"name": "s", "summary": "s"}, "step": [{"do": "boot"}],
               "host": {"release": "trixie", "docker": {"ip-forward-no-drop": True}}})
    bookworm = forky.variant(release="bookworm", docker_iptables="default")
    assert "not on bookworm" in str(bookworm.not_applicable())


def test_network_conf_on_bookworm_is_not_applicable_not_an_error() -> None:
    scenario = parse({"scenario": {"name": "s", "summary": "s"}, "step": [{"do": "boot"}],
                      "host": {"release": "trixie", "libvirt": {"firewall_backend": "iptables"}}})
    assert "not on bookworm" in str(scenario.variant(release="bookworm").not_applicable())


def test_the_committed_scenarios_use_only_known_settings() -> None:
    for file in sorted((Path(__file__).parents[2] / "scenarios").glob("*.toml")):
        load(file)


@pytest.mark.parametrize(("text", "field", "line"), [
    ("[host]\nrelease = 1\n", "host.release", 2),
    ("[host.docker]\niptables = false\n", "host.docker.iptables", 2),
    ("[host]\ndocker.iptables = false\n", "host.docker.iptables", 2),
    ('[host.sysctl]\n"net.ipv4.ip_forward" = 1\n', "host.sysctl.net.ipv4.ip_forward", 2),
    ('[[step]]\ndo = "boot"\n[[step]]\nrun = ["x"]\nexpect = { ping = 1, dns = 2 }\n', "step[1].expect.dns", 5),
    ('[[step]]\ndo = "boot"\n[[step]]\nrun = ["x"]\n', "step[1].settle", 3),   # not written: its table
    ('[[case]]\nrelease = "forky"\nexpect.boot = { ping = true }\n', "case[0].expect.boot.ping", 3),
    ('x = """\nhost = 1\n"""\n[tool]\n', "[tool]", 4),   # inside a multi-line string: not a key
    ('[fix.mine]\nsummary = "s"\ncommands = [\n  "a = b",\n]\n', "fix.mine.commands", 3),
    ("[host]\n", "nowhere.at.all", None),
])
def test_a_field_is_found_on_its_line(text: str, field: str, line: int | None) -> None:
    assert line_of(fields_lines(text), field) == line


def test_a_matrix_flag_that_a_scenario_refuses_is_blamed_on_the_flags(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    mine = tmp_path / "mine.toml"   # its own network on virbr1, the bridge nat2 has too
    mine.write_text('[scenario]\nname = "mine"\nsummary = "s"\n[host]\nrelease = "trixie"\n'
                    '[[network]]\nname = "mine"\nbridge = "virbr1"\nipv4 = "192.168.150.0/24"\n'
                    '[[guest]]\nnetwork = "mine"\n[[step]]\ndo = "boot"\nexpect = { online = true }\n')
    assert cli.main(["check", str(mine)]) == 0
    assert cli.main(["matrix", str(mine), "--network", "nat2", "--ipv6", "yes"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("coexist: --network nat2 --ipv6 true: network: networks mine and nat2 share a "
                          "bridge"), err
    assert "{" not in err and "Traceback" not in err


def test_run_and_matrix_and_axis_write_a_start_order_alike() -> None:
    parser = cli._parser()
    run = parser.parse_args(["run", "x.toml", "--start-order", "libvirt+dockerd"])
    matrix = parser.parse_args(["matrix", "x.toml", "--start-order", "libvirt+dockerd,dockerd+libvirt"])
    assert run.start_order == [["libvirt", "dockerd"]]
    assert matrix.start_order == [[["libvirt", "dockerd"], ["dockerd", "libvirt"]]]
    assert parser.parse_args(["run", "x.toml", "--ipv6"]).ipv6 == [True]
    assert parser.parse_args(["run", "x.toml", "--ipv6", "no"]).ipv6 == [False]


def test_known_settings_name_every_release() -> None:
    from coexist.scenario.axes import RELEASES

    assert [k.release for k in known.releases()] == list(RELEASES)
    assert "ip-forward-no-drop" in known.release("forky").docker
    assert "ip-forward-no-drop" not in known.release("trixie").docker
    assert known.release("bookworm").libvirt == frozenset()
