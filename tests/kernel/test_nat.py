"""Outbound NAT, published ports and isolation, with real traffic, on both backends.

Topology of every test (two test hosts joined by a veth pair, a LAN that
exists nowhere else):

    lan (198.18.0.2, fd00:18::2)  ---- eth0 ---- eth0 ----  host (198.18.0.1, fd00:18::1)
    a client and an "outside" server                     cnet: mybr0 172.26.0.0/16 + fd00:26::/64
                                                               sandboxes web, other, ...

The lan has no route to the sandboxes' subnets: whatever reaches them or
comes back from them does so through the host's NAT.
"""

from __future__ import annotations

import json

import pytest

from testhost import ask, link_hosts, serve

BACKENDS = ["nftables", "iptables"]


def ok(result) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def rules(host) -> str:
    """iptables' view, without its dated comment lines and counters."""
    return "".join(line for line in ok(host.run(["iptables-save"])).splitlines(True)
                   if not line.startswith(("#", ":")))


@pytest.fixture(params=BACKENDS)
def net(request, make_host):
    """(host, lan) wired together, with mybr0 on the host, cnet on the given backend."""
    host, lan = make_host("host"), make_host("lan")
    host.env["CNET_FIREWALL"] = request.param
    link_hosts(host, lan, "eth0", "eth0")
    for h, v4, v6 in ((host, "198.18.0.1/24", "fd00:18::1/64"), (lan, "198.18.0.2/24", "fd00:18::2/64")):
        h.run(["ip", "addr", "add", v4, "dev", "eth0"], check=True)
        h.run(["ip", "addr", "add", v6, "dev", "eth0", "nodad"], check=True)
    ok(host.cnet("create", "bridge", "mybr0", "--subnet", "172.26.0.0/16", "--subnet", "fd00:26::/64"))
    return host, lan


def test_outbound_traffic_is_masqueraded(net):
    host, lan = net
    serve(lan, "tcp", 7000)
    serve(lan, "udp", 7000)
    ok(host.cnet("create", "ns", "web", "--network", "mybr0"))
    assert ask(host, "tcp", "198.18.0.2", 7000, ns="web") == "198.18.0.1"
    assert ask(host, "udp", "198.18.0.2", 7000, ns="web") == "198.18.0.1"
    assert ask(host, "tcp", "fd00:18::2", 7000, ns="web") == "fd00:18::1"


def test_no_masquerade_routes_with_the_sandbox_address(net):
    host, lan = net
    ok(host.cnet("create", "bridge", "plain0", "--subnet", "10.88.0.0/24", "--no-masquerade"))
    ok(host.cnet("create", "ns", "web", "--network", "plain0"))
    serve(lan, "tcp", 7000)
    assert ask(host, "tcp", "198.18.0.2", 7000, ns="web", timeout=1) is None  # the lan cannot answer
    lan.run(["ip", "route", "add", "10.88.0.0/24", "via", "198.18.0.1"], check=True)
    assert ask(host, "tcp", "198.18.0.2", 7000, ns="web") == "10.88.0.2"


def test_an_internal_network_cannot_get_out(net):
    host, lan = net
    ok(host.cnet("create", "bridge", "int0", "--subnet", "10.77.0.0/24", "--internal"))
    ok(host.cnet("create", "ns", "db", "--network", "int0"))
    ok(host.cnet("create", "ns", "peer", "--network", "int0"))
    assert ok(host.run(["ip", "netns", "exec", "db", "ip", "route", "show", "default"])) == ""
    serve(lan, "tcp", 7000)
    host.run(["ip", "netns", "exec", "db", "ip", "route", "add", "default", "via", "10.77.0.1"], check=True)
    assert ask(host, "tcp", "198.18.0.2", 7000, ns="db", timeout=1) is None  # dropped, even with a route
    serve(host, "tcp", 7100, ns="peer")
    assert ask(host, "tcp", "10.77.0.3", 7100, ns="db") == "10.77.0.2"  # but its own network works
    r = host.cnet("publish", "db", "8080:80")
    assert r.returncode == 2 and "internal" in r.stderr


def test_a_published_port_is_reachable_from_everywhere(net):
    host, lan = net
    out = ok(host.cnet("create", "ns", "web", "--network", "mybr0", "--publish", "8080:80"))
    assert out.splitlines()[2:] == ["0.0.0.0:8080->80/tcp", "[::]:8080->80/tcp"]
    ok(host.cnet("create", "ns", "other", "--network", "mybr0"))
    ok(host.cnet("create", "bridge", "net2", "--subnet", "10.50.0.0/24"))
    ok(host.cnet("create", "ns", "far", "--network", "net2"))
    serve(host, "tcp", 80, ns="web")
    # from the LAN: the client's own address reaches the sandbox
    assert ask(lan, "tcp", "198.18.0.1", 8080) == "198.18.0.2"
    assert ask(lan, "tcp", "fd00:18::1", 8080) == "fd00:18::2"
    # from the host: its own addresses, the gateway and 127.0.0.1
    assert ask(host, "tcp", "198.18.0.1", 8080) is not None
    assert ask(host, "tcp", "172.26.0.1", 8080) is not None
    assert ask(host, "tcp", "127.0.0.1", 8080) is not None
    assert ask(host, "tcp", "fd00:18::1", 8080) is not None
    # from sandboxes through the host's address: another one, one on another network, and itself
    assert ask(host, "tcp", "198.18.0.1", 8080, ns="other") is not None
    assert ask(host, "tcp", "198.18.0.1", 8080, ns="far") is not None
    assert ask(host, "tcp", "198.18.0.1", 8080, ns="web") is not None  # hairpin
    assert ask(host, "tcp", "172.26.0.1", 8080, ns="web") is not None


def test_udp_and_ranges(net):
    host, lan = net
    ok(host.cnet("create", "ns", "web", "--network", "mybr0"))
    out = ok(host.cnet("publish", "web", "5353:53/udp"))
    assert out == "0.0.0.0:5353->53/udp\n[::]:5353->53/udp\n"
    assert ok(host.cnet("publish", "web", "9000-9002:7000-7002")).splitlines()[:3] == [
        "0.0.0.0:9000->7000/tcp", "0.0.0.0:9001->7001/tcp", "0.0.0.0:9002->7002/tcp"]
    serve(host, "udp", 53, ns="web")
    for port in (7000, 7001, 7002):
        serve(host, "tcp", port, ns="web")
    assert ask(lan, "udp", "198.18.0.1", 5353) == "198.18.0.2"
    assert ask(host, "udp", "127.0.0.1", 5353) is not None
    for host_port in (9000, 9001, 9002):
        assert ask(lan, "tcp", "198.18.0.1", host_port) == "198.18.0.2"


def test_a_random_host_port_can_be_read_back(net):
    host, lan = net
    ok(host.cnet("create", "ns", "web", "--network", "mybr0"))
    first = ok(host.cnet("publish", "web", "80")).splitlines()[0]
    address, _, rest = first.rpartition(":")
    host_port = int(rest.split("->")[0])
    assert address == "0.0.0.0" and host_port >= 1024
    serve(host, "tcp", 80, ns="web")
    assert ask(lan, "tcp", "198.18.0.1", host_port) == "198.18.0.2"


def test_a_mapping_bound_to_one_address(net):
    host, lan = net
    host.run(["ip", "addr", "add", "198.18.0.11/24", "dev", "eth0"], check=True)
    ok(host.cnet("create", "ns", "web", "--network", "mybr0"))
    assert ok(host.cnet("publish", "web", "127.0.0.1:8081:80")) == "127.0.0.1:8081->80/tcp\n"
    assert ok(host.cnet("publish", "web", "198.18.0.11:8082:80")) == "198.18.0.11:8082->80/tcp\n"
    serve(host, "tcp", 80, ns="web")
    assert ask(host, "tcp", "127.0.0.1", 8081) is not None
    assert ask(lan, "tcp", "198.18.0.1", 8081, timeout=1) is None  # localhost-only stays so
    assert ask(lan, "tcp", "198.18.0.11", 8082) == "198.18.0.2"
    assert ask(lan, "tcp", "198.18.0.1", 8082, timeout=1) is None  # not on the other address
    r = host.cnet("publish", "web", "192.0.2.99:8083:80")
    assert r.returncode == 2 and "not an address of this host" in r.stderr
    r = host.cnet("publish", "web", "[::1]:8084:80")
    assert r.returncode == 2 and "route_localnet" in r.stderr


def test_networks_are_isolated_both_ways(net):
    host, lan = net
    ok(host.cnet("create", "bridge", "net2", "--subnet", "10.50.0.0/24"))
    ok(host.cnet("create", "ns", "a", "--network", "mybr0"))
    ok(host.cnet("create", "ns", "a2", "--network", "mybr0"))
    ok(host.cnet("create", "ns", "b", "--network", "net2"))
    serve(host, "tcp", 7000, ns="a")
    serve(host, "tcp", 7000, ns="b")
    serve(host, "udp", 7000, ns="b")
    assert ask(host, "tcp", "10.50.0.2", 7000, ns="a", timeout=1) is None
    assert ask(host, "udp", "10.50.0.2", 7000, ns="a", timeout=1) is None
    assert ask(host, "tcp", "172.26.0.2", 7000, ns="b", timeout=1) is None
    assert host.run(["ip", "netns", "exec", "a", "ping", "-c1", "-W1", "10.50.0.2"]).returncode != 0
    assert ask(host, "tcp", "172.26.0.2", 7000, ns="a2") == "172.26.0.3"  # same network: fine
    assert ask(host, "tcp", "10.50.0.2", 7000) is not None  # the host reaches both


def test_no_icc_keeps_sandboxes_of_a_bridge_apart_but_published_ports_work(net):
    host, lan = net
    ok(host.cnet("create", "bridge", "quiet0", "--subnet", "10.60.0.0/24", "--no-icc"))
    ok(host.cnet("create", "ns", "a", "--network", "quiet0", "--publish", "8080:80"))
    ok(host.cnet("create", "ns", "b", "--network", "quiet0"))
    serve(host, "tcp", 80, ns="a")
    assert ask(host, "tcp", "10.60.0.2", 80, ns="b", timeout=1) is None
    assert ask(host, "tcp", "198.18.0.1", 8080, ns="b") is not None
    assert ask(host, "tcp", "10.60.0.2", 80) is not None  # the host still reaches it


def test_unpublish_and_delete_end_reachability(net):
    host, lan = net
    ok(host.cnet("create", "ns", "web", "--network", "mybr0", "-p", "8080:80", "-p", "8081:80"))
    serve(host, "tcp", 80, ns="web")
    assert ask(lan, "tcp", "198.18.0.1", 8080) == "198.18.0.2"
    assert ok(host.cnet("unpublish", "web", "8080:80")) == "0.0.0.0:8080->80/tcp\n[::]:8080->80/tcp\n"
    assert ask(lan, "tcp", "198.18.0.1", 8080, timeout=1) is None
    assert ask(lan, "tcp", "198.18.0.1", 8081) == "198.18.0.2"
    r = host.cnet("unpublish", "web", "8080:80")
    assert r.returncode == 3
    ok(host.cnet("delete", "ns", "web"))
    assert json.loads(ok(host.cnet("ls", "ports", "--json"))) == []
    assert ask(lan, "tcp", "198.18.0.1", 8081, timeout=1) is None


def test_a_live_udp_flow_follows_a_new_mapping(net):
    host, lan = net
    ok(host.cnet("create", "ns", "a", "--network", "mybr0", "-p", "5000:5000/udp"))
    ok(host.cnet("create", "ns", "b", "--network", "mybr0"))
    serve(host, "udp", 5000, ns="a", bind="0.0.0.0")
    serve(host, "udp", 5000, ns="b", bind="0.0.0.0")
    # the same client port each time: without clearing conntrack it would stick to a
    assert ask(lan, "udp", "198.18.0.1", 5000, sport=41000) == "198.18.0.2"
    ok(host.cnet("unpublish", "a", "5000:5000/udp"))
    ok(host.cnet("publish", "b", "5000:5000/udp"))
    assert ask(lan, "udp", "198.18.0.1", 5000, sport=41000) == "198.18.0.2"
    answered_by = ok(host.run(["conntrack", "-L", "-p", "udp", "--orig-port-dst", "5000"]))
    assert "src=172.26.0.3" in answered_by and "src=172.26.0.2 " not in answered_by


def test_a_live_ipv6_udp_flow_follows_a_new_mapping(net):
    """The same over IPv6: the entries of both families are forgotten."""
    host, lan = net
    ok(host.cnet("create", "ns", "a", "--network", "mybr0", "-p", "5000:5000/udp"))
    ok(host.cnet("create", "ns", "b", "--network", "mybr0"))
    serve(host, "udp", 5000, ns="a")
    serve(host, "udp", 5000, ns="b")
    assert ask(lan, "udp", "fd00:18::1", 5000, sport=41000) == "fd00:18::2"
    ok(host.cnet("unpublish", "a", "5000:5000/udp"))
    ok(host.cnet("publish", "b", "5000:5000/udp"))
    assert ask(lan, "udp", "fd00:18::1", 5000, sport=41000) == "fd00:18::2"
    answered_by = ok(host.run(["conntrack", "-L", "-f", "ipv6", "-p", "udp", "--orig-port-dst", "5000"]))
    assert "src=fd00:26::3" in answered_by and "src=fd00:26::2 " not in answered_by


@pytest.mark.parametrize("args, code, message", [
    (["publish", "web", "8080:81"], 4, "host port 8080/tcp on 0.0.0.0 is already published"),
    (["publish", "web", "127.0.0.1:8080:81"], 4, "already published"),
    (["publish", "lonely", "80"], 2, "has no endpoint to publish on"),
    (["publish", "ghost", "80"], 3, "sandbox ghost not found"),
    (["publish", "web", "0:80"], 2, "out of range"),
    (["publish", "web", "90-80:90-80"], 2, "reversed"),
    (["publish", "web", "8000-8001:80-82"], 2, "host range has 2 ports"),
    (["publish", "web", "80/icmp"], 2, "unknown protocol"),
    (["publish", "web", "80", "--network", "nonet"], 3, "network nonet not found"),
    (["unpublish", "web", "9999:80"], 3, "no published port matching"),
])
def test_bad_publish_requests_change_nothing(net, args, code, message):
    host, _ = net
    ok(host.cnet("create", "ns", "web", "--network", "mybr0", "-p", "8080:80"))
    ok(host.cnet("create", "ns", "lonely"))
    before = (host.read("/var/lib/cnet/state.yaml"), ok(host.run(["nft", "-s", "list", "ruleset"])),
              rules(host))
    r = host.cnet(*args)
    assert r.returncode == code, r.stderr
    assert r.stderr.startswith("cnet: error: ") and message in r.stderr and r.stderr.count("\n") == 1
    after = (host.read("/var/lib/cnet/state.yaml"), ok(host.run(["nft", "-s", "list", "ruleset"])),
             rules(host))
    assert after == before


def test_forward_policy_drop_gets_narrow_accepts_and_loses_them_with_the_last_network(net):
    host, lan = net
    for tool in ("iptables", "ip6tables"):
        host.run([tool, "-P", "FORWARD", "DROP"], check=True)
    ok(host.cnet("delete", "bridge", "mybr0"))  # start over under the DROP policy
    ok(host.cnet("create", "bridge", "mybr0", "--subnet", "172.26.0.0/16"))
    ok(host.cnet("create", "ns", "web", "--network", "mybr0", "-p", "8080:80"))
    serve(host, "tcp", 80, ns="web")
    serve(lan, "tcp", 7000)
    assert ask(lan, "tcp", "198.18.0.1", 8080) == "198.18.0.2"
    assert ask(host, "tcp", "198.18.0.2", 7000, ns="web") == "198.18.0.1"
    rules = ok(host.run(["iptables", "-S"]))
    assert "-A FORWARD -j CNET-ACCEPT" in rules and "-P FORWARD DROP" in rules
    ok(host.cnet("delete", "ns", "web"))
    ok(host.cnet("delete", "bridge", "mybr0"))
    rules = ok(host.run(["iptables", "-S"]))
    assert "CNET" not in rules and "-P FORWARD DROP" in rules


def test_other_dropping_forward_chains_cnet_does_not_answer_are_warned_about(net):
    host, _ = net
    host.sh("nft add table bridge theirs; nft add chain bridge theirs gate '{ type filter hook forward priority 0;"
            " policy drop; }'", check=True)
    r = host.cnet("create", "bridge", "net3", "--subnet", "10.66.0.0/24")
    assert r.returncode == 0
    assert "cnet: warning: nftables chain gate of table bridge theirs (not cnet's) has policy drop" in r.stderr


def test_nothing_is_left_after_the_last_network(net):
    host, lan = net
    original = {k: host.read(f"/proc/sys/{k}").strip() for k in ("net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding")}
    assert original == {"net/ipv4/ip_forward": "1", "net/ipv6/conf/all/forwarding": "1"}  # mybr0 exists
    ok(host.cnet("create", "bridge", "int0", "--subnet", "10.77.0.0/24", "--internal"))
    ok(host.cnet("create", "ns", "web", "--network", "mybr0", "-p", "8080:80", "-p", "53/udp"))
    ok(host.cnet("create", "ns", "db", "--network", "int0"))
    for name in ("web", "db"):
        ok(host.cnet("delete", "ns", name))
    for name in ("mybr0", "int0"):
        ok(host.cnet("delete", "bridge", name))
    ruleset = ok(host.run(["nft", "list", "ruleset"]))
    if host.env["CNET_FIREWALL"] == "nftables":
        assert ruleset == ""
    else:  # iptables-nft keeps its (empty) built-in tables once used: they are not cnet's
        rule_lines = [line for line in ruleset.splitlines()
                      if line.strip() and not line.strip().startswith(("table ", "chain ", "type ", "}"))]
        assert "cnet" not in ruleset.lower() and rule_lines == []
    for tool in ("iptables-save", "ip6tables-save"):
        assert "CNET" not in ok(host.run([tool]))
    for key in ("net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding"):
        assert host.read(f"/proc/sys/{key}").strip() == "0"  # as a fresh namespace has them
    assert sorted(host.links()) == ["eth0", "lo"]
    assert json.loads(host.read("/var/lib/cnet/state.yaml"))["host"] == {}


def test_the_number_of_rules_does_not_grow_with_ports(net):
    host, _ = net
    if host.env["CNET_FIREWALL"] != "nftables":
        pytest.skip("iptables has no maps: one DNAT rule per host port is its design")
    ok(host.cnet("create", "ns", "web", "--network", "mybr0", "-p", "8080:80"))

    def rule_count():
        listing = json.loads(ok(host.run(["nft", "-j", "list", "table", "inet", "cnet"])))["nftables"]
        return sum(1 for item in listing if "rule" in item)

    first = rule_count()
    ok(host.cnet("publish", "web", "10000-10199:10000-10199"))
    ok(host.cnet("publish", "web", "5353:53/udp"))
    assert rule_count() == first
