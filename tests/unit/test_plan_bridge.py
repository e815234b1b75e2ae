"""Tests for cnet.core.networks.plan_network: validating `cnet create bridge`.

Table-driven like netavark's test files: each invalid request names the
error class (so the exit code) and a substring of the one-line message.
plan_network is pure: host routes come in through a callable, which must be
called only when a subnet has to be picked from the address pools.
"""

import ipaddress
from datetime import datetime, timedelta, timezone

import pytest

from cnet.config import AddressPool, Config
from cnet.core import networks
from cnet.errors import Conflict, InvalidInput
from cnet.model import Network, State, Subnet


def plan_network(*args, **kwargs):
    """What `cnet create bridge` asks of the planner."""
    return networks.plan_network(*args, driver="bridge", **kwargs)


def net(name, *subnets, **kw):
    """A recorded bridge network with the given subnets (gateway .1 / ::1)."""
    subs = [Subnet(s, str(ipaddress.ip_network(s).network_address + 1)) for s in subnets]
    return Network(name=name, driver="bridge", subnets=subs, mtu=1500, **kw)


def state_with(*networks):
    return State(networks={n.name: n for n in networks})


def no_routes():
    pytest.fail("host_routes must not be called when subnets are given")


EXISTING = state_with(net("taken", "10.88.0.0/16"), net("six", "fd00:88::/64"))

# id, name, keyword arguments, error class, substring of the message
INVALID = [
    ("name too long", "abcdefghijklmnop", dict(subnets=["10.0.0.0/24"]),
     InvalidInput, "network name 'abcdefghijklmnop' is 16 bytes long; an interface name has at most 15"),
    ("name with slash", "a/b", dict(subnets=["10.0.0.0/24"]),
     InvalidInput, "network name 'a/b' contains '/', which an interface name cannot hold"),
    ("name with colon", "br:0", dict(subnets=["10.0.0.0/24"]),
     InvalidInput, "network name 'br:0' contains ':'"),
    ("name with space", "my br", dict(subnets=["10.0.0.0/24"]),
     InvalidInput, "network name 'my br' contains ' '"),
    ("empty name", "", dict(subnets=["10.0.0.0/24"]),
     InvalidInput, "network name must not be empty"),
    ("name dot", ".", dict(subnets=["10.0.0.0/24"]),
     InvalidInput, "network name '.' is not a valid interface name"),
    ("name dotdot", "..", dict(subnets=["10.0.0.0/24"]),
     InvalidInput, "network name '..' is not a valid interface name"),
    ("name checked before subnets", "a/b", dict(subnets=["nonsense"]),
     InvalidInput, "network name 'a/b'"),
    ("subnet not a CIDR", "br0", dict(subnets=["nonsense"]),
     InvalidInput, "subnet 'nonsense' is not a valid CIDR (expected ADDRESS/PREFIX)"),
    ("subnet without prefix", "br0", dict(subnets=["10.0.0.0"]),
     InvalidInput, "subnet '10.0.0.0' is not a valid CIDR"),
    ("subnet prefix too long", "br0", dict(subnets=["10.0.0.0/33"]),
     InvalidInput, "subnet '10.0.0.0/33' is not a valid CIDR"),
    ("subnet host bits", "br0", dict(subnets=["10.0.0.1/24"]),
     InvalidInput, "subnet 10.0.0.1/24 has host bits set (did you mean 10.0.0.0/24?)"),
    ("ipv6 subnet host bits", "br0", dict(subnets=["fd00::1/64"]),
     InvalidInput, "subnet fd00::1/64 has host bits set (did you mean fd00::/64?)"),
    ("subnet too small", "br0", dict(subnets=["10.0.0.0/31"]),
     InvalidInput, "subnet 10.0.0.0/31 is too small"),
    ("two ipv4 subnets", "br0", dict(subnets=["10.0.0.0/24", "10.0.1.0/24"]),
     InvalidInput, "a bridge network takes at most one IPv4 and one IPv6 subnet"),
    ("two ipv6 subnets", "br0", dict(subnets=["fd00:1::/64", "fd00:2::/64"]),
     InvalidInput, "at most one IPv4 and one IPv6 subnet"),
    ("more gateways than subnets", "br0", dict(subnets=["10.0.0.0/24"], gateways=["10.0.0.1", "10.0.0.2"]),
     InvalidInput, "each --gateway needs a --subnet it belongs to"),
    ("gateway without subnet", "br0", dict(gateways=["10.0.0.1"]),
     InvalidInput, "each --gateway needs a --subnet"),
    ("gateway outside subnet", "br0", dict(subnets=["10.0.0.0/24"], gateways=["10.0.1.1"]),
     InvalidInput, "gateway 10.0.1.1 is outside subnet 10.0.0.0/24"),
    ("gateway of the other family", "br0", dict(subnets=["10.0.0.0/24"], gateways=["fd00::1"]),
     InvalidInput, "gateway fd00::1 is IPv6 but subnet 10.0.0.0/24 is IPv4"),
    ("gateway is the network address", "br0", dict(subnets=["10.0.0.0/24"], gateways=["10.0.0.0"]),
     InvalidInput, "gateway 10.0.0.0 is the network address of 10.0.0.0/24"),
    ("gateway is the broadcast address", "br0", dict(subnets=["10.0.0.0/24"], gateways=["10.0.0.255"]),
     InvalidInput, "gateway 10.0.0.255 is the broadcast address of 10.0.0.0/24"),
    ("gateway not an address", "br0", dict(subnets=["10.0.0.0/24"], gateways=["router"]),
     InvalidInput, "gateway 'router' is not a valid IP address"),
    ("ip-range without any subnet", "br0", dict(ip_range="10.0.0.0/25"),
     InvalidInput, "ip-range 10.0.0.0/25 needs an IPv4 --subnet that contains it"),
    ("ipv4 ip-range with an ipv6 subnet", "br0", dict(subnets=["fd00::/64"], ip_range="10.0.0.0/25"),
     InvalidInput, "ip-range 10.0.0.0/25 needs an IPv4 --subnet that contains it"),
    ("ipv6 ip-range with an ipv4 subnet", "br0", dict(subnets=["10.0.0.0/24"], ip_range="fd00::/80"),
     InvalidInput, "ip-range fd00::/80 needs an IPv6 --subnet that contains it"),
    ("ip-range outside subnet", "br0", dict(subnets=["10.0.0.0/24"], ip_range="10.0.1.0/25"),
     InvalidInput, "10.0.1.0/25 is not inside subnet 10.0.0.0/24"),
    ("ip-range bigger than subnet", "br0", dict(subnets=["10.0.0.0/24"], ip_range="10.0.0.0/23"),
     InvalidInput, "10.0.0.0/23 is not inside subnet 10.0.0.0/24"),
    ("ip-range not a CIDR", "br0", dict(subnets=["10.0.0.0/24"], ip_range="10.0.0.5"),
     InvalidInput, "ip-range '10.0.0.5' is not a valid CIDR"),
    ("ip-range host bits", "br0", dict(subnets=["10.0.0.0/24"], ip_range="10.0.0.5/25"),
     InvalidInput, "ip-range 10.0.0.5/25 has host bits set (did you mean 10.0.0.0/25?)"),
    ("mtu too small", "br0", dict(subnets=["10.0.0.0/24"], mtu=67),
     InvalidInput, "MTU 67 is out of range (68-65535)"),
    ("mtu zero", "br0", dict(subnets=["10.0.0.0/24"], mtu=0),
     InvalidInput, "MTU 0 is out of range (68-65535)"),
    ("mtu negative", "br0", dict(subnets=["10.0.0.0/24"], mtu=-1),
     InvalidInput, "MTU -1 is out of range"),
    ("mtu too big", "br0", dict(subnets=["10.0.0.0/24"], mtu=65536),
     InvalidInput, "MTU 65536 is out of range (68-65535)"),
    ("mtu below ipv6 minimum", "br0", dict(subnets=["fd00::/64"], mtu=1279),
     InvalidInput, "MTU 1279 is below 1280, the least IPv6 works with"),
    ("mtu below ipv6 minimum, dual stack", "br0", dict(subnets=["10.0.0.0/24", "fd00::/64"], mtu=576),
     InvalidInput, "MTU 576 is below 1280"),
    ("name already in state", "taken", dict(subnets=["10.0.0.0/24"]),
     Conflict, "network taken already exists"),
    ("name already in state, no subnet", "taken", dict(),
     Conflict, "network taken already exists"),
    ("same subnet as another network", "br0", dict(subnets=["10.88.0.0/16"]),
     Conflict, "subnet 10.88.0.0/16 overlaps subnet 10.88.0.0/16 of network taken"),
    ("subnet inside another network's", "br0", dict(subnets=["10.88.3.0/24"]),
     Conflict, "subnet 10.88.3.0/24 overlaps subnet 10.88.0.0/16 of network taken"),
    ("subnet containing another network's", "br0", dict(subnets=["10.0.0.0/8"]),
     Conflict, "subnet 10.0.0.0/8 overlaps subnet 10.88.0.0/16 of network taken"),
    ("ipv6 overlap", "br0", dict(subnets=["10.0.0.0/24", "fd00:88::/48"]),
     Conflict, "subnet fd00:88::/48 overlaps subnet fd00:88::/64 of network six"),
]


@pytest.mark.parametrize("name, kwargs, error, message",
                         [case[1:] for case in INVALID], ids=[case[0] for case in INVALID])
def test_invalid_requests(name, kwargs, error, message):
    with pytest.raises(error) as info:
        plan_network(EXISTING, Config(), name, host_routes=no_routes if kwargs.get("subnets") else list,
                    **kwargs)
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert info.value.exit_code == {InvalidInput: 2, Conflict: 4}[error]


def test_the_state_is_not_changed_by_planning():
    before = state_with(net("taken", "10.88.0.0/16"))
    plan_network(before, Config(), "br0", subnets=["10.0.0.0/24"], host_routes=no_routes)
    assert list(before.networks) == ["taken"]


@pytest.mark.parametrize("existing, wanted", [
    ("10.0.0.0/8", "fd00::/64"),
    ("10.0.0.0/8", "fd0a::/16"),
    ("fd00::/8", "10.0.0.0/8"),
])
def test_ipv4_and_ipv6_subnets_never_overlap(existing, wanted):
    state = state_with(net("other", existing))
    planned = plan_network(state, Config(), "br0", subnets=[wanted], host_routes=no_routes)
    assert [s.subnet for s in planned.subnets] == [wanted]


# --- what a valid request becomes -----------------------------------------------

def test_gateway_defaults_to_the_first_host_address():
    planned = plan_network(State(), Config(), "br0", subnets=["10.0.0.0/24", "fd00:1::/64"], host_routes=no_routes)
    assert planned.subnets == [Subnet("10.0.0.0/24", "10.0.0.1"), Subnet("fd00:1::/64", "fd00:1::1")]


def test_a_full_plan():
    planned = plan_network(State(), Config(), "mybr0", subnets=["172.26.0.0/16"], host_routes=no_routes)
    assert isinstance(planned, Network)
    assert (planned.name, planned.driver, planned.mtu) == ("mybr0", "bridge", 1500)
    assert planned.subnets == [Subnet("172.26.0.0/16", "172.26.0.1", None, None)]
    assert planned.internal is False and planned.masquerade is True
    assert planned.options == {}
    created = datetime.fromisoformat(planned.created)
    assert created.utcoffset() == timedelta(0)
    assert abs(datetime.now(timezone.utc) - created) < timedelta(minutes=1)


def test_explicit_gateways_go_with_their_subnets_in_order():
    planned = plan_network(State(), Config(), "br0", subnets=["fd00:1::/64", "10.0.0.0/24"],
                          gateways=["fd00:1::fe", "10.0.0.254"], host_routes=no_routes)
    assert planned.subnets == [Subnet("fd00:1::/64", "fd00:1::fe"), Subnet("10.0.0.0/24", "10.0.0.254")]


def test_fewer_gateways_than_subnets_defaults_the_rest():
    planned = plan_network(State(), Config(), "br0", subnets=["10.0.0.0/24", "fd00:1::/64"],
                          gateways=["10.0.0.254"], host_routes=no_routes)
    assert [s.gateway for s in planned.subnets] == ["10.0.0.254", "fd00:1::1"]


def test_subnets_are_normalised():
    planned = plan_network(State(), Config(), "br0", subnets=["FD00:0001::/64"], gateways=["FD00:1::0A"],
                          ip_range="FD00:1::/80", host_routes=no_routes)
    assert planned.subnets == [Subnet("fd00:1::/64", "fd00:1::a", "fd00:1::/80")]


@pytest.mark.parametrize("ip_range, expected", [
    ("10.0.0.128/25", [Subnet("10.0.0.0/24", "10.0.0.1", "10.0.0.128/25"), Subnet("fd00:1::/64", "fd00:1::1")]),
    ("fd00:1::/80", [Subnet("10.0.0.0/24", "10.0.0.1"), Subnet("fd00:1::/64", "fd00:1::1", "fd00:1::/80")]),
    ("10.0.0.0/24", [Subnet("10.0.0.0/24", "10.0.0.1", "10.0.0.0/24"), Subnet("fd00:1::/64", "fd00:1::1")]),
])
def test_ip_range_is_attached_to_the_subnet_of_its_family(ip_range, expected):
    planned = plan_network(State(), Config(), "br0", subnets=["10.0.0.0/24", "fd00:1::/64"],
                          ip_range=ip_range, host_routes=no_routes)
    assert planned.subnets == expected


@pytest.mark.parametrize("config, mtu, expected", [
    (Config(), None, 1500),
    (Config(mtu=9000), None, 9000),
    (Config(mtu=9000), 1400, 1400),
    (Config(), 68, 68),
    (Config(), 65535, 65535),
])
def test_mtu_defaults_to_the_config(config, mtu, expected):
    planned = plan_network(State(), config, "br0", subnets=["10.0.0.0/24"], mtu=mtu, host_routes=no_routes)
    assert planned.mtu == expected


def test_mtu_1280_is_enough_for_ipv6():
    planned = plan_network(State(), Config(), "br0", subnets=["fd00::/64"], mtu=1280, host_routes=no_routes)
    assert planned.mtu == 1280


def test_a_small_config_mtu_is_checked_against_ipv6():
    with pytest.raises(InvalidInput, match="MTU 1000 is below 1280"):
        plan_network(State(), Config(mtu=1000), "br0", subnets=["fd00::/64"], host_routes=no_routes)


@pytest.mark.parametrize("internal, masquerade, expected", [
    (False, True, (False, True)),
    (False, False, (False, False)),
    (True, True, (True, False)),
    (True, False, (True, False)),
])
def test_internal_implies_no_masquerade(internal, masquerade, expected):
    planned = plan_network(State(), Config(), "br0", subnets=["10.0.0.0/24"], internal=internal,
                          masquerade=masquerade, host_routes=no_routes)
    assert (planned.internal, planned.masquerade) == expected


# --- automatic subnets ------------------------------------------------------------

def tiny_pool_config(**kw):
    """A pool of exactly two /24s: 10.9.0.0/24 and 10.9.1.0/24."""
    return Config(address_pools=(AddressPool(ipaddress.ip_network("10.9.0.0/23"), 24),), **kw)


def test_automatic_subnet_on_an_empty_state():
    planned = plan_network(State(), Config(), "br0")
    assert planned.subnets == [Subnet("172.17.0.0/16", "172.17.0.1")]


def test_automatic_subnet_skips_one_taken_by_a_cnet_network():
    planned = plan_network(state_with(net("docker0", "172.17.0.0/16")), Config(), "br0")
    assert planned.subnets == [Subnet("172.18.0.0/16", "172.18.0.1")]


def test_automatic_subnet_skips_a_partial_overlap_with_a_cnet_network():
    planned = plan_network(state_with(net("a", "172.17.3.0/24"), net("b", "172.18.0.0/15")), Config(), "br0")
    assert planned.subnets[0].subnet == "172.20.0.0/16"


def test_automatic_subnet_skips_a_host_route():
    calls = []

    def routes():
        calls.append(1)
        return [ipaddress.ip_network("172.17.5.0/24"), ipaddress.ip_network("fd00::/8")]

    planned = plan_network(State(), Config(), "br0", host_routes=routes)
    assert planned.subnets == [Subnet("172.18.0.0/16", "172.18.0.1")]
    assert calls == [1]


def test_automatic_subnet_ignores_ipv6_host_routes():
    planned = plan_network(State(), Config(), "br0", host_routes=lambda: [ipaddress.ip_network("::/0")])
    assert planned.subnets[0].subnet == "172.17.0.0/16"


def test_automatic_subnet_uses_the_config_pools_in_order():
    state = state_with(net("a", "10.9.0.0/24"))
    planned = plan_network(state, tiny_pool_config(), "br0")
    assert planned.subnets == [Subnet("10.9.1.0/24", "10.9.1.1")]


@pytest.mark.parametrize("state, routes", [
    (state_with(net("a", "10.9.0.0/24"), net("b", "10.9.1.0/24")), []),
    (state_with(net("a", "10.9.0.0/24")), [ipaddress.ip_network("10.9.1.128/25")]),
    (State(), [ipaddress.ip_network("10.0.0.0/8")]),
])
def test_exhausted_pools_are_a_conflict(state, routes):
    with pytest.raises(Conflict) as info:
        plan_network(state, tiny_pool_config(), "br0", host_routes=lambda: routes)
    assert str(info.value) == "no free subnet left in the address pools; give one with --subnet"
    assert info.value.exit_code == 4


def test_explicit_subnet_does_not_need_a_free_pool():
    state = state_with(net("a", "10.9.0.0/24"), net("b", "10.9.1.0/24"))
    planned = plan_network(state, tiny_pool_config(), "br0", subnets=["192.0.2.0/24"], host_routes=no_routes)
    assert planned.subnets[0].subnet == "192.0.2.0/24"


def test_host_routes_are_not_consulted_when_subnets_are_given():
    # An explicit subnet may even overlap a host route: the user asked for it.
    plan_network(State(), Config(), "br0", subnets=["fd00::/64"], host_routes=no_routes)
    plan_network(State(), Config(), "br0", subnets=["10.0.0.0/24", "fd00::/64"], ip_range="10.0.0.0/25",
                host_routes=no_routes)


def test_host_routes_are_not_consulted_when_validation_fails():
    with pytest.raises(InvalidInput):
        plan_network(State(), Config(), "a/b", host_routes=no_routes)
    with pytest.raises(InvalidInput):
        plan_network(State(), Config(), "br0", mtu=10, host_routes=no_routes)
    with pytest.raises(Conflict):
        plan_network(state_with(net("br0", "10.0.0.0/24")), Config(), "br0", host_routes=no_routes)


def test_an_automatic_subnet_gets_the_configured_mtu():
    planned = plan_network(State(), tiny_pool_config(mtu=9000), "br0")
    assert planned.mtu == 9000


def test_a_small_mtu_is_refused_for_an_automatic_ipv6_subnet():
    config = Config(address_pools=(AddressPool(ipaddress.ip_network("fd00:9::/48"), 64),))
    with pytest.raises(InvalidInput, match="below 1280"):
        plan_network(State(), config, "br0", mtu=1000)
