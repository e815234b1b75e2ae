"""Tests for cnet.firewall: the plan computed from a State, and what each
backend renders from it. Golden text, like the CNI plugins' nftables tests:
the expected scripts are kept here, whole, so a change of the rules shows up
as a diff of this file.

Nothing here runs nft or iptables against the machine. Where the suite runs
as root with nft installed, one test checks the rendered scripts with
`unshare --net nft -c -f -`, against a throw-away network namespace.
"""

import os
import re
import shutil
import subprocess

import pytest

from cnet.core import ports
from cnet.firewall import hostpolicy, iptables, nftables
from cnet import drivers
from cnet.drivers.base import NO_FIREWALL
from cnet.errors import InvalidInput
from cnet.firewall import plan as firewall_plan
from cnet.firewall.plan import Dnat, FirewallPlan, Structure, dnat_changes
from cnet.model import Endpoint, Network, PortMapping, Sandbox, State, Subnet, replace
from cnet.portspec import parse


def needs_of(net):
    """What core passes the plan: the driver's word (a driver this cnet lacks asks nothing)."""
    try:
        return drivers.get(net.driver).firewall(net)
    except InvalidInput:
        return NO_FIREWALL


def inputs(state):
    return firewall_plan.inputs(state, needs_of)


# --- the state of the golden tests ------------------------------------------
#
# dual0:   bridge, 10.89.0.0/24 + fd00:89::/64, masquerade
# intern0: bridge, 10.90.0.0/24, internal
# web:     eth0 on dual0 (10.89.0.2, fd00:89::2), eth1 on intern0 (10.90.0.2)
# db:      eth0 on dual0 (10.89.0.3, fd00:89::3), eth1 on intern0 (10.90.0.3)
# ports:   web 0.0.0.0:8080->80/tcp, web 127.0.0.1:5353->53/udp,
#          web [::]:8080->80/tcp, db 0.0.0.0:9000-9002->7000-7002/tcp

def golden_state() -> State:
    networks = [
        Network("dual0", "bridge", [Subnet("10.89.0.0/24", "10.89.0.1"), Subnet("fd00:89::/64", "fd00:89::1")], 1500),
        Network("intern0", "bridge", [Subnet("10.90.0.0/24", "10.90.0.1")], 1500, internal=True),
    ]
    endpoints = [
        Endpoint("web", "dual0", "eth0", "cnet-web0", "02:42:0a:59:00:02", ["10.89.0.2/24", "fd00:89::2/64"]),
        Endpoint("web", "intern0", "eth1", "cnet-web1", "02:42:0a:5a:00:02", ["10.90.0.2/24"]),
        Endpoint("db", "dual0", "eth0", "cnet-db0", "02:42:0a:59:00:03", ["10.89.0.3/24", "fd00:89::3/64"]),
        Endpoint("db", "intern0", "eth1", "cnet-db1", "02:42:0a:5a:00:03", ["10.90.0.3/24"]),
    ]
    port_list = [
        PortMapping("web", "dual0", "tcp", "0.0.0.0", 8080, 80),
        PortMapping("web", "dual0", "udp", "127.0.0.1", 5353, 53),
        PortMapping("web", "dual0", "tcp", "::", 8080, 80),
        PortMapping("db", "dual0", "tcp", "0.0.0.0", 9000, 7000, count=3),
    ]
    return State(networks={n.name: n for n in networks},
                 sandboxes={"web": Sandbox("web"), "db": Sandbox("db")},
                 endpoints=endpoints, ports=port_list)


GOLDEN_PLAN = FirewallPlan(
    Structure(
        bridges=("dual0", "intern0"),
        internal=("intern0",),
        subnets4=("10.89.0.0/24", "10.90.0.0/24"),
        subnets6=("fd00:89::/64",),
        masquerade4=("10.89.0.0/24",),
        masquerade6=("fd00:89::/64",),
    ),
    frozenset({
        Dnat(4, "tcp", 8080, None, "10.89.0.2", 80),
        Dnat(4, "udp", 5353, "127.0.0.1", "10.89.0.2", 53),
        Dnat(6, "tcp", 8080, None, "fd00:89::2", 80),
        Dnat(4, "tcp", 9000, None, "10.89.0.3", 7000),
        Dnat(4, "tcp", 9001, None, "10.89.0.3", 7001),
        Dnat(4, "tcp", 9002, None, "10.89.0.3", 7002),
    }),
)

GOLDEN_NFT = """\
add table inet cnet
delete table inet cnet
table inet cnet {
  set bridges { type ifname; elements = { "dual0", "intern0" }; }
  set same { type ifname . ifname; elements = { "dual0" . "dual0", "intern0" . "intern0" }; }
  set internal { type ifname; elements = { "intern0" }; }
  set no_icc { type ifname; }
  set icc { type ifname; elements = { "dual0", "intern0" }; }
  set routed { type ifname; }
  set subnets4 { type ipv4_addr; flags interval; elements = { 10.89.0.0/24, 10.90.0.0/24 }; }
  set subnets6 { type ipv6_addr; flags interval; elements = { fd00:89::/64 }; }
  set masquerade4 { type ipv4_addr; flags interval; elements = { 10.89.0.0/24 }; }
  set masquerade6 { type ipv6_addr; flags interval; elements = { fd00:89::/64 }; }
  map dnat4 { type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; \
elements = { 127.0.0.1 . udp . 5353 : 10.89.0.2 . 53 }; }
  map dnat4any { type inet_proto . inet_service : ipv4_addr . inet_service; \
elements = { tcp . 8080 : 10.89.0.2 . 80, tcp . 9000 : 10.89.0.3 . 7000, \
tcp . 9001 : 10.89.0.3 . 7001, tcp . 9002 : 10.89.0.3 . 7002 }; }
  map dnat6 { type ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service; }
  map dnat6any { type inet_proto . inet_service : ipv6_addr . inet_service; \
elements = { tcp . 8080 : fd00:89::2 . 80 }; }
  chain prerouting {
    type nat hook prerouting priority -100; policy accept;
    fib daddr type local jump published
  }
  chain output {
    type nat hook output priority -100; policy accept;
    ip6 daddr ::1 return comment "[::1] is never published: refused at once, not sent to a sandbox it cannot reach"
    fib daddr type local jump published
  }
  chain published {
    meta nfproto ipv4 dnat ip to ip daddr . meta l4proto . th dport map @dnat4
    meta nfproto ipv4 dnat ip to meta l4proto . th dport map @dnat4any
    meta nfproto ipv6 dnat ip6 to ip6 daddr . meta l4proto . th dport map @dnat6
    meta nfproto ipv6 dnat ip6 to meta l4proto . th dport map @dnat6any
  }
  chain postrouting {
    type nat hook postrouting priority 100; policy accept;
    ct status dnat ip saddr @subnets4 masquerade comment "hairpin: a sandbox to a published port"
    ct status dnat ip6 saddr @subnets6 masquerade
    ip saddr 127.0.0.0/8 oifname @bridges masquerade comment "localhost to a published port"
    ip saddr @masquerade4 oifname != @bridges masquerade comment "outbound"
    ip6 saddr @masquerade6 oifname != @bridges masquerade
  }
  chain forward {
    type filter hook forward priority 0; policy accept;
    iifname @icc iifname . oifname @same accept comment "same bridge, not --no-icc: no rule below drops it"
    iifname @internal iifname . oifname != @same drop comment "internal networks"
    oifname @internal iifname . oifname != @same drop
    ct status dnat accept comment "published ports, from any network"
    oifname @bridges iifname != @bridges oifname != @routed ct state != { established, related } drop \
comment "only published ports come in"
    iifname @no_icc iifname . oifname @same drop comment "--no-icc (bridged traffic: br_netfilter)"
    iifname @bridges oifname @bridges iifname . oifname != @same drop comment "isolation"
  }
  chain untracked {
    type filter hook prerouting priority raw; policy accept;
    ip saddr @subnets4 ip daddr @subnets4 fib daddr type != local notrack comment "sandbox to sandbox: no NAT, no conntrack"
    ip6 saddr @subnets6 ip6 daddr @subnets6 fib daddr type != local notrack
  }
  chain loopback {
    type filter hook prerouting priority raw; policy accept;
    iifname != "lo" ip daddr 127.0.0.0/8 drop comment "loopback stays loopback"
    iifname != "lo" ip6 daddr ::1 drop
  }
}
"""

EMPTY_NFT = "add table inet cnet\ndelete table inet cnet\n"


# --- generated states for the scaling tests ---------------------------------

def scaled_state(n_networks: int = 1, n_sandboxes: int = 1, n_ports: int = 1) -> State:
    """n networks (every 5th internal, every 3rd dual-stack, every 7th without
    masquerade), n sandboxes spread over the non-internal ones, n tcp ports
    spread over the sandboxes (every 4th on IPv6 too)."""
    networks, usable = {}, []
    for i in range(n_networks):
        name = f"br{i}"
        subnets = [Subnet(f"10.{100 + i // 250}.{i % 250}.0/24", f"10.{100 + i // 250}.{i % 250}.1")]
        if i % 3 == 0:
            subnets.append(Subnet(f"fd00:{i:x}::/64", f"fd00:{i:x}::1"))
        internal = i % 5 == 4
        networks[name] = Network(name, "bridge", subnets, 1500, internal=internal, masquerade=i % 7 != 6)
        if not internal:
            usable.append(networks[name])
    sandboxes, endpoints = {}, []
    for j in range(n_sandboxes):
        net = usable[j % len(usable)]
        host = 2 + j // len(usable)
        addresses = [f"{net.subnets[0].subnet.rsplit('.', 1)[0]}.{host}/24"]
        if len(net.subnets) > 1:
            addresses.append(f"{net.subnets[1].subnet.split('/')[0]}{host:x}/64")
        sandboxes[f"sb{j}"] = Sandbox(f"sb{j}")
        endpoints.append(Endpoint(f"sb{j}", net.name, "eth0", f"cnet-sb{j}", "02:42:00:00:00:01", addresses))
    port_list = []
    for k in range(n_ports):
        ep = endpoints[k % len(endpoints)]
        port_list.append(PortMapping(ep.sandbox, ep.network, "tcp", "0.0.0.0", 10000 + k, 80))
        if k % 4 == 0 and len(ep.addresses) > 1:
            port_list.append(PortMapping(ep.sandbox, ep.network, "tcp", "::", 10000 + k, 80))
    return State(networks=networks, sandboxes=sandboxes, endpoints=endpoints, ports=port_list)


def chain_blocks(script: str) -> list[str]:
    """The lines inside `chain NAME { ... }` blocks: the rules (and base chain headers)."""
    out, inside = [], False
    for line in script.splitlines():
        if line.startswith("  chain "):
            inside = True
        elif inside and line == "  }":
            inside = False
        elif inside:
            out.append(line)
    return out


def map_elements(script: str, name: str) -> list[str]:
    found = re.search(rf"^  map {name} {{ .*?(?:elements = {{ (.*) }}; )?}}$", script, re.M)
    assert found, f"no map {name}"
    return found.group(1).split(", ") if found.group(1) else []


def set_elements(script: str, name: str) -> list[str]:
    found = re.search(rf"^  set {name} {{ .*?(?:elements = {{ (.*) }}; )?}}$", script, re.M)
    assert found, f"no set {name}"
    return found.group(1).split(", ") if found.group(1) else []


# --- plan -------------------------------------------------------------------

def test_plan_golden():
    assert inputs(golden_state()).plan() == GOLDEN_PLAN
    assert not GOLDEN_PLAN.empty


def test_plan_of_an_empty_state():
    assert inputs(State()).plan() == FirewallPlan()
    assert FirewallPlan().empty


def test_plan_leaves_out_networks_whose_driver_asks_nothing():
    state = State(networks={"mv0": Network("mv0", "macvlan", [Subnet("10.50.0.0/24", "10.50.0.1")], 1500),
                            "br0": Network("br0", "bridge", [Subnet("10.51.0.0/24", "10.51.0.1")], 1500)})
    asked = []

    def only_bridges(net):
        asked.append(net.name)
        return needs_of(net) if net.driver == "bridge" else NO_FIREWALL

    s = firewall_plan.inputs(state, only_bridges).plan().structure
    assert sorted(asked) == ["br0", "mv0"]
    assert s.bridges == ("br0",) and s.subnets4 == ("10.51.0.0/24",)
    del state.networks["br0"]
    assert inputs(state).plan().empty
    assert nftables.render_full(inputs(state).plan()) == EMPTY_NFT


def test_plan_no_masquerade_network_is_not_masqueraded_but_still_hairpinned():
    state = golden_state()
    state.networks["dual0"] = replace(state.networks["dual0"], masquerade=False)
    s = inputs(state).plan().structure
    assert s.masquerade4 == () and s.masquerade6 == ()
    assert s.subnets4 == ("10.89.0.0/24", "10.90.0.0/24") and s.subnets6 == ("fd00:89::/64",)


def test_plan_skips_a_mapping_whose_endpoint_is_gone():
    state = golden_state()
    state.endpoints = [e for e in state.endpoints if e.sandbox != "db"]
    assert inputs(state).plan().dnat == GOLDEN_PLAN.dnat - {d for d in GOLDEN_PLAN.dnat if d.target_ip == "10.89.0.3"}


def test_plan_ports_change_only_dnat():
    state = golden_state()
    state.ports = []
    assert inputs(state).plan().structure == GOLDEN_PLAN.structure
    assert inputs(state).plan().dnat == frozenset()


def test_plan_ipv6_wildcard_written_in_full_is_a_wildcard():
    state = golden_state()
    ep = state.endpoints[2]  # db on dual0
    state.ports += ports.mappings_for("db", ep, parse("[0:0:0:0:0:0:0:0]:8443:443"), [6], 8443)
    assert Dnat(6, "tcp", 8443, None, "fd00:89::3", 443) in inputs(state).plan().dnat


# --- nftables: render_full --------------------------------------------------

def test_render_full_golden():
    assert nftables.render_full(GOLDEN_PLAN) == GOLDEN_NFT


def test_render_full_from_state():
    assert nftables.render_full(inputs(golden_state()).plan()) == GOLDEN_NFT


def test_render_full_of_the_empty_plan_only_removes_the_table():
    assert nftables.render_full(FirewallPlan()) == EMPTY_NFT
    assert nftables.render_full(inputs(State()).plan()) == EMPTY_NFT


def test_render_full_without_ports_has_empty_maps():
    script = nftables.render_full(FirewallPlan(GOLDEN_PLAN.structure))
    for name in ("dnat4", "dnat4any", "dnat6", "dnat6any"):
        assert map_elements(script, name) == []
    assert chain_blocks(script) == chain_blocks(GOLDEN_NFT)


def _chains_of(n_networks, n_sandboxes, n_ports):
    script = nftables.render_full(inputs(scaled_state(n_networks, n_sandboxes, n_ports)).plan())
    return script, chain_blocks(script)


def test_rule_count_does_not_depend_on_networks():
    one, rules_one = _chains_of(1, 1, 1)
    many, rules_many = _chains_of(50, 1, 1)
    assert len(rules_one) == len(rules_many) == len(chain_blocks(GOLDEN_NFT))
    assert rules_one == rules_many
    assert len(set_elements(one, "bridges")) == 1 and len(set_elements(many, "bridges")) == 50
    assert len(set_elements(many, "same")) == 50
    assert len(set_elements(many, "internal")) == 10
    assert len(set_elements(many, "subnets4")) == 50 and len(set_elements(many, "subnets6")) == 17


def test_rule_count_does_not_depend_on_sandboxes_or_ports():
    one, rules_one = _chains_of(1, 1, 1)
    many, rules_many = _chains_of(1, 200, 1000)
    assert rules_one == rules_many
    assert len(map_elements(one, "dnat4any")) == 1
    assert len(map_elements(many, "dnat4any")) == 1000
    assert len(map_elements(many, "dnat6any")) == 250


def test_rule_count_all_at_once():
    _, rules_small = _chains_of(1, 1, 1)
    script, rules_big = _chains_of(50, 300, 1000)
    assert rules_small == rules_big
    assert len(script.splitlines()) == len(GOLDEN_NFT.splitlines())  # elements grow lines, never their number


# --- nftables: render_changes, of what dnat_changes finds --------------------

def with_port(state: State, mapping: PortMapping) -> State:
    return State(networks=state.networks, sandboxes=state.sandboxes, endpoints=state.endpoints,
                 ports=state.ports + [mapping])


def without_port(state: State, index: int) -> State:
    return State(networks=state.networks, sandboxes=state.sandboxes, endpoints=state.endpoints,
                 ports=state.ports[:index] + state.ports[index + 1:])


def delta(old: State, new: State) -> str:
    """The script that an operation taking old to new runs (the structure unchanged)."""
    assert inputs(old).structure == inputs(new).structure
    return nftables.render_changes(*dnat_changes(inputs(old), inputs(new)))


@pytest.mark.parametrize("mapping, line", [
    (PortMapping("db", "dual0", "tcp", "0.0.0.0", 8081, 81),
     "add element inet cnet dnat4any { tcp . 8081 : 10.89.0.3 . 81 }\n"),
    (PortMapping("db", "dual0", "udp", "::", 5353, 53),
     "add element inet cnet dnat6any { udp . 5353 : fd00:89::3 . 53 }\n"),
    (PortMapping("db", "dual0", "sctp", "127.0.0.1", 3868, 3868),
     "add element inet cnet dnat4 { 127.0.0.1 . sctp . 3868 : 10.89.0.3 . 3868 }\n"),
    (PortMapping("db", "dual0", "tcp", "fd00:89::1", 8443, 443),
     "add element inet cnet dnat6 { fd00:89::1 . tcp . 8443 : fd00:89::3 . 443 }\n"),
])
def test_render_changes_add_one(mapping, line):
    assert delta(golden_state(), with_port(golden_state(), mapping)) == line


@pytest.mark.parametrize("index, line", [
    (0, "delete element inet cnet dnat4any { tcp . 8080 }\n"),
    (1, "delete element inet cnet dnat4 { 127.0.0.1 . udp . 5353 }\n"),
    (2, "delete element inet cnet dnat6any { tcp . 8080 }\n"),
])
def test_render_changes_remove_one(index, line):
    assert delta(golden_state(), without_port(golden_state(), index)) == line


def test_render_changes_of_a_range_is_one_element_per_port():
    assert delta(golden_state(), without_port(golden_state(), 3)) == (
        "delete element inet cnet dnat4any { tcp . 9000 }\n"
        "delete element inet cnet dnat4any { tcp . 9001 }\n"
        "delete element inet cnet dnat4any { tcp . 9002 }\n")


def test_render_changes_of_a_new_target_deletes_then_adds():
    state = golden_state()
    state.ports[0] = PortMapping("db", "dual0", "tcp", "0.0.0.0", 8080, 80)
    assert delta(golden_state(), state) == (
        "delete element inet cnet dnat4any { tcp . 8080 }\n"
        "add element inet cnet dnat4any { tcp . 8080 : 10.89.0.3 . 80 }\n")


def test_render_changes_of_nothing_is_nothing():
    assert delta(golden_state(), golden_state()) == ""
    assert nftables.render_changes(frozenset(), frozenset()) == ""


def test_render_changes_is_one_line_with_500_ports():
    base = scaled_state(1, 1, 500)
    assert len(inputs(base).plan().dnat) == 500 + 125
    ep = base.endpoints[0]
    target = ep.addresses[0].split("/")[0]
    added = with_port(base, PortMapping(ep.sandbox, ep.network, "tcp", "0.0.0.0", 30000, 8000))
    assert delta(base, added) == f"add element inet cnet dnat4any {{ tcp . 30000 : {target} . 8000 }}\n"
    index = next(i for i, m in enumerate(base.ports) if m.host_port == 10006)
    assert base.ports[index].host_ip == "0.0.0.0"
    removed = delta(base, without_port(base, index))
    assert removed == "delete element inet cnet dnat4any { tcp . 10006 }\n"
    assert removed.count("\n") == 1
    assert len(nftables.render_full(inputs(added).plan())) > 500 * len("tcp . 10000 : 10.100.0.2 . 80, ")


# --- dnat_changes: the published ports an operation changed, without a whole plan ---

def _changes(mutate):
    """dnat_changes over an operation on the golden state, and what the two whole plans say."""
    state = golden_state()
    before = inputs(state)
    mutate(state)
    after = inputs(state)
    old, new = before.plan(), after.plan()
    return dnat_changes(before, after), (old.dnat - new.dnat, new.dnat - old.dnat)


def _replace_endpoint(state, index, addresses):
    state.endpoints[index] = replace(state.endpoints[index], addresses=addresses)


def _hand_over(state):
    state.endpoints = [replace(e, sandbox="heir") if e.sandbox == "web" else e for e in state.endpoints]
    state.ports = [replace(p, sandbox="heir") if p.sandbox == "web" else p for p in state.ports]


CHANGES = {
    "nothing": lambda s: None,
    "publish": lambda s: s.ports.append(PortMapping("db", "dual0", "udp", "0.0.0.0", 53, 53)),
    "publish a range": lambda s: s.ports.append(PortMapping("web", "dual0", "tcp", "::", 7000, 70, count=4)),
    "unpublish": lambda s: s.ports.pop(1),
    "same mapping, new object": lambda s: s.ports.__setitem__(0, replace(s.ports[0])),
    "new target": lambda s: s.ports.__setitem__(0, PortMapping("db", "dual0", "tcp", "0.0.0.0", 8080, 80)),
    "endpoint gone, mappings too": lambda s: (s.endpoints.pop(2), s.ports.pop(3)),
    "endpoint gone, mapping left": lambda s: s.endpoints.pop(2),
    "endpoint readdressed": lambda s: _replace_endpoint(s, 0, ["10.89.0.9/24", "fd00:89::9/64"]),
    "endpoint replaced as it was": lambda s: _replace_endpoint(s, 0, list(s.endpoints[0].addresses)),
    "owner handed over": _hand_over,
    "everything gone": lambda s: (s.endpoints.clear(), s.ports.clear()),
}


@pytest.mark.parametrize("mutate", CHANGES.values(), ids=CHANGES.keys())
def test_dnat_changes_agree_with_the_whole_plans(mutate):
    found, expected = _changes(mutate)
    assert found == expected


def test_dnat_changes_of_one_publish_among_many_is_that_element():
    state = scaled_state(3, 50, 1000)
    before = inputs(state)
    ep = state.endpoints[7]
    state.ports.append(PortMapping(ep.sandbox, ep.network, "tcp", "0.0.0.0", 40000, 80))
    gone, added = dnat_changes(before, inputs(state))
    assert gone == frozenset()
    assert added == {Dnat(4, "tcp", 40000, None, ep.addresses[0].split("/")[0], 80)}


def test_inputs_are_not_changed_by_later_changes_of_the_state():
    state = golden_state()
    before = inputs(state)
    state.ports.clear()
    state.endpoints.clear()
    assert before.plan() == GOLDEN_PLAN


# --- iptables ---------------------------------------------------------------

def a_lines(script: str) -> list[str]:
    return [line for line in script.splitlines() if line.startswith("-A ")]


def test_iptables_ipv4():
    script = iptables.render(GOLDEN_PLAN, 4)
    lines = script.splitlines()
    assert lines[0] == "*nat" and lines[-1] == "COMMIT"
    assert script.count("COMMIT\n") == 3 and "COMMIT\n*filter\n" in script and "COMMIT\n*raw\n" in script
    for chain in ("CNET-PREROUTING", "CNET-OUTPUT", "CNET-POSTROUTING", "CNET-DNAT", "CNET-FORWARD", "CNET-ISOLATION",
                  "CNET-LOOPBACK", "CNET-NOTRACK", "CNET-NOTRACK-FROM"):
        assert f":{chain} - [0:0]" in lines and f"-F {chain}" in lines
    # one DNAT rule per host port of the family
    assert [line for line in lines if line.startswith("-A CNET-DNAT")] == [
        "-A CNET-DNAT -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.89.0.2:80",
        "-A CNET-DNAT -p tcp -m tcp --dport 9000 -j DNAT --to-destination 10.89.0.3:7000",
        "-A CNET-DNAT -p tcp -m tcp --dport 9001 -j DNAT --to-destination 10.89.0.3:7001",
        "-A CNET-DNAT -p tcp -m tcp --dport 9002 -j DNAT --to-destination 10.89.0.3:7002",
        "-A CNET-DNAT -d 127.0.0.1 -p udp -m udp --dport 5353 -j DNAT --to-destination 10.89.0.2:53",
    ]
    assert "-A CNET-PREROUTING -m addrtype --dst-type LOCAL -j CNET-DNAT" in lines
    assert "-A CNET-OUTPUT -m addrtype --dst-type LOCAL -j CNET-DNAT" in lines
    assert "-A CNET-LOOPBACK -d 127.0.0.0/8 ! -i lo -j DROP" in lines
    # masquerade: hairpin for every subnet, localhost, outbound only for dual0's subnet
    assert [line for line in lines if line.startswith("-A CNET-POSTROUTING")] == [
        "-A CNET-POSTROUTING -s 10.89.0.0/24 -m conntrack --ctstate DNAT -j MASQUERADE",
        "-A CNET-POSTROUTING -s 10.90.0.0/24 -m conntrack --ctstate DNAT -j MASQUERADE",
        "-A CNET-POSTROUTING -s 127.0.0.0/8 -o dual0 -j MASQUERADE",
        "-A CNET-POSTROUTING -s 127.0.0.0/8 -o intern0 -j MASQUERADE",
        "-A CNET-POSTROUTING -o dual0 -j RETURN",
        "-A CNET-POSTROUTING -o intern0 -j RETURN",
        "-A CNET-POSTROUTING -s 10.89.0.0/24 -j MASQUERADE",
    ]
    # untracked: a cnet subnet to a cnet subnet, unless to a host address (the gateways)
    assert [line for line in lines if line.startswith("-A CNET-NOTRACK")] == [
        "-A CNET-NOTRACK -d 10.89.0.0/24 -g CNET-NOTRACK-FROM",
        "-A CNET-NOTRACK -d 10.90.0.0/24 -g CNET-NOTRACK-FROM",
        "-A CNET-NOTRACK-FROM -m addrtype --dst-type LOCAL -j RETURN",
        "-A CNET-NOTRACK-FROM -s 10.89.0.0/24 -j CT --notrack",
        "-A CNET-NOTRACK-FROM -s 10.90.0.0/24 -j CT --notrack",
    ]
    assert "fd00" not in script
    _check_filter_rules(lines)


def test_iptables_ipv6():
    script = iptables.render(GOLDEN_PLAN, 6)
    lines = script.splitlines()
    assert [line for line in lines if line.startswith("-A CNET-DNAT")] == [
        "-A CNET-DNAT -p tcp -m tcp --dport 8080 -j DNAT --to-destination [fd00:89::2]:80",
    ]
    assert [line for line in lines if line.startswith("-A CNET-POSTROUTING")] == [
        "-A CNET-POSTROUTING -s fd00:89::/64 -m conntrack --ctstate DNAT -j MASQUERADE",
        "-A CNET-POSTROUTING -o dual0 -j RETURN",
        "-A CNET-POSTROUTING -o intern0 -j RETURN",
        "-A CNET-POSTROUTING -s fd00:89::/64 -j MASQUERADE",
    ]
    assert "127.0.0" not in script and "10.89" not in script and "10.90" not in script
    assert [line for line in lines if line.startswith("-A CNET-OUTPUT")][0] == "-A CNET-OUTPUT -d ::1/128 -j RETURN"
    assert "-A CNET-LOOPBACK -d ::1/128 ! -i lo -j DROP" in lines
    assert [line for line in lines if line.startswith("-A CNET-NOTRACK")] == [
        "-A CNET-NOTRACK -d fd00:89::/64 -g CNET-NOTRACK-FROM",
        "-A CNET-NOTRACK-FROM -m addrtype --dst-type LOCAL -j RETURN",
        "-A CNET-NOTRACK-FROM -s fd00:89::/64 -j CT --notrack",
    ]
    _check_filter_rules(lines)


def _check_filter_rules(lines):
    forward = [line for line in lines if line.startswith(("-A CNET-FORWARD", "-A CNET-ISOLATION"))]
    # first, same-bridge traffic of the bridges that are not --no-icc skips the rest (none drops it)
    same = ["-A CNET-FORWARD -i dual0 -o dual0 -j RETURN",
            "-A CNET-FORWARD -i intern0 -o intern0 -j RETURN"]
    internal = ["-A CNET-FORWARD -i intern0 ! -o intern0 -j DROP",
                "-A CNET-FORWARD -o intern0 ! -i intern0 -j DROP"]
    dnat = "-A CNET-FORWARD -m conntrack --ctstate DNAT -j RETURN"
    inbound = "-A CNET-FORWARD ! -i dual0 -o dual0 -m conntrack ! --ctstate RELATED,ESTABLISHED -j DROP"
    isolation = ["-A CNET-FORWARD -i dual0 ! -o dual0 -j CNET-ISOLATION",
                 "-A CNET-ISOLATION -o dual0 -j DROP",
                 "-A CNET-FORWARD -i intern0 ! -o intern0 -j CNET-ISOLATION",
                 "-A CNET-ISOLATION -o intern0 -j DROP"]
    assert forward == same + internal + [dnat, inbound] + isolation
    # two isolation rules per network
    assert sum("CNET-ISOLATION" in line for line in forward) == 2 * len(GOLDEN_PLAN.structure.bridges)


def test_no_icc_bridges_get_no_early_accept():
    s = Structure(bridges=("a0", "b0", "c0"), no_icc=("b0",), subnets4=("10.1.0.0/24",))
    assert set_elements(nftables.render_full(FirewallPlan(s)), "icc") == ['"a0"', '"c0"']
    assert nftables.expected_contents(FirewallPlan(s))[0]["icc"] == {"a0", "c0"}
    lines = iptables.render(FirewallPlan(s), 4).splitlines()
    assert [line for line in lines if line.endswith("-j RETURN") and "-i " in line and "-o " in line
            and "!" not in line] == ["-A CNET-FORWARD -i a0 -o a0 -j RETURN", "-A CNET-FORWARD -i c0 -o c0 -j RETURN"]
    # the --no-icc drop is still there, and comes after the early returns
    drop = lines.index("-A CNET-FORWARD -i b0 -o b0 -j DROP")
    assert drop > lines.index("-A CNET-FORWARD -i c0 -o c0 -j RETURN")


def test_iptables_family_without_subnets_has_no_masquerade():
    v4only = FirewallPlan(Structure(bridges=("br0",), subnets4=("10.1.0.0/24",), masquerade4=("10.1.0.0/24",)))
    lines = iptables.render(v4only, 6).splitlines()
    assert not [line for line in lines if "MASQUERADE" in line or ("RETURN" in line and "POSTROUTING" in line)]
    assert not [line for line in lines if "NOTRACK" in line and line.startswith("-A")]
    assert "-A CNET-ISOLATION -o br0 -j DROP" in lines


def test_iptables_rules_grow_linearly():
    p = inputs(scaled_state(50, 300, 1000)).plan()
    for family in (4, 6):
        lines = a_lines(iptables.render(p, family))
        isolation = [line for line in lines if "CNET-ISOLATION" in line]
        assert len(isolation) == 2 * 50  # never one per pair of networks
        internal = [line for line in lines if line.endswith("-j DROP") and "CNET-FORWARD" in line
                    and "--ctstate" not in line]
        assert len(internal) == 2 * 10
        inbound = [line for line in lines if "! --ctstate RELATED,ESTABLISHED -j DROP" in line]
        assert len(inbound) == 50 - 10  # one per bridge that is neither internal nor routed
        dnat = [line for line in lines if line.startswith("-A CNET-DNAT")]
        assert len(dnat) == len([d for d in p.dnat if d.family == family])
        assert len({line.split("--dport ")[1].split()[0] for line in dnat}) == len(dnat)
    assert len([d for d in p.dnat if d.family == 4]) == 1000


# --- hostpolicy -------------------------------------------------------------

def test_render_accept_golden():
    assert hostpolicy.render_accept(GOLDEN_PLAN) == (
        "*filter\n"
        ":CNET-ACCEPT - [0:0]\n"
        "-F CNET-ACCEPT\n"
        "-A CNET-ACCEPT -i dual0 -j ACCEPT\n"
        "-A CNET-ACCEPT -o dual0 -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -j ACCEPT\n"
        "-A CNET-ACCEPT -i intern0 -j ACCEPT\n"
        "-A CNET-ACCEPT -o intern0 -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -j ACCEPT\n"
        "COMMIT\n")


def test_render_accept_empty_plan():
    assert hostpolicy.render_accept(FirewallPlan()) == "*filter\n:CNET-ACCEPT - [0:0]\n-F CNET-ACCEPT\nCOMMIT\n"


def test_render_accept_two_rules_per_bridge():
    p = inputs(scaled_state(50, 1, 1)).plan()
    assert len(a_lines(hostpolicy.render_accept(p))) == 2 * 50


# --- nft syntax check, in a throw-away network namespace --------------------

def _nft_check_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root to run `unshare --net nft -c` in a throw-away network namespace"
    for tool in ("nft", "unshare"):
        if shutil.which(tool) is None:
            return f"needs {tool} installed"
    return None


@pytest.mark.skipif(_nft_check_unavailable() is not None, reason=str(_nft_check_unavailable()))
@pytest.mark.parametrize("name", ["golden", "golden then delta add", "golden then delta remove",
                                  "no ports", "empty", "50 networks 1000 ports"])
def test_nft_accepts_the_scripts(name):
    with_sctp = with_port(golden_state(), PortMapping("db", "dual0", "sctp", "fd00:89::1", 3868, 3868))
    golden, added = inputs(golden_state()).plan(), inputs(with_sctp).plan()
    scripts = {
        "golden": nftables.render_full(golden),
        "golden then delta add": nftables.render_full(golden) + delta(golden_state(), with_sctp),
        "golden then delta remove": nftables.render_full(added) + delta(with_sctp, golden_state()),
        "no ports": nftables.render_full(FirewallPlan(golden.structure)),
        "empty": nftables.render_full(FirewallPlan()),
        "50 networks 1000 ports": nftables.render_full(inputs(scaled_state(50, 300, 1000)).plan()),
    }
    result = subprocess.run(["unshare", "--net", "nft", "-c", "-f", "-"], input=scripts[name],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


# The rendered rules of each firewall.RULES_VERSION (crc32 of the golden plan's
# nftables script and iptables-restore input of both families). A change of
# the rules fails this test: raise RULES_VERSION (so that a state an older cnet
# wrote gets a full sync, not a map update) and add the new version's line.
RULES_BY_VERSION = {2: 490254658}


def test_a_change_of_the_rules_raises_the_rules_version():
    import zlib

    from cnet import firewall

    rendered = nftables.render_full(GOLDEN_PLAN) + iptables.render(GOLDEN_PLAN, 4) + iptables.render(GOLDEN_PLAN, 6)
    assert RULES_BY_VERSION.get(firewall.RULES_VERSION) == zlib.crc32(rendered.encode()), (
        "the rules changed: raise cnet.firewall.RULES_VERSION and record its checksum here")
