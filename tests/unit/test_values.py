"""Planners take and return values: what they are given is left as it was
(issue #9). `cnet batch` restores a failed line from a copy() that shares
the state's objects, and a StateStore keeps its last state in memory, so a
planner that changed an object in place would change those too."""

import copy

import pytest

from cnet.core import sandboxes
from cnet.errors import Conflict
from cnet.model import Endpoint, Network, PortMapping, Sandbox, State, Subnet


def inputs(state):
    """The firewall's inputs, each network's needs from its driver (as core takes them)."""
    from cnet.core.base import firewall_needs
    from cnet.firewall.plan import inputs

    return inputs(state, firewall_needs)


def two_stack_state() -> State:
    """br0 (IPv4, cursor at .5) and dual0 (IPv4 and IPv6), with one sandbox on br0."""
    return State(
        networks={
            "br0": Network("br0", "bridge", [Subnet("10.0.0.0/24", "10.0.0.1", last="10.0.0.5")], 1500),
            "dual0": Network("dual0", "bridge", [Subnet("10.1.0.0/24", "10.1.0.1"),
                                                 Subnet("fd00:1::/64", "fd00:1::1")], 1500),
        },
        sandboxes={"a": Sandbox("a"), "b": Sandbox("b")},
        endpoints=[Endpoint("a", "br0", "eth0", "cn1", "02:00:00:00:00:01", ["10.0.0.5/24"])],
    )


# --- plan_endpoint -----------------------------------------------------------

def test_plan_endpoint_returns_the_network_with_its_cursor_moved_and_changes_nothing():
    state = two_stack_state()
    before = copy.deepcopy(state)
    net = state.networks["br0"]
    ep, moved = sandboxes.plan_endpoint(state, net, "b")
    assert list(ep.addresses) == ["10.0.0.6/24"]
    assert moved.subnets[0].last == "10.0.0.6"
    assert moved is not net and moved.same_definition(net)
    assert state == before  # networks, their subnets' cursors, endpoints: all as they were
    assert net.subnets[0].last == "10.0.0.5"


def test_the_next_plan_from_the_recorded_network_continues_after_the_cursor():
    state = two_stack_state()
    ep, moved = sandboxes.plan_endpoint(state, state.networks["br0"], "b")
    state.networks["br0"] = moved  # what the attach operation records
    state.endpoints.append(ep)
    state.sandboxes["c"] = Sandbox("c")
    ep2, moved2 = sandboxes.plan_endpoint(state, state.networks["br0"], "c")
    assert list(ep2.addresses) == ["10.0.0.7/24"]
    assert moved2.subnets[0].last == "10.0.0.7"
    assert state.networks["br0"].subnets[0].last == "10.0.0.6"


def test_a_dual_stack_plan_moves_both_cursors_of_the_copy_only():
    state = two_stack_state()
    before = copy.deepcopy(state)
    ep, moved = sandboxes.plan_endpoint(state, state.networks["dual0"], "b")
    assert list(ep.addresses) == ["10.1.0.2/24", "fd00:1::2/64"]
    assert [s.last for s in moved.subnets] == ["10.1.0.2", "fd00:1::2"]
    assert state == before


def test_a_pinned_address_leaves_its_subnets_cursor_where_it_was():
    state = two_stack_state()
    ep, moved = sandboxes.plan_endpoint(state, state.networks["dual0"], "b", ips=["10.1.0.50"])
    assert list(ep.addresses) == ["10.1.0.50/24", "fd00:1::2/64"]
    assert [s.last for s in moved.subnets] == [None, "fd00:1::2"]
    assert [s.last for s in state.networks["dual0"].subnets] == [None, None]


def test_a_plan_refused_after_one_subnet_drew_an_address_changes_nothing():
    state = two_stack_state()
    state.endpoints.append(Endpoint("a", "dual0", "eth1", "cn2", "02:00:00:00:00:02",
                                    ["10.1.0.9/24", "fd00:1::9/64"]))
    before = copy.deepcopy(state)
    with pytest.raises(Conflict):  # IPv4 draws 10.1.0.2, then the pinned IPv6 address is a's
        sandboxes.plan_endpoint(state, state.networks["dual0"], "b", ips=["fd00:1::9"])
    assert state == before


# --- _hand_over (delete ns of a stack that others joined) ----------------------

def shared_stack_state() -> State:
    """web owns a stack that side and log joined; db is on its own."""
    return State(
        networks=two_stack_state().networks,
        sandboxes={"web": Sandbox("web"), "side": Sandbox("side", mode="joined", target="web"),
                   "log": Sandbox("log", mode="joined", target="web"), "db": Sandbox("db")},
        endpoints=[Endpoint("web", "br0", "eth0", "cn1", "02:00:00:00:00:01", ["10.0.0.2/24"]),
                   Endpoint("db", "br0", "eth0", "cn2", "02:00:00:00:00:02", ["10.0.0.3/24"])],
        ports=[PortMapping("web", "br0", "tcp", "0.0.0.0", 8080, 80),
               PortMapping("db", "br0", "tcp", "0.0.0.0", 5432, 5432)],
    )


def test_hand_over_returns_the_new_collections_and_leaves_its_state_as_it_was():
    from cnet.core.sandbox_ops import _hand_over

    state = shared_stack_state()
    before = copy.deepcopy(state)
    containers = (state.sandboxes, state.endpoints, state.ports)
    sandboxes, endpoints, ports = _hand_over(state, state.sandboxes["web"], ["side", "log"])

    assert state == before
    assert all(a is b for a, b in zip((state.sandboxes, state.endpoints, state.ports), containers))
    assert sandboxes["side"] == Sandbox("side", mode="none", target=None)
    assert sandboxes["log"] == Sandbox("log", mode="joined", target="side")
    assert sandboxes["web"] is state.sandboxes["web"]  # still there: delete_ns deletes it
    assert [(e.sandbox, e.host_ifname) for e in endpoints] == [("side", "cn1"), ("db", "cn2")]
    assert [(p.sandbox, p.host_port) for p in ports] == [("side", 8080), ("db", 5432)]
    assert endpoints[1] is state.endpoints[1] and ports[1] is state.ports[1]  # the others' objects are kept


# --- other planners ------------------------------------------------------------

def test_with_ip_range_returns_new_pools_and_leaves_the_given_list():
    from cnet.core.networks import _with_ip_range
    from cnet.ipam import SubnetPool

    pools = [SubnetPool("10.2.0.0/16"), SubnetPool("fd00:2::/64")]
    given = list(pools)
    found = _with_ip_range(pools, "fd00:2::/80")
    assert pools == given and all(a is b for a, b in zip(pools, given))
    assert found[0] is pools[0] and found[1].ip_range is not None and pools[1].ip_range is None


# --- the model's values ----------------------------------------------------------

VALUES = [
    Subnet("10.0.0.0/24", "10.0.0.1"),
    Sandbox("a", dns=["1.1.1.1"], hosts=["db:10.0.0.3"]),
    Endpoint("a", "br0", "eth0", "cn1", "02:00:00:00:00:01", ["10.0.0.2/24"]),
    PortMapping("a", "br0", "tcp", "0.0.0.0", 8080, 80),
]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_objects_that_are_replaced_never_changed_cannot_be_changed(value):
    from cnet.model import replace

    with pytest.raises(AttributeError):
        setattr(value, value._fields[0], "other")
    with pytest.raises(AttributeError):  # no attribute beyond the fields either
        value.other = 1
    assert hash(value) == hash(replace(value)) and value == replace(value)


def test_lists_given_become_tuples_and_the_state_file_holds_arrays():
    import json

    from cnet.model import Network, Subnet
    from cnet.state import decode, encode

    ep = Endpoint("a", "br0", "eth0", "cn1", "02:00:00:00:00:01", ["10.0.0.2/24"])
    assert ep.addresses == ("10.0.0.2/24",)
    assert ep == Endpoint("a", "br0", "eth0", "cn1", "02:00:00:00:00:01", ("10.0.0.2/24",))
    net = Network("br0", "bridge", [Subnet("10.0.0.0/24", "10.0.0.1")], 1500)
    state = State(networks={"br0": net}, sandboxes={"a": Sandbox("a", dns=["1.1.1.1"])}, endpoints=[ep])
    doc = json.loads(encode(state))
    assert doc["endpoints"][0]["addresses"] == ["10.0.0.2/24"]
    assert doc["sandboxes"]["a"]["dns"] == ["1.1.1.1"] and doc["sandboxes"]["a"]["hosts"] == []
    assert ep.to_dict()["addresses"] == ["10.0.0.2/24"]  # to_dict is the file's plain dict
    back = decode(encode(state), "state.yaml")
    assert back == state and type(back.endpoints[0].addresses) is tuple
    assert type(back.sandboxes["a"].dns) is tuple


@pytest.mark.parametrize("entry, problem", [
    ({"sandbox": "a", "network": "br0", "ifname": "eth0", "host_ifname": "cn1", "mac": "m"}, "missing"),
    ({"sandbox": "a", "network": "br0", "ifname": "eth0", "host_ifname": "cn1", "mac": "m",
      "addresses": [], "colour": "red"}, "unexpected"),
])
def test_an_endpoint_of_the_file_with_a_field_missing_or_unknown_is_refused(entry, problem):
    with pytest.raises(TypeError, match=problem):
        Endpoint.from_dict(entry)


def test_from_dict_fills_in_defaults_and_leaves_its_dict_as_it_was():
    entry = {"sandbox": "a", "network": "br0", "protocol": "tcp", "host_ip": "0.0.0.0",
             "host_port": 8080, "port": 80}
    assert PortMapping.from_dict(entry).count == 1
    assert Sandbox.from_dict({"name": "a"}) == Sandbox("a")
    full = Endpoint("a", "br0", "eth0", "cn1", "02:00:00:00:00:01", ["10.0.0.2/24"]).to_dict()
    given = copy.deepcopy(full)
    Endpoint.from_dict(full)
    assert full == given and type(full["addresses"]) is list


# --- dnat_changes compares values ----------------------------------------------------

def published_state() -> State:
    """web and db on dual0 (IPv4 and IPv6), four mappings."""
    return State(
        networks={"dual0": two_stack_state().networks["dual0"]},
        sandboxes={"web": Sandbox("web"), "db": Sandbox("db")},
        endpoints=[Endpoint("web", "dual0", "eth0", "cn1", "02:00:00:00:00:01", ["10.1.0.2/24", "fd00:1::2/64"]),
                   Endpoint("db", "dual0", "eth0", "cn2", "02:00:00:00:00:02", ["10.1.0.3/24"])],
        ports=[PortMapping("web", "dual0", "tcp", "0.0.0.0", 8080, 80),
               PortMapping("web", "dual0", "tcp", "::", 8080, 80),
               PortMapping("db", "dual0", "udp", "0.0.0.0", 5353, 53),
               PortMapping("db", "dual0", "tcp", "127.0.0.1", 9000, 7000, count=2)],
    )


def rebuilt(state: State) -> State:
    """The same state made of new, equal objects (as a state file read again gives)."""
    return State(state.networks, {n: Sandbox.from_dict(s.to_dict()) for n, s in state.sandboxes.items()},
                 [Endpoint.from_dict(e.to_dict()) for e in state.endpoints],
                 [PortMapping.from_dict(p.to_dict()) for p in state.ports])


@pytest.fixture
def looked_at(monkeypatch):
    """The number of mappings dnat_changes turns into entries, call by call."""
    from cnet.firewall import plan

    counts = []
    entries = plan.dnat_entries

    def counting(ports, endpoints):
        counts.append(len(ports))
        return entries(ports, endpoints)

    monkeypatch.setattr(plan, "dnat_entries", counting)
    return counts


def test_equal_but_new_mappings_and_endpoints_are_no_change_and_are_not_looked_at(looked_at):
    from cnet.firewall.plan import dnat_changes

    state = published_state()
    again = rebuilt(state)
    assert all(a is not b and a == b for a, b in zip(state.ports + state.endpoints, again.ports + again.endpoints))
    assert dnat_changes(inputs(state), inputs(again)) == (frozenset(), frozenset())
    assert looked_at == [0, 0]


def test_a_new_mapping_among_rebuilt_ones_is_the_only_one_looked_at(looked_at):
    from cnet.firewall.plan import Dnat, dnat_changes

    state = published_state()
    again = rebuilt(state)
    again.ports.append(PortMapping("db", "dual0", "tcp", "0.0.0.0", 2222, 22))
    gone, added = dnat_changes(inputs(state), inputs(again))
    assert gone == frozenset()
    assert added == {Dnat(4, "tcp", 2222, None, "10.1.0.3", 22)}
    assert looked_at == [0, 1]


def test_a_replaced_endpoint_with_new_addresses_moves_its_mappings_only(looked_at):
    from cnet.model import replace

    from cnet.firewall.plan import Dnat, dnat_changes

    state = published_state()
    again = rebuilt(state)
    again.endpoints[0] = replace(again.endpoints[0], addresses=["10.1.0.9/24", "fd00:1::9/64"])
    gone, added = dnat_changes(inputs(state), inputs(again))
    assert gone == {Dnat(4, "tcp", 8080, None, "10.1.0.2", 80), Dnat(6, "tcp", 8080, None, "fd00:1::2", 80)}
    assert added == {Dnat(4, "tcp", 8080, None, "10.1.0.9", 80), Dnat(6, "tcp", 8080, None, "fd00:1::9", 80)}
    assert looked_at == [2, 2]  # web's two mappings; db's are not looked at


def test_a_replaced_endpoint_with_the_same_addresses_is_no_change():
    from cnet.model import replace

    from cnet.firewall.plan import dnat_changes

    state = published_state()
    again = rebuilt(state)
    again.endpoints[1] = replace(again.endpoints[1], host_ifname="cn9", mac="02:00:00:00:00:09")
    assert dnat_changes(inputs(state), inputs(again)) == (frozenset(), frozenset())
