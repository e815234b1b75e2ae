"""Sandboxes and endpoints against the real kernel, each test in its own test host.

Reachability is shown with real pings; the kernel's view with `ip -j` run
inside the sandbox through `ip netns exec`, which also shows that other
tools see cnet's namespaces.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from testhost import CNET, eventually

STATE = "/var/lib/cnet/state.yaml"


def ok(result) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def in_ns(host, ns: str, *cmd: str):
    return host.run(["ip", "netns", "exec", ns, *cmd])


def ns_links(host, ns: str) -> dict[str, dict]:
    return {link["ifname"]: link for link in json.loads(ok(in_ns(host, ns, "ip", "-j", "addr", "show")))}


def ns_addresses(host, ns: str, ifname: str) -> list[str]:
    return [f"{a['local']}/{a['prefixlen']}" for a in ns_links(host, ns)[ifname]["addr_info"]
            if a.get("scope") == "global"]


def default_routes(host, ns: str, family: str = "-4") -> list[str]:
    routes = json.loads(ok(in_ns(host, ns, "ip", "-j", family, "route", "show", "default")))
    return [f"{r['gateway']} {r['dev']}" for r in routes]


def ping(host, *args: str) -> bool:
    return host.run(["ping", "-c1", "-W2", *args]).returncode == 0


def host_veths(host) -> list[str]:
    return sorted(n for n in host.links() if n.startswith("cn"))


def dnat_present(host, host_port: int, ip: str, port: int) -> bool:
    """Whether the firewall sends host_port to ip:port, with whichever backend the host uses."""
    if host.env.get("CNET_FIREWALL") == "iptables":
        return f"--dport {host_port} -j DNAT --to-destination {ip}:{port}" in ok(host.run(["iptables-save", "-t", "nat"]))
    return f"tcp . {host_port} : {ip} . {port}" in ok(host.run(["nft", "list", "map", "inet", "cnet", "dnat4any"]))


@pytest.fixture
def br(host):
    ok(host.cnet("create", "bridge", "mybr0", "--subnet", "172.26.0.0/16", "--mtu", "1400"))
    return host


def test_two_sandboxes_on_a_bridge_reach_each_other_the_gateway_and_the_host(br):
    host = br
    ok(host.cnet("create", "ns", "a"))
    ok(host.cnet("create", "ns", "b"))
    assert ok(host.cnet("attach", "a", "mybr0")) == "172.26.0.2/16\n"
    assert ok(host.cnet("attach", "b", "mybr0")) == "172.26.0.3/16\n"
    assert set(ok(host.run(["ip", "netns", "list"])).split()) >= {"a", "b"}
    # inside: lo up, eth0 with the address, the network's MTU, a default route via the gateway
    links = ns_links(host, "a")
    assert "UP" in links["lo"]["flags"] and "UP" in links["eth0"]["flags"]
    assert links["eth0"]["mtu"] == 1400
    assert ns_addresses(host, "a", "eth0") == ["172.26.0.2/16"]
    assert default_routes(host, "a") == ["172.26.0.1 eth0"]
    # the host side: enslaved to the bridge, same MTU, tagged as cnet's
    (veth_a,) = [e["host_ifname"] for e in json.loads(ok(host.cnet("ls", "endpoints", "--json"))) if e["sandbox"] == "a"]
    link = host.links()[veth_a]
    assert link["master"] == "mybr0" and link["mtu"] == 1400 and link["ifalias"] == "cnet endpoint a mybr0"
    # traffic: sandbox to sandbox by name and address, to the gateway, host to sandbox
    assert ok(host.cnet("exec", "a", "--", "ping", "-c1", "-W2", "b"))
    assert ok(host.cnet("exec", "b", "--", "ping", "-c1", "-W2", "172.26.0.2"))
    assert ok(host.cnet("exec", "a", "--", "ping", "-c1", "-W2", "172.26.0.1"))
    assert ping(host, "172.26.0.3")
    assert ok(host.cnet("exec", "a", "--", "getent", "hosts", "b")).split() == ["172.26.0.3", "b"]


def test_dual_stack_endpoint_and_pinned_mac(host):
    ok(host.cnet("create", "bridge", "ds0", "--subnet", "10.60.0.0/24", "--subnet", "fd00:60::/64"))
    ok(host.cnet("create", "ns", "a"))
    out = ok(host.cnet("attach", "a", "ds0", "--mac", "02:aa:bb:cc:dd:ee", "--ip", "fd00:60::99"))
    assert out == "10.60.0.2/24\nfd00:60::99/64\n"
    assert ns_links(host, "a")["eth0"]["address"] == "02:aa:bb:cc:dd:ee"
    assert sorted(ns_addresses(host, "a", "eth0")) == ["10.60.0.2/24", "fd00:60::99/64"]
    assert default_routes(host, "a", "-6") == ["fd00:60::1 eth0"]
    assert ok(in_ns(host, "a", "ping", "-6", "-c1", "-W2", "fd00:60::1"))


def test_create_ns_with_network_attaches_at_once(br):
    host = br
    assert ok(host.cnet("create", "ns", "web", "--network", "mybr0", "--ip", "172.26.5.5")) == "172.26.5.5/16\n"
    assert ns_addresses(host, "web", "eth0") == ["172.26.5.5/16"]
    assert ping(host, "172.26.5.5")


def test_two_networks_give_eth0_and_eth1_and_the_default_route_moves_on_detach(br):
    host = br
    ok(host.cnet("create", "bridge", "net2", "--subnet", "10.50.0.0/24"))
    ok(host.cnet("create", "ns", "a"))
    ok(host.cnet("attach", "a", "mybr0"))
    ok(host.cnet("attach", "a", "net2"))
    assert ns_addresses(host, "a", "eth0") == ["172.26.0.2/16"]
    assert ns_addresses(host, "a", "eth1") == ["10.50.0.2/24"]
    assert ns_links(host, "a")["eth1"]["mtu"] == 1500
    assert default_routes(host, "a") == ["172.26.0.1 eth0"]
    ok(host.cnet("detach", "a", "mybr0"))
    assert "eth0" not in ns_links(host, "a")
    assert default_routes(host, "a") == ["10.50.0.1 eth1"]
    # the next attach takes the free eth0 again
    ok(host.cnet("attach", "a", "mybr0", "--ifname", "uplink"))
    assert "uplink" in ns_links(host, "a")


def test_detach_and_delete_leave_no_host_side_veth_and_release_addresses(br):
    host = br
    for name in ("a", "b"):
        ok(host.cnet("create", "ns", name, "--network", "mybr0"))
    assert len(host_veths(host)) == 2
    ok(host.cnet("detach", "a", "mybr0"))
    assert len(host_veths(host)) == 1
    assert "eth0" not in ns_links(host, "a")
    ok(host.cnet("delete", "ns", "b"))
    assert host_veths(host) == []
    assert "b" not in ok(host.run(["ip", "netns", "list"])).split()
    assert host.run(["test", "-e", "/etc/netns/b"]).returncode == 1
    assert json.loads(ok(host.cnet("ls", "endpoints", "--json"))) == []
    ok(host.cnet("delete", "ns", "a"))
    ok(host.cnet("delete", "bridge", "mybr0"))
    assert sorted(host.links()) == ["lo"]
    assert ok(host.run(["ip", "netns", "list"])) == ""
    assert ok(host.run(["ls", "/etc/netns"])) == ""


def test_a_freed_address_comes_back_only_after_the_allocation_wraps(host):
    ok(host.cnet("create", "bridge", "small0", "--subnet", "10.70.0.0/29"))  # .2 to .6 for endpoints
    for i in range(5):
        ok(host.cnet("create", "ns", f"s{i}"))
    for i in range(4):
        assert ok(host.cnet("attach", f"s{i}", "small0")) == f"10.70.0.{i + 2}/29\n"
    ok(host.cnet("detach", "s0", "small0"))  # frees .2
    assert ok(host.cnet("attach", "s4", "small0")) == "10.70.0.6/29\n"  # not .2: on after the last
    assert ok(host.cnet("attach", "s0", "small0")) == "10.70.0.2/29\n"  # wrapped round to the freed one
    ok(host.cnet("create", "ns", "late"))
    r = host.cnet("attach", "late", "small0")
    assert r.returncode == 4 and "no free address left in subnet 10.70.0.0/29" in r.stderr


def test_joined_sandboxes_share_one_stack(br):
    host = br
    ok(host.cnet("create", "ns", "app", "--network", "mybr0"))
    ok(host.cnet("create", "ns", "sidecar", "--join", "app"))
    assert ns_addresses(host, "sidecar", "eth0") == ["172.26.0.2/16"]
    # attach through the second name acts on the shared stack
    ok(host.cnet("create", "bridge", "net2", "--subnet", "10.50.0.0/24"))
    ok(host.cnet("attach", "sidecar", "net2"))
    assert ns_addresses(host, "app", "eth1") == ["10.50.0.2/24"]
    assert ok(host.cnet("exec", "sidecar", "--", "getent", "hosts", "app")).split()[0] in ("172.26.0.2", "10.50.0.2")
    # deleting the first name keeps the namespace, its endpoints and its traffic
    ok(host.cnet("delete", "ns", "app"))
    assert sorted(ns_links(host, "sidecar")) == ["eth0", "eth1", "lo"]
    assert ping(host, "172.26.0.2")
    endpoints = json.loads(ok(host.cnet("ls", "endpoints", "--json")))
    assert sorted((e["sandbox"], e["network"]) for e in endpoints) == [("sidecar", "mybr0"), ("sidecar", "net2")]
    ok(host.cnet("delete", "ns", "sidecar"))
    assert host_veths(host) == [] and ok(host.run(["ip", "netns", "list"])) == ""


def test_adopting_a_running_process_namespace(br):
    host = br
    proc = host.popen(["unshare", "-n", "sleep", "600"])
    try:
        pid = None
        for _ in range(50):  # unshare execs sleep once the namespace is made
            out = host.run(["pgrep", "-f", "^sleep 600"]).stdout.split()
            if out:
                pid = out[0]
                break
            host.run(["sleep", "0.05"])
        assert pid
        ok(host.cnet("create", "ns", "adopted", "--pid", pid))
        assert ok(host.cnet("attach", "adopted", "mybr0")) == "172.26.0.2/16\n"
        # the process itself sees the interface
        seen = ok(host.run(["nsenter", f"--net=/proc/{pid}/ns/net", "ip", "-br", "addr"]))
        assert "172.26.0.2/16" in seen
        assert ping(host, "172.26.0.2")
        ok(host.cnet("delete", "ns", "adopted"))
        # cnet's endpoint and name are gone; the process's namespace is not
        assert host_veths(host) == []
        assert proc.poll() is None
        assert "eth0" not in ok(host.run(["nsenter", f"--net=/proc/{pid}/ns/net", "ip", "-br", "link"]))
    finally:
        proc.kill()
        proc.wait()


def test_adopting_a_namespace_by_path(br):
    host = br
    ok(host.run(["ip", "netns", "add", "outside"]))
    ok(host.cnet("create", "ns", "mine", "--netns-path", "/run/netns/outside"))
    ok(host.cnet("attach", "mine", "mybr0"))
    assert ns_addresses(host, "outside", "eth0") == ["172.26.0.2/16"]
    ok(host.cnet("delete", "ns", "mine"))
    assert "outside" in ok(host.run(["ip", "netns", "list"]))  # never deleted by cnet
    ok(host.run(["ip", "netns", "del", "outside"]))


def test_host_mode(br):
    host = br
    ok(host.cnet("create", "ns", "h", "--host"))
    r = host.cnet("attach", "h", "mybr0")
    assert r.returncode == 2 and "host's own namespace" in r.stderr
    assert "mybr0" in ok(host.cnet("exec", "h", "--", "ip", "-br", "link"))
    ok(host.cnet("delete", "ns", "h"))
    assert "mybr0" in host.links()


def test_exec_passes_status_stdin_and_output_through(br):
    host = br
    ok(host.cnet("create", "ns", "a", "--hostname", "alpha", "--add-host", "db:10.1.2.3", "--dns", "192.0.2.53"))
    assert host.cnet("exec", "a", "--", "sh", "-c", "exit 7").returncode == 7
    assert ok(host.cnet("exec", "a", "--", "cat", input="hello\n")) == "hello\n"
    assert ok(host.cnet("exec", "a", "--", "hostname")) == "alpha\n"
    assert ok(host.cnet("exec", "a", "--", "getent", "hosts", "db")).split() == ["10.1.2.3", "db"]
    assert ok(host.cnet("exec", "a", "--", "cat", "/etc/resolv.conf")) == "nameserver 192.0.2.53\n"
    assert ok(host.cnet("exec", "a", "ip", "-br", "link")).split()[0] == "lo"  # `--` is optional
    r = host.cnet("exec", "a", "--", "no-such-command")
    assert (r.returncode, r.stderr) == (127, "cnet: error: no-such-command: command not found\n")


def test_hosts_files_follow_attach_detach_and_delete(br):
    host = br
    for name in ("a", "b", "c"):
        ok(host.cnet("create", "ns", name, "--network", "mybr0"))
    ok(host.cnet("create", "ns", "multi", "--network", "mybr0"))
    ok(host.cnet("create", "bridge", "net2", "--subnet", "10.50.0.0/24"))
    ok(host.cnet("attach", "multi", "net2"))  # two networks: a private hosts file

    def names(ns):
        return {line.split()[1] for line in host.read(f"/etc/netns/{ns}/hosts").splitlines()[2:]}

    assert names("a") == {"a", "b", "c", "multi"}
    assert names("multi") == {"multi", "a", "b", "c"}
    ok(host.cnet("delete", "ns", "b"))
    assert names("a") == {"a", "c", "multi"} and names("multi") == {"multi", "a", "c"}
    ok(host.cnet("detach", "c", "mybr0"))
    assert names("a") == {"a", "multi"}
    assert names("c") == set()
    # processes already running in the sandbox see the change: files are rewritten in place
    ok(host.cnet("create", "ns", "d", "--network", "mybr0"))
    assert ok(in_ns(host, "a", "getent", "hosts", "d")).split()[1] == "d"


def test_a_failure_part_way_through_an_attach_leaves_nothing(br):
    host = br
    ok(host.cnet("create", "ns", "a"))
    before = host.read(STATE)
    r = host.cnet("attach", "a", "mybr0", env={"CNET_FAULT": "attach-addresses"})
    assert r.returncode == 1 and "injected fault" in r.stderr
    assert host_veths(host) == []
    assert sorted(ns_links(host, "a")) == ["lo"]
    assert host.read(STATE) == before
    assert ok(host.cnet("attach", "a", "mybr0")) == "172.26.0.2/16\n"  # the address was not taken


@pytest.mark.parametrize("args, code, message", [
    (["attach", "nope", "mybr0"], 3, "sandbox nope not found"),
    (["attach", "a", "nonet"], 3, "network nonet not found"),
    (["attach", "a", "mybr0"], 4, "already attached to network mybr0"),
    (["attach", "b", "mybr0", "--ip", "10.1.1.1"], 2, "outside subnet 172.26.0.0/16"),
    (["attach", "b", "mybr0", "--ip", "172.26.0.2"], 4, "address 172.26.0.2 is already in use"),
    (["attach", "b", "mybr0", "--ip", "172.26.0.1"], 2, "is the gateway address"),
    (["attach", "b", "mybr0", "--ip", "172.26.255.255"], 2, "broadcast"),
    (["attach", "b", "mybr0", "--ip", "fd00::5"], 2, "has no IPv6 subnet"),
    (["attach", "b", "mybr0", "--ifname", "lo"], 4, "interface lo is already present in sandbox b"),
    (["attach", "b", "mybr0", "--mac", "01:00:5e:00:00:01"], 2, "multicast"),
    (["attach", "b", "mybr0", "--mac", "zz"], 2, "is not six hex pairs"),
    (["detach", "b", "mybr0"], 3, "sandbox b is not attached to network mybr0"),
    (["create", "ns", "a"], 4, "sandbox a already exists"),
    (["create", "ns", "bad/name"], 2, "sandbox name 'bad/name' is invalid"),
    (["create", "ns", "x", "--join", "ghost"], 3, "sandbox ghost not found"),
    (["create", "ns", "x", "--pid", "999999"], 3, "process 999999 not found"),
    (["create", "ns", "x", "--pid", "1", "--host"], 2, "cannot be combined"),
    (["create", "ns", "x", "--netns-path", "/etc/hostname"], 2, "is not a network namespace"),
    (["create", "ns", "x", "--netns-path", "/proc/self/ns/net"], 2, "host's own network namespace"),
    (["create", "ns", "x", "--network", "nonet"], 3, "network nonet not found"),
    (["create", "ns", "x", "--ip", "172.26.0.9"], 2, "--ip needs --network"),
    (["create", "ns", "x", "--add-host", "nocolon"], 2, "is not HOST:IP"),
    (["create", "ns", "x", "--dns", "not-an-ip"], 2, "is not an IP address"),
    (["create", "ns", "taken"], 4, "a network namespace named taken already exists"),
    (["delete", "ns", "ghost"], 3, "sandbox ghost not found"),
    (["exec", "ghost", "--", "true"], 3, "sandbox ghost not found"),
    (["delete", "bridge", "mybr0"], 4, "in use by sandbox(es) a"),
])
def test_bad_requests_change_nothing(br, args, code, message):
    host = br
    ok(host.cnet("create", "ns", "a", "--network", "mybr0"))
    ok(host.cnet("create", "ns", "b"))
    ok(host.run(["ip", "netns", "add", "taken"]))
    before = (host.read(STATE), sorted(host.links()), ok(host.run(["ip", "netns", "list"])),
              ok(host.run(["ls", "-R", "/etc/netns", "/var/lib/cnet"])))
    r = host.cnet(*args)
    assert r.returncode == code, r.stderr
    assert r.stderr.startswith("cnet: error: ") and message in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1
    after = (host.read(STATE), sorted(host.links()), ok(host.run(["ip", "netns", "list"])),
             ok(host.run(["ls", "-R", "/etc/netns", "/var/lib/cnet"])))
    assert after == before


def test_a_sandbox_deleted_behind_cnets_back(br):
    host = br
    ok(host.cnet("create", "ns", "a", "--network", "mybr0"))
    ok(host.cnet("create", "ns", "b"))
    ok(host.run(["ip", "netns", "del", "b"]))
    r = host.cnet("attach", "b", "mybr0")
    assert r.returncode == 3 and "deleted outside cnet?" in r.stderr and "cnet delete ns b" in r.stderr
    assert host.cnet("exec", "b", "--", "true").returncode == 3
    inspected = json.loads(ok(host.cnet("inspect", "b", "--json")))
    assert inspected["kernel"] is None
    ok(host.run(["ip", "netns", "del", "a"]))  # its veth goes with it
    ok(host.cnet("delete", "ns", "a"))
    ok(host.cnet("delete", "ns", "b"))
    assert json.loads(ok(host.cnet("ls", "ns", "--json"))) == []
    assert host_veths(host) == []


def test_force_deleting_a_network_detaches_its_sandboxes(br):
    host = br
    ok(host.cnet("create", "ns", "a", "--network", "mybr0"))
    ok(host.cnet("delete", "bridge", "mybr0", "--force"))
    assert host_veths(host) == [] and "mybr0" not in host.links()
    assert sorted(ns_links(host, "a")) == ["lo"]
    assert json.loads(ok(host.cnet("ls", "ns", "--json")))[0]["name"] == "a"


def test_twenty_concurrent_attaches_get_twenty_addresses(br):
    host = br
    for i in range(20):
        ok(host.cnet("create", "ns", f"c{i}"))
    procs = [host.popen([*CNET, "attach", f"c{i}", "mybr0"], stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE, text=True) for i in range(20)]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        outs.append(out.strip())
    assert len(set(outs)) == 20
    assert len(host_veths(host)) == 20
    assert sorted(e["addresses"][0] for e in json.loads(ok(host.cnet("ls", "endpoints", "--json")))) == sorted(outs)


def test_batch_runs_lines_under_one_lock_and_stops_at_the_first_failure(br):
    host = br
    script = "\n".join([
        "# two sandboxes and a published port",
        "create ns a --network mybr0 --publish 8080:80",
        "cnet create ns b --network mybr0",
        "",
        "create ns c --network mybr0 --ip 172.26.0.2",  # taken by a: fails, nothing of c stays
        "create ns never",
    ]) + "\n"
    r = host.cnet("batch", "-", input=script)
    assert r.returncode == 4
    assert r.stderr == "cnet: error: line 5: address 172.26.0.2 is already in use\n"
    assert r.stdout == "172.26.0.2/16\n0.0.0.0:8080->80/tcp\n172.26.0.3/16\n"
    # what the lines before did is done and recorded; the failed line left nothing
    assert [s["name"] for s in json.loads(ok(host.cnet("ls", "ns", "--json")))] == ["a", "b"]
    assert sorted(ok(host.run(["ip", "netns", "list"])).split()[::3]) == ["a", "b"]
    assert len(host_veths(host)) == 2
    assert dnat_present(host, 8080, "172.26.0.2", 80)
    assert ok(host.cnet("exec", "a", "--", "getent", "hosts", "b")).split() == ["172.26.0.3", "b"]
    # a batch that tears everything down
    r = host.cnet("batch", input="delete ns a\ndelete ns b\ndelete bridge mybr0\n")
    assert (r.returncode, r.stdout) == (0, "a\nb\nmybr0\n")
    assert sorted(host.links()) == ["lo"]
    if host.env.get("CNET_FIREWALL") == "iptables":  # iptables keeps its (empty) built-in chains
        assert "CNET" not in ok(host.run(["iptables-save"])) + ok(host.run(["ip6tables-save"]))
    else:
        assert ok(host.run(["nft", "list", "ruleset"])) == ""


@pytest.mark.parametrize("line, message", [
    ("exec a -- true", "'exec' cannot be used in a batch"),
    ("--state /x ls", "global options go before `batch`"),
    ("create ns 'unclosed", "cannot split the line"),
    ("create bridge", "Missing argument 'NAME'"),
])
def test_batch_refuses_what_it_cannot_run(br, line, message):
    r = br.cnet("batch", input=f"create ns a\n{line}\n")
    assert r.returncode == 2 and r.stderr.startswith("cnet: error: line 2: ") and message in r.stderr
    assert json.loads(ok(br.cnet("ls", "ns", "--json")))[0]["name"] == "a"


# --- teardown goes through every step, and the state drops only what is gone ------------

def test_a_delete_ns_whose_detach_fails_still_removes_the_namespace_and_keeps_the_record(br):
    host = br
    ok(host.cnet("create", "ns", "a", "--network", "mybr0", "--publish", "8080:80"))
    r = host.cnet("delete", "ns", "a", env={"CNET_FAULT": "detach"})
    assert r.returncode == 1 and "removing endpoint a/mybr0 (link cn" in r.stderr, r.stderr
    assert "rolled back" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    # every later step was still taken: the name is gone, and with the namespace its veth pair
    assert ok(host.run(["ip", "netns", "list"])) == ""
    assert eventually(lambda: host_veths(host) == [])  # the kernel tears the namespace down a moment later
    # the record stays (something of it could still be there), without its published port
    assert ok(host.cnet("ls", "ns", "-q")) == "a\n"
    assert ok(host.cnet("ls", "ports", "-q")) == ""
    assert not dnat_present(host, 8080, "172.26.0.2", 80)
    # the same delete again finishes it
    ok(host.cnet("delete", "ns", "a"))
    assert ok(host.cnet("ls", "ns", "-q")) == "" and ok(host.cnet("ls", "endpoints", "-q")) == ""


def test_a_delete_ns_whose_name_cannot_be_removed_keeps_the_sandbox_but_not_its_endpoint(br):
    host = br
    ok(host.cnet("create", "ns", "a", "--network", "mybr0"))
    r = host.cnet("delete", "ns", "a", env={"CNET_FAULT": "netns-remove"})
    assert r.returncode == 1 and "removing /run/netns/a of sandbox a failed: injected fault" in r.stderr, r.stderr
    assert [line.split()[0] for line in ok(host.run(["ip", "netns", "list"])).splitlines()] == ["a"]
    assert host_veths(host) == []  # the endpoint went, and so did its record
    assert ok(host.cnet("ls", "ns", "-q")) == "a\n" and ok(host.cnet("ls", "endpoints", "-q")) == ""
    ok(host.cnet("delete", "ns", "a"))
    assert ok(host.run(["ip", "netns", "list"])) == "" and ok(host.cnet("ls", "ns", "-q")) == ""


def test_a_delete_network_whose_detach_fails_keeps_the_network_and_the_endpoint(br):
    host = br
    ok(host.cnet("create", "ns", "a", "--network", "mybr0"))
    ok(host.cnet("create", "ns", "b", "--network", "mybr0"))
    r = host.cnet("delete", "network", "mybr0", "--force", env={"CNET_FAULT": "detach"})
    assert r.returncode == 1 and "removing endpoint a/mybr0 (link cn" in r.stderr, r.stderr
    assert "removing endpoint b/mybr0" in r.stderr  # the second detach was tried too
    assert ok(host.cnet("ls", "-q")) == "mybr0\n"
    assert ok(host.cnet("ls", "endpoints", "-q")).split() == ["a:mybr0", "b:mybr0"]
    ok(host.cnet("delete", "network", "mybr0", "--force"))
    assert ok(host.cnet("ls", "-q")) == "" and host_veths(host) == [] and "mybr0" not in host.links()
