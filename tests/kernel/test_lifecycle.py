"""check, restore and gc against real kernel objects, on both firewall backends.

A "reboot" here is what one leaves of cnet's objects: the named namespaces,
the bridges, the firewall rules and the forwarding sysctl are gone; the state
file, the namespace markers and /etc/netns are kept (they are on disk).
"""

from __future__ import annotations

import json
import sys

import pytest

from testhost import ask, link_hosts, serve

BACKENDS = ["nftables", "iptables"]
STATE = "/var/lib/cnet/state.yaml"


def ok(result) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def inside(host, ns: str) -> dict:
    """ifname -> (mac, sorted addresses) of a sandbox's links but lo."""
    found = {}
    for link in host.ip_json("-n", ns, "addr", "show"):
        if link["ifname"] != "lo":
            addrs = sorted(f"{a['local']}/{a['prefixlen']}" for a in link["addr_info"] if a["scope"] == "global")
            found[link["ifname"]] = (link["address"], addrs)
    return found


def reboot(host) -> None:
    host.sh("ip -all netns delete; for l in $(ls /sys/class/net); do [ $l = lo ] || [ $l = eth0 ] || "
            "ip link delete $l 2>/dev/null; done; "
            "for t in iptables ip6tables; do for tb in nat filter; do $t -t $tb -F; $t -t $tb -X; done; done; "
            "nft flush ruleset; sysctl -qw net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0", check=True)


@pytest.fixture(params=BACKENDS)
def net(request, make_host):
    """(host, lan): host has mybr0 and sandboxes web (port 8080 published) and other."""
    host, lan = make_host("host"), make_host("lan")
    host.env["CNET_FIREWALL"] = request.param
    link_hosts(host, lan, "eth0", "eth0")
    host.run(["ip", "addr", "add", "198.18.0.1/24", "dev", "eth0"], check=True)
    lan.run(["ip", "addr", "add", "198.18.0.2/24", "dev", "eth0"], check=True)
    ok(host.cnet("create", "bridge", "mybr0", "--subnet", "172.26.0.0/16", "--subnet", "fd00:26::/64"))
    ok(host.cnet("create", "ns", "web", "--network", "mybr0", "--publish", "8080:80"))
    ok(host.cnet("create", "ns", "other", "--network", "mybr0"))
    return host, lan


def test_in_sync_after_ordinary_commands(net):
    host, _ = net
    result = host.cnet("check")
    assert (result.returncode, result.stdout) == (0, "")
    assert host.cnet("check", "--deep").returncode == 0
    report = json.loads(ok(host.cnet("check", "--json")))
    assert report["in_sync"] is True and report["differences"] == []


def test_a_reboot_is_restored_by_one_command(net):
    host, lan = net
    before = {ns: inside(host, ns) for ns in ("web", "other")}
    reboot(host)

    result = host.cnet("check")
    assert result.returncode == 5
    lines = result.stdout.splitlines()
    assert "missing netns /run/netns/web (sandbox web)" in lines
    assert "missing link mybr0 (network mybr0)" in lines
    assert any("firewall" in line or "iptables" in line for line in lines), lines
    report = json.loads(host.cnet("check", "--json").stdout)
    assert report["in_sync"] is False and len(report["differences"]) == len(lines)

    made = ok(host.cnet("restore")).splitlines()
    assert "made netns web" in made and any(line.startswith("made endpoint web/mybr0") for line in made)
    assert {ns: inside(host, ns) for ns in ("web", "other")} == before  # same names, MACs, addresses
    assert ok(host.cnet("restore")) == "nothing to restore: the kernel holds what the state says\n"
    assert host.cnet("check", "--deep").returncode == 0

    assert host.run(["ping", "-c1", "-W2", "172.26.0.3"]).returncode == 0
    serve(host, "tcp", 80, ns="web")
    assert ask(lan, "tcp", "198.18.0.1", 8080) == "198.18.0.2"  # the published port, from the LAN
    assert ask(host, "tcp", "172.26.0.1", 8080, ns="other") is not None  # and hairpin through the host


def test_a_firewall_flush_is_found_and_repaired(net):
    host, lan = net
    serve(host, "tcp", 80, ns="web")
    assert ask(lan, "tcp", "198.18.0.1", 8080) == "198.18.0.2"
    if host.env["CNET_FIREWALL"] == "nftables":
        host.run(["nft", "flush", "ruleset"], check=True)
    else:
        host.run(["iptables", "-t", "nat", "-F", "CNET-DNAT"], check=True)
    assert ask(lan, "tcp", "198.18.0.1", 8080, timeout=1) is None
    result = host.cnet("check")
    assert result.returncode == 5 and result.stdout.strip(), result
    assert ok(host.cnet("restore")) == "made the firewall as the state has it\n"
    assert host.cnet("check").returncode == 0
    assert ask(lan, "tcp", "198.18.0.1", 8080) == "198.18.0.2"


def test_a_broken_endpoint_is_found_from_the_host_and_made_again(net):
    host, _ = net
    before = inside(host, "web")
    host.run(["ip", "-n", "web", "link", "delete", "eth0"], check=True)  # the veth pair goes
    result = host.cnet("check")
    assert result.returncode == 5 and "(endpoint web/mybr0)" in result.stdout
    ok(host.cnet("restore"))
    assert inside(host, "web") == before

    host.run(["ip", "-n", "web", "addr", "flush", "dev", "eth0", "scope", "global"], check=True)
    assert host.cnet("check").returncode == 0  # the host side is whole: only a look inside tells
    deep = host.cnet("check", "--deep")
    assert deep.returncode == 5 and "missing address 172.26.0.2/16 on eth0 in the sandbox" in deep.stdout
    ok(host.cnet("restore"))
    assert inside(host, "web") == before and host.cnet("check", "--deep").returncode == 0


def test_gc_removes_what_carries_the_tag_and_only_that(host):
    ok(host.cnet("create", "bridge", "br0", "--subnet", "10.30.0.0/24"))
    saved = host.read(STATE)
    ok(host.cnet("create", "ns", "lost", "--network", "br0", "--publish", "9000:80"))
    ok(host.cnet("create", "bridge", "br9", "--subnet", "10.39.0.0/24"))
    veth = json.loads(ok(host.cnet("inspect", "lost", "--json")))["endpoints"][0]["host_ifname"]
    host.sh(f"cat > {STATE} <<'EOF'\n{saved}EOF", check=True)  # as if the commands were killed before saving
    host.sh("ip link add plain0 type bridge; ip netns add plain; mkdir -p /etc/netns/plain", check=True)

    result = host.cnet("check")
    assert result.returncode == 5
    assert "extra netns lost (tagged by cnet, not in the state)" in result.stdout
    again = host.cnet("create", "ns", "lost")
    assert again.returncode == 4 and "`cnet gc` removes it" in again.stderr
    assert f"extra link {veth} (tagged by cnet: endpoint lost br0; not in the state)" in result.stdout
    assert "extra link br9" in result.stdout

    would = ok(host.cnet("gc", "--dry-run"))
    assert "would remove: extra netns lost" in would and host.run(["ip", "netns", "exec", "lost", "true"]).returncode == 0
    removed = ok(host.cnet("gc"))
    assert "removed: extra netns lost" in removed and "removed: extra link br9" in removed
    links = host.links()
    assert veth not in links and "br9" not in links and "br0" in links
    assert "plain0" in links and "plain" in ok(host.run(["ip", "netns", "list"]))  # untagged: untouched
    assert ok(host.run(["ls", "/etc/netns"])).split() == ["plain"]
    assert host.cnet("check").returncode == 0
    assert ok(host.cnet("gc")) == "nothing to remove\n"


def test_a_joined_sandbox_is_bound_again_and_an_adopted_one_is_reported(host):
    ok(host.cnet("create", "bridge", "br0", "--subnet", "10.30.0.0/24"))
    ok(host.cnet("create", "ns", "pod", "--network", "br0"))
    ok(host.cnet("create", "ns", "side", "--join", "pod"))
    host.run(["ip", "netns", "add", "elsewhere"], check=True)
    ok(host.cnet("create", "ns", "adopted", "--netns-path", "/run/netns/elsewhere"))
    host.sh("ip -all netns delete", check=True)

    result = host.cnet("restore")
    assert result.returncode == 1
    assert "adopted" in result.stderr and "cannot make it again" in result.stderr
    assert "made netns side" in result.stdout
    same = host.sh("[ $(stat -L -c %i /run/netns/pod) = $(stat -L -c %i /run/netns/side) ]")
    assert same.returncode == 0  # joined: the owner's namespace again, not a new one
    assert not host.sh("test -e /run/netns/adopted").returncode == 0  # never invented


def test_two_state_files_keep_their_own_objects(host):
    a = ["--state", "/var/lib/cnet/a.yaml"]
    b = ["--state", "/var/lib/cnet/b.yaml"]
    ok(host.cnet(*a, "create", "bridge", "bra", "--subnet", "10.41.0.0/24"))
    ok(host.cnet(*b, "create", "bridge", "brb", "--subnet", "10.42.0.0/24"))
    ok(host.cnet(*a, "create", "ns", "sa", "--network", "bra", "--publish", "8001:80"))
    ok(host.cnet(*b, "create", "ns", "sb", "--network", "brb", "--publish", "8002:80"))
    ok(host.cnet(*a, "unpublish", "sa", "8001:80"))
    ok(host.cnet(*a, "publish", "sa", "8003:80"))

    ruleset = ok(host.run(["nft", "list", "ruleset"]))
    assert "8002" in ruleset and "8003" in ruleset and "8001" not in ruleset
    for s in (a, b):
        assert host.cnet(*s, "check").returncode == 0
        assert ok(host.cnet(*s, "gc")) == "nothing to remove\n"
    ok(host.cnet(*a, "delete", "ns", "sa"))
    ok(host.cnet(*a, "delete", "bridge", "bra"))
    assert "8002" in ok(host.run(["nft", "list", "ruleset"]))
    assert "brb" in host.links() and host.cnet(*b, "check").returncode == 0
    serve(host, "tcp", 80, ns="sb")
    assert ask(host, "tcp", "127.0.0.1", 8002) is not None


def test_check_reads_no_netlink_and_deep_looks_at_addresses_too(net):
    host, _ = net
    loaded = host.run([sys.executable, "-c", "import sys\nfrom cnet.cli import main\ntry:\n    main(['check'])\n"
                       "except SystemExit as e:\n    code = e.code\nprint(code, 'pyroute2' in sys.modules)"])
    assert loaded.stdout.split()[-2:] == ["0", "False"], loaded  # the state and sysfs only
    host.run(["ip", "addr", "del", "172.26.0.1/16", "dev", "mybr0"], check=True)
    assert host.cnet("check").returncode == 0  # the bridge is whole as far as sysfs tells
    deep = host.cnet("check", "--deep")
    assert deep.returncode == 5 and "missing address 172.26.0.1/16 on link mybr0 (network mybr0)" in deep.stdout
    assert "made network mybr0" in ok(host.cnet("restore"))
    assert "172.26.0.1/16" in host.addresses("mybr0") and host.cnet("check", "--deep").returncode == 0


def test_after_a_reboot_commands_do_not_pretend(net):
    host, _ = net
    reboot(host)
    result = host.cnet("publish", "web", "9000:80")
    assert result.returncode == 3 and "cnet restore" in result.stderr  # not a port to nowhere
    result = host.cnet("create", "bridge", "mybr0", "--subnet", "172.26.0.0/16", "--subnet", "fd00:26::/64",
                       "--exist-ok")
    assert result.returncode == 0 and "is made again" in result.stderr
    assert "mybr0" in host.links() and "172.26.0.1/16" in host.addresses("mybr0")
