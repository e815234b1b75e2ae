"""hostdev networks: a host link moved into a sandbox and given back.

Topology (two test hosts joined by a veth pair; the test hosts have no
physical NIC, and the kernel here no dummy module, so the link moved is the
host's end of that pair):

    lan:  eth0 192.168.60.1/24 (the LAN's router, a client)
      |
    host: lan0 (MTU 1400), the link of hostdev network hd; in sandbox a it is eth0

What the kernel does when a namespace goes with such a link in it: a veth is
destroyed, and its peer with it (test_ip_netns_delete_...); a physical link
would come back to the machine's first namespace instead, which no test may
touch.
"""

from __future__ import annotations

import json

import pytest

from testhost import eventually, link_hosts

SUBNET = ["--subnet", "192.168.60.0/24", "--gateway", "192.168.60.1"]
ROUTER = "192.168.60.1"
MAC = "52:54:00:60:00:10"


def ok(result) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def lan(make_host):
    host, lan = make_host("host"), make_host("lan")
    link_hosts(host, lan, "lan0", "eth0")
    host.run(["ip", "link", "set", "lan0", "mtu", "1400", "address", MAC], check=True)
    lan.run(["ip", "addr", "add", f"{ROUTER}/24", "dev", "eth0"], check=True)
    return host, lan


def as_it_is(host, name="lan0") -> dict:
    """What must come back: the link's name, MTU, MAC, up state, ifalias, and no address."""
    (link,) = host.ip_json("-d", "addr", "show", name)
    return {k: link.get(k) for k in ("ifname", "mtu", "address", "ifalias")} | {
        "up": "UP" in link["flags"], "addresses": [a["local"] for a in link["addr_info"] if a["scope"] == "global"]}


def sandbox_link(host, ns, name="eth0") -> dict:
    (link,) = host.ip_json("-n", ns, "-d", "link", "show", name)
    return link


def sandbox_links(host, ns) -> list[str]:
    return [link["ifname"] for link in host.ip_json("-n", ns, "link", "show")]


def pings(host, ns, address) -> bool:
    cmd = ["ping", "-c1", "-W1", address]
    return host.run(["ip", "netns", "exec", ns, *cmd] if ns else cmd).returncode == 0


def test_attach_moves_the_link_in_and_detach_gives_it_back_as_it_was(lan):
    host, lan = lan
    before = as_it_is(host)
    ok(host.cnet("create", "hostdev", "hd", "--parent", "lan0", *SUBNET))
    assert json.loads(ok(host.cnet("inspect", "hd", "--json")))["kernel"]["device"]["mtu"] == 1400
    assert ok(host.cnet("create", "ns", "a", "--network", "hd")) == "192.168.60.2/24\n"
    link = sandbox_link(host, "a")
    assert (link["linkinfo"]["info_kind"], link["mtu"], link["address"]) == ("veth", 1500, MAC)  # its own MAC
    assert link["operstate"] == "UP" and "lan0" not in host.links()
    assert "default via 192.168.60.1 dev eth0" in ok(host.run(["ip", "-n", "a", "route"]))
    assert pings(host, "a", ROUTER) and pings(lan, None, "192.168.60.2")
    assert json.loads(ok(host.cnet("inspect", "hd", "--json")))["kernel"] == {"device": None}
    assert ok(host.cnet("check", "--deep")) == ""
    assert ok(host.cnet("ls", "endpoints")).splitlines()[1].split() == [
        "a", "hd", "eth0", "192.168.60.2/24", "lan0", "-", "ok"]  # HOST-LINK: the host's name for it
    (listed,) = json.loads(ok(host.cnet("ls", "endpoints", "--json")))
    assert listed["device"] == {"name": "lan0", "mtu": 1400, "mac": MAC, "up": True}
    ok(host.cnet("detach", "a", "hd"))
    assert as_it_is(host) == before and sandbox_links(host, "a") == ["lo"]
    assert "eth0" in lan.links()  # the peer never left

    # Down, with another MAC in the sandbox: it comes back down, with its own MAC.
    host.run(["ip", "link", "set", "lan0", "down"], check=True)
    before = as_it_is(host)
    ok(host.cnet("attach", "a", "hd", "--mac", "02:00:00:60:00:99"))
    assert sandbox_link(host, "a")["address"] == "02:00:00:60:00:99" and pings(host, "a", ROUTER)
    ok(host.cnet("delete", "ns", "a"))
    assert as_it_is(host) == before and not before["up"]
    assert ok(host.cnet("ls", "endpoints", "-q")) == ""


def test_one_sandbox_at_a_time_and_the_next_gets_it_once_the_first_is_gone(lan):
    host, lan = lan
    ok(host.cnet("create", "hostdev", "hd", "--parent", "lan0", *SUBNET))
    ok(host.cnet("create", "ns", "a", "--network", "hd"))
    ok(host.cnet("create", "ns", "b"))
    r = host.cnet("attach", "b", "hd")
    assert r.returncode == 4 and "sandbox a has it" in r.stderr, r.stderr
    assert sandbox_links(host, "b") == ["lo"] and sandbox_link(host, "a")["operstate"] == "UP"
    ok(host.cnet("delete", "ns", "a"))
    assert ok(host.cnet("attach", "b", "hd")) == "192.168.60.3/24\n"
    assert pings(host, "b", ROUTER)


def test_a_failed_attach_gives_the_link_back(lan):
    host, lan = lan
    before = as_it_is(host)
    ok(host.cnet("create", "hostdev", "hd", "--parent", "lan0", *SUBNET))
    ok(host.cnet("create", "ns", "a"))
    r = host.cnet("attach", "a", "hd", "--mac", "02:00:00:60:00:99", env={"CNET_FAULT": "attach-addresses"})
    assert r.returncode == 1 and "injected fault" in r.stderr, r.stderr
    assert as_it_is(host) == before and sandbox_links(host, "a") == ["lo"]
    assert ok(host.cnet("ls", "endpoints", "-q")) == ""


def test_limits_shape_the_link_in_the_sandbox_and_go_with_it(lan):
    host, lan = lan
    ok(host.cnet("create", "hostdev", "hd", "--parent", "lan0", *SUBNET))
    ok(host.cnet("create", "ns", "a", "--network", "hd", "--egress-rate", "20mbit", "--ingress-rate", "30mbit"))
    qdiscs = {q["kind"]: q for q in json.loads(ok(host.run(["tc", "-n", "a", "-j", "qdisc", "show", "dev", "eth0"])))}
    assert qdiscs["tbf"]["options"]["rate"] * 8 == 20e6 and "ingress" in qdiscs
    assert ok(host.cnet("check", "--deep")) == ""
    ok(host.cnet("detach", "a", "hd"))
    qdiscs = {q["kind"] for q in json.loads(ok(host.run(["tc", "-j", "qdisc", "show", "dev", "lan0"])))}
    assert not qdiscs & {"tbf", "ingress"} and sandbox_links(host, "a") == ["lo"]


def test_check_and_restore_after_the_link_was_moved_back_by_hand(lan):
    host, lan = lan
    ok(host.cnet("create", "hostdev", "hd", "--parent", "lan0", *SUBNET))
    ok(host.cnet("create", "ns", "a", "--network", "hd"))
    host.run(["ip", "-n", "a", "link", "set", "eth0", "netns", str(host.pid)], check=True)  # the test host's own
    r = host.cnet("check")
    assert r.returncode == 5 and "link lan0 is on the host as eth0, not in sandbox a" in r.stdout, r.stdout
    assert "extra link" not in r.stdout  # its record is there: restore's to move, not gc's
    ok(host.cnet("restore"))
    assert ok(host.cnet("check", "--deep")) == "" and pings(lan, None, "192.168.60.2")

    # As after a reboot: the sandbox gone, the link on the host under its own name, untagged.
    host.run(["ip", "-n", "a", "link", "set", "eth0", "netns", str(host.pid), "name", "lan0"], check=True)
    host.run(["ip", "link", "set", "lan0", "alias", ""], check=True)
    host.run(["ip", "netns", "delete", "a"], check=True)
    assert host.cnet("check").returncode == 5
    ok(host.cnet("restore"))
    assert ok(host.cnet("check", "--deep")) == "" and pings(host, "a", ROUTER)
    assert sandbox_link(host, "a")["address"] == MAC


def test_check_says_when_the_link_of_an_unused_network_is_gone_from_the_host(lan):
    host, lan = lan
    ok(host.cnet("create", "hostdev", "hd", "--parent", "lan0", *SUBNET))
    assert ok(host.cnet("check")) == ""
    host.run(["ip", "link", "set", "lan0", "down", "name", "lan9"], check=True)  # as a NIC renamed or unplugged
    r = host.cnet("check")
    assert r.returncode == 5, (r.returncode, r.stdout, r.stderr)
    assert r.stdout.startswith("missing link lan0: no sandbox has it, and the host has no link of that name"), r.stdout
    assert r.stdout.rstrip().endswith("(network hd)"), r.stdout
    r = host.cnet("restore")  # nothing it can make: it says so
    assert r.returncode == 1 and "missing link lan0" in r.stderr, r.stderr
    ok(host.cnet("create", "ns", "a"))
    r = host.cnet("attach", "a", "hd")
    assert r.returncode == 3 and "link lan0 of hostdev network hd is not on the host" in r.stderr, r.stderr
    host.run(["ip", "link", "set", "lan9", "name", "lan0", "up"], check=True)
    assert ok(host.cnet("check")) == "" and ok(host.cnet("restore")).startswith("nothing to restore")


def test_ip_netns_delete_destroys_a_veth_link_with_its_peer(lan):
    """What the kernel does: a namespace that goes takes its virtual links, a
    veth's peer in another namespace too; cnet can only say so."""
    host, lan = lan
    ok(host.cnet("create", "hostdev", "hd", "--parent", "lan0", *SUBNET))
    ok(host.cnet("create", "ns", "a", "--network", "hd"))
    host.run(["ip", "netns", "delete", "a"], check=True)
    assert eventually(lambda: "eth0" not in lan.links()) and "lan0" not in host.links()
    r = host.cnet("restore")
    assert r.returncode == 1 and "neither in sandbox a nor on the host" in r.stderr, r.stderr
    ok(host.cnet("delete", "ns", "a"))
    assert ok(host.cnet("ls", "ns", "-q")) == "" and ok(host.cnet("ls", "-q")) == "hd\n"


def test_gc_gives_back_a_link_whose_record_is_lost(lan):
    host, lan = lan
    before = as_it_is(host)
    ok(host.cnet("create", "hostdev", "hd", "--parent", "lan0", *SUBNET))
    ok(host.cnet("create", "ns", "a", "--network", "hd"))
    host.run(["rm", "/var/lib/cnet/state.yaml"], check=True)  # a lost state file: the namespace holds the link
    would = ok(host.cnet("gc", "--dry-run"))
    assert "would remove: cnet's hold on link lan0, to be given back to the host from netns a\n" in would, would
    assert "would remove: extra netns a" in would and "eth0" in host.run(["ip", "-n", "a", "link"]).stdout
    lines = ok(host.cnet("gc"))
    assert "given back to the host from netns a" in lines and "extra netns a" in lines, lines
    assert as_it_is(host) == before and "eth0" in lan.links()  # given back before its namespace went

    ok(host.cnet("create", "hostdev", "hd", "--parent", "lan0", *SUBNET))
    ok(host.cnet("create", "ns", "a", "--network", "hd"))
    host.run(["ip", "-n", "a", "link", "set", "eth0", "netns", str(host.pid)], check=True)
    host.run(["rm", "/var/lib/cnet/state.yaml"], check=True)  # the link on the host under its sandbox name
    would = ok(host.cnet("gc", "--dry-run"))
    assert "would remove: cnet's hold on link eth0, to be given back to the host as lan0\n" in would, would
    assert "extra link" not in would and "eth0" in host.links()
    assert json.loads(ok(host.cnet("gc", "--dry-run", "--json")))["removed"][0] == \
        "cnet's hold on link eth0, to be given back to the host as lan0"
    assert "removed: cnet's hold on link eth0, given back to the host as lan0\n" in ok(host.cnet("gc"))
    assert as_it_is(host) == before and ok(host.cnet("gc")) == "nothing to remove\n"


def test_gc_gives_back_a_link_an_attach_killed_before_saving_left_in_a_sandbox(lan):
    host, _ = lan
    before = as_it_is(host)
    ok(host.cnet("create", "hostdev", "hd", "--parent", "lan0", *SUBNET))
    ok(host.cnet("create", "ns", "a"))
    saved = host.read("/var/lib/cnet/state.yaml")
    ok(host.cnet("attach", "a", "hd"))
    host.sh(f"cat > /var/lib/cnet/state.yaml <<'EOF'\n{saved}EOF", check=True)  # the attach's save lost
    deep = host.cnet("check", "--deep")
    assert deep.returncode == 5 and "extra link eth0 in sandbox a" in deep.stdout, deep.stdout
    would = ok(host.cnet("gc", "--dry-run"))
    assert "would remove: cnet's hold on link lan0, to be given back to the host from sandbox a\n" in would, would
    assert "removed: cnet's hold on link lan0, given back to the host from sandbox a\n" in ok(host.cnet("gc"))
    assert as_it_is(host) == before and sandbox_links(host, "a") == ["lo"]
    assert ok(host.cnet("check", "--deep")) == "" and ok(host.cnet("gc")) == "nothing to remove\n"


@pytest.mark.parametrize("argv, code, words", [
    (["create", "hostdev", "x", "--parent", "nosuch", "--subnet", "10.9.0.0/24"], 3, "link nosuch"),
    (["create", "hostdev", "x", "--parent", "br0", "--subnet", "10.9.0.0/24"], 4, "link of cnet network br0"),
    (["create", "hostdev", "x", "--parent", "{veth}", "--subnet", "10.9.0.0/24"], 4, "is a link cnet made"),
    (["create", "hostdev", "x", "--parent", "lan0", "--subnet", "10.9.0.0/24"], 4, "parent of hostdev network hd"),
    (["create", "macvlan", "x", "--parent", "lan0", "--subnet", "10.9.0.0/24"], 4, "link of hostdev network hd"),
    (["create", "hostdev", "x", "--parent", "spare", "--subnet", "10.9.0.0/24"], 4, "has addresses on the host"),
    (["attach", "b", "hd"], 4, "sandbox a has it"),
    (["publish", "a", "8080:80"], 2, "hostdev network, whose sandboxes are on its LAN directly"),
])
def test_bad_inputs_get_their_code_and_change_nothing(lan, argv, code, words):
    host, lan = lan
    ok(host.cnet("create", "bridge", "br0", "--subnet", "10.8.0.0/24"))
    ok(host.cnet("create", "ns", "c", "--network", "br0"))
    host.run(["ip", "link", "add", "spare", "type", "veth", "peer", "name", "spare1"], check=True)
    host.run(["ip", "addr", "add", "10.7.0.5/24", "dev", "spare"], check=True)
    ok(host.cnet("create", "hostdev", "hd", "--parent", "lan0", *SUBNET))
    ok(host.cnet("create", "ns", "a", "--network", "hd"))
    ok(host.cnet("create", "ns", "b"))
    (veth,) = [e["host_ifname"] for e in json.loads(ok(host.cnet("ls", "endpoints", "--json"))) if e["network"] == "br0"]
    state, links = ok(host.cnet("ls", "--json")), host.links()
    inside = {ns: sandbox_links(host, ns) for ns in ("a", "b")}
    r = host.cnet(*[arg.replace("{veth}", veth) for arg in argv])
    assert r.returncode == code and words in r.stderr, r.stderr
    assert ok(host.cnet("ls", "--json")) == state and host.links().keys() == links.keys()
    assert {ns: sandbox_links(host, ns) for ns in ("a", "b")} == inside
