"""`cnet explain` in test hosts, on both backends: a working port, one a
foreign firewall blocks, one whose DNAT was deleted by hand, and the exit
codes. A LAN client in a second test host proves what explain says.

    lan (198.18.0.2)  ---- eth0 ---- eth0 ----  host (198.18.0.1)
                                               cnet: mybr0 172.26.0.0/16, sandbox web, 8080->80
"""

from __future__ import annotations

import json
import re

import pytest

from testhost import ask, link_hosts, serve

BACKENDS = ["nftables", "iptables"]


def ok(result) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(params=BACKENDS)
def net(request, make_host):
    """(host, lan, backend): web publishes 8080->80 on mybr0 and serves port 80."""
    host, lan = make_host("host"), make_host("lan")
    host.env["CNET_FIREWALL"] = request.param
    link_hosts(host, lan, "eth0", "eth0")
    host.run(["ip", "addr", "add", "198.18.0.1/24", "dev", "eth0"], check=True)
    lan.run(["ip", "addr", "add", "198.18.0.2/24", "dev", "eth0"], check=True)
    ok(host.cnet("create", "bridge", "mybr0", "--subnet", "172.26.0.0/16"))
    ok(host.cnet("create", "ns", "web", "--network", "mybr0", "--publish", "8080:80"))
    serve(host, "tcp", 80, ns="web")
    return host, lan, request.param


def explain(host, *args) -> dict:
    return json.loads(ok(host.cnet("explain", *args, "--json")))


def steps(view: dict, name: str) -> list[dict]:
    return [s for m in view["mappings"] for s in m["steps"] if s["step"] == name]


def nft_handle(host, chain: str, wanted: str) -> int:
    """The handle nft -a shows for the rule of `chain` ("inet cnet published") holding `wanted`."""
    listing = ok(host.run(["nft", "-a", "list", "chain", *chain.split()]))
    line = next(line for line in listing.splitlines() if wanted in line)
    return int(re.search(r"# handle (\d+)", line).group(1))


def iptables_rule(host, table: str, chain: str, wanted: str) -> int:
    """The number of the rule of `chain` holding `wanted`, as iptables counts them."""
    rules = [line for line in ok(host.run(["iptables", "-t", table, "-S", chain])).splitlines()
             if line.startswith("-A ")]
    return next(i for i, line in enumerate(rules, start=1) if wanted in line)


def test_a_working_port_names_cnet_rules_with_real_handles(net):
    host, lan, backend = net
    assert ask(lan, "tcp", "198.18.0.1", 8080) == "198.18.0.2"
    view = explain(host, "web", "80")
    assert view["verdict"] == "should answer"
    (mapping,) = view["mappings"]
    assert mapping["mapping"] == "0.0.0.0:8080->80/tcp" and mapping["verdict"] == "should answer"
    (dnat,) = steps(view, "dnat")
    assert dnat["verdict"] == "dnat to 172.26.0.2:80" and not dnat["blocks"]
    own_forward = [s for s in steps(view, "forward") if s["cnet"]]
    if backend == "nftables":
        assert dnat["handle"] == nft_handle(host, "inet cnet published", "@dnat4any")
        assert dnat["detail"] == "map dnat4any element tcp . 8080 : 172.26.0.2 . 80"
        assert [(s["table"], s["chain"], s["handle"], s["verdict"]) for s in own_forward] == [
            ("inet cnet", "forward", nft_handle(host, "inet cnet forward", "ct status dnat accept"), "accept")]
    else:
        assert (dnat["table"], dnat["chain"]) == ("nat", "CNET-DNAT")
        assert dnat["rule"] == iptables_rule(host, "nat", "CNET-DNAT", "--dport 8080")
        assert [(s["chain"], s["rule"], s["verdict"]) for s in own_forward] == [
            ("CNET-FORWARD", iptables_rule(host, "filter", "CNET-FORWARD", "--ctstate DNAT -j RETURN"), "return")]
    assert not any(s["blocks"] for s in mapping["steps"])
    # the LAN client's connection is tracked (TIME_WAIT) and shown
    (tracked,) = steps(view, "conntrack")
    assert tracked["count"] >= 1 and tracked["connections"][0]["source"].startswith("198.18.0.2:")
    assert {s["step"]: s["verdict"] for s in steps(view, "hairpin") + steps(view, "localhost") +
            steps(view, "sysctl")} == {"hairpin": "masquerade", "localhost": "masquerade", "sysctl": "on"}
    # the host port alone names the same mapping, and the text has the same steps, the verdict last
    assert explain(host, "8080") == view
    text = ok(host.cnet("explain", "web", "80")).splitlines()
    assert text[-1] == "verdict: should answer"
    assert [line.split()[1] for line in text if re.match(r"  \d\. ", line)] == [s["step"] for s in mapping["steps"]]


def test_a_foreign_nft_drop_is_named(net):
    host, lan, _ = net
    host.run(["nft", "add table inet filter; add chain inet filter forward { type filter hook forward priority 0;"
              " policy accept; }; add rule inet filter forward tcp dport 80 drop"], check=True)
    assert ask(lan, "tcp", "198.18.0.1", 8080, timeout=1) is None
    handle = nft_handle(host, "inet filter forward", "tcp dport 80 drop")
    r = host.cnet("explain", "web", "80")
    assert r.returncode == 0, r.stderr  # an explanation of a blocked port is a success
    assert r.stdout.splitlines()[-1] == f"verdict: blocked at inet filter forward handle {handle} (drop)"
    view = explain(host, "web", "80")
    (foreign,) = [s for s in steps(view, "forward") if s["table"] == "inet filter"]
    assert (foreign["chain"], foreign["handle"], foreign["verdict"], foreign["blocks"], foreign["cnet"]) == (
        "forward", handle, "drop", True, False)
    assert "no rule of cnet's here" in foreign["detail"]


def test_a_foreign_iptables_reject_is_named(net):
    host, lan, _ = net
    host.run(["iptables", "-A", "FORWARD", "-p", "tcp", "--dport", "80", "-j", "REJECT"], check=True)
    assert ask(lan, "tcp", "198.18.0.1", 8080, timeout=1) is None
    number = iptables_rule(host, "filter", "FORWARD", "-j REJECT")
    view = explain(host, "web", "80")
    assert view["verdict"] == f"blocked at iptables filter FORWARD rule {number} (reject)"


def test_a_dnat_deleted_by_hand_is_missing_until_restore(net):
    host, lan, backend = net
    if backend == "nftables":
        host.run(["nft", "delete element inet cnet dnat4any { tcp . 8080 }"], check=True)
    else:
        host.run(["iptables", "-t", "nat", "-D", "CNET-DNAT",
                  str(iptables_rule(host, "nat", "CNET-DNAT", "--dport 8080"))], check=True)
    assert ask(lan, "tcp", "198.18.0.1", 8080, timeout=1) is None
    view = explain(host, "8080")
    (dnat,) = steps(view, "dnat")
    assert dnat["verdict"] == "missing" and dnat["blocks"] and "`cnet restore` puts it back" in dnat["detail"]
    assert view["verdict"].startswith("blocked: the DNAT is missing")
    ok(host.cnet("restore"))
    assert explain(host, "8080")["verdict"] == "should answer"
    assert ask(lan, "tcp", "198.18.0.1", 8080) == "198.18.0.2"


@pytest.mark.parametrize("backend", BACKENDS)
def test_ipv6_has_its_own_dnat_and_forward_path(make_host, backend):
    host, lan = make_host("host"), make_host("lan")
    host.env["CNET_FIREWALL"] = backend
    link_hosts(host, lan, "eth0", "eth0")
    host.run(["ip", "addr", "add", "fd00:18::1/64", "dev", "eth0", "nodad"], check=True)
    lan.run(["ip", "addr", "add", "fd00:18::2/64", "dev", "eth0", "nodad"], check=True)
    ok(host.cnet("create", "bridge", "mybr0", "--subnet", "172.26.0.0/16", "--subnet", "fd00:26::/64"))
    ok(host.cnet("create", "ns", "web", "--network", "mybr0", "--publish", "8080:80"))
    serve(host, "tcp", 80, ns="web")
    assert ask(lan, "tcp", "fd00:18::1", 8080) == "fd00:18::2"
    view = explain(host, "web", "80")
    assert [m["mapping"] for m in view["mappings"]] == ["0.0.0.0:8080->80/tcp", "[::]:8080->80/tcp"]
    six = view["mappings"][1]
    dnat = six["steps"][0]
    assert dnat["verdict"] == "dnat to [fd00:26::2]:80" and six["verdict"] == "should answer"
    if backend == "nftables":
        assert dnat["handle"] == nft_handle(host, "inet cnet published", "@dnat6any")
    else:
        rules = [line for line in ok(host.run(["ip6tables", "-t", "nat", "-S", "CNET-DNAT"])).splitlines()
                 if line.startswith("-A ")]
        assert dnat["tool"] == "ip6tables" and "--dport 8080" in rules[dnat["rule"] - 1]
    tracked = next(s for s in six["steps"] if s["step"] == "conntrack")
    assert tracked["count"] >= 1 and tracked["connections"][0]["source"].startswith("[fd00:18::2]:")
    assert [s["where"] for s in six["steps"] if s["step"] == "sysctl"] == ["net.ipv6.conf.all.forwarding"]
    # a drop for IPv6 only blocks the IPv6 mapping
    host.run(["nft", "add table ip6 f6; add chain ip6 f6 fw6 { type filter hook forward priority 10;"
              " policy accept; }; add rule ip6 f6 fw6 tcp dport 80 drop"], check=True)
    view = explain(host, "8080")
    assert [m["verdict"] for m in view["mappings"]] == [
        "should answer", f"blocked at ip6 f6 fw6 handle {nft_handle(host, 'ip6 f6 fw6', 'drop')} (drop)"]
    assert view["verdict"] == view["mappings"][1]["verdict"]


@pytest.mark.parametrize("args, code, said", [
    (["nope", "80"], 3, "sandbox nope not found"),
    (["web", "81"], 3, "sandbox web has no published port 81/tcp"),
    (["9999/udp"], 3, "no published host port 9999/udp"),
    (["web", "80/xx"], 2, "unknown protocol"),
    (["web", "8080:80"], 2, "explain takes one port"),
    (["web"], 2, "is not a port number"),
    ([], 2, "give PORT[/PROTO]"),
    (["web", "80", "81"], 2, "give PORT[/PROTO]"),
])
def test_not_found_and_bad_input(host, args, code, said):
    ok(host.cnet("create", "bridge", "mybr0", "--subnet", "172.26.0.0/16"))
    ok(host.cnet("create", "ns", "web", "--network", "mybr0", "--publish", "8080:80"))
    r = host.cnet("explain", *args)
    assert r.returncode == code and r.stdout == ""
    assert r.stderr.startswith("cnet: error: ") and said in r.stderr and len(r.stderr.splitlines()) == 1
