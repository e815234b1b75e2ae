"""Router sandboxes between cnet networks (issue #12 item 1), in a test host.

    a (front 10.1.0.0/24, fd00:1::/64) --- r1 --- b (back 10.2.0.0/24, fd00:2::/64)
    c (side 10.3.0.0/24): not joined, stays isolated
"""

from __future__ import annotations

import json

import pytest

from testhost import ask, serve


def ok(result) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def pings(host, ns: str, address: str) -> bool:
    return host.run(["ip", "netns", "exec", ns, "ping", "-c", "1", "-W", "1", address]).returncode == 0


def routes(host, ns: str) -> list[str]:
    out = ok(host.run(["ip", "netns", "exec", ns, "ip", "-j", "route", "show"]))
    out6 = ok(host.run(["ip", "netns", "exec", ns, "ip", "-j", "-6", "route", "show"]))
    return sorted(f"{r['dst']} via {r['gateway']}" for r in json.loads(out) + json.loads(out6) if "gateway" in r
                  and r["dst"] != "default")


@pytest.fixture
def routed(host):
    ok(host.cnet("create", "bridge", "front", "--subnet", "10.1.0.0/24", "--subnet", "fd00:1::/64"))
    ok(host.cnet("create", "bridge", "back", "--subnet", "10.2.0.0/24", "--subnet", "fd00:2::/64"))
    ok(host.cnet("create", "bridge", "side", "--subnet", "10.3.0.0/24"))
    ok(host.cnet("create", "ns", "a", "--network", "front"))
    out = ok(host.cnet("create", "router", "r1", "--network", "front", "--network", "back:10.2.0.254"))
    assert out.splitlines() == ["front 10.1.0.3/24", "front fd00:1::3/64", "back 10.2.0.254/24", "back fd00:2::2/64"]
    ok(host.cnet("create", "ns", "b", "--network", "back"))  # attached after the router
    ok(host.cnet("create", "ns", "c", "--network", "side"))
    return host


def test_sandboxes_on_two_networks_talk_through_the_router_with_their_own_addresses(routed):
    host = routed
    assert routes(host, "a") == ["10.2.0.0/24 via 10.1.0.3", "fd00:2::/64 via fd00:1::3"]
    assert routes(host, "b") == ["10.1.0.0/24 via 10.2.0.254", "fd00:1::/64 via fd00:2::2"]
    assert routes(host, "c") == []
    serve(host, "tcp", 80, ns="b")
    serve(host, "tcp", 81, ns="a")
    assert ask(host, "tcp", "10.2.0.2", 80, ns="a") == "10.1.0.2"
    assert ask(host, "tcp", "10.1.0.2", 81, ns="b") == "10.2.0.2"
    assert ask(host, "tcp", "fd00:2::3", 80, ns="a") == "fd00:1::2"
    assert pings(host, "a", "10.2.0.2") and pings(host, "b", "10.1.0.2")
    # the third network is not joined: isolated both ways
    serve(host, "tcp", 82, ns="c")
    assert not pings(host, "c", "10.1.0.2") and ask(host, "tcp", "10.3.0.2", 82, ns="a", timeout=1) is None
    listed = ok(host.cnet("ls", "routers")).splitlines()
    assert listed[1].split() == ["r1", "front:10.1.0.3/24,fd00:1::3/64", "back:10.2.0.254/24,fd00:2::2/64", "ok"]
    assert ok(host.cnet("ls", "routers", "-q")) == "r1\n"
    assert ok(host.run(["ip", "netns", "exec", "r1", "sysctl", "-n", "net.ipv4.ip_forward"])).strip() == "1"
    assert ok(host.run(["ip", "netns", "exec", "r1", "ip", "route", "show", "default"])) == ""


def test_the_router_is_the_only_way_between_the_networks(routed):
    host = routed
    serve(host, "tcp", 80, ns="b")
    host.run(["ip", "netns", "exec", "a", "ip", "route", "replace", "10.2.0.0/24", "via", "10.1.0.1"], check=True)
    assert ask(host, "tcp", "10.2.0.2", 80, ns="a", timeout=1) is None  # through the host: isolation drops it
    deep = host.cnet("check", "--deep")
    assert deep.returncode == 5 and "missing route 10.2.0.0/24 via 10.1.0.3 in sandbox a" in deep.stdout
    host.run(["ip", "netns", "exec", "r1", "sysctl", "-qw", "net.ipv4.ip_forward=0"], check=True)
    assert "sysctl net.ipv4.ip_forward is not 1 in router r1" in host.cnet("check", "--deep").stdout
    ok(host.cnet("restore"))  # puts the route via r1 back
    assert routes(host, "a")[0] == "10.2.0.0/24 via 10.1.0.3"
    assert ask(host, "tcp", "10.2.0.2", 80, ns="a") == "10.1.0.2"


def test_deleting_the_router_cuts_the_path_and_takes_its_routes(routed):
    host = routed
    serve(host, "tcp", 80, ns="b")
    assert ok(host.cnet("delete", "router", "r1")) == "r1\n"
    assert routes(host, "a") == [] and routes(host, "b") == []
    assert ask(host, "tcp", "10.2.0.2", 80, ns="a", timeout=1) is None
    assert "r1" not in ok(host.cnet("ls", "ns"))
    assert host.cnet("check").returncode == 0


def test_attach_and_detach_follow_the_router(routed):
    host = routed
    ok(host.cnet("attach", "a", "back"))  # now on back directly: no route via r1 to it
    assert routes(host, "a") == []
    serve(host, "tcp", 80, ns="b")
    assert ask(host, "tcp", "10.2.0.2", 80, ns="a") is not None
    ok(host.cnet("detach", "a", "back"))  # back again through r1
    assert routes(host, "a") == ["10.2.0.0/24 via 10.1.0.3", "fd00:2::/64 via fd00:1::3"]
    assert ask(host, "tcp", "10.2.0.2", 80, ns="a") == "10.1.0.2"


def test_a_router_namespace_lost_is_made_again_by_restore(routed):
    host = routed
    host.run(["ip", "netns", "delete", "r1"], check=True)
    assert host.cnet("check").returncode == 5
    ok(host.cnet("restore"))
    serve(host, "tcp", 80, ns="b")
    assert ask(host, "tcp", "10.2.0.2", 80, ns="a") == "10.1.0.2"


@pytest.mark.parametrize("args, code, message", [
    (["create", "router", "r2", "--network", "front", "--network", "back"], 4, "already routes front"),
    (["create", "router", "r2", "--network", "front"], 2, "two networks or more"),
    (["create", "router", "r2", "--network", "front", "--network", "front"], 2, "given twice"),
    (["create", "router", "r2", "--network", "front", "--network", "nosuch"], 3, "network nosuch not found"),
    (["create", "router", "r2", "--network", "side", "--network", "back:banana"], 2, "not an IP address"),
    (["create", "router", "r1", "--network", "side", "--network", "back"], 4, "already exists"),
    (["attach", "r1", "side"], 4, "is a router"),
    (["detach", "r1", "back"], 4, "is a router"),
    (["delete", "ns", "r1"], 4, "cnet delete router r1"),
    (["delete", "router", "a"], 3, "no router"),
    (["create", "ns", "j", "--join", "r1"], 2, "cannot be joined"),
])
def test_bad_router_requests_change_nothing(routed, args, code, message):
    host = routed
    before = host.read("/var/lib/cnet/state.yaml")
    links = set(host.links())
    r = host.cnet(*args)
    assert r.returncode == code and message in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr
    assert host.read("/var/lib/cnet/state.yaml") == before
    assert set(host.links()) == links


def test_a_router_on_an_internal_network_gives_no_way_out(host):
    ok(host.cnet("create", "bridge", "int0", "--subnet", "10.7.0.0/24", "--internal"))
    ok(host.cnet("create", "bridge", "out0", "--subnet", "10.8.0.0/24"))
    ok(host.cnet("create", "ns", "db", "--network", "int0"))
    ok(host.cnet("create", "ns", "app", "--network", "out0"))
    ok(host.cnet("create", "router", "r", "--network", "int0", "--network", "out0"))
    serve(host, "tcp", 5432, ns="db")
    assert ask(host, "tcp", "10.7.0.2", 5432, ns="app") == "10.8.0.2"
    # db has no default route, and a default route via r leads nowhere: r has none
    host.run(["ip", "netns", "exec", "db", "ip", "route", "add", "default", "via", "10.7.0.3"], check=True)
    host.run(["ip", "addr", "add", "192.0.2.1/32", "dev", "lo"], check=True)  # an "outside" address on the host
    serve(host, "tcp", 7000, bind="192.0.2.1")
    assert ask(host, "tcp", "192.0.2.1", 7000, ns="db", timeout=1) is None
