"""The overlay tests' bed (tests/overlay_cluster.py) is what it claims: three
hosts on a LAN of their own, and an etcd cluster that keeps serving with one
member down, stops with two, and comes back with its data."""

from __future__ import annotations

import json

from overlay_cluster import MEMBERS, STORE_URL, address, member_name


def ok(result) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_three_members_started_and_healthy(cluster):
    members = json.loads(ok(cluster.etcdctl("member", "list", "-w", "json")))["members"]
    assert sorted(m["name"] for m in members) == [member_name(n) for n in MEMBERS]
    assert cluster.healthy()


def test_a_value_put_on_h1_is_read_on_h3(cluster):
    ok(cluster.etcdctl("put", "/test/shared", "from-h1"))
    on_h3 = cluster.host(3).run(["etcdctl", f"--endpoints=http://{address(3)}:2379",
                                 "get", "/test/shared", "--print-value-only"])
    assert ok(on_h3).strip() == "from-h1"


def test_one_member_down_serves_two_down_refuses_all_back_has_the_data(cluster):
    ok(cluster.etcdctl("put", "/test/survives", "v1"))
    first = cluster.leader()  # the harder case: the two others must elect a new one
    cluster.kill_member(first)
    others = [n for n in MEMBERS if n != first]
    cluster.wait_healthy(others)
    ok(cluster.etcdctl("put", "/test/survives", "v2"))
    assert ok(cluster.etcdctl("get", "/test/survives", "--print-value-only")).strip() == "v2"

    second = others[0]
    cluster.kill_member(second)
    refused = cluster.etcdctl("put", "/test/refused", "v3", "--command-timeout=2s")
    assert refused.returncode != 0
    # No quorum: the client's deadline passes, or the server gives up first.
    # Neither means "not written": a survivor that leads keeps the entry in its
    # log, and it commits once the others are back. So its key goes unchecked.
    assert "context deadline exceeded" in refused.stderr or "etcdserver: request timed out" in refused.stderr

    cluster.start_member(first)
    cluster.start_member(second)
    cluster.wait_healthy()
    assert ok(cluster.etcdctl("get", "/test/survives", "--print-value-only")).strip() == "v2"


def test_all_stopped_refuses_all_started_again_has_the_data(cluster):
    ok(cluster.etcdctl("put", "/test/restart", "kept"))
    cluster.stop_all()
    assert cluster.etcdctl("get", "/test/restart", "--command-timeout=1s").returncode != 0
    cluster.start_all()
    assert ok(cluster.etcdctl("get", "/test/restart", "--print-value-only")).strip() == "kept"


def test_hosts_reach_each_other_on_the_underlay_and_nothing_beyond(cluster):
    ok(cluster.host(1).run(["ping", "-c1", "-W2", address(3)]))
    ok(cluster.client(["ping", "-c1", "-W2", address(2)]))
    for n in MEMBERS:
        routes = cluster.host(n).ip_json("route", "show", "table", "all")
        assert [r for r in routes if r["dst"] == "default"] == []
        assert "store: " + STORE_URL in cluster.host(n).read("/etc/cnet/config.yaml")
        ok(cluster.host(n).cnet("export"))  # reads the config: cnet takes its overlay keys
