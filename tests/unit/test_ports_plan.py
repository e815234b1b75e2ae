"""Tests for cnet.core.ports: planning published ports, without a kernel.

States are built by hand from cnet.model; what the host has (free ports)
comes in as a callable. Each refusal names the error class (so the exit code:
InvalidInput 2, NotFound 3, Conflict 4) and a substring of its message.
"""

from types import SimpleNamespace

import pytest

from cnet.core import ports
from cnet.errors import Conflict, InvalidInput, NotFound
from cnet.model import Endpoint, Network, PortMapping, Sandbox, State, Subnet
from cnet.portspec import parse


# --- building states --------------------------------------------------------

def bridge(name, *subnets, internal=False):
    subs = [Subnet(s, s.split("/")[0][:-1] + "1") for s in subnets]
    return Network(name=name, driver="bridge", subnets=subs, mtu=1500, internal=internal)


def endpoint(sandbox, network, *addresses, ifname="eth0"):
    return Endpoint(sandbox=sandbox, network=network, ifname=ifname, host_ifname=f"v-{sandbox}-{ifname}",
                    mac="02:42:ac:1a:00:02", addresses=list(addresses))


def mapping(host_ip, host_port, port=None, protocol="tcp", count=1, sandbox="web", network="dual0"):
    return PortMapping(sandbox=sandbox, network=network, protocol=protocol, host_ip=host_ip,
                       host_port=host_port, port=port if port is not None else host_port, count=count)


def make_state(networks=(), endpoints=(), port_list=(), sandboxes=("web", "db")):
    return State(networks={n.name: n for n in networks},
                 sandboxes={s: Sandbox(s) for s in sandboxes},
                 endpoints=list(endpoints), ports=list(port_list))


DUAL = bridge("dual0", "10.89.0.0/24", "fd00:89::/64")
V4 = bridge("v4net", "10.91.0.0/24")
INTERNAL = bridge("intern0", "10.90.0.0/24", internal=True)
INTERNAL2 = bridge("intern1", "10.92.0.0/24", internal=True)

EP_DUAL = endpoint("web", "dual0", "10.89.0.2/24", "fd00:89::2/64")
EP_V4 = endpoint("web", "v4net", "10.91.0.2/24", ifname="eth1")
EP_INTERNAL = endpoint("web", "intern0", "10.90.0.2/24", ifname="eth0")


def always_free(protocol, port):
    return True


# --- check_host_ip ----------------------------------------------------------

@pytest.mark.parametrize("spec", ["[::1]:8080:80", "[0:0:0:0:0:0:0:1]:8080:80", "[::0:1]::80/udp",
                                  "[0000::0001]:1-2:1-2"])
def test_check_host_ip_refuses_ipv6_loopback(spec):
    with pytest.raises(InvalidInput) as info:
        ports.check_host_ip(parse(spec))
    message = str(info.value)
    assert info.value.exit_code == 2
    assert message.startswith("[::1] cannot be published")
    assert "IPv6 has no route_localnet" in message  # why
    assert "publish on the host's own IPv6 addresses instead" in message  # what works instead
    assert "[::]:PORT:PORT" in message
    assert "\n" not in message


@pytest.mark.parametrize("spec", ["80", "8080:80", "127.0.0.1:8080:80", "[::]:8080:80", "[2001:db8::1]::80",
                                  "[::2]:8080:80", "0.0.0.0::80"])
def test_check_host_ip_accepts_the_rest(spec):
    ports.check_host_ip(parse(spec))


def test_check_host_ip_refuses_scoped_loopback():
    with pytest.raises(InvalidInput):
        ports.check_host_ip(parse("[::1%lo]:8080:80"))


# --- choose_endpoint --------------------------------------------------------

def test_choose_endpoint_no_endpoint():
    state = make_state([DUAL])
    with pytest.raises(InvalidInput, match="sandbox web has no endpoint to publish on; attach it to a network first") as info:
        ports.choose_endpoint(state, "web", "web", None)
    assert info.value.exit_code == 2


def test_choose_endpoint_network_given_but_not_attached():
    state = make_state([DUAL, V4], [EP_DUAL])
    with pytest.raises(InvalidInput, match="sandbox web is not attached to network v4net") as info:
        ports.choose_endpoint(state, "web", "web", "v4net")
    assert info.value.exit_code == 2


def test_choose_endpoint_unknown_network():
    state = make_state([DUAL], [EP_DUAL])
    with pytest.raises(NotFound, match="network nope not found") as info:
        ports.choose_endpoint(state, "web", "web", "nope")
    assert info.value.exit_code == 3


def test_choose_endpoint_only_internal():
    state = make_state([INTERNAL, INTERNAL2],
                       [EP_INTERNAL, endpoint("web", "intern1", "10.92.0.2/24", ifname="eth1")])
    with pytest.raises(InvalidInput, match="network intern0 is internal: nothing from outside reaches it") as info:
        ports.choose_endpoint(state, "web", "web", None)
    assert info.value.exit_code == 2


def test_choose_endpoint_internal_network_named():
    state = make_state([DUAL, INTERNAL], [EP_DUAL, EP_INTERNAL])
    with pytest.raises(InvalidInput, match="network intern0 is internal") as info:
        ports.choose_endpoint(state, "web", "web", "intern0")
    assert info.value.exit_code == 2


def test_choose_endpoint_first_non_internal():
    other = endpoint("db", "dual0", "10.89.0.3/24")
    state = make_state([INTERNAL, DUAL, V4], [other, EP_INTERNAL, EP_DUAL, EP_V4])
    assert ports.choose_endpoint(state, "web", "web", None) is EP_DUAL
    assert ports.choose_endpoint(state, "web", "web", "v4net") is EP_V4
    assert ports.choose_endpoint(state, "web", "web", "dual0") is EP_DUAL
    assert ports.choose_endpoint(state, "db", "db", None) is other


def test_choose_endpoint_order_follows_the_state():
    state = make_state([INTERNAL, DUAL, V4], [EP_INTERNAL, EP_V4, EP_DUAL])
    assert ports.choose_endpoint(state, "web", "web", None) is EP_V4


def test_choose_endpoint_of_a_joined_sandbox_uses_the_owner_and_names_the_sandbox():
    state = make_state([DUAL, V4], [EP_DUAL], sandboxes=("web", "sidecar"))
    assert ports.choose_endpoint(state, "web", "sidecar", None) is EP_DUAL
    with pytest.raises(InvalidInput, match="sandbox sidecar is not attached to network v4net"):
        ports.choose_endpoint(state, "web", "sidecar", "v4net")
    with pytest.raises(InvalidInput, match="sandbox sidecar has no endpoint to publish on"):
        ports.choose_endpoint(state, "sidecar", "sidecar", None)


# --- families_of ------------------------------------------------------------

@pytest.mark.parametrize("spec, families", [
    ("8080:80", [4, 6]),
    ("80/udp", [4, 6]),
    ("127.0.0.1:8080:80", [4]),
    ("0.0.0.0:8080:80", [4]),
    ("[::]:8080:80", [6]),
    ("[fd00:89::1]::80", [6]),
])
def test_families_of_dual_stack(spec, families):
    assert ports.families_of(EP_DUAL, parse(spec), "web") == families


def test_families_of_v6_listed_first_still_sorted():
    ep = endpoint("web", "dual0", "fd00:89::2/64", "10.89.0.2/24")
    assert ports.families_of(ep, parse("80"), "web") == [4, 6]


def test_families_of_v4_only():
    assert ports.families_of(EP_V4, parse("8080:80"), "web") == [4]


def test_families_of_v6_host_ip_on_v4_only_endpoint():
    with pytest.raises(InvalidInput) as info:
        ports.families_of(EP_V4, parse("[2001:db8::1]:8080:80"), "web")
    assert info.value.exit_code == 2
    assert str(info.value) == "sandbox web has no IPv6 address on network v4net to publish 2001:db8::1 to"


def test_families_of_v4_host_ip_on_v6_only_endpoint():
    ep = endpoint("web", "six", "fd00:1::2/64")
    with pytest.raises(InvalidInput, match="sandbox web has no IPv4 address on network six to publish 127.0.0.1 to"):
        ports.families_of(ep, parse("127.0.0.1:8080:80"), "web")


# --- mappings_for -----------------------------------------------------------

def test_mappings_for_wildcard_one_per_family():
    spec = parse("8080:80/udp")
    made = ports.mappings_for("web", EP_DUAL, spec, [4, 6], 8080)
    assert made == [mapping("0.0.0.0", 8080, 80, "udp"), mapping("::", 8080, 80, "udp")]


def test_mappings_for_host_ip_and_range():
    spec = parse("127.0.0.1:9000-9002:7000-7002")
    made = ports.mappings_for("web", EP_DUAL, spec, [4], 9000)
    assert made == [mapping("127.0.0.1", 9000, 7000, count=3)]


def test_mappings_for_random_port_uses_the_picked_one():
    made = ports.mappings_for("web", EP_DUAL, parse("80"), [4], 32768)
    assert made == [mapping("0.0.0.0", 32768, 80)]


# --- check_conflicts --------------------------------------------------------

def conflict_state(*existing):
    return make_state([DUAL], [EP_DUAL], existing)


# existing mapping, new mapping
CONFLICTS = [
    ("same wildcard", mapping("0.0.0.0", 8080, 80), mapping("0.0.0.0", 8080, 81, sandbox="db")),
    ("wildcard then specific v4", mapping("0.0.0.0", 8080, 80), mapping("127.0.0.1", 8080, 80, sandbox="db")),
    ("specific then wildcard v4", mapping("127.0.0.1", 8080, 80), mapping("0.0.0.0", 8080, 80, sandbox="db")),
    ("wildcard then specific v6", mapping("::", 8080, 80), mapping("2001:db8::1", 8080, 80, sandbox="db")),
    ("specific then wildcard v6", mapping("2001:db8::1", 8080, 80), mapping("::", 8080, 80, sandbox="db")),
    ("same specific", mapping("127.0.0.1", 53, 53, "udp"), mapping("127.0.0.1", 53, 5353, "udp", sandbox="db")),
    ("same sandbox again", mapping("0.0.0.0", 8080, 80), mapping("0.0.0.0", 8080, 80)),
    ("sctp", mapping("0.0.0.0", 3868, protocol="sctp"), mapping("0.0.0.0", 3868, protocol="sctp", sandbox="db")),
    ("port inside a range", mapping("0.0.0.0", 8000, count=3), mapping("0.0.0.0", 8002, sandbox="db")),
    ("range over a port", mapping("0.0.0.0", 8002), mapping("0.0.0.0", 8000, count=3, sandbox="db")),
    ("overlapping ranges, new below", mapping("0.0.0.0", 8000, count=3),
     mapping("0.0.0.0", 7999, count=2, sandbox="db")),
    ("overlapping ranges, new above", mapping("0.0.0.0", 8000, count=3),
     mapping("0.0.0.0", 8002, count=5, sandbox="db")),
    ("range inside a range", mapping("0.0.0.0", 8000, count=10), mapping("0.0.0.0", 8003, count=2, sandbox="db")),
]

# existing mapping, new mapping
NO_CONFLICTS = [
    ("different families, wildcards", mapping("0.0.0.0", 8080, 80), mapping("::", 8080, 80, sandbox="db")),
    ("different families, v4 wildcard and v6 address", mapping("0.0.0.0", 8080),
     mapping("2001:db8::1", 8080, sandbox="db")),
    ("different families, v6 wildcard and v4 address", mapping("::", 8080),
     mapping("127.0.0.1", 8080, sandbox="db")),
    ("different protocols", mapping("0.0.0.0", 8080, 80, "tcp"), mapping("0.0.0.0", 8080, 80, "udp", sandbox="db")),
    ("tcp and sctp", mapping("0.0.0.0", 8080, protocol="tcp"), mapping("0.0.0.0", 8080, protocol="sctp")),
    ("different ports", mapping("0.0.0.0", 8080), mapping("0.0.0.0", 8081, sandbox="db")),
    ("adjacent range above", mapping("0.0.0.0", 8000, count=3), mapping("0.0.0.0", 8003, count=3, sandbox="db")),
    ("adjacent range below", mapping("0.0.0.0", 8000, count=3), mapping("0.0.0.0", 7998, count=2, sandbox="db")),
    ("two specific v4", mapping("127.0.0.1", 8080), mapping("10.0.0.5", 8080, sandbox="db")),
    ("two specific v6", mapping("2001:db8::1", 8080), mapping("2001:db8::2", 8080, sandbox="db")),
]


@pytest.mark.parametrize("existing, new", [c[1:] for c in CONFLICTS], ids=[c[0] for c in CONFLICTS])
def test_check_conflicts_conflict(existing, new):
    state = conflict_state(mapping("0.0.0.0", 1, sandbox="db"), existing, mapping("::", 65535, sandbox="db"))
    with pytest.raises(Conflict) as info:
        ports.check_conflicts(state, [new])
    assert info.value.exit_code == 4
    message = str(info.value)
    assert message.startswith(f"host port {new.host_port}/{new.protocol} on {new.host_ip} is already published"
                              f" for sandbox {existing.sandbox} ")
    assert "\n" not in message


@pytest.mark.parametrize("existing, new", [c[1:] for c in NO_CONFLICTS], ids=[c[0] for c in NO_CONFLICTS])
def test_check_conflicts_no_conflict(existing, new):
    ports.check_conflicts(conflict_state(existing), [new])
    ports.check_conflicts(conflict_state(new), [existing])  # symmetric


def test_check_conflicts_message():
    state = conflict_state(mapping("0.0.0.0", 8080, 80))
    with pytest.raises(Conflict) as info:
        ports.check_conflicts(state, [mapping("0.0.0.0", 8080, 81, sandbox="db")])
    assert str(info.value) == ("host port 8080/tcp on 0.0.0.0 is already published for sandbox web"
                               " (0.0.0.0:8080->80/tcp)")


def test_check_conflicts_every_new_mapping_is_checked():
    state = conflict_state(mapping("::", 8080, 80))
    new = ports.mappings_for("db", EP_DUAL, parse("8080:80"), [4, 6], 8080)
    with pytest.raises(Conflict, match="host port 8080/tcp on :: is already published for sandbox web"):
        ports.check_conflicts(state, new)


def test_check_conflicts_empty_state():
    ports.check_conflicts(make_state(), [mapping("0.0.0.0", 8080)])


def test_check_conflicts_message_brackets_ipv6():
    state = conflict_state(mapping("::", 8080, 80))
    with pytest.raises(Conflict) as info:
        ports.check_conflicts(state, [mapping("::", 8080, 81, sandbox="db")])
    assert "[::]:8080->80" in str(info.value)


@pytest.mark.parametrize("existing, spec", [
    ("2001:db8::1", "[2001:DB8::1]:8080:80"),
    ("2001:db8::1", "[2001:db8:0:0:0:0:0:1]:8080:80"),
    ("2001:db8::1", "[0:0:0:0:0:0:0:0]:8080:80"),  # the IPv6 wildcard, written in full
])
def test_check_conflicts_same_address_written_differently(existing, spec):
    state = conflict_state(mapping(existing, 8080, 80))
    new = ports.mappings_for("db", EP_DUAL, parse(spec), [6], 8080)
    with pytest.raises(Conflict):
        ports.check_conflicts(state, new)


# --- pick_host_port ---------------------------------------------------------

def test_pick_host_port_lowest_free():
    assert ports.pick_host_port(make_state(), "tcp", (32768, 60999), always_free) == 32768


def test_pick_host_port_skips_held_ports_and_ranges():
    state = make_state(port_list=[mapping("0.0.0.0", 32768), mapping("::", 32769),
                                  mapping("127.0.0.1", 32770, count=3)])
    assert ports.pick_host_port(state, "tcp", (32768, 60999), always_free) == 32773


def test_pick_host_port_ignores_other_protocols():
    state = make_state(port_list=[mapping("0.0.0.0", 32768, protocol="udp", count=5)])
    assert ports.pick_host_port(state, "tcp", (32768, 60999), always_free) == 32768
    assert ports.pick_host_port(state, "udp", (32768, 60999), always_free) == 32773


def test_pick_host_port_skips_busy_ports():
    asked = []

    def is_free(protocol, port):
        asked.append((protocol, port))
        return port not in (40000, 40002)

    state = make_state(port_list=[mapping("0.0.0.0", 40001)])
    assert ports.pick_host_port(state, "udp", (40000, 40010), is_free) == 40001  # held for tcp only
    assert asked == [("udp", 40000), ("udp", 40001)]
    asked.clear()
    assert ports.pick_host_port(state, "tcp", (40000, 40010), is_free) == 40003
    assert asked == [("tcp", 40000), ("tcp", 40002), ("tcp", 40003)]  # held ports are not asked about


def test_pick_host_port_exhausted():
    state = make_state(port_list=[mapping("0.0.0.0", 50000, count=2)])
    with pytest.raises(Conflict) as info:
        ports.pick_host_port(state, "tcp", (50000, 50003), lambda proto, port: port != 50003 and port != 50002)
    assert info.value.exit_code == 4
    assert str(info.value) == "no free tcp host port left in 50000-50003"


def test_pick_host_port_one_port_range():
    assert ports.pick_host_port(make_state(), "sctp", (61000, 61000), always_free) == 61000
    with pytest.raises(Conflict, match="no free sctp host port left in 61000-61000"):
        ports.pick_host_port(make_state(), "sctp", (61000, 61000), lambda proto, port: False)


# --- matching ---------------------------------------------------------------

MATCH_STATE = make_state([DUAL], [EP_DUAL], [
    mapping("0.0.0.0", 8080, 80),
    mapping("::", 8080, 80),
    mapping("127.0.0.1", 8081, 80),
    mapping("2001:db8::1", 8082, 80),
    mapping("0.0.0.0", 5353, 53, "udp"),
    mapping("0.0.0.0", 9000, 7000, count=3),
    mapping("0.0.0.0", 8090, 80, sandbox="db"),
])
P = MATCH_STATE.ports


@pytest.mark.parametrize("spec, expected", [
    ("80", [P[0], P[1], P[2], P[3]]),  # every host port of sandbox port 80/tcp
    ("8080:80", [P[0], P[1]]),
    ("8081:80", [P[2]]),
    ("8090:80", []),  # another sandbox's
    ("0.0.0.0::80", [P[0]]),
    ("127.0.0.1::80", [P[2]]),
    ("[::]:8080:80", [P[1]]),
    ("[2001:db8::1]::80", [P[3]]),
    ("[2001:DB8:0:0:0:0:0:1]:8082:80", [P[3]]),  # written differently, same address
    ("[2001:0db8::0001]::80", [P[3]]),
    ("[0:0:0:0:0:0:0:0]:8080:80", [P[1]]),
    ("80/udp", []),
    ("53/udp", [P[4]]),
    ("5353:53/udp", [P[4]]),
    ("5353:53", []),  # tcp
    ("9000-9002:7000-7002", [P[5]]),
    ("7000", []),  # count must match
    ("9000:7000", []),
    ("9000-9001:7000-7001", []),
    ("9001-9003:7000-7002", []),
    ("10.0.0.9::80", []),
])
def test_matching(spec, expected):
    assert ports.matching(MATCH_STATE, "web", parse(spec)) == expected


def test_matching_other_owner():
    assert ports.matching(MATCH_STATE, "db", parse("80")) == [P[6]]
    assert ports.matching(MATCH_STATE, "nobody", parse("80")) == []


# --- the host ip of a publish must be the host's (core/port_ops) -------------

def _change_with_local_addresses(*addresses):
    return SimpleNamespace(kernel=SimpleNamespace(netlink=SimpleNamespace(local_addresses=lambda: set(addresses))))


def test_local_address_check_refuses_foreign_address():
    from cnet.core.port_ops import _check_local_address

    with pytest.raises(InvalidInput, match="10.9.9.9 is not an address of this host"):
        _check_local_address(_change_with_local_addresses("127.0.0.1", "10.0.0.5"), "10.9.9.9")
    _check_local_address(_change_with_local_addresses("127.0.0.1", "2001:db8::1"), "2001:DB8::1")


@pytest.mark.parametrize("wildcard", ["0.0.0.0", "::"])
def test_local_address_check_accepts_the_wildcards(wildcard):
    from cnet.core.port_ops import _check_local_address

    _check_local_address(_change_with_local_addresses("127.0.0.1", "10.0.0.5", "::1"), wildcard)
