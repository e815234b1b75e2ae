"""The routes routers give, and the routers that may be made: pure, from the state."""

from __future__ import annotations

import pytest

from cnet.core import routers
from cnet.errors import Conflict, InvalidInput, NotFound
from cnet.model import Endpoint, Network, Sandbox, State, Subnet


def net(name, *subnets, **kw) -> Network:
    return Network(name, "bridge", [Subnet(s, s.replace("0/24", "1").replace("::/64", "::1")) for s in subnets],
                   1500, **kw)


def ep(sandbox, network, *addresses) -> Endpoint:
    return Endpoint(sandbox, network, "eth0", "", "02:00:00:00:00:01", addresses)


def state() -> State:
    return State(
        networks={"a": net("a", "10.1.0.0/24", "fd00:1::/64"), "b": net("b", "10.2.0.0/24", "fd00:2::/64"),
                  "c": net("c", "10.3.0.0/24"), "quiet": net("quiet", "10.9.0.0/24", options={"icc": False})},
        sandboxes={"r": Sandbox("r", mode="router"), "x": Sandbox("x"), "y": Sandbox("y"), "z": Sandbox("z")},
        endpoints=[ep("r", "a", "10.1.0.254/24", "fd00:1::fe/64"), ep("r", "b", "10.2.0.254/24"),
                   ep("x", "a", "10.1.0.2/24", "fd00:1::2/64"), ep("y", "b", "10.2.0.2/24", "fd00:2::2/64"),
                   ep("z", "c", "10.3.0.2/24")])


def test_each_side_gets_the_far_subnets_of_its_family_via_the_router():
    s = state()
    assert routers.routes_of(s, "x") == {("10.2.0.0/24", "10.1.0.254"), ("fd00:2::/64", "fd00:1::fe")}
    # the router has no IPv6 address on b: no IPv6 route back through it
    assert routers.routes_of(s, "y") == {("10.1.0.0/24", "10.2.0.254")}
    assert routers.routes_of(s, "z") == set()  # not on a router's network
    assert routers.routes_of(s, "r") == set()  # a router routes, it is not routed


def test_a_network_the_sandbox_is_on_is_reached_directly():
    s = state()
    assert routers.routes_of(s, "x", extra=ep("x", "b", "10.2.0.3/24")) == set()


def test_a_sandbox_attached_later_is_counted_through_extra():
    s = state()
    assert routers.routes_of(s, "z", extra=ep("z", "a", "10.1.0.9/24")) == {("10.2.0.0/24", "10.1.0.254")}


@pytest.mark.parametrize("networks, error, message", [
    (["a"], InvalidInput, "two networks or more"),
    (["a", "a"], InvalidInput, "given twice"),
    (["a", "nosuch"], NotFound, "network nosuch not found"),
    (["a", "quiet"], Conflict, "--no-icc"),
    (["a", "b"], Conflict, "router r already routes a's sandboxes to 10.2.0.0/24"),
])
def test_routers_that_cannot_be(networks, error, message):
    with pytest.raises(error, match=message):
        routers.check_new_router(state(), "r2", networks)


def test_a_second_router_to_other_subnets_is_fine():
    routers.check_new_router(state(), "r2", ["b", "c"])  # b's sandboxes get c; a's get nothing new
