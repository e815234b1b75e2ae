"""Overlay networks across three hosts on a real three-member etcd cluster
(tests/overlay_cluster.py): made on one host and joined on the others,
addresses unique across hosts, traffic between hosts, the agent, a store
that is partly or wholly down, NAT and published ports, restore."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess

import pytest

from overlay_cluster import MEMBERS, SWITCH_ADDRESS, address
from testhost import CNET, ask, eventually, serve


def ok(result) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def hosts(cluster):
    return [cluster.host(n) for n in MEMBERS]


def make_overlay(cluster, name: str, subnet: str) -> None:
    """NAME on h1 with its subnet, joined by h2 and h3 with no options."""
    ok(cluster.host(1).cnet("create", "overlay", name, "--subnet", subnet))
    for n in (2, 3):
        assert ok(cluster.host(n).cnet("create", "overlay", name)).strip() == name


def fdb(host, device: str) -> set[tuple[str, str]]:
    """(MAC, VTEP) of the device's static destinations, as the kernel lists them."""
    entries = json.loads(host.run(["bridge", "-j", "fdb", "show", "dev", device], check=True).stdout or "[]")
    return {(e["mac"], e["dst"]) for e in entries if e.get("dst")}


def vxlan_device(host, network: str) -> str:
    view = json.loads(ok(host.cnet("inspect", network, "--json")))
    return view["kernel"]["vxlan"]["name"]


def pings(host, sandbox: str, ip: str) -> bool:
    return host.run(["ip", "netns", "exec", sandbox, "ping", "-c1", "-W1", ip]).returncode == 0


def address_of(host, sandbox: str, network: str) -> str:
    view = json.loads(ok(host.cnet("inspect", sandbox, "--json")))
    (ep,) = [e for e in view["endpoints"] if e["network"] == network]
    return ep["addresses"][0].split("/")[0]


@contextlib.contextmanager
def agent_on(cluster, n: int, *args: str):
    """`cnet agent` running on hN (registered in the store) for the block; stopped with SIGTERM: exit 0."""
    agent = cluster.host(n).popen([*CNET, "agent", *args], stderr=subprocess.PIPE, text=True)
    try:
        assert eventually(lambda: ok(cluster.etcdctl("get", f"/cnet/alive/h{n}")).strip(), timeout=10)
        yield agent
    finally:
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(timeout=10) == 0, agent.stderr.read()


def test_joined_overlays_match_and_other_settings_are_refused(cluster):
    h1, h2, h3 = hosts(cluster)
    ok(h1.cnet("create", "overlay", "ovj", "--subnet", "10.61.0.0/24"))
    refused = h3.cnet("create", "overlay", "ovj", "--subnet", "10.62.0.0/24")
    assert refused.returncode == 4 and "other settings" in refused.stderr
    assert "ovj" not in h3.links()
    assert json.loads(ok(h3.cnet("ls", "networks", "--json"))) == []
    ok(h2.cnet("create", "overlay", "ovj"))
    views = [json.loads(ok(h.cnet("inspect", "ovj", "--json"))) for h in (h1, h2)]
    for view, n in zip(views, (1, 2)):
        net, kernel = view, view["kernel"]
        assert [s["subnet"] for s in net["subnets"]] == ["10.61.0.0/24"]
        assert net["mtu"] == 1450  # the veth underlay's 1500 less the VXLAN headers
        assert kernel["vxlan"]["local"] == address(n) and kernel["vxlan"]["port"] == 4789
    assert views[0]["kernel"]["vxlan"]["vni"] == views[1]["kernel"]["vxlan"]["vni"]
    again = h2.cnet("create", "overlay", "ovj", "--exist-ok")
    assert again.returncode == 0, again.stderr
    vni = views[0]["kernel"]["vxlan"]["vni"]
    ok(h1.cnet("delete", "network", "ovj"))
    assert ok(cluster.etcdctl("get", "/cnet/networks/ovj", "--keys-only")).strip() == "/cnet/networks/ovj"
    ok(h2.cnet("delete", "network", "ovj"))  # the last host of it: the store forgets it, its VNI is free
    for prefix in ("/cnet/networks/ovj", "/cnet/members/ovj/", "/cnet/addrs/ovj/", "/cnet/cursor/ovj/",
                   f"/cnet/vnis/{vni}"):
        assert ok(cluster.etcdctl("get", "--prefix", "--keys-only", prefix)).strip() == "", prefix
    ok(h3.cnet("create", "overlay", "ovj", "--subnet", "10.62.0.0/24"))  # what was refused is a new network now
    assert json.loads(ok(h3.cnet("inspect", "ovj", "--json")))["kernel"]["vxlan"]["vni"] == vni
    ok(h3.cnet("delete", "network", "ovj"))


def test_thirty_attaches_at_once_get_distinct_addresses_and_reach_each_other(cluster):
    make_overlay(cluster, "ov30", "10.63.0.0/24")
    running = []
    for h in hosts(cluster):
        for i in range(10):
            running.append(h.popen([*CNET, "create", "ns", f"s{i}", "--network", "ov30"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = [(p.wait(timeout=120), *p.communicate()) for p in running]
    assert all(code == 0 for code, _, _ in results), [err for code, _, err in results if code]
    addresses = [out.strip() for _, out, _ in results]
    assert len(set(addresses)) == 30, addresses
    # No agent: one cnet command on a host brings it up to date.
    for h in hosts(cluster):
        ok(h.cnet("create", "overlay", "ov30", "--exist-ok"))
    h1, h2, h3 = hosts(cluster)
    on = {n: address_of(cluster.host(n), "s0", "ov30") for n in MEMBERS}
    assert pings(h1, "s0", on[2]) and pings(h1, "s0", on[3]) and pings(h3, "s9", on[2])
    server = serve(h2, "tcp", 7000, ns="s0")
    try:
        assert ask(h1, "tcp", on[2], 7000, ns="s0") == on[1]  # the source address is kept
        assert ask(h3, "tcp", on[2], 7000, ns="s0") == on[3]
    finally:
        server.kill()
    for h in hosts(cluster):
        ok(h.cnet("delete", "network", "ov30", "--force"))


def test_the_agent_propagates_attach_and_detach(cluster):
    make_overlay(cluster, "ova", "10.64.0.0/24")
    h1, h2, h3 = hosts(cluster)
    with agent_on(cluster, 1):
        device = vxlan_device(h1, "ova")
        ok(h3.cnet("create", "ns", "late", "--network", "ova"))
        ip3 = address_of(h3, "late", "ova")
        ok(h1.cnet("create", "ns", "here"))
        assert eventually(lambda: any(vtep == address(3) for _, vtep in fdb(h1, device)), timeout=5)
        # h3 learns of h1's new endpoint by its own next command (it has no agent)
        ok(h1.cnet("attach", "here", "ova"))
        ok(h3.cnet("create", "overlay", "ova", "--exist-ok"))
        assert pings(h1, "here", ip3)
        ok(h3.cnet("detach", "late", "ova"))
        assert eventually(lambda: not any(vtep == address(3) for _, vtep in fdb(h1, device)), timeout=5)
        inspect = json.loads(ok(h2.cnet("inspect", "ova", "--json")))
        assert inspect["kernel"]["hosts"]["h1"]["alive"] is True
        assert inspect["kernel"]["hosts"]["h3"]["alive"] is False
    assert ok(cluster.etcdctl("get", "/cnet/alive/h1")).strip() == ""  # its lease revoked on the way out
    for h in hosts(cluster):
        ok(h.cnet("delete", "network", "ova", "--force"))


def test_store_partly_or_wholly_down(cluster):
    make_overlay(cluster, "ovd", "10.65.0.0/24")
    h1, h2, _ = hosts(cluster)
    ok(h1.cnet("create", "ns", "a", "--network", "ovd"))
    ok(h2.cnet("create", "ns", "b", "--network", "ovd"))
    ok(h1.cnet("create", "ns", "c"))
    ok(h1.cnet("create", "overlay", "ovd", "--exist-ok"))
    ip_b = address_of(h2, "b", "ovd")
    follower = next(n for n in MEMBERS if n != cluster.leader())
    cluster.kill_member(follower)
    try:
        ok(h1.cnet("attach", "c", "ovd"))  # two members of three: a quorum
        ok(h1.cnet("detach", "c", "ovd"))
    finally:
        cluster.start_member(follower)
        cluster.wait_healthy()
    state_before = h1.read("/var/lib/cnet/state.yaml")
    with agent_on(cluster, 2):
        cluster.stop_all()
        try:
            refused = h1.cnet("attach", "c", "ovd")
            assert refused.returncode == 1 and "store unreachable" in refused.stderr, refused.stderr
            assert h1.read("/var/lib/cnet/state.yaml") == state_before
            assert "ovd" not in json.dumps(json.loads(ok(h1.cnet("inspect", "c", "--json")))["endpoints"])
            assert pings(h1, "a", ip_b)  # the data path does not need the store
            made = h2.cnet("create", "overlay", "ovdown", "--subnet", "10.71.0.0/24")
            assert made.returncode == 1 and "store unreachable" in made.stderr, made.stderr
            assert "ovdown" not in h2.links()
            assert {n for n in h2.links() if n.startswith("cnvx")} == {vxlan_device(h2, "ovd")}
        finally:
            cluster.start_all()
        ok(h1.cnet("attach", "c", "ovd"))
        ip_c = address_of(h1, "c", "ovd")
        # h2's agent outlived the store's outage: it learns of c by itself
        assert eventually(lambda: pings(h2, "b", ip_c), timeout=15)
    for h in (h1, h2, cluster.host(3)):
        ok(h.cnet("delete", "network", "ovd", "--force"))


def test_masquerade_and_published_ports_on_the_sandbox_host(cluster):
    make_overlay(cluster, "ovp", "10.66.0.0/24")
    h1, h2, _ = hosts(cluster)
    ok(h2.cnet("create", "ns", "web", "--network", "ovp", "--publish", "8080:80"))
    server = serve(h2, "tcp", 80, ns="web")
    lan = serve(cluster.underlay, "tcp", 9000)
    try:
        assert ask(cluster.underlay, "tcp", address(2), 8080) == SWITCH_ADDRESS
        assert ask(h2, "tcp", SWITCH_ADDRESS, 9000, ns="web") == address(2)  # masqueraded by its own host
    finally:
        server.kill()
        lan.kill()
    for h in hosts(cluster):
        ok(h.cnet("delete", "network", "ovp", "--force"))


def test_restore_after_the_kernel_state_is_wiped(cluster):
    make_overlay(cluster, "ovr", "10.67.0.0/24")
    h1, h2, _ = hosts(cluster)
    ok(h1.cnet("create", "ns", "a", "--network", "ovr"))
    ok(h2.cnet("create", "ns", "b", "--network", "ovr"))
    ok(h1.cnet("create", "overlay", "ovr", "--exist-ok"))
    ip_a = address_of(h1, "a", "ovr")
    device = vxlan_device(h2, "ovr")
    # a reboot of h2, as far as its kernel is concerned
    h2.run(["ip", "netns", "delete", "b"], check=True)
    h2.run(["ip", "link", "delete", "ovr"], check=True)
    h2.run(["ip", "link", "delete", device], check=True)
    h2.run(["nft", "flush", "ruleset"], check=True)
    assert h2.cnet("check").returncode == 5
    ok(h2.cnet("restore"))
    assert h2.cnet("check").returncode == 0
    assert pings(h2, "b", ip_a)
    for h in hosts(cluster):
        ok(h.cnet("delete", "network", "ovr", "--force"))


def test_entries_edited_by_hand_are_found_and_a_lost_sync_record_costs_nothing(cluster):
    """A sync diffs the store against what the last one installed, kept
    beside the state file: `check --deep` compares that with the kernel,
    restore mends it, and without the record the next sync reads the kernel."""
    make_overlay(cluster, "ove", "10.71.0.0/24")
    h1, h2, _ = hosts(cluster)
    ok(h2.cnet("create", "ns", "b", "--network", "ove"))
    ok(h2.cnet("create", "ns", "c", "--network", "ove"))
    ok(h1.cnet("create", "ns", "a", "--network", "ove"))  # the attach syncs h1: h2's two endpoints
    device = vxlan_device(h1, "ove")
    entries = fdb(h1, device)
    assert len(entries) == 2
    mac, vtep = sorted(entries)[0]
    h1.run(["bridge", "fdb", "del", mac, "dev", device, "dst", vtep], check=True)
    h1.run(["ip", "neigh", "add", "10.71.0.200", "lladdr", "02:00:00:71:00:c8", "dev", device, "nud", "permanent"],
           check=True)
    deep = h1.cnet("check", "--deep")
    assert deep.returncode == 5
    assert f"FDB entries of {device} differ from its last sync with the store (1 missing, 0 extra)" in deep.stdout
    assert f"neighbour entries of {device} differ from its last sync with the store (0 missing, 1 extra)" in deep.stdout
    ok(h1.cnet("restore"))
    assert fdb(h1, device) == entries
    assert "10.71.0.200" not in h1.run(["ip", "neigh", "show", "dev", device], check=True).stdout
    assert h1.cnet("check", "--deep").returncode == 0
    # the record lost: the next sync (here a detach's on h2, then any overlay command on h1) reads the kernel
    h1.run(["rm", "/var/lib/cnet/state.yaml.overlay/ove.json"], check=True)
    ip_b = address_of(h2, "b", "ove")
    ok(h2.cnet("detach", "c", "ove"))
    ok(h1.cnet("create", "overlay", "ove", "--exist-ok"))
    assert len(fdb(h1, device)) == 1
    assert pings(h1, "a", ip_b)
    for h in hosts(cluster):
        ok(h.cnet("delete", "network", "ove", "--force"))
    assert h1.run(["ls", "/var/lib/cnet/state.yaml.overlay"]).stdout.split() == []


@pytest.fixture(autouse=True)
def _no_leftover_sandboxes(cluster):
    """Each test starts with no sandboxes on any host (one that failed halfway leaves its own)."""
    yield
    for h in hosts(cluster):
        for name in ok(h.cnet("ls", "ns", "-q")).split():
            ok(h.cnet("delete", "ns", name))


def test_a_failed_attach_leaves_no_record_and_gc_releases_strays(cluster):
    make_overlay(cluster, "ovg", "10.68.0.0/24")
    h1 = cluster.host(1)
    ok(h1.cnet("create", "ns", "a"))
    failed = h1.cnet("attach", "a", "ovg", env={"CNET_FAULT": "attach-addresses"})
    assert failed.returncode == 1, failed.stderr
    assert ok(cluster.etcdctl("get", "--prefix", "--keys-only", "/cnet/addrs/ovg/")).split() == []
    # what an attach killed after its reservation leaves: a record of h1 no endpoint holds
    stray = '{"host": "h1", "mac": "02:00:00:68:00:09", "sandbox": "ghost", "vtep": "10.77.0.11"}'
    theirs = '{"host": "h2", "mac": "02:00:00:68:00:0a", "sandbox": "other", "vtep": "10.77.0.12"}'
    ok(cluster.etcdctl("put", "/cnet/addrs/ovg/10.68.0.9", stray))
    ok(cluster.etcdctl("put", "/cnet/addrs/ovg/10.68.0.10", theirs))
    assert ("would remove: address record 10.68.0.9 of sandbox ghost on overlay ovg (not in the state)"
            in ok(h1.cnet("gc", "--dry-run")).splitlines())
    assert ok(cluster.etcdctl("get", "/cnet/addrs/ovg/10.68.0.9", "--print-value-only")).strip() == stray
    ok(h1.cnet("gc"))
    keys = ok(cluster.etcdctl("get", "--prefix", "--keys-only", "/cnet/addrs/ovg/")).split()
    assert keys == ["/cnet/addrs/ovg/10.68.0.10"]  # another host's record is its own business
    ok(cluster.etcdctl("del", "/cnet/addrs/ovg/10.68.0.10"))
    for h in hosts(cluster):
        ok(h.cnet("delete", "network", "ovg"))


def test_overlay_forget_releases_a_gone_hosts_addresses_only(cluster):
    make_overlay(cluster, "ovf", "10.69.0.0/24")
    h1, h2, _ = hosts(cluster)
    ok(h2.cnet("create", "ns", "b", "--network", "ovf"))
    gone = '{"host": "h9", "mac": "02:00:00:69:00:09", "sandbox": "old", "vtep": "10.77.0.19"}'
    ok(cluster.etcdctl("put", "/cnet/addrs/ovf/10.69.0.9", gone))
    ok(cluster.etcdctl("put", "/cnet/hosts/h9", '{"vtep": "10.77.0.19"}'))
    assert h1.cnet("overlay", "forget", "h1").returncode == 4  # this host: detach instead
    lease = ok(cluster.etcdctl("lease", "grant", "30")).split()[1]
    ok(cluster.etcdctl("put", "/cnet/alive/h9", "{}", f"--lease={lease}"))
    alive = h1.cnet("overlay", "forget", "h9")
    assert alive.returncode == 4 and "alive" in alive.stderr
    ok(cluster.etcdctl("lease", "revoke", lease))
    assert ok(h1.cnet("overlay", "forget", "h9")).splitlines() == ["ovf 10.69.0.9"]
    keys = ok(cluster.etcdctl("get", "--prefix", "--keys-only", "/cnet/addrs/ovf/")).split()
    assert keys == [f"/cnet/addrs/ovf/{address_of(h2, 'b', 'ovf')}"]
    assert ok(cluster.etcdctl("get", "/cnet/hosts/h9")).strip() == ""
    for h in hosts(cluster):
        ok(h.cnet("delete", "network", "ovf", "--force"))


def test_agent_restore_repairs_drift(cluster):
    make_overlay(cluster, "ovx", "10.70.0.0/24")
    h2 = cluster.host(2)
    ok(h2.cnet("create", "ns", "b", "--network", "ovx", "--publish", "8081:80"))
    with agent_on(cluster, 2, "--restore"):
        assert eventually(lambda: h2.cnet("check").returncode == 0, timeout=10)
        h2.run(["nft", "flush", "ruleset"], check=True)  # a firewall reload
        assert eventually(lambda: h2.cnet("check").returncode == 0, timeout=20)
        server = serve(h2, "tcp", 80, ns="b")
        try:
            assert ask(cluster.underlay, "tcp", address(2), 8081) == SWITCH_ADDRESS
        finally:
            server.kill()
    for h in hosts(cluster):
        ok(h.cnet("delete", "network", "ovx", "--force"))


def test_apply_of_an_overlay_on_two_hosts_pings_across_round_trips_and_prunes(cluster):
    h1, h2, _ = hosts(cluster)
    files = {n: f"version: 1\nnetworks:\n  ova: {{driver: overlay, subnet: 10.71.0.0/24}}\n"
                f"sandboxes:\n  s{n}: {{networks: [ova]}}\n" for n in (1, 2)}
    for n, h in ((1, h1), (2, h2)):
        h.run(["sh", "-c", "cat > /etc/cnet/ova.yaml"], input=files[n], check=True)
        assert "+ create network ova (overlay 10.71.0.0/24)" in ok(h.cnet("apply", "/etc/cnet/ova.yaml"))
    # again: no change, and h1 learns h2's endpoint (apply syncs its overlays, as create overlay does)
    assert ok(h1.cnet("apply", "/etc/cnet/ova.yaml")).strip() == "no changes"
    assert pings(h1, "s1", address_of(h2, "s2", "ova")) and pings(h2, "s2", address_of(h1, "s1", "ova"))
    exported = ok(h1.cnet("export"))
    assert "driver: overlay" in exported and "vtep" not in exported
    h1.run(["sh", "-c", "cat > /etc/cnet/ova-export.yaml"], input=exported, check=True)
    dry = h1.cnet("apply", "/etc/cnet/ova-export.yaml", "--dry-run")
    assert dry.returncode == 0 and dry.stdout.strip() == "no changes", dry.stdout + dry.stderr
    # another subnet on h1 alone: h2 holds ova, so the store would refuse it; refused before anything is done
    h1.run(["sh", "-c", "cat > /etc/cnet/ova2.yaml"], input=files[1].replace("10.71.0.0", "10.72.0.0"), check=True)
    state = h1.read("/var/lib/cnet/state.yaml")
    dry = h1.cnet("apply", "/etc/cnet/ova2.yaml", "--dry-run")
    assert dry.returncode == 4 and "overlay ova is held by host(s) h2" in dry.stderr, dry.stdout + dry.stderr
    other = h1.cnet("apply", "/etc/cnet/ova2.yaml")
    assert other.returncode == 4 and "overlay ova is held by host(s) h2" in other.stderr, other.stderr
    assert "nothing was done" in other.stderr and h1.read("/var/lib/cnet/state.yaml") == state
    assert pings(h1, "s1", address_of(h2, "s2", "ova"))
    for h in (h1, h2):
        h.run(["sh", "-c", "printf 'version: 1\\n' > /etc/cnet/empty.yaml"], check=True)
        assert "- delete network ova" in ok(h.cnet("apply", "/etc/cnet/empty.yaml", "--prune"))
        assert "ova" not in h.links()
    for prefix in ("/cnet/networks/ova", "/cnet/members/ova/", "/cnet/addrs/ova/", "/cnet/cursor/ova/"):
        assert ok(cluster.etcdctl("get", "--prefix", "--keys-only", prefix)).strip() == "", prefix


def test_an_ipv6_underlay_carries_full_size_frames_and_one_family_is_kept(cluster):
    """advertise: an IPv6 address on h1 and h2. The MTU is the underlay's less
    70 (IPv6's outer header is 20 bytes more than IPv4's): a frame of the
    overlay's full MTU crosses with DF set. h3, on IPv4, cannot join."""
    h1, h2, h3 = hosts(cluster)
    try:
        for n, h in ((1, h1), (2, h2)):
            h.run(["ip", "addr", "add", f"fd77::1{n}/64", "dev", "eth0", "nodad"], check=True)
            config = h.read("/etc/cnet/config.yaml").replace(f"advertise: {address(n)}", f"advertise: fd77::1{n}")
            h.run(["sh", "-c", "cat > /etc/cnet/config.yaml"], input=config, check=True)
        ok(h1.cnet("create", "overlay", "ov6", "--subnet", "10.73.0.0/24"))
        ok(h2.cnet("create", "overlay", "ov6"))
        view = json.loads(ok(h2.cnet("inspect", "ov6", "--json")))
        assert view["mtu"] == 1430 and view["kernel"]["vxlan"]["local"] == "fd77::12"
        ok(h1.cnet("create", "ns", "a6", "--network", "ov6"))
        ok(h2.cnet("create", "ns", "b6", "--network", "ov6"))
        ok(h1.cnet("create", "overlay", "ov6", "--exist-ok"))  # h1 syncs: b6's entries
        assert "fd77::12" in {vtep for _, vtep in fdb(h1, f"cnvx{view['kernel']['vxlan']['vni']}")}
        b6 = address_of(h2, "b6", "ov6")
        full = h1.run(["ip", "netns", "exec", "a6", "ping", "-c1", "-W2", "-M", "do", "-s", str(1430 - 28), b6])
        assert full.returncode == 0, full.stdout + full.stderr
        refused = h3.cnet("create", "overlay", "ov6")
        assert refused.returncode == 4 and "runs over IPv6 between its hosts" in refused.stderr, refused.stderr
        assert "ov6" not in h3.links()
    finally:
        for n, h in ((1, h1), (2, h2)):
            h.cnet("delete", "network", "ov6", "--force")
            h.run(["ip", "addr", "del", f"fd77::1{n}/64", "dev", "eth0"])
            cluster._write_config(n)
