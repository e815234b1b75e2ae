"""cnet apply, export and graph in a test host: topologies made, changed,
pruned and refused; traffic through what they make (issue #15)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from testhost import ask, serve

TOPOLOGIES = Path(__file__).resolve().parents[2] / "examples" / "topologies"

LAB = """\
version: 1
networks:
  front: {subnet: [10.1.0.0/24, "fd00:1::/64"]}
  back: {subnet: 10.2.0.0/24}
sandboxes:
  a:
    networks: {front: {ip: 10.1.0.10}}
    publish: ["8080:80"]
  b:
    networks: {back: {ip: 10.2.0.10}}
    publish: ["8081:81"]
routers:
  r1: {networks: ["front:10.1.0.254", "back:10.2.0.254"]}
"""


def ok(result) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def pings(host, ns: str | None, address: str) -> bool:
    where = ["ip", "netns", "exec", ns] if ns else []
    return host.run([*where, "ping", "-c", "1", "-W", "1", address]).returncode == 0


def tbf_rate(host, link: str) -> int:
    """The rate of the tbf qdisc on a link, as tc counts it: bytes a second."""
    (tbf,) = [q for q in json.loads(ok(host.run(["tc", "-j", "qdisc", "show", "dev", link]))) if q["kind"] == "tbf"]
    return tbf["options"]["rate"]


def write(host, name: str, text: str) -> str:
    path = f"/etc/cnet/{name}"  # a tmpfs of the test host's own
    host.run(["sh", "-c", f"cat > {path}"], input=text, check=True)
    return path


def apply(host, text: str, *args: str):
    return host.cnet("apply", write(host, "topology.yaml", text), *args)


def plans_nothing(host, path: str) -> None:
    r = host.cnet("apply", "--dry-run", path)
    assert (r.returncode, r.stdout) == (0, "no changes\n"), r.stdout + r.stderr


@pytest.fixture
def lab(host):
    out = ok(apply(host, LAB))
    assert out.splitlines() == [
        "+ create network front (bridge 10.1.0.0/24 fd00:1::/64)",
        "+ create network back (bridge 10.2.0.0/24)",
        "+ create sandbox a (on front (10.1.0.10); publish 8080:80)",
        "+ create sandbox b (on back (10.2.0.10); publish 8081:81)",
        "+ create router r1 (front:10.1.0.254, back:10.2.0.254)",
    ]
    return host


def test_a_topology_is_made_and_traffic_flows_through_it(lab):
    host = lab
    assert pings(host, "a", "10.2.0.10") and pings(host, "b", "10.1.0.10")
    serve(host, "tcp", 81, ns="b")
    assert ask(host, "tcp", "10.2.0.10", 81, ns="a") == "10.1.0.10"  # through r1, the source kept
    serve(host, "tcp", 80, ns="a")
    assert ask(host, "tcp", "127.0.0.1", 8080) is not None  # the published port, from the host
    assert ask(host, "tcp", "127.0.0.1", 8081) is not None
    assert host.cnet("check", "--deep").returncode == 0


def test_the_same_file_again_plans_nothing_and_so_does_its_export(lab):
    host = lab
    before = host.read("/var/lib/cnet/state.yaml")
    r = apply(host, LAB)
    assert (r.returncode, r.stdout) == (0, "no changes\n")
    assert host.read("/var/lib/cnet/state.yaml") == before  # nothing to do: not even written
    exported = ok(host.cnet("export"))
    plans_nothing(host, write(host, "export.yaml", exported))
    r = host.cnet("apply", "--prune", "/etc/cnet/export.yaml")
    assert (r.returncode, r.stdout) == (0, "no changes\n")


def test_a_changed_file_plans_the_change_and_makes_it(lab):
    host = lab
    changed = LAB.replace('publish: ["8080:80"]', 'publish: ["9090:80"]').replace(
        "  b:\n", "  c: {networks: [back]}\n  b:\n")
    r = apply(host, changed, "--dry-run")
    assert r.returncode == 5 and r.stdout.splitlines() == [
        "~ change sandbox a: publish 9090:80; unpublish 8080:80",
        "+ create sandbox c (on back)",
    ], r.stdout
    ok(apply(host, changed))
    serve(host, "tcp", 80, ns="a")
    assert ask(host, "tcp", "127.0.0.1", 9090) is not None
    assert ask(host, "tcp", "127.0.0.1", 8080, timeout=1) is None
    assert pings(host, "c", "10.1.0.10")  # attached after the router: routed through it too
    # a subnet change replaces the network, and what stands on it comes back
    moved = changed.replace("10.2.0.", "10.3.0.")
    out = ok(apply(host, moved))
    assert "-/+ replace network back: subnet 10.2.0.0/24 -> 10.3.0.0/24" in out
    assert pings(host, "a", "10.3.0.10") and pings(host, "c", "10.1.0.10")
    plans_nothing(host, "/etc/cnet/topology.yaml")
    assert host.cnet("check", "--deep").returncode == 0


def test_prune_deletes_what_the_file_does_not_name(lab):
    host = lab
    ok(host.cnet("create", "bridge", "extra", "--subnet", "10.9.0.0/24"))
    ok(host.cnet("create", "ns", "stray", "--network", "extra"))
    assert apply(host, LAB, "--dry-run").stdout == "no changes\n"  # left alone without --prune
    r = apply(host, LAB, "--prune", "--dry-run")
    assert r.returncode == 5 and r.stdout.splitlines() == ["- delete sandbox stray", "- delete network extra"]
    ok(apply(host, LAB, "--prune"))
    assert set(ok(host.cnet("ls", "-q")).split()) == {"front", "back"}
    assert "extra" not in host.links() and "stray" not in ok(host.run(["ip", "netns", "list"]))
    assert host.cnet("check").returncode == 0


@pytest.mark.parametrize("text, line, message", [
    (LAB.replace("  b:\n", "  c: {networks: {front: {ip: 10.1.0.10}}}\n  b:\n"), 9,
     "address 10.1.0.10 is given to sandboxes.a.networks.front.ip"),
    (LAB.replace("{back: {ip: 10.2.0.10}}", "{side: {}}"), 10, "network side is not declared under networks"),
    (LAB.replace("ip: 10.2.0.10", "ip: 10.7.0.10"), 10, "10.7.0.10 is outside the subnet(s) 10.2.0.0/24"),
    (LAB.replace("publish: [\"8081:81\"]", "publsh: [\"8081:81\"]"), 11, "sandboxes.b.publsh: unknown key"),
    (LAB.replace("{subnet: 10.2.0.0/24}", "{subnet: 10.2.0.0/24, mtu: lots}"), 4,
     "networks.back.mtu: must be an integer"),
])
def test_a_bad_file_changes_nothing_and_names_the_line(lab, text, line, message):
    host = lab
    before = host.read("/var/lib/cnet/state.yaml")
    links = set(host.links())
    r = apply(host, text)
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stdout == "" and len(r.stderr.splitlines()) == 1
    assert r.stderr.startswith(f"cnet: error: /etc/cnet/topology.yaml line {line}: ") and message in r.stderr
    assert host.read("/var/lib/cnet/state.yaml") == before and set(host.links()) == links


def test_a_failing_step_stops_the_apply_named_with_what_came_before_kept(host):
    ok(host.cnet("create", "bridge", "taken", "--subnet", "10.4.0.0/24"))
    text = "networks:\n  front: {subnet: 10.1.0.0/24}\n  clash: {subnet: 10.4.0.0/25}\n"
    r = apply(host, text)
    assert r.returncode == 4, r.stdout + r.stderr
    assert "network clash: subnet 10.4.0.0/25 overlaps subnet 10.4.0.0/24 of network taken" in r.stderr
    assert "(the 1 step(s) before it are done)" in r.stderr
    assert set(ok(host.cnet("ls", "-q")).split()) == {"taken", "front"}  # the step before it stays
    assert "front" in host.links() and host.cnet("check").returncode == 0


def test_the_examples_apply_work_and_export_back_to_themselves(host):
    # two switches and a router
    ok(host.cnet("apply", str(TOPOLOGIES / "router.yaml")))
    serve(host, "tcp", 80, ns="b")
    assert ask(host, "tcp", "10.12.0.10", 80, ns="a") == "10.11.0.10"
    plans_nothing(host, str(TOPOLOGIES / "router.yaml"))
    plans_nothing(host, write(host, "export.yaml", ok(host.cnet("export"))))
    # Docker's four modes, beside it (--prune would take the router lab away)
    ok(host.cnet("apply", str(TOPOLOGIES / "docker-modes.yaml")))
    links = json.loads(ok(host.run(["ip", "netns", "exec", "nonet", "ip", "-j", "link"])))
    assert [link["ifname"] for link in links] == ["lo"]
    joined = ok(host.run(["ip", "netns", "exec", "joined", "ip", "-j", "addr"]))
    assert "172.31.0.10" in joined  # the stack of bridged
    host_links = ok(host.run(["ip", "netns", "exec", "hostnet", "ip", "-j", "link"]))
    assert "docker0" in host_links  # the host's own namespace
    serve(host, "tcp", 80, ns="bridged")
    assert ask(host, "tcp", "127.0.0.1", 8088) is not None
    plans_nothing(host, str(TOPOLOGIES / "docker-modes.yaml"))
    # a web server and its database
    ok(host.cnet("apply", "--prune", str(TOPOLOGIES / "web-db.yaml")))
    assert set(ok(host.cnet("ls", "-q")).split()) == {"front", "back"}
    serve(host, "tcp", 80, ns="web")
    serve(host, "tcp", 5432, ns="db")
    assert ask(host, "tcp", "127.0.0.1", 8080) is not None
    assert ask(host, "tcp", "10.22.0.20", 5432, ns="web") == "10.22.0.10"
    assert not pings(host, "db", "10.21.0.10")  # internal: db has no way to front
    plans_nothing(host, str(TOPOLOGIES / "web-db.yaml"))
    exported = write(host, "export.yaml", ok(host.cnet("export")))
    plans_nothing(host, exported)
    dot = ok(host.cnet("graph", str(TOPOLOGIES / "web-db.yaml")))
    assert dot.startswith("digraph cnet {") and '"sb:db" -> "net:back" [label="10.22.0.20"];' in dot
    live = ok(host.cnet("graph"))
    assert 'subgraph "cluster_front"' in live and "*:8080 -> 80/tcp" in live


def test_graph_draws_through_graphviz_or_names_the_package(host):
    path = str(TOPOLOGIES / "router.yaml")
    r = host.cnet("graph", "--format", "svg", path)
    if host.run(["sh", "-c", "command -v dot"]).returncode != 0:
        assert r.returncode == 1 and "graphviz" in r.stderr and len(r.stderr.splitlines()) == 1
    else:
        assert r.returncode == 0 and "<svg" in r.stdout


def test_the_macvlan_example_puts_sandboxes_on_the_lan(make_host):
    from testhost import link_hosts

    host, lan = make_host("host"), make_host("lan")
    link_hosts(host, lan, "lan0", "eth0")
    lan.run(["ip", "addr", "add", "192.168.50.1/24", "dev", "eth0"], check=True)
    path = str(TOPOLOGIES / "macvlan-lan.yaml")
    ok(host.cnet("apply", path))
    assert pings(lan, None, "192.168.50.200") and pings(lan, None, "192.168.50.201")  # from the LAN, directly
    serve(host, "tcp", 80, ns="nas")
    assert ask(host, "tcp", "192.168.50.201", 80) is not None  # and from the host, through host-access
    plans_nothing(host, path)
    plans_nothing(host, write(host, "export.yaml", ok(host.cnet("export"))))


def test_the_bandwidth_example_shapes_what_it_names_and_changes_limits_in_place(host):
    path = str(TOPOLOGIES / "bandwidth.yaml")
    ok(host.cnet("apply", path))
    listed = {e["sandbox"]: e["limits"] for e in json.loads(ok(host.cnet("ls", "endpoints", "--json")))}
    assert listed["slow"]["ingress_rate"] == 20_000_000 and listed["slow"]["egress_rate"] == 10_000_000
    assert listed["bursty"]["egress_burst"] == 65536 and listed["free"] is None
    host_side = next(e["host_ifname"] for e in json.loads(ok(host.cnet("ls", "endpoints", "--json")))
                     if e["sandbox"] == "slow")
    assert tbf_rate(host, host_side) == 2_500_000  # 20 mbit, in bytes a second
    plans_nothing(host, path)
    plans_nothing(host, write(host, "export.yaml", ok(host.cnet("export"))))
    faster = (TOPOLOGIES / "bandwidth.yaml").read_text().replace("ingress-rate: 20mbit", "ingress-rate: 40mbit")
    out = ok(apply(host, faster))
    assert out == "~ change sandbox slow: limit shaped: ingress-rate 20mbit -> 40mbit\n"
    assert tbf_rate(host, host_side) == 5_000_000
    assert host.cnet("check", "--deep").returncode == 0
