"""Inputs a host cannot use are refused before anything is made: the exit
code, the reason, no link made, the state file byte-identical; and paths that
are not namespaces are told apart without blocking."""

from __future__ import annotations

import pytest

STATE = "/var/lib/cnet/state.yaml"


def ok(result) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def lan_host(host):
    """A host on a LAN 192.168.77.0/24 (address .5, a veth standing for its NIC), with one cnet network."""
    host.sh("ip link add eth0 type veth peer name wire; ip link set eth0 up; ip link set wire up; "
            "ip addr add 192.168.77.5/24 dev eth0", check=True)
    ok(host.cnet("create", "bridge", "br0", "--subnet", "10.30.0.0/24"))
    return host


@pytest.mark.parametrize("subnet, word", [
    ("127.0.0.0/24", "loopback"), ("224.0.0.0/24", "multicast"), ("169.254.0.0/16", "link-local"),
    ("240.0.0.0/24", "reserved"), ("0.0.0.0/0", "every address"), ("fe80::/64", "link-local"),
    ("::ffff:0:0/96", "IPv4-mapped"),
])
def test_a_subnet_no_host_can_use_is_refused_and_nothing_is_made(lan_host, subnet, word):
    before = lan_host.read(STATE)
    result = lan_host.cnet("create", "bridge", "bad0", "--subnet", subnet)
    assert result.returncode == 2 and word in result.stderr, result.stderr
    assert "bad0" not in lan_host.links() and lan_host.read(STATE) == before


def test_the_hosts_own_lan_and_address_are_conflicts(lan_host):
    before = lan_host.read(STATE)
    result = lan_host.cnet("create", "bridge", "bad0", "--subnet", "192.168.0.0/16")
    assert result.returncode == 4 and "holds 192.168.77.5, an address of this host" in result.stderr
    result = lan_host.cnet("create", "bridge", "bad0", "--subnet", "192.168.0.0/16", "--force-subnet")
    assert result.returncode == 4, "--force-subnet never lets a subnet hold the host's own address"
    lan_host.run(["ip", "addr", "flush", "dev", "eth0"], check=True)
    lan_host.run(["ip", "route", "add", "192.168.77.0/24", "dev", "eth0"], check=True)  # a LAN, no address on it
    result = lan_host.cnet("create", "bridge", "bad0", "--subnet", "192.168.77.0/25")
    assert result.returncode == 4 and "a network this host is on (dev eth0)" in result.stderr
    assert "bad0" not in lan_host.links() and lan_host.read(STATE) == before
    ok(lan_host.cnet("create", "bridge", "bad0", "--subnet", "192.168.77.0/25", "--force-subnet"))


def test_a_mac_already_on_the_network_is_a_conflict(lan_host):
    ok(lan_host.cnet("create", "ns", "a"))
    ok(lan_host.cnet("create", "ns", "b"))
    ok(lan_host.cnet("attach", "a", "br0", "--mac", "02:00:00:00:00:aa"))
    before = lan_host.read(STATE)
    result = lan_host.cnet("attach", "b", "br0", "--mac", "02:00:00:00:00:AA")
    assert result.returncode == 4 and "already used on network br0 (by sandbox a)" in result.stderr
    assert lan_host.read(STATE) == before
    assert len([n for n in lan_host.links() if n.startswith("cn")]) == 1  # a's veth only


@pytest.mark.parametrize("make, word", [
    ("mkfifo /var/lib/cnet/probe", "a FIFO"),
    ("python3 -c 'import socket; socket.socket(socket.AF_UNIX).bind(\"/var/lib/cnet/probe\")'", "a socket"),
    ("mkdir /var/lib/cnet/probe", "a directory"),
    ("ln -s /dev/zero /var/lib/cnet/probe", "a character device"),
    ("echo hello > /var/lib/cnet/probe", "is not a network namespace"),
])
def test_a_path_that_is_no_namespace_is_refused_at_once(host, make, word):
    host.sh(f"rm -rf /var/lib/cnet/probe; {make}", check=True)
    try:
        result = host.cnet("create", "ns", "x", "--netns-path", "/var/lib/cnet/probe", timeout=20)
    finally:
        host.sh("rm -rf /var/lib/cnet/probe")
    assert result.returncode == 2 and word in result.stderr, result.stderr
    assert ok(host.cnet("ls", "ns", "-q")) == ""


def test_namespace_paths_that_work_and_that_do_not(host):
    assert host.cnet("create", "ns", "x", "--netns-path", "/nonexistent/ns").returncode == 3
    result = host.cnet("create", "ns", "x", "--netns-path", "/proc/self/ns/net")
    assert result.returncode == 2 and "host's own network namespace" in result.stderr
    host.run(["ip", "netns", "add", "other"], check=True)
    ok(host.cnet("create", "ns", "x", "--netns-path", "/run/netns/other"))
