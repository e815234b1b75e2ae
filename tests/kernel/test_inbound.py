"""What may come into a cnet network from outside, on both backends: only
published ports (unless --routed), and nothing to 127.0.0.0/8 but from lo.

Same topology as test_nat.py (its `net` fixture): a LAN test host wired to
the host, cnet's mybr0 172.26.0.0/16 + fd00:26::/64 on the host. Each test
that shows a cnet rule blocking something also takes the rule out by hand
and sees the packet pass: the setup reaches what the rule guards.
"""

from __future__ import annotations

import sys

import pytest

from test_nat import net, ok  # noqa: F401  (net: a fixture)
from testhost import PROBE, ask, serve


def route_to_bridges(lan) -> None:
    """The LAN client routes cnet's subnets to the host, as a LAN router could."""
    lan.run(["ip", "route", "add", "172.26.0.0/16", "via", "198.18.0.1"], check=True)
    lan.run(["ip", "-6", "route", "add", "fd00:26::/64", "via", "fd00:18::1"], check=True)


def pings(h, address: str, ns: str | None = None) -> bool:
    cmd = ["ping", "-c", "1", "-W", "1", address]
    return h.run(["ip", "netns", "exec", ns, *cmd] if ns else cmd).returncode == 0


def flush_cnet_chain(host, nft_chain: str, iptables_table: str, iptables_chain: str, family: int = 4) -> None:
    """Take one of cnet's chains' rules out by hand (what a careless admin might do)."""
    if host.env["CNET_FIREWALL"] == "nftables":
        host.run(["nft", "flush", "chain", "inet", "cnet", nft_chain], check=True)
    else:
        tool = "iptables" if family == 4 else "ip6tables"
        host.run([tool, "-t", iptables_table, "-F", iptables_chain], check=True)


def test_the_lan_reaches_published_ports_only(net):
    host, lan = net
    route_to_bridges(lan)
    ok(host.cnet("create", "ns", "web", "--network", "mybr0", "--publish", "8080:80"))
    serve(host, "tcp", 80, ns="web")
    serve(host, "tcp", 81, ns="web")
    assert ask(lan, "tcp", "198.18.0.1", 8080) == "198.18.0.2"
    assert ask(lan, "tcp", "fd00:18::1", 8080) == "fd00:18::2"
    for address in ("172.26.0.2", "fd00:26::2"):
        assert ask(lan, "tcp", address, 81, timeout=1) is None
        assert ask(lan, "tcp", address, 80, timeout=1) is None  # published, but not at this address
        assert not pings(lan, address)
    # the sandbox's own connections out still get their replies
    serve(lan, "tcp", 7000)
    assert ask(host, "tcp", "198.18.0.2", 7000, ns="web") == "198.18.0.1"
    flush_cnet_chain(host, "forward", "filter", "CNET-FORWARD")
    assert ask(lan, "tcp", "172.26.0.2", 81) == "198.18.0.2"


def test_a_routed_network_is_reached_by_routing_and_routes_out_without_nat(net):
    host, lan = net
    ok(host.cnet("create", "bridge", "routed0", "--subnet", "10.88.0.0/24", "--subnet", "fd00:88::/64",
                 "--routed"))
    ok(host.cnet("create", "ns", "web", "--network", "routed0"))
    ok(host.cnet("attach", "web", "mybr0"))
    lan.run(["ip", "route", "add", "10.88.0.0/24", "via", "198.18.0.1"], check=True)
    lan.run(["ip", "-6", "route", "add", "fd00:88::/64", "via", "fd00:18::1"], check=True)
    route_to_bridges(lan)
    serve(host, "tcp", 81, ns="web")
    assert ask(lan, "tcp", "10.88.0.2", 81) == "198.18.0.2"
    assert ask(lan, "tcp", "fd00:88::2", 81) == "fd00:18::2"
    assert pings(lan, "10.88.0.2")
    # the same sandbox's address on an ordinary network stays closed
    assert ask(lan, "tcp", "172.26.0.2", 81, timeout=1) is None
    serve(lan, "tcp", 7000)
    assert ask(host, "tcp", "198.18.0.2", 7000, ns="web") == "10.88.0.2"  # its default route: routed0, no NAT
    assert "flags:      routed\n" in ok(host.cnet("inspect", "routed0"))


@pytest.mark.parametrize("args, message", [
    (["--internal"], "--routed and --internal"),
])
def test_routed_refuses_what_it_cannot_be(net, args, message):
    host, _ = net
    r = host.cnet("create", "bridge", "routed0", "--subnet", "10.88.0.0/24", "--routed", *args)
    assert r.returncode == 2 and message in r.stderr
    assert "routed0" not in host.links()


def reach_loopback_via(h, gateway: str, own: str, ns: str | None = None) -> None:
    """Make h (or its sandbox ns), whose address is own, send 127.0.0.1 to
    gateway, as a hostile client can: lo without addresses, no local routes
    but its own address's, route_localnet on."""
    script = ("ip addr flush dev lo && ip route flush table local"
              f" && ip route add local {own} dev eth0 table local"
              " && sysctl -qw net.ipv4.conf.all.route_localnet=1 net.ipv4.conf.eth0.route_localnet=1"
              f" && ip route add 127.0.0.1/32 via {gateway} dev eth0")
    h.run(["ip", "netns", "exec", ns, "sh", "-c", script] if ns else ["sh", "-c", script], check=True)


def test_a_sandbox_does_not_reach_the_hosts_localhost_services(net):
    host, _ = net
    ok(host.cnet("create", "ns", "web", "--network", "mybr0"))
    serve(host, "tcp", 7070, bind="127.0.0.1")
    reach_loopback_via(host, "172.26.0.1", "172.26.0.2", ns="web")
    assert ask(host, "tcp", "127.0.0.1", 7070, ns="web", timeout=1) is None
    flush_cnet_chain(host, "loopback", "raw", "CNET-LOOPBACK")
    assert ask(host, "tcp", "127.0.0.1", 7070, ns="web") == "172.26.0.2"


def test_a_port_published_on_127_0_0_1_answers_the_host_only(net):
    host, lan = net
    ok(host.cnet("create", "ns", "web", "--network", "mybr0", "--publish", "127.0.0.1:8081:80"))
    serve(host, "tcp", 80, ns="web")
    assert ask(host, "tcp", "127.0.0.1", 8081) is not None
    reach_loopback_via(lan, "198.18.0.1", "198.18.0.2")
    assert ask(lan, "tcp", "127.0.0.1", 8081, timeout=1) is None
    flush_cnet_chain(host, "loopback", "raw", "CNET-LOOPBACK")
    assert ask(lan, "tcp", "127.0.0.1", 8081) is not None


def connect_error(h, address: str, port: int) -> str:
    """What a TCP connect from h says: the probe's error, or "answered"."""
    r = h.run([sys.executable, PROBE, "ask", "tcp", address, str(port), "--timeout", "5"], timeout=30)
    return "answered" if r.returncode == 0 else r.stderr


@pytest.mark.parametrize("subnets", [["172.27.0.0/16", "fd00:27::/64"], ["172.28.0.0/16"]],
                         ids=["dual-stack", "ipv4-only"])
def test_loopback_ipv6_is_refused_at_once(net, subnets):
    host, _ = net
    args = [a for s in subnets for a in ("--subnet", s)]
    ok(host.cnet("create", "bridge", "br1", *args))
    ok(host.cnet("create", "ns", "web", "--network", "br1", "--publish", "8080:80"))
    serve(host, "tcp", 80, ns="web")
    assert ask(host, "tcp", "127.0.0.1", 8080) is not None
    assert "refused" in connect_error(host, "::1", 8080)
    r = host.cnet("publish", "web", "[::1]:8090:80")
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1
