"""macvlan (and ipvlan) networks with real traffic.

Topology (two test hosts joined by a veth pair, a LAN that exists nowhere else):

    lan: eth0 192.168.50.100/24 (a client) and 192.168.50.1/24 (the LAN's router,
         which also holds 203.0.113.5, an address "outside")
      |
    host: lan0, the parent of the macvlan networks (192.168.50.10/24 where a test
          puts the host on the LAN); sandboxes a, b with macvlan links of lan0

The sandboxes are on the LAN themselves: the client reaches them at their own
addresses and sees theirs, with no NAT and no route through the host.
"""

from __future__ import annotations

import json

import pytest

from testhost import ask, link_hosts, serve

SUBNET = ["--subnet", "192.168.50.0/24", "--gateway", "192.168.50.1"]
CLIENT, OUTSIDE = "192.168.50.100", "203.0.113.5"
STATE = "/var/lib/cnet/state.yaml"


def ok(result) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def lan(make_host):
    host, lan = make_host("host"), make_host("lan")
    link_hosts(host, lan, "lan0", "eth0")
    for address in ("192.168.50.100/24", "192.168.50.1/24"):
        lan.run(["ip", "addr", "add", address, "dev", "eth0"], check=True)
    lan.run(["ip", "addr", "add", f"{OUTSIDE}/32", "dev", "lo"], check=True)
    return host, lan


def parent_as_it_is(host) -> tuple:
    """The parent as `ip -j` shows it (a link-local address may end its DAD between two looks)."""
    (addresses,) = host.ip_json("addr", "show", "lan0")
    for a in addresses["addr_info"]:
        a.pop("tentative", None)
    return host.ip_json("-d", "link", "show", "lan0"), addresses


def sandbox(host, name, network, *extra) -> str:
    """Make a sandbox on the network; its address, without the prefix length."""
    return ok(host.cnet("create", "ns", name, "--network", network, *extra)).split("/")[0]


def inside(host, ns, *cmd) -> str:
    return ok(host.run(["ip", "netns", "exec", ns, *cmd]))


def pings(host, ns, address) -> bool:
    cmd = ["ping", "-c1", "-W1", address]
    return host.run(["ip", "netns", "exec", ns, *cmd] if ns else cmd).returncode == 0


def test_the_lan_reaches_two_sandboxes_directly_and_they_reach_each_other(lan):
    host, lan = lan
    before = parent_as_it_is(host)
    ok(host.cnet("create", "macvlan", "lan", "--parent", "lan0", *SUBNET, "--ip-range", "192.168.50.64/26",
                 "--mtu", "1400"))
    a, b = sandbox(host, "a", "lan"), sandbox(host, "b", "lan")
    assert (a, b) == ("192.168.50.64", "192.168.50.65")
    for ns, address in (("a", a), ("b", b)):
        serve(host, "tcp", 7000, ns=ns)
        assert ask(lan, "tcp", address, 7000) == CLIENT  # straight from the LAN, its own address seen
    (link,) = json.loads(inside(host, "a", "ip", "-j", "-d", "link", "show", "eth0"))
    record = json.loads(ok(host.cnet("inspect", "a", "--json")))["endpoints"][0]
    assert (link["linkinfo"]["info_kind"], link["linkinfo"]["info_data"]["mode"]) == ("macvlan", "bridge")
    assert (link["mtu"], link["address"], link["link_netnsid"] is not None) == (1400, record["mac"], True)
    assert "default via 192.168.50.1 dev eth0" in inside(host, "a", "ip", "route")
    serve(lan, "tcp", 7100, bind="0.0.0.0")
    assert ask(host, "tcp", OUTSIDE, 7100, ns="a") == a  # out through the LAN's router, not NATed
    assert ask(host, "tcp", CLIENT, 7100, ns="b") == b
    assert pings(host, "a", b) and pings(host, "b", a)  # bridge mode: siblings meet inside the host
    view = json.loads(ok(host.cnet("inspect", "lan", "--json")))["kernel"]
    assert (view["parent"]["ifname"], view["parent"]["kind"], view["mode"]) == ("lan0", "veth", "bridge")
    ok(host.cnet("delete", "network", "lan", "--force"))
    assert inside(host, "a", "ip", "-br", "link").split()[0] == "lo" and "eth0" not in inside(host, "a", "ip", "link")
    assert parent_as_it_is(host) == before


def test_private_mode_sandboxes_do_not_reach_each_other_but_reach_the_lan(lan):
    host, lan = lan
    ok(host.cnet("create", "macvlan", "lan", "--parent", "lan0", *SUBNET, "--mode", "private"))
    a, b = sandbox(host, "a", "lan"), sandbox(host, "b", "lan")
    assert pings(host, "a", CLIENT) and pings(host, "b", CLIENT)
    assert not pings(host, "a", b) and not pings(host, "b", a)
    (link,) = json.loads(inside(host, "b", "ip", "-j", "-d", "link", "show", "eth0"))
    assert link["linkinfo"]["info_data"]["mode"] == "private"


def test_the_host_reaches_its_sandboxes_only_with_host_access(lan):
    host, lan = lan
    host.run(["ip", "addr", "add", "192.168.50.10/24", "dev", "lan0"], check=True)  # the host is on the LAN
    before = parent_as_it_is(host)
    routes_before = ok(host.run(["ip", "route"]))
    ok(host.cnet("create", "macvlan", "lan", "--parent", "lan0", *SUBNET))
    a = sandbox(host, "a", "lan")
    serve(host, "tcp", 7000, ns="a")
    assert pings(host, None, CLIENT) and ask(lan, "tcp", a, 7000) == CLIENT  # the LAN and the host are up
    assert ask(host, "tcp", a, 7000, timeout=1) is None  # but the kernel keeps the host from its children
    ok(host.cnet("delete", "ns", "a"))
    ok(host.cnet("delete", "network", "lan"))

    # The host's own route to the LAN is in the way of one to the whole subnet: an --ip-range is needed.
    r = host.cnet("create", "macvlan", "lan", "--parent", "lan0", *SUBNET, "--host-access")
    assert r.returncode == 4 and "--ip-range" in r.stderr, r.stderr
    assert ok(host.cnet("ls", "-q")) == "" and ok(host.run(["ip", "route"])) == routes_before
    assert set(host.links()) == {"lo", "lan0"}

    ok(host.cnet("create", "macvlan", "lan", "--parent", "lan0", *SUBNET, "--ip-range", "192.168.50.64/26",
                 "--host-access"))
    a = sandbox(host, "a", "lan")
    serve(host, "tcp", 7001, ns="a")
    assert ask(host, "tcp", a, 7001) == "192.168.50.127"  # through the host's macvlan, from its address
    assert ask(lan, "tcp", a, 7001) == CLIENT
    view = json.loads(ok(host.cnet("inspect", "lan", "--json")))["kernel"]["host_link"]
    assert (view["kind"], view["mode"], view["addresses"]) == ("macvlan", "bridge", ["192.168.50.127/32"])
    assert ok(host.cnet("check", "--deep")) == ""
    ok(host.cnet("delete", "network", "lan", "--force"))
    assert set(host.links()) == {"lo", "lan0"} and ok(host.run(["ip", "route"])) == routes_before
    assert parent_as_it_is(host) == before


def test_passthru_takes_one_endpoint_and_gives_the_parent_back_as_it_was(lan):
    host, lan = lan
    before = parent_as_it_is(host)
    ok(host.cnet("create", "macvlan", "pt", "--parent", "lan0", *SUBNET, "--mode", "passthru"))
    a = sandbox(host, "a", "pt")
    ok(host.cnet("create", "ns", "b"))
    r = host.cnet("attach", "b", "pt")
    assert r.returncode == 4 and "one endpoint at a time" in r.stderr, r.stderr
    assert inside(host, "b", "ip", "-br", "link").split()[0] == "lo" and "eth" not in inside(host, "b", "ip", "link")
    assert pings(host, "a", CLIENT) and pings(lan, None, a)
    ok(host.cnet("delete", "network", "pt", "--force"))
    assert parent_as_it_is(host) == before


def test_check_finds_and_restore_remakes_a_lost_endpoint_and_host_link(lan):
    host, lan = lan
    ok(host.cnet("create", "macvlan", "lan", "--parent", "lan0", *SUBNET, "--host-access"))
    a = sandbox(host, "a", "lan")
    host.run(["ip", "netns", "exec", "a", "ip", "link", "del", "eth0"], check=True)
    host.run(["ip", "link", "del", "cnh6860fdef"], check=True)  # macvlan.host_link_name("lan")
    r = host.cnet("check", "--deep")
    assert r.returncode == 5 and "missing link eth0 in the sandbox" in r.stdout and "cnh6860fdef" in r.stdout
    ok(host.cnet("restore"))
    assert ok(host.cnet("check", "--deep")) == ""
    serve(host, "tcp", 7000, ns="a")
    assert ask(lan, "tcp", a, 7000) == CLIENT and ask(host, "tcp", a, 7000) == "192.168.50.254"


@pytest.mark.parametrize("argv, code, words", [
    (["create", "macvlan", "x", "--parent", "nosuch", "--subnet", "10.9.0.0/24"], 3, "nosuch"),
    (["create", "macvlan", "x", "--parent", "br0", "--subnet", "10.9.0.0/24"], 4, "cnet network br0"),
    (["create", "macvlan", "x", "--parent", "lan0", "--subnet", "10.9.0.0/24", "--mode", "private"], 4,
     "carries macvlan network lan in mode bridge"),
    (["create", "macvlan", "x", "--parent", "lan0", "--subnet", "10.9.0.0/24", "--mtu", "9000"], 2,
     "above the MTU 1500 of its parent"),
    (["create", "macvlan", "x", "--parent", "lan0", "--subnet", "10.9.0.0/24", "--mode", "vlan"], 2, "'vlan'"),
    (["publish", "a", "8080:80"], 2, "macvlan network, whose sandboxes are on its LAN directly"),
    (["attach", "a", "br0"], 0, ""),  # a bridge beside it is fine: only the bridge can publish
])
def test_bad_inputs_get_their_code_and_create_nothing(lan, argv, code, words):
    host, lan = lan
    ok(host.cnet("create", "bridge", "br0", "--subnet", "10.8.0.0/24"))
    ok(host.cnet("create", "macvlan", "lan", "--parent", "lan0", *SUBNET))
    sandbox(host, "a", "lan")
    state, links = ok(host.cnet("ls", "--json")), set(host.links())
    r = host.cnet(*argv)
    assert r.returncode == code and words in r.stderr, r.stderr
    if code:
        assert ok(host.cnet("ls", "--json")) == state and set(host.links()) == links
        assert ok(host.cnet("ls", "ports", "-q")) == ""


def _kernel_has_ipvlan(host) -> bool:
    host.run(["ip", "link", "add", "probe0", "type", "veth", "peer", "name", "probe1"], check=True)
    made = host.run(["ip", "link", "add", "link", "probe0", "name", "probe2", "type", "ipvlan"]).returncode == 0
    host.run(["ip", "link", "del", "probe0"], check=True)
    return made


def test_create_ipvlan_without_the_module_fails_with_1_naming_it(lan):
    host, lan = lan
    if _kernel_has_ipvlan(host):
        pytest.skip("this kernel has the ipvlan module: the refusal is for kernels without it")
    links = set(host.links())
    r = host.cnet("create", "ipvlan", "lan", "--parent", "lan0", *SUBNET)
    assert r.returncode == 1 and "kernel module ipvlan is missing" in r.stderr, r.stderr
    assert ok(host.cnet("ls", "-q")) == "" and set(host.links()) == links


@pytest.mark.parametrize("mode", ["l2", "l3"])
def test_the_lan_reaches_ipvlan_sandboxes_directly(lan, mode):
    host, lan = lan
    if not _kernel_has_ipvlan(host):
        pytest.skip("this kernel has no ipvlan module (ip link add ... type ipvlan: Operation not supported)")
    before = parent_as_it_is(host)
    ok(host.cnet("create", "ipvlan", "lan", "--parent", "lan0", *SUBNET, "--mode", mode))
    a = sandbox(host, "a", "lan")
    serve(host, "tcp", 7000, ns="a")
    assert ask(lan, "tcp", a, 7000) == CLIENT
    (link,) = json.loads(inside(host, "a", "ip", "-j", "-d", "link", "show", "eth0"))
    assert link["linkinfo"]["info_kind"] == "ipvlan" and link["address"] == before[0][0]["address"]
    ok(host.cnet("delete", "network", "lan", "--force"))
    assert parent_as_it_is(host) == before



def test_limits_shape_the_sandboxs_own_interface(lan):
    """No host side: the tbf sits on the sandbox's eth0 (egress) and an ifb inside shapes ingress."""
    host, _ = lan
    ok(host.cnet("create", "macvlan", "mv0", "--parent", "lan0", "--subnet", "192.168.50.0/24",
                 "--gateway", "192.168.50.1"))
    sandbox(host, "a", "mv0", "--egress-rate", "20mbit", "--ingress-rate", "30mbit")
    qdiscs = {q["kind"]: q for q in json.loads(inside(host, "a", "tc", "-j", "qdisc", "show", "dev", "eth0"))}
    assert qdiscs["tbf"]["options"]["rate"] * 8 == 20e6 and "ingress" in qdiscs
    ifb = {q["kind"]: q for q in json.loads(inside(host, "a", "tc", "-j", "qdisc", "show", "dev", "cb-eth0"))}
    assert ifb["tbf"]["options"]["rate"] * 8 == 30e6
    ok(host.cnet("limit", "a", "mv0", "--egress-rate", "10mbit"))
    qdiscs = {q["kind"]: q for q in json.loads(inside(host, "a", "tc", "-j", "qdisc", "show", "dev", "eth0"))}
    assert qdiscs["tbf"]["options"]["rate"] * 8 == 10e6
    assert host.cnet("check", "--deep").returncode == 0
    host.run(["ip", "netns", "exec", "a", "tc", "qdisc", "del", "dev", "eth0", "root"], check=True)
    deep = host.cnet("check", "--deep")
    assert deep.returncode == 5 and "missing tbf qdisc" in deep.stdout
    ok(host.cnet("restore"))
    assert host.cnet("check", "--deep").returncode == 0
    ok(host.cnet("detach", "a", "mv0"))
    assert "cb-eth0" not in inside(host, "a", "ip", "-o", "link")


def test_gc_removes_a_link_an_attach_killed_before_saving_left_in_a_sandbox(lan):
    """A macvlan link is born inside its sandbox: not on the host, where gc's
    first look goes. The sandbox is in the state; its link and ifb are not."""
    host, _ = lan
    ok(host.cnet("create", "macvlan", "mv0", "--parent", "lan0", *SUBNET))
    ok(host.cnet("create", "ns", "a"))
    saved = host.read(STATE)
    ok(host.cnet("attach", "a", "mv0", "--ingress-rate", "30mbit"))
    host.sh(f"cat > {STATE} <<'EOF'\n{saved}EOF", check=True)  # as if the attach was killed before saving
    assert ok(host.cnet("check")) == ""  # no --deep: check does not enter sandboxes
    deep = host.cnet("check", "--deep")
    assert deep.returncode == 5, deep.stdout
    assert "extra link eth0 in sandbox a (tagged by cnet: endpoint a mv0; not in the state)" in deep.stdout
    assert "extra link cb-eth0 in sandbox a" in deep.stdout
    would = ok(host.cnet("gc", "--dry-run"))
    assert "would remove: extra link eth0 in sandbox a" in would and "eth0" in inside(host, "a", "ip", "-o", "link")
    removed = ok(host.cnet("gc"))
    assert "removed: extra link eth0 in sandbox a" in removed and "removed: extra link cb-eth0" in removed
    assert [line.split(":")[1].strip() for line in inside(host, "a", "ip", "-o", "link").splitlines()] == ["lo"]
    assert ok(host.cnet("check", "--deep")) == "" and ok(host.cnet("gc")) == "nothing to remove\n"
    ok(host.cnet("attach", "a", "mv0"))  # the name is free again
    assert ok(host.cnet("check", "--deep")) == ""
