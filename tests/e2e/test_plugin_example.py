"""The README's example, as a user writes it: only the plugin's fixtures, nothing of harness imported
(tests/unit/test_plugin.py checks that this file holds the README's example verbatim)."""

import pytest

pytestmark = pytest.mark.e2e


@pytest.mark.coexist(release="trixie", libvirt_firewall_backend="nftables",
                     start_order=["firewalld", "dockerd", "libvirt"])
def test_docker_user_rules_bring_the_guest_back(coexist_lab, coexist_guest):
    coexist_guest.succeed("nslookup example.test 192.168.122.1")  # DNS: the INPUT path works
    coexist_guest.fail("ping -c1 -W2 198.51.100.1")  # the symptom: FORWARD drops
    coexist_lab.succeed("iptables -I DOCKER-USER -i virbr0 -j ACCEPT")
    coexist_lab.succeed("iptables -I DOCKER-USER -o virbr0 -m conntrack "
                        "--ctstate RELATED,ESTABLISHED -j ACCEPT")
    coexist_guest.wait_until_succeeds("ping -c1 -W2 198.51.100.1")


@pytest.mark.coexist(start_order=["dockerd", "libvirt"])
def test_the_labs_docker_and_internet(coexist_docker, coexist_wan, coexist_lab):
    assert coexist_docker.ping()
    assert coexist_wan.endpoints.name == "example.test"
    assert "203.0.113.10" in coexist_lab.succeed("getent hosts example.test")
