"""Bridge networks against the real kernel, each test in its own test host.

What is checked is what the kernel shows (`ip -j`), not only cnet's report.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from testhost import CNET

STATE = "/var/lib/cnet/state.yaml"


def state_text(host) -> str:
    r = host.run(["cat", STATE])
    return r.stdout if r.returncode == 0 else ""


def test_create_bridge_as_the_kernel_shows_it(host):
    r = host.cnet("create", "bridge", "mybr0", "--subnet", "172.26.0.0/16", "--mtu", "1400")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "mybr0\n"
    link = host.links()["mybr0"]
    assert link["linkinfo"]["info_kind"] == "bridge"
    assert link["linkinfo"]["info_data"]["forward_delay"] == 0
    assert "UP" in link["flags"]
    assert link["mtu"] == 1400
    assert link["ifalias"] == "cnet network mybr0"
    # the gateway, and no IPv6 at all (not even link-local) on an IPv4-only network
    assert host.addresses("mybr0") == ["172.26.0.1/16"]
    assert host.read("/proc/sys/net/ipv6/conf/mybr0/disable_ipv6").strip() == "1"


def test_dual_stack_bridge_has_both_gateways(host):
    r = host.cnet("create", "bridge", "ds0", "--subnet", "10.77.0.0/24", "--subnet", "fd00:77::/64",
                  "--gateway", "10.77.0.254", "--ip-range", "10.77.0.128/25")
    assert r.returncode == 0, r.stderr
    addrs = host.addresses("ds0")
    assert "10.77.0.254/24" in addrs and "fd00:77::1/64" in addrs
    # the IPv6 gateway is usable at once: no duplicate address detection pending
    # (nor on its link-local address, the source of the neighbour solicitations
    # for traffic the host forwards to sandboxes, published ports included)
    infos = host.ip_json("addr", "show", "dev", "ds0")[0]["addr_info"]
    assert [a["local"] for a in infos if a.get("tentative")] == []
    assert any(a["local"].startswith("fe80:") for a in infos)
    shown = json.loads(host.cnet("inspect", "ds0", "--json").stdout)
    assert shown["subnets"] == [
        {"subnet": "10.77.0.0/24", "gateway": "10.77.0.254", "ip_range": "10.77.0.128/25"},
        {"subnet": "fd00:77::/64", "gateway": "fd00:77::1", "ip_range": None},
    ]
    assert shown["kernel"]["state"] in ("UP", "UNKNOWN")
    assert sorted(shown["kernel"]["addresses"]) == sorted(["10.77.0.254/24", "fd00:77::1/64"])


def test_automatic_subnets_avoid_cnet_networks_and_host_routes(host):
    # Something of the host's own already sits on 172.17.0.0/16.
    host.run(["ip", "link", "add", "other0", "type", "bridge"], check=True)
    host.run(["ip", "addr", "add", "172.17.0.1/16", "dev", "other0"], check=True)
    assert host.cnet("create", "bridge", "a0").returncode == 0
    assert host.cnet("create", "bridge", "b0").returncode == 0
    assert host.addresses("a0") == ["172.18.0.1/16"]
    assert host.addresses("b0") == ["172.19.0.1/16"]


def test_pool_order_and_custom_pools_from_config(host):
    host.run(["sh", "-c", "printf 'address_pools:\\n  - base: 10.123.0.0/16\\n    size: 24\\n' > /etc/cnet/config.yaml"],
             check=True)
    assert host.cnet("create", "bridge", "p0").returncode == 0
    assert host.cnet("create", "bridge", "p1").returncode == 0
    assert host.addresses("p0") == ["10.123.0.1/24"]
    assert host.addresses("p1") == ["10.123.1.1/24"]


@pytest.mark.parametrize("args, code, message", [
    (["create", "bridge", "mybr1", "--subnet", "172.26.128.0/17"], 4, "overlaps subnet 172.26.0.0/16 of network mybr0"),
    (["create", "bridge", "mybr0", "--subnet", "10.1.0.0/24"], 4, "network mybr0 already exists"),
    (["create", "bridge", "lo", "--subnet", "10.1.0.0/24"], 4, "a link named lo already exists"),
    (["create", "bridge", "bad/name"], 2, "cannot hold"),
    (["create", "bridge", "x", "--subnet", "10.1.0.0/31"], 2, "too small"),
    (["create", "bridge", "x", "--subnet", "10.1.0.0/24", "--gateway", "10.2.0.1"], 2, "outside subnet"),
    (["create", "bridge", "x", "--mtu", "50"], 2, "MTU 50 is out of range"),
    (["create", "bridge", "mybr0", "--subnet", "172.26.0.0/16", "--mtu", "9000", "--exist-ok"], 4,
     "exists with other settings"),
])
def test_bad_requests_change_nothing(host, args, code, message):
    assert host.cnet("create", "bridge", "mybr0", "--subnet", "172.26.0.0/16").returncode == 0
    links_before, state_before = sorted(host.links()), state_text(host)
    r = host.cnet(*args)
    assert r.returncode == code, r.stderr
    assert r.stderr.startswith("cnet: error: ") and message in r.stderr
    assert r.stderr.count("\n") == 1 and r.stdout == ""
    assert sorted(host.links()) == links_before
    assert state_text(host) == state_before


def test_exist_ok_accepts_the_identical_network(host):
    assert host.cnet("create", "bridge", "mybr0", "--subnet", "172.26.0.0/16").returncode == 0
    before = state_text(host)
    r = host.cnet("create", "bridge", "mybr0", "--subnet", "172.26.0.0/16", "--exist-ok")
    assert (r.returncode, r.stdout) == (0, "mybr0\n")
    assert host.cnet("create", "bridge", "mybr0", "--exist-ok").returncode == 0  # no --subnet: any subnet will do
    assert json.loads(state_text(host)) == json.loads(before)


def test_a_failure_part_way_rolls_everything_back(host):
    assert host.cnet("create", "bridge", "keep0", "--subnet", "10.5.0.0/24").returncode == 0
    before = state_text(host)
    r = host.cnet("create", "bridge", "fail0", "--subnet", "10.6.0.0/24", env={"CNET_FAULT": "bridge-addresses"})
    assert r.returncode == 1
    assert r.stderr == "cnet: error: injected fault at bridge-addresses (CNET_FAULT)\n"
    assert "fail0" not in host.links()
    assert state_text(host) == before
    # and the same request goes through afterwards
    assert host.cnet("create", "bridge", "fail0", "--subnet", "10.6.0.0/24").returncode == 0


def test_delete_removes_the_bridge_and_the_record(host):
    for name, subnet in (("d0", "10.8.0.0/24"), ("d1", "fd00:8::/64")):
        assert host.cnet("create", "bridge", name, "--subnet", subnet).returncode == 0
    assert host.cnet("delete", "bridge", "d0").stdout == "d0\n"
    assert host.cnet("rm", "network", "d1").returncode == 0
    assert sorted(host.links()) == ["lo"]
    assert json.loads(host.cnet("ls", "--json").stdout) == []
    r = host.cnet("delete", "bridge", "d0")
    assert (r.returncode, r.stderr) == (3, "cnet: error: network d0 not found\n")
    r = host.cnet("delete", "bridge", "d0", "--if-exists")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")


def test_a_bridge_removed_behind_cnets_back_is_reported_and_can_be_deleted(host):
    assert host.cnet("create", "bridge", "gone0", "--subnet", "10.9.0.0/24").returncode == 0
    host.run(["ip", "link", "del", "gone0"], check=True)
    shown = host.cnet("inspect", "gone0")
    assert shown.returncode == 0 and "MISSING" in shown.stdout
    assert json.loads(host.cnet("inspect", "gone0", "--json").stdout)["kernel"] is None
    assert host.cnet("delete", "bridge", "gone0").returncode == 0
    assert host.cnet("ls", "-q").stdout == ""


def test_delete_never_removes_a_link_cnet_did_not_make(host):
    assert host.cnet("create", "bridge", "own0", "--subnet", "10.10.0.0/24").returncode == 0
    # Someone replaces cnet's bridge with one of their own under the same name.
    host.run(["ip", "link", "del", "own0"], check=True)
    host.run(["ip", "link", "add", "own0", "type", "bridge"], check=True)
    assert host.cnet("delete", "bridge", "own0").returncode == 0
    assert "own0" in host.links()


def test_concurrent_creates_serialize_on_the_lock(host):
    procs = [host.popen([*CNET, "create", "bridge", f"c{i}"],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(8)]
    results = [(p.wait(timeout=60), p.stderr.read()) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    assert all(code == 0 for code, _ in results), results
    subnets = [n["subnets"][0]["subnet"] for n in json.loads(host.cnet("ls", "--json").stdout)]
    assert len(subnets) == 8 and len(set(subnets)) == 8
    assert sorted(host.links()) == sorted(["lo"] + [f"c{i}" for i in range(8)])


def test_corrupt_state_file_is_an_error_and_is_kept(host):
    host.run(["sh", "-c", f"printf 'networks: [unclosed\\n' > {STATE}"], check=True)
    for args in (["ls"], ["create", "bridge", "x0", "--subnet", "10.11.0.0/24"]):
        r = host.cnet(*args)
        assert r.returncode == 1
        assert r.stderr.startswith(f"cnet: error: state file {STATE} cannot be parsed")
        assert r.stderr.count("\n") == 1
    assert host.read(STATE) == "networks: [unclosed\n"
    assert "x0" not in host.links()
