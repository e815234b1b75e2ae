"""`cnet explain` without a kernel: reading PORT[/PROTO], finding the mappings,
and following a packet through rulesets recorded from nft 1.0.6 and
iptables 1.8.9 in a test host (firewall/explain_read.py)."""

from __future__ import annotations

import json

import pytest

from cnet.core.explain import Explanation, Step, matching, parse_port
from cnet.errors import InvalidInput, NotFound
from cnet.firewall import explain_read as fw
from cnet.firewall.hostread import parse_save
from cnet.model import PortMapping, Sandbox, State

PACKET = fw.Packet(4, "tcp", "172.26.0.2", 80, "mybr0", ("mybr0", "other0"))

# `nft -j list table inet cnet` after `create bridge mybr0` and `create ns web
# --publish 8080:80 --publish 127.0.0.1:8081:80`, the items explain looks at
CNET_TABLE = [json.loads(line) for line in """\
{"chain": {"family": "inet", "table": "cnet", "name": "published", "handle": 3}}
{"chain": {"family": "inet", "table": "cnet", "name": "postrouting", "handle": 4, "type": "nat", "hook": "postrouting", "prio": 100, "policy": "accept"}}
{"chain": {"family": "inet", "table": "cnet", "name": "forward", "handle": 5, "type": "filter", "hook": "forward", "prio": 0, "policy": "accept"}}
{"map": {"family": "inet", "name": "dnat4", "table": "cnet", "type": ["ipv4_addr", "inet_proto", "inet_service"], "handle": 14, "map": "ipv4_addr . inet_service", "elem": [[{"concat": ["127.0.0.1", "tcp", 8081]}, {"concat": ["172.26.0.2", 80]}]]}}
{"map": {"family": "inet", "name": "dnat4any", "table": "cnet", "type": ["inet_proto", "inet_service"], "handle": 15, "map": "ipv4_addr . inet_service", "elem": [[{"concat": ["tcp", 8080]}, {"concat": ["172.26.0.2", 80]}]]}}
{"set": {"family": "inet", "name": "bridges", "table": "cnet", "type": "ifname", "handle": 6, "elem": ["mybr0"]}}
{"rule": {"family": "inet", "table": "cnet", "chain": "published", "handle": 20, "expr": [{"dnat": {"family": "ip", "addr": {"map": {"key": {"concat": [{"payload": {"protocol": "ip", "field": "daddr"}}, {"meta": {"key": "l4proto"}}, {"payload": {"protocol": "th", "field": "dport"}}]}, "data": "@dnat4"}}}}]}}
{"rule": {"family": "inet", "table": "cnet", "chain": "published", "handle": 21, "expr": [{"match": {"op": "==", "left": {"meta": {"key": "nfproto"}}, "right": "ipv4"}}, {"dnat": {"family": "ip", "addr": {"map": {"key": {"concat": [{"meta": {"key": "l4proto"}}, {"payload": {"protocol": "th", "field": "dport"}}]}, "data": "@dnat4any"}}}}]}}
{"rule": {"family": "inet", "table": "cnet", "chain": "postrouting", "handle": 24, "comment": "hairpin: a sandbox to a published port", "expr": [{"match": {"op": "in", "left": {"ct": {"key": "status"}}, "right": "dnat"}}, {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": "@subnets4"}}, {"masquerade": null}]}}
{"rule": {"family": "inet", "table": "cnet", "chain": "postrouting", "handle": 25, "expr": [{"match": {"op": "in", "left": {"ct": {"key": "status"}}, "right": "dnat"}}, {"match": {"op": "==", "left": {"payload": {"protocol": "ip6", "field": "saddr"}}, "right": "@subnets6"}}, {"masquerade": null}]}}
{"rule": {"family": "inet", "table": "cnet", "chain": "postrouting", "handle": 26, "comment": "localhost to a published port", "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": {"prefix": {"addr": "127.0.0.0", "len": 8}}}}, {"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": "@bridges"}}, {"masquerade": null}]}}
{"rule": {"family": "inet", "table": "cnet", "chain": "forward", "handle": 29, "comment": "internal networks", "expr": [{"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "@internal"}}, {"match": {"op": "!=", "left": {"concat": [{"meta": {"key": "iifname"}}, {"meta": {"key": "oifname"}}]}, "right": "@same"}}, {"drop": null}]}}
{"rule": {"family": "inet", "table": "cnet", "chain": "forward", "handle": 31, "comment": "published ports, from any network", "expr": [{"match": {"op": "in", "left": {"ct": {"key": "status"}}, "right": "dnat"}}, {"accept": null}]}}
""".splitlines()]


def foreign_chain(*rules, policy="accept", table="filter", family="inet", prio=0, extra=()):
    """A forward base chain of another table, its rules given as lists of expressions."""
    items = [{"chain": {"family": family, "table": table, "name": "forward", "handle": 1, "type": "filter",
                        "hook": "forward", "prio": prio, "policy": policy}}]
    for handle, rule in enumerate(rules, start=2):
        expr, comment = rule if isinstance(rule, tuple) else (rule, None)
        r = {"family": family, "table": table, "chain": "forward", "handle": handle, "expr": expr}
        if comment:
            r["comment"] = comment
        items.append({"rule": r})
    return fw.Ruleset(items + list(extra))


def match(left, right, op="=="):
    return {"match": {"op": op, "left": left, "right": right}}


TCP_DPORT = {"payload": {"protocol": "tcp", "field": "dport"}}
UDP_DPORT = {"payload": {"protocol": "udp", "field": "dport"}}
SADDR = {"payload": {"protocol": "ip", "field": "saddr"}}
DADDR = {"payload": {"protocol": "ip", "field": "daddr"}}
IIF = {"meta": {"key": "iifname"}}
OIF = {"meta": {"key": "oifname"}}
CT_STATE = {"ct": {"key": "state"}}
DROP, ACCEPT = {"drop": None}, {"accept": None}


def follow(rs):
    return fw.follow_chain(rs, ("inet", "filter", "forward"), PACKET)


# -- PORT[/PROTO] and the mappings it names ----------------------------------------

def test_parse_port():
    assert parse_port("80") == (80, "tcp")
    assert parse_port("53/udp") == (53, "udp")


@pytest.mark.parametrize("text, said", [
    ("8080:80", "explain takes one port"), ("127.0.0.1:8080:80", "explain takes one port"),
    ("web", "is not a port number"), ("80/xx", "unknown protocol"), ("0", "out of range"),
    ("80-81", "range"),
])
def test_a_bad_port_is_invalid_input(text, said):
    with pytest.raises(InvalidInput, match=said):
        parse_port(text)


def state_with_ports():
    ports = [PortMapping("web", "mybr0", "tcp", "0.0.0.0", 8080, 80),
             PortMapping("web", "mybr0", "tcp", "::", 8080, 80),
             PortMapping("web", "mybr0", "udp", "0.0.0.0", 9000, 7000, count=3),
             PortMapping("db", "mybr0", "tcp", "0.0.0.0", 5432, 5432)]
    return State(sandboxes={"web": Sandbox("web"), "db": Sandbox("db")}, ports=ports)


def test_matching_by_sandbox_port_and_by_host_port():
    state = state_with_ports()
    assert [(p.host_ip, off) for p, off in matching(state, "web", 80, "tcp")] == [("0.0.0.0", 0), ("::", 0)]
    assert [(p.host_port, off) for p, off in matching(state, "web", 7002, "udp")] == [(9000, 2)]
    assert [(p.sandbox, off) for p, off in matching(state, None, 9001, "udp")] == [("web", 1)]
    assert [p.sandbox for p, _ in matching(state, None, 5432, "tcp")] == ["db"]


@pytest.mark.parametrize("ns, port, protocol, said", [
    ("nope", 80, "tcp", "sandbox nope not found"),
    ("web", 81, "tcp", "sandbox web has no published port 81/tcp"),
    ("web", 80, "udp", "no published port 80/udp"),
    (None, 8081, "tcp", "no published host port 8081/tcp"),
])
def test_nothing_matching_is_not_found(ns, port, protocol, said):
    with pytest.raises(NotFound, match=said):
        matching(state_with_ports(), ns, port, protocol)


# -- cnet's own rules, found by what they do -----------------------------------------

def test_cnet_rules_are_found_by_content():
    rs, table = fw.Ruleset(CNET_TABLE), ("inet", "cnet")
    assert rs.find(table, "published", lambda r: fw.uses_map(r, "dnat4any"))["handle"] == 21
    assert rs.find(table, "published", lambda r: fw.uses_map(r, "dnat4"))["handle"] == 20
    assert fw.map_element(rs, table, "dnat4any", "tcp . 8080") == "tcp . 8080 : 172.26.0.2 . 80"
    assert fw.map_element(rs, table, "dnat4", "127.0.0.1 . tcp . 8081") == "127.0.0.1 . tcp . 8081 : 172.26.0.2 . 80"
    assert fw.map_element(rs, table, "dnat4any", "tcp . 8081") is None
    assert rs.find(table, "forward", fw.is_ct_dnat_accept)["handle"] == 31
    assert rs.find(table, "postrouting", lambda r: fw.is_hairpin(r, 4))["handle"] == 24
    assert rs.find(table, "postrouting", lambda r: fw.is_hairpin(r, 6))["handle"] == 25
    assert rs.find(table, "postrouting", fw.is_localhost)["handle"] == 26


def test_forward_chains_by_priority_and_family():
    rs = fw.Ruleset(CNET_TABLE + [
        {"chain": {"family": "ip", "table": "early", "name": "fw", "hook": "forward", "prio": -10}},
        {"chain": {"family": "ip6", "table": "six", "name": "fw", "hook": "forward", "prio": -20}},
        {"chain": {"family": "inet", "table": "late", "name": "fw", "hook": "forward", "prio": "security"}},
        {"chain": {"family": "bridge", "table": "br", "name": "fw", "hook": "forward", "prio": 0}},
    ])
    assert [key[1] for key in rs.forward_chains(4)] == ["early", "cnet", "late"]
    assert [key[1] for key in rs.forward_chains(6)] == ["six", "cnet", "late"]


# -- following a packet through nft chains -------------------------------------------

def test_a_drop_on_the_sandbox_port_is_certain():
    decision = follow(foreign_chain([match(TCP_DPORT, 80), DROP]))
    assert (decision.verdict, decision.chain, decision.rule, decision.certain) == ("drop", "forward", 2, True)


@pytest.mark.parametrize("expr", [
    [match(TCP_DPORT, 81), DROP],  # another port
    [match(UDP_DPORT, 80), DROP],  # another protocol: its implicit l4proto fails
    [match(TCP_DPORT, {"set": [22, {"range": [81, 90]}]}), DROP],
    [match(DADDR, {"prefix": {"addr": "10.0.0.0", "len": 8}}), DROP],
    [match(OIF, "eth0"), DROP],
    [match(IIF, "mybr0"), DROP],  # it comes from outside, not by a cnet bridge
    [match(CT_STATE, ["established", "related"], op="in"), DROP],
    [match({"payload": {"protocol": "ip6", "field": "daddr"}}, "fd00::2"), DROP],
])
def test_rules_that_do_not_match_let_it_through(expr):
    decision = follow(foreign_chain(expr))
    assert (decision.verdict, decision.rule, decision.certain) == ("continue", None, True)


def test_a_drop_on_what_cannot_be_known_may_drop():
    decision = follow(foreign_chain([match(SADDR, "192.0.2.1"), DROP]))
    assert decision.verdict == "continue" and decision.maybe == (("forward", 2, "drop"),)


def test_policy_drop_after_an_undecided_accept_may_drop():
    decision = follow(foreign_chain([match(IIF, "eth9"), ACCEPT], policy="drop"))
    assert (decision.verdict, decision.rule, decision.certain) == ("drop", None, False)


def test_policy_drop_after_rules_that_cannot_match_is_certain():
    decision = follow(foreign_chain([match(CT_STATE, ["established", "related"], op="in"), ACCEPT],
                                    [match(TCP_DPORT, {"range": [79, 81]}), {"counter": None}, {"reject": None}],
                                    policy="drop"))
    assert (decision.verdict, decision.rule, decision.certain) == ("reject", 3, True)


def test_a_cnet_accept_in_a_foreign_chain_decides():
    decision = follow(foreign_chain(([match(OIF, "mybr0"), match({"ct": {"key": "status"}}, "dnat", op="in"),
                                      ACCEPT], "cnet: published ports"), [DROP]))
    assert (decision.verdict, decision.rule, decision.cnet_rule) == ("accept", 2, True)


def test_jumps_are_followed_and_named_sets_read():
    extra = [{"chain": {"family": "inet", "table": "filter", "name": "user", "handle": 9}},
             {"set": {"family": "inet", "table": "filter", "name": "bad_ports", "elem": [80, 443]}},
             {"rule": {"family": "inet", "table": "filter", "chain": "user", "handle": 10,
                       "expr": [match(TCP_DPORT, "@bad_ports"), {"reject": {"type": "tcp reset"}}]}}]
    decision = follow(foreign_chain([{"jump": {"target": "user"}}], extra=extra))
    assert (decision.verdict, decision.chain, decision.rule) == ("reject", "user", 10)


def test_the_early_same_bridge_accept_of_a_cnet_table_does_not_apply_to_a_packet_from_outside():
    # another state file's cnet table is a foreign one to this owner's explain: walked rule by rule
    same = {"concat": [IIF, OIF]}
    extra = [{"set": {"family": "inet", "table": "filter", "name": "icc", "elem": ["mybr0", "other0"]}},
             {"set": {"family": "inet", "table": "filter", "name": "same",
                      "elem": [{"concat": ["mybr0", "mybr0"]}, {"concat": ["other0", "other0"]}]}}]
    decision = follow(foreign_chain([match(IIF, "@icc"), match(same, "@same"), ACCEPT],
                                    [match(TCP_DPORT, 80), DROP], extra=extra))
    assert (decision.verdict, decision.rule, decision.certain) == ("drop", 3, True)


# -- iptables ----------------------------------------------------------------------

# the iptables backend's chains, a host's REJECT and an undecidable DROP after them
IPTABLES = """\
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:CNET-FORWARD - [0:0]
:CNET-ISOLATION - [0:0]
:DOCKER-USER - [0:0]
-A FORWARD -j CNET-FORWARD
-A FORWARD -j DOCKER-USER
-A FORWARD -i mybr0 -j DROP
-A FORWARD -s 10.0.0.0/8 -j DROP
-A FORWARD -p tcp -m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable
-A CNET-FORWARD -i mybr0 -o mybr0 -j RETURN
-A CNET-FORWARD -i internal0 ! -o internal0 -j DROP
-A CNET-FORWARD -m conntrack --ctstate DNAT -j RETURN
-A CNET-FORWARD -i mybr0 ! -o mybr0 -j CNET-ISOLATION
-A CNET-ISOLATION -o mybr0 -j DROP
-A DOCKER-USER -j RETURN
COMMIT
"""


def test_iptables_forward_follows_cnet_chain_and_finds_the_reject():
    packet = PACKET._replace(bridges=("mybr0", "internal0"))
    decision = fw.iptables_forward(parse_save(IPTABLES), packet, "CNET-")
    assert (decision.verdict, decision.chain, decision.rule, decision.certain) == ("reject", "FORWARD", 5, True)
    assert decision.maybe == (("FORWARD", 4, "drop"),)


def test_iptables_policy_drop_answered_by_cnet_accept():
    text = IPTABLES.replace("-A FORWARD -p tcp -m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable\n",
                            "-A FORWARD -j CNET-ACCEPT\n").replace(":DOCKER-USER", ":CNET-ACCEPT - [0:0]\n:DOCKER-USER")
    text = text.replace("COMMIT", "-A CNET-ACCEPT -i mybr0 -j ACCEPT\n"
                        "-A CNET-ACCEPT -o mybr0 -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -j ACCEPT\nCOMMIT")
    decision = fw.iptables_forward(parse_save(text), PACKET._replace(bridges=("mybr0", "internal0")), "CNET-")
    assert (decision.verdict, decision.chain, decision.rule, decision.cnet_rule) == ("accept", "CNET-ACCEPT", 2, True)
    assert decision.maybe == (("FORWARD", 4, "drop"),)  # the -s 10.0.0.0/8 DROP before it


def test_iptables_dnat_rule():
    words = "-p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.26.0.2:80".split()
    assert fw.is_dnat_rule(words, "tcp", 8080, None, "172.26.0.2:80")
    assert not fw.is_dnat_rule(words, "tcp", 8081, None, "172.26.0.2:80")
    assert not fw.is_dnat_rule(words, "tcp", 8080, "127.0.0.1", "172.26.0.2:80")
    bound = ["-d", "127.0.0.1/32", *words]
    assert fw.is_dnat_rule(bound, "tcp", 8080, "127.0.0.1", "172.26.0.2:80")


# -- what the user reads ------------------------------------------------------------

def explanation(*steps):
    return Explanation(PortMapping("web", "mybr0", "tcp", "0.0.0.0", 8080, 80), 8080, 80, 4, "mybr0", list(steps))


def test_where_and_verdicts():
    dnat = Step(1, "dnat", "dnat to 172.26.0.2:80", table="inet cnet", chain="published", handle=21, tool="nft")
    drop = Step(2, "forward", "drop", True, table="inet filter", chain="forward", handle=2, tool="nft")
    policy = Step(2, "forward", "drop", True, table="filter", chain="FORWARD", tool="iptables")
    rule = Step(2, "forward", "reject", True, table="filter", chain="FORWARD", rule=5, tool="ip6tables")
    assert dnat.where == "inet cnet published handle 21"
    assert policy.where == "iptables filter FORWARD policy" and rule.where == "ip6tables filter FORWARD rule 5"
    assert explanation(dnat).verdict == "should answer"
    assert explanation(dnat, drop, rule).verdict == "blocked at inet filter forward handle 2 (drop)"
    assert explanation(dnat, policy).verdict == "blocked at iptables filter FORWARD policy (drop)"
    missing = Step(1, "dnat", "missing", True, detail="map dnat4any has no element tcp . 8080")
    assert explanation(missing).verdict.startswith("blocked: the DNAT is missing: map dnat4any")
    maybe = Step(2, "forward", "may drop", table="inet filter", chain="forward", handle=3, tool="nft")
    assert explanation(dnat, maybe).verdict.startswith("should answer, unless the rule at inet filter forward"
                                                       " handle 3 (drop)")
    off = Step(4, "sysctl", "off", True, sysctl="net.ipv4.ip_forward", detail="it is 0")
    assert off.where == "net.ipv4.ip_forward"
    assert explanation(dnat, off).verdict == "blocked: net.ipv4.ip_forward is off (it is 0)"
    view = explanation(dnat).to_dict()
    assert view["mapping"] == "0.0.0.0:8080->80/tcp" and view["steps"][0]["where"] == dnat.where
