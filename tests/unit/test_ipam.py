"""Tests for cnet.ipam: examples, data-driven error cases, and properties."""

import ipaddress
import time
from ipaddress import ip_address as A, ip_network as N

import pytest
from hypothesis import given, settings, strategies as st

from cnet.errors import Conflict, InvalidInput
from cnet.ipam import SubnetPool, overlaps, parse_cidr


# --- construction -----------------------------------------------------------

def test_default_gateway_is_first_host():
    pool = SubnetPool("10.0.0.0/24")
    assert pool.gateway == A("10.0.0.1")
    assert pool.subnet == N("10.0.0.0/24")
    assert pool.version == 4 and pool.prefixlen == 24
    assert pool.ip_range is None
    assert pool.reserved() == {A("10.0.0.0"), A("10.0.0.1"), A("10.0.0.255")}
    assert pool.first_last() == (int(A("10.0.0.1")), int(A("10.0.0.254")))
    assert pool.capacity() == 253


def test_explicit_gateway():
    pool = SubnetPool("10.0.0.0/24", gateway="10.0.0.254")
    assert pool.gateway == A("10.0.0.254")
    assert pool.allocate(set()) == A("10.0.0.1")
    assert pool.capacity() == 253


def test_ipv6_reserves_network_but_not_last():
    pool = SubnetPool("fd00::/126")
    assert pool.version == 6
    assert pool.gateway == A("fd00::1")
    assert pool.reserved() == {A("fd00::"), A("fd00::1")}
    assert pool.capacity() == 2
    assert pool.allocate(set()) == A("fd00::2")
    assert pool.allocate({"fd00::2"}) == A("fd00::3")


@pytest.mark.parametrize("subnet, gateway, ip_range, message", [
    ("10.0.0.1/24", None, None, "subnet 10.0.0.1/24 has host bits set (did you mean 10.0.0.0/24?)"),
    ("fd00::1/64", None, None, "subnet fd00::1/64 has host bits set (did you mean fd00::/64?)"),
    ("10.0.0.0/33", None, None, "subnet '10.0.0.0/33' is not a valid CIDR"),
    ("banana", None, None, "subnet 'banana' is not a valid CIDR"),
    ("10.0.0.0", None, None, "subnet '10.0.0.0' is not a valid CIDR"),
    ("10.0.0.0/31", None, None,
     "subnet 10.0.0.0/31 is too small: it must hold a gateway and at least one endpoint"),
    ("10.0.0.0/32", None, None, "subnet 10.0.0.0/32 is too small"),
    ("fd00::/127", None, None, "subnet fd00::/127 is too small"),
    ("fd00::/128", None, None, "subnet fd00::/128 is too small"),
    ("10.0.0.0/24", "10.1.0.1", None, "gateway 10.1.0.1 is outside subnet 10.0.0.0/24"),
    ("10.0.0.0/24", "10.0.0.0", None, "gateway 10.0.0.0 is the network address of 10.0.0.0/24"),
    ("10.0.0.0/24", "10.0.0.255", None, "gateway 10.0.0.255 is the broadcast address of 10.0.0.0/24"),
    ("10.0.0.0/24", "fd00::1", None, "gateway fd00::1 is IPv6 but subnet 10.0.0.0/24 is IPv4"),
    ("10.0.0.0/24", "10.0.0.300", None, "gateway '10.0.0.300' is not a valid IP address"),
    ("fd00::/64", "fd00::", None, "gateway fd00:: is the network address of fd00::/64"),
    ("10.0.0.0/24", None, "10.0.1.0/28", "ip_range 10.0.1.0/28 is not inside subnet 10.0.0.0/24"),
    ("10.0.0.0/24", None, "10.0.0.0/23", "ip_range 10.0.0.0/23 is not inside subnet 10.0.0.0/24"),
    ("10.0.0.0/24", None, "10.0.0.1/28", "ip_range 10.0.0.1/28 has host bits set (did you mean 10.0.0.0/28?)"),
    ("10.0.0.0/24", None, "fd00::/120", "ip_range fd00::/120 is IPv6 but subnet 10.0.0.0/24 is IPv4"),
    ("10.0.0.0/24", None, "nope", "ip_range 'nope' is not a valid CIDR"),
    # ranges that leave nothing to hand out
    ("10.0.0.0/24", None, "10.0.0.0/31", "ip_range 10.0.0.0/31 is too small"),
    ("10.0.0.0/24", None, "10.0.0.1/32", "ip_range 10.0.0.1/32 is too small"),
    ("10.0.0.0/24", None, "10.0.0.255/32", "ip_range 10.0.0.255/32 is too small"),
    ("fd00::/64", None, "fd00::/127", "ip_range fd00::/127 is too small"),
])
def test_constructor_rejects(subnet, gateway, ip_range, message):
    with pytest.raises(InvalidInput) as exc:
        SubnetPool(subnet, gateway=gateway, ip_range=ip_range)
    assert message in str(exc.value)
    assert exc.value.exit_code == 2
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("subnet, ip_range, capacity", [
    ("10.0.0.0/24", "10.0.0.0/24", 253),    # equal to the subnet is fine
    ("10.0.0.0/24", "10.0.0.2/32", 1),      # a single non-reserved address
    ("10.0.0.0/24", "10.0.0.254/31", 1),    # .254 usable, .255 broadcast
    ("fd00::/64", "fd00::ffff:ffff:ffff:ffff/128", 1),  # v6 last address is usable
])
def test_constructor_accepts_small_ranges(subnet, ip_range, capacity):
    assert SubnetPool(subnet, ip_range=ip_range).capacity() == capacity


def test_slash30_gives_exactly_one_endpoint():
    pool = SubnetPool("192.168.7.0/30")
    assert pool.capacity() == 1
    assert pool.allocate(set()) == A("192.168.7.2")
    with pytest.raises(Conflict):
        pool.allocate({A("192.168.7.2")})


# --- allocation -------------------------------------------------------------

def test_sequential_allocation():
    pool = SubnetPool("10.0.0.0/24")
    used, last, got = set(), None, []
    for _ in range(3):
        last = pool.allocate(used, last)
        used.add(last)
        got.append(str(last))
    assert got == ["10.0.0.2", "10.0.0.3", "10.0.0.4"]


def test_used_may_be_strings_and_last_a_string():
    pool = SubnetPool("10.0.0.0/24")
    assert pool.allocate({"10.0.0.2", "10.0.0.3"}, "10.0.0.3") == A("10.0.0.4")
    assert pool.allocate({"10.0.0.2"}, None) == A("10.0.0.3")


def test_freed_address_not_handed_straight_back():
    pool = SubnetPool("10.0.0.0/24")
    used = {A("10.0.0.2"), A("10.0.0.3"), A("10.0.0.4")}
    used.discard(A("10.0.0.3"))
    assert pool.allocate(used, last=A("10.0.0.4")) == A("10.0.0.5")


def test_wrap_around_reaches_freed_address_only_after_the_end():
    pool = SubnetPool("10.0.0.0/29")  # .2 .. .6 allocatable
    used, last = set(), None
    while len(used) < pool.capacity():
        last = pool.allocate(used, last)
        used.add(last)
    assert last == A("10.0.0.6")
    used.discard(A("10.0.0.4"))
    assert pool.allocate(used, last) == A("10.0.0.4")
    # with the end of the range still free, that comes first
    used.discard(A("10.0.0.6"))
    assert pool.allocate(used, A("10.0.0.5")) == A("10.0.0.6")
    assert pool.allocate(used | {A("10.0.0.6")}, A("10.0.0.6")) == A("10.0.0.4")


def test_last_outside_range_starts_at_first():
    pool = SubnetPool("10.0.0.0/24", ip_range="10.0.0.128/25")
    assert pool.allocate(set(), last="10.0.0.7") == A("10.0.0.128")
    assert pool.allocate(set(), last="fd00::5") == A("10.0.0.128")


def test_ip_range_restricts_allocation():
    pool = SubnetPool("10.0.0.0/24", ip_range="10.0.0.16/30")
    assert pool.capacity() == 4
    used, last = set(), None
    for _ in range(4):
        last = pool.allocate(used, last)
        used.add(last)
    assert used == {A(f"10.0.0.{i}") for i in range(16, 20)}
    with pytest.raises(Conflict) as exc:
        pool.allocate(used, last)
    assert str(exc.value) == "no free address left in ip_range 10.0.0.16/30 of subnet 10.0.0.0/24"


def test_gateway_inside_ip_range_is_skipped():
    pool = SubnetPool("10.0.0.0/24", gateway="10.0.0.17", ip_range="10.0.0.16/30")
    assert pool.capacity() == 3
    assert pool.allocate(set()) == A("10.0.0.16")
    assert pool.allocate({"10.0.0.16"}, "10.0.0.16") == A("10.0.0.18")


def test_ip_range_at_subnet_edges_excludes_network_and_broadcast():
    pool = SubnetPool("10.0.0.0/24", ip_range="10.0.0.0/29")
    assert pool.first_last() == (int(A("10.0.0.1")), int(A("10.0.0.7")))
    assert pool.capacity() == 6
    top = SubnetPool("10.0.0.0/24", ip_range="10.0.0.248/29")
    assert top.first_last() == (int(A("10.0.0.248")), int(A("10.0.0.254")))


def test_exhaustion_raises_conflict():
    pool = SubnetPool("10.0.0.0/28")
    used = {A("10.0.0.0") + i for i in range(2, 15)}
    with pytest.raises(Conflict) as exc:
        pool.allocate(used, last="10.0.0.9")
    assert exc.value.exit_code == 4
    assert str(exc.value) == "no free address left in subnet 10.0.0.0/28"


def test_ipv6_slash64_is_fast_and_wraps():
    pool = SubnetPool("fd00:1::/64")
    end = A("fd00:1::ffff:ffff:ffff:ffff")
    assert pool.capacity() == 2**64 - 2
    t0 = time.perf_counter()
    assert pool.allocate(set(), last=end - 1) == end
    assert pool.allocate({end}, last=end) == A("fd00:1::2")
    # a long run of taken addresses after last costs only that run
    taken = {end - i for i in range(20000)}
    assert pool.allocate(taken, last=end - 20000) == A("fd00:1::2")
    assert time.perf_counter() - t0 < 2


def test_full_small_range_in_huge_subnet_is_detected_quickly():
    pool = SubnetPool("fd00:1::/64", ip_range="fd00:1::100/120")
    used = {A("fd00:1::100") + i for i in range(256)}
    with pytest.raises(Conflict) as exc:
        pool.allocate(used)
    assert "ip_range fd00:1::100/120 of subnet fd00:1::/64" in str(exc.value)


def test_used_addresses_of_other_version_are_ignored():
    pool = SubnetPool("10.0.0.0/24")
    # ::a00:2 has the same integer value as 10.0.0.2
    assert pool.allocate({A("::a00:2")}) == A("10.0.0.2")


# --- pinned requests --------------------------------------------------------

@pytest.mark.parametrize("subnet, gateway, ip_range, request_ip, used, error, message", [
    ("10.0.0.0/24", None, None, "10.1.0.5", set(), InvalidInput, "10.1.0.5 is outside subnet 10.0.0.0/24"),
    ("10.0.0.0/24", None, None, "10.0.0.1", set(), InvalidInput, "10.0.0.1 is the gateway address of 10.0.0.0/24"),
    ("10.0.0.0/24", "10.0.0.9", None, "10.0.0.9", set(), InvalidInput, "10.0.0.9 is the gateway address of 10.0.0.0/24"),
    ("10.0.0.0/24", None, None, "10.0.0.0", set(), InvalidInput, "10.0.0.0 is the network address of 10.0.0.0/24"),
    ("10.0.0.0/24", None, None, "10.0.0.255", set(), InvalidInput, "10.0.0.255 is the broadcast address of 10.0.0.0/24"),
    ("10.0.0.0/24", None, None, "fd00::5", set(), InvalidInput, "fd00::5 is an IPv6 address but subnet 10.0.0.0/24 is IPv4"),
    ("fd00::/64", None, None, "10.0.0.5", set(), InvalidInput, "10.0.0.5 is an IPv4 address but subnet fd00::/64 is IPv6"),
    ("10.0.0.0/24", None, None, "10.0.0.256", set(), InvalidInput, "'10.0.0.256' is not a valid IP address"),
    ("10.0.0.0/24", None, None, "", set(), InvalidInput, "'' is not a valid IP address"),
    ("10.0.0.0/24", None, None, "10.0.0.0/24", set(), InvalidInput, "'10.0.0.0/24' is not a valid IP address"),
    ("fd00::/64", None, None, "fe80::1%eth0", set(), InvalidInput, "must not carry a zone index"),
    ("fd00::/64", None, None, "fd00::", set(), InvalidInput, "fd00:: is the network address of fd00::/64"),
    ("fd00::/64", None, None, "fd00::1", set(), InvalidInput, "fd00::1 is the gateway address of fd00::/64"),
    ("10.0.0.0/24", None, None, "10.0.0.5", {"10.0.0.5"}, Conflict, "address 10.0.0.5 is already in use"),
    ("10.0.0.0/24", None, None, "10.0.0.5", {A("10.0.0.5")}, Conflict, "address 10.0.0.5 is already in use"),
    ("fd00::/64", None, None, "fd00:0::5", {"fd00::5"}, Conflict, "address fd00::5 is already in use"),
])
def test_check_request_rejects(subnet, gateway, ip_range, request_ip, used, error, message):
    pool = SubnetPool(subnet, gateway=gateway, ip_range=ip_range)
    with pytest.raises(error) as exc:
        pool.check_request(request_ip, used)
    assert message in str(exc.value)
    assert type(exc.value) is error


@pytest.mark.parametrize("subnet, ip_range, request_ip", [
    ("10.0.0.0/24", None, "10.0.0.2"),
    ("10.0.0.0/24", "10.0.0.128/25", "10.0.0.5"),   # outside ip_range, inside subnet: allowed
    ("fd00::/64", None, "fd00::ffff:ffff:ffff:ffff"),  # no v6 broadcast
])
def test_check_request_accepts(subnet, ip_range, request_ip):
    pool = SubnetPool(subnet, ip_range=ip_range)
    assert pool.check_request(request_ip, {"10.0.0.3"}) == A(request_ip)


# --- helpers ----------------------------------------------------------------

def test_parse_cidr():
    assert parse_cidr("10.0.0.0/8") == N("10.0.0.0/8")
    with pytest.raises(InvalidInput, match="did you mean 192.168.0.0/16"):
        parse_cidr("192.168.1.1/16")
    with pytest.raises(InvalidInput, match="not a valid CIDR"):
        parse_cidr("10.0.0.0/")
    with pytest.raises(InvalidInput):
        parse_cidr(None)


@pytest.mark.parametrize("a, b, expected", [
    ("10.0.0.0/24", "10.0.0.128/25", True),
    ("10.0.0.0/24", "10.0.1.0/24", False),
    ("10.0.0.0/8", "10.200.0.0/16", True),
    ("10.0.0.0/24", "::a00:0/120", False),
    ("fd00::/64", "fd00::/48", True),
])
def test_overlaps(a, b, expected):
    assert overlaps(N(a), N(b)) is expected
    assert overlaps(N(b), N(a)) is expected


# --- properties ---------------------------------------------------------------

@st.composite
def pools(draw, version):
    """A small subnet, optional gateway and optional ip_range, as strings."""
    bits = 32 if version == 4 else 128
    prefix = draw(st.integers(24, 30) if version == 4 else st.integers(120, 126))
    size = 2 ** (bits - prefix)
    base = (10 << 24) if version == 4 else (0xFD00 << 112)
    net = ipaddress.ip_network((base + draw(st.integers(0, 255)) * 256, prefix))
    gateway = None
    if draw(st.booleans()):
        gateway = str(net.network_address + draw(st.integers(1, size - (2 if version == 4 else 1))))
    ip_range = None
    if draw(st.booleans()):
        rprefix = draw(st.integers(prefix, bits))
        rsize = 2 ** (bits - rprefix)
        ip_range = str(ipaddress.ip_network(
            (int(net.network_address) + draw(st.integers(0, size // rsize - 1)) * rsize, rprefix)))
    return str(net), gateway, ip_range


ops = st.lists(st.one_of(st.just(("alloc", 0)), st.tuples(st.just("free"), st.integers(0, 1000))),
               max_size=80)


def check_model(spec, operations, as_strings):
    subnet, gateway, ip_range = spec
    net = N(subnet)
    gw = A(gateway) if gateway else net.network_address + 1
    scan = N(ip_range) if ip_range else net
    forbidden = {net.network_address, gw} | ({net.broadcast_address} if net.version == 4 else set())
    allowed = [a for a in scan if a not in forbidden]   # brute force: ranges are tiny
    if not allowed:
        with pytest.raises(InvalidInput, match="too small"):
            SubnetPool(subnet, gateway, ip_range)
        return
    pool = SubnetPool(subnet, gateway, ip_range)
    assert pool.capacity() == len(allowed)
    held, last = [], None
    for op, arg in operations:
        if op == "free":
            if held:
                held.pop(arg % len(held))
            continue
        used = {str(a) for a in held} if as_strings else set(held)
        if len(held) >= pool.capacity():
            with pytest.raises(Conflict):
                pool.allocate(used, last)
            continue
        got = pool.allocate(used, last)
        # model: first free allowed address after last, cyclically
        start = 0 if last is None else allowed.index(last) + 1
        order = allowed[start:] + allowed[:start]
        assert got == next(a for a in order if a not in held)
        assert got not in held and got in net and got in scan and got not in forbidden
        held.append(got)
        last = got


@settings(max_examples=200, deadline=None)
@given(pools(4), ops, st.booleans())
def test_property_ipv4_allocation(spec, operations, as_strings):
    check_model(spec, operations, as_strings)


@settings(max_examples=200, deadline=None)
@given(pools(6), ops, st.booleans())
def test_property_ipv6_allocation(spec, operations, as_strings):
    check_model(spec, operations, as_strings)


@settings(max_examples=200, deadline=None)
@given(pools(4), st.integers(0, 2**32 - 1))
def test_property_check_request_agrees_with_allocatable_set(spec, n):
    subnet, gateway, ip_range = spec
    net = N(subnet)
    try:
        pool = SubnetPool(subnet, gateway, ip_range)
    except InvalidInput:
        return
    ip = A(int(net.network_address) + n % (2 * net.num_addresses))  # half inside, half beyond
    if ip in net and ip not in pool.reserved():
        assert pool.check_request(str(ip), set()) == ip
        with pytest.raises(Conflict):
            pool.check_request(str(ip), {ip})
    else:
        with pytest.raises(InvalidInput):
            pool.check_request(str(ip), set())
