"""The host's health warnings of `cnet check` (core/health.py) and the STATUS
of `cnet ls`, each cause set up inside a test host and then taken away.

The test host has only lo until a test adds links; its /etc/resolv.conf is the
machine's, so a stub resolver is given with --dns or the config's dns.
"""

from __future__ import annotations

import json
import os

import pytest

BACKENDS = ["nftables", "iptables"]


def ok(result) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def warnings(host) -> list[str]:
    result = host.cnet("check", "--json")
    assert result.returncode in (0, 5), result.stderr
    return json.loads(result.stdout)["warnings"]


def about(host, words: str) -> list[str]:
    return [w for w in warnings(host) if words in w]


@pytest.fixture
def routed(host):
    ok(host.cnet("create", "bridge", "br0", "--subnet", "10.60.0.0/24"))
    ok(host.cnet("create", "ns", "web", "--network", "br0"))
    return host


def test_a_healthy_host_has_no_warnings(routed):
    assert warnings(routed) == []


def test_forwarding_off(routed):
    routed.run(["sysctl", "-qw", "net.ipv4.ip_forward=0"], check=True)
    (line,) = about(routed, "net.ipv4.ip_forward")
    assert line.startswith("net.ipv4.ip_forward is 0, but network br0 routes through the host")
    ok(routed.cnet("restore"))
    assert warnings(routed) == []


def test_forwarding_off_matters_to_routed_networks_only(host):
    ok(host.cnet("create", "bridge", "quiet0", "--subnet", "10.61.0.0/24", "--internal"))
    host.run(["sysctl", "-qw", "net.ipv4.ip_forward=0"], check=True)
    assert warnings(host) == []
    ok(host.cnet("create", "bridge", "dual0", "--subnet", "10.62.0.0/24", "--subnet", "fd00:62::/64"))
    host.run(["sysctl", "-qw", "net.ipv6.conf.all.forwarding=0"], check=True)
    assert [w.split(" is ")[0] for w in warnings(host)] == ["net.ipv6.conf.all.forwarding"]


def differences(host) -> list[str]:
    return [d["text"] for d in json.loads(host.cnet("check", "--json").stdout)["differences"]]


@pytest.mark.parametrize("backend", BACKENDS)
def test_iptables_forward_policy_drop_set_after_cnet(host, backend):
    """A DROP policy set after cnet made its networks: cnet's accepts are
    missing there, a difference (not a warning) that restore, or the next change
    of networks, puts right."""
    host.env["CNET_FIREWALL"] = backend
    ok(host.cnet("create", "bridge", "br0", "--subnet", "10.60.0.0/24"))
    host.run(["iptables", "-P", "FORWARD", "DROP"], check=True)
    assert warnings(host) == []
    (line,) = differences(host)
    assert line.startswith("iptables: FORWARD has policy DROP, and cnet's accepts are missing there")
    ok(host.cnet("restore"))
    assert differences(host) == [] and warnings(host) == []
    host.run(["iptables", "-D", "FORWARD", "-j", "CNET-ACCEPT"], check=True)
    ok(host.cnet("create", "bridge", "br1", "--subnet", "10.63.0.0/24"))
    assert differences(host) == [] and warnings(host) == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_iptables_final_reject_set_after_cnet(host, backend):
    host.env["CNET_FIREWALL"] = backend
    ok(host.cnet("create", "bridge", "br0", "--subnet", "10.60.0.0/24"))
    host.run(["iptables", "-A", "FORWARD", "-j", "REJECT"], check=True)
    (line,) = differences(host)
    assert line.startswith("iptables: FORWARD holds rules that are not cnet's (rule ")
    assert ": `-j REJECT --reject-with icmp-port-unreachable`)" in line
    host.run(["iptables", "-D", "FORWARD", "-j", "REJECT"], check=True)
    assert differences(host) == [] and warnings(host) == []


def test_ip6tables_is_answered_for_ipv6_networks_only(host):
    host.run(["ip6tables", "-P", "FORWARD", "DROP"], check=True)
    ok(host.cnet("create", "bridge", "v4only", "--subnet", "10.60.0.0/24"))
    assert "CNET-ACCEPT" not in ok(host.run(["ip6tables", "-S"]))
    assert differences(host) == [] and warnings(host) == []
    ok(host.cnet("create", "bridge", "v6", "--subnet", "fd00:64::/64"))
    assert "-A FORWARD -j CNET-ACCEPT" in ok(host.run(["ip6tables", "-S"]))
    host.run(["ip6tables", "-D", "FORWARD", "-j", "CNET-ACCEPT"], check=True)
    (line,) = differences(host)
    assert line.startswith("ip6tables: FORWARD has policy DROP")


def test_iptables_legacy_rules_beside_nft(routed):
    routed.run(["iptables-legacy", "-P", "FORWARD", "DROP"], check=True)
    routed.run(["iptables-legacy", "-A", "INPUT", "-p", "tcp", "--dport", "22", "-j", "ACCEPT"], check=True)
    (line,) = warnings(routed)
    assert line.startswith("iptables-legacy holds 1 rule(s) beside iptables (nft): both stacks see every packet")
    (line,) = differences(routed)
    assert line.startswith("iptables-legacy: FORWARD has policy DROP, and cnet's accepts are missing there")
    ok(routed.cnet("restore"))
    assert differences(routed) == []
    routed.sh("iptables-legacy -F INPUT", check=True)
    assert warnings(routed) == []  # its FORWARD policy is answered by cnet's accepts


def test_iptables_nft_rules_beside_legacy(routed, tmp_path):
    """The reverse: `iptables` is the legacy variant (a PATH of its own here)
    and rules are in iptables-nft's tables."""
    if routed.env.get("CNET_FIREWALL") == "iptables":
        pytest.skip("with cnet's iptables backend its own rules are in iptables-nft's tables: the count is not 1")
    for tool in ("iptables", "iptables-save", "ip6tables", "ip6tables-save"):
        (tmp_path / tool).symlink_to(f"/usr/sbin/{tool.replace('tables', 'tables-legacy', 1)}")
    legacy = {"PATH": f"{tmp_path}:{os.environ['PATH']}"}
    routed.run(["iptables-nft", "-A", "INPUT", "-p", "tcp", "--dport", "22", "-j", "ACCEPT"], check=True)
    result = routed.cnet("check", "--json", env=legacy)
    (line,) = json.loads(result.stdout)["warnings"]
    assert line.startswith("iptables-nft's tables in nftables hold 1 IPv4 rule(s) while iptables is the legacy variant")
    assert warnings(routed) == []  # with iptables-nft as iptables, those are its own rules
    routed.run(["iptables-nft", "-F", "INPUT"], check=True)
    assert json.loads(routed.cnet("check", "--json", env=legacy).stdout)["warnings"] == []


def test_nft_chain_dropping_forwarded_traffic_made_after_cnet(routed):
    routed.run(["nft", "add table inet other; add chain inet other f { type filter hook forward priority 0;"
                " policy drop; }"], check=True)
    assert warnings(routed) == []
    (line,) = differences(routed)
    assert line.startswith("nftables chain f of table inet other (not cnet's) has policy drop, and cnet's accepts")
    ok(routed.cnet("restore"))
    assert differences(routed) == []
    routed.run(["nft", "chain inet other f { policy accept; }"], check=True)
    (line,) = differences(routed)  # it drops nothing now: cnet's accepts there are stale
    assert line.startswith("extra accept rules of cnet's in nftables chain f of table inet other")
    ok(routed.cnet("gc"))
    assert differences(routed) == []
    routed.run(["nft", "add rule inet other f counter reject"], check=True)
    (line,) = differences(routed)
    assert "has a reject rule" in line
    routed.run(["nft", "delete table inet other"], check=True)
    assert differences(routed) == [] and warnings(routed) == []


def test_nft_chains_of_a_family_cnet_does_not_route_are_left_alone(routed):
    routed.run(["nft", "add table ip6 v6; add chain ip6 v6 f { type filter hook forward priority 0;"
                " policy drop; }"], check=True)
    assert warnings(routed) == [] and differences(routed) == []


def test_nft_chains_cnet_does_not_answer(routed):
    routed.run(["nft", "add table bridge b; add chain bridge b f { type filter hook forward priority 0;"
                " policy drop; }"], check=True)
    (line,) = warnings(routed)
    assert line.startswith("nftables chain f of table bridge b (not cnet's) has policy drop: a packet must pass"
                           " every forward chain, so forwarded traffic of network br0 may be dropped there")
    assert "(cnet adds rules to chains of families ip, ip6, inet only)" in line
    assert differences(routed) == []


def test_firewalld_table_made_after_cnet(routed):
    routed.run(["nft", "add table inet firewalld; add chain inet firewalld filter_FORWARD { type filter hook"
                " forward priority 10; policy accept; }; add rule inet firewalld filter_FORWARD reject"], check=True)
    assert warnings(routed) == []  # no firewall-cmd here: cnet's accepts in its table are the way
    (line,) = differences(routed)
    assert line.startswith("nftables chain filter_FORWARD of table inet firewalld (not cnet's) has a reject rule")
    ok(routed.cnet("restore"))
    assert differences(routed) == []
    routed.run(["nft", "delete table inet firewalld"], check=True)
    assert warnings(routed) == [] and differences(routed) == []


def add_uplink(host, mtu: int) -> None:
    """A veth "uplink" with the host's default route through it."""
    host.sh(f"ip link add up0 mtu {mtu} type veth peer name up0p mtu {mtu} && ip link set up0p up &&"
            " ip link set up0 up && ip addr add 198.18.0.1/24 dev up0 && ip route add default via 198.18.0.2 &&"
            " ip -6 addr add fd00:18::1/64 dev up0 nodad && ip -6 route add default via fd00:18::2", check=True)


def test_a_host_route_overlapping_a_subnet(routed):
    add_uplink(routed, 1500)
    routed.run(["ip", "route", "add", "10.60.0.0/16", "via", "198.18.0.2"], check=True)
    (line,) = warnings(routed)
    assert line.startswith("the host route 10.60.0.0/16 via 198.18.0.2 dev up0 overlaps subnet 10.60.0.0/24 of"
                           " network br0")
    routed.run(["ip", "route", "del", "10.60.0.0/16"], check=True)
    assert warnings(routed) == []  # the network's own route on br0 is no overlap


def test_an_ipv6_host_route_overlapping_a_subnet(host):
    add_uplink(host, 1500)
    ok(host.cnet("create", "bridge", "v6", "--subnet", "fd00:65::/64"))
    host.run(["ip", "-6", "route", "add", "unreachable", "fd00:65::/56"], check=True)
    (line,) = warnings(host)
    assert line.startswith("the host route unreachable fd00:65::/56 overlaps subnet fd00:65::/64 of network v6")
    host.run(["ip", "-6", "route", "del", "unreachable", "fd00:65::/56"], check=True)
    assert warnings(host) == []


def test_an_mtu_above_the_uplinks(host):
    add_uplink(host, 1400)
    ok(host.cnet("create", "bridge", "big0", "--subnet", "10.60.0.0/24", "--mtu", "1500"))
    ok(host.cnet("create", "bridge", "fits0", "--subnet", "10.61.0.0/24", "--mtu", "1400"))
    ok(host.cnet("create", "bridge", "inside0", "--subnet", "10.62.0.0/24", "--internal"))  # never leaves the host
    (line,) = warnings(host)
    assert line.startswith("network big0 has MTU 1500, above the 1400 of up0, the link of the host's default route")
    host.sh("ip link set up0 mtu 9000 && ip link set up0p mtu 9000", check=True)
    assert warnings(host) == []
    ok(host.cnet("create", "bridge", "dual0", "--subnet", "10.63.0.0/24", "--subnet", "fd00:63::/64", "--mtu", "9001"))
    (line,) = warnings(host)  # above both default routes' link, said once
    assert line.startswith("network dual0 has MTU 9001, above the 9000 of up0")


def test_no_default_route_no_mtu_warning(host):
    host.sh("ip link add up0 mtu 1280 type veth peer name up0p && ip link set up0 up", check=True)
    ok(host.cnet("create", "bridge", "big0", "--subnet", "10.60.0.0/24", "--mtu", "9000"))
    assert warnings(host) == []


def test_stub_resolvers(host):
    ok(host.cnet("create", "ns", "a", "--dns", "127.0.0.53"))
    ok(host.cnet("create", "ns", "b", "--dns", "1.1.1.1"))
    ok(host.cnet("create", "ns", "c"))  # the host's nameservers, loopback ones left out
    ok(host.cnet("create", "ns", "me", "--host"))
    (line,) = warnings(host)
    assert line.startswith("sandbox a gets nameserver 127.0.0.53 (from --dns), a loopback address")
    host.sh("printf 'dns: [127.0.0.53, 9.9.9.9]\\n' > /etc/cnet/config.yaml", check=True)
    assert about(host, "from the config's dns") == [
        "sandbox c gets nameserver 127.0.0.53 (from the config's dns), a loopback address: nothing answers there"
        " inside a sandbox's own namespace (a stub resolver such as 127.0.0.53 listens in the host's), so names do"
        " not resolve; give a nameserver they can reach (--dns IP or the config's dns; for sandboxes made already,"
        " /etc/netns/NAME/resolv.conf)"]
    host.sh("rm /etc/cnet/config.yaml", check=True)
    ok(host.cnet("delete", "ns", "a"))
    assert warnings(host) == []


# -- ls STATUS ------------------------------------------------------------------------

def statuses(host, what: str) -> dict[str, str]:
    items = json.loads(ok(host.cnet("ls", what, "--json")))
    return {item.get("name") or f"{item['sandbox']}/{item['network']}": item["status"] for item in items}


def test_ls_marks_what_was_deleted_behind_cnets_back(routed):
    ok(routed.cnet("create", "ns", "db", "--network", "br0", "--publish", "8080:80"))
    ok(routed.cnet("create", "ns", "side", "--join", "web"))
    lists = ("networks", "ns", "endpoints", "ports")
    assert {what: statuses(routed, what) for what in lists} == {
        "networks": {"br0": "ok"}, "ns": {"web": "ok", "db": "ok", "side": "ok"},
        "endpoints": {"web/br0": "ok", "db/br0": "ok"}, "ports": {"db/br0": "ok"}}

    routed.run(["ip", "netns", "delete", "db"], check=True)
    assert statuses(routed, "ns") == {"web": "ok", "db": "missing", "side": "ok"}
    assert statuses(routed, "endpoints") == {"web/br0": "ok", "db/br0": "missing"}
    assert statuses(routed, "ports") == {"db/br0": "missing"}
    assert ok(routed.cnet("ls", "ns")).splitlines()[2].split() == ["db", "none", "-", "br0", "missing"]
    assert ok(routed.cnet("ls", "ns", "-q")) == "web\ndb\nside\n"
    routed.run(["touch", "/run/netns/db"], check=True)  # a stale file there: not a namespace handle
    assert statuses(routed, "ns")["db"] == "missing"
    routed.run(["rm", "/run/netns/db"], check=True)

    veth = json.loads(ok(routed.cnet("ls", "endpoints", "--json")))[0]["host_ifname"]
    routed.run(["ip", "link", "delete", veth], check=True)  # web's host link, its namespace still there
    assert statuses(routed, "endpoints")["web/br0"] == "missing"
    routed.run(["ip", "link", "delete", "br0"], check=True)
    assert statuses(routed, "networks") == {"br0": "missing"}

    ok(routed.cnet("restore"))
    assert {what: set(statuses(routed, what).values()) for what in lists} == {what: {"ok"} for what in lists}
