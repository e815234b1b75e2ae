"""Bandwidth limits against the real kernel, each test in its own test host.

What is checked is what the kernel shows (`tc -j`, `ip -j`) and what
traffic gets through: iperf3 between a sandbox and its host, each
direction shaped to within 15 % of the set rate (TCP gets ~96 % of it: the
tbf counts the headers too), and unlimited again once cleared. Runs are
2 s each; that is a check that the shaping is there and right, not a
benchmark (bench/shaping.py measures; the pure half is tests/unit/test_plan_bandwidth.py).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import zlib
from hashlib import sha256

import pytest
import yaml

STATE = "/var/lib/cnet/state.yaml"
GATEWAY = "10.88.0.1"
PORT = 5201
SECONDS = 2
TOLERANCE = 0.15
CNET_GROUP = 0x636E0000 | (zlib.crc32(STATE.encode()) & 0xFFFF)  # owner.py: the default state file's link group

pytestmark = pytest.mark.skipif(shutil.which("iperf3") is None, reason="needs iperf3 (make test installs it)")


def ok(result) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def host_link(sandbox: str, network: str = "br0") -> str:
    """The host side of the endpoint's veth, as drivers/bridge.py names it."""
    return "cn" + sha256(f"{sandbox}\0{network}\0{0}".encode()).hexdigest()[:10]


def ifb_of(link: str) -> str:
    return "cb" + link[2:]


@pytest.fixture
def net(host):
    ok(host.cnet("create", "bridge", "br0", "--subnet", "10.88.0.0/24"))
    ok(host.cnet("create", "ns", "a"))
    return host


def qdiscs(host, dev: str) -> dict[str, dict]:
    """kind -> the qdisc, of a link's qdiscs (its root's and its ingress)."""
    out = host.run(["tc", "-j", "qdisc", "show", "dev", dev], check=True).stdout
    return {q["kind"]: q for q in json.loads(out or "[]")}


def about(burst: int, expected: int) -> bool:
    """A burst as `tc` shows it: the kernel keeps it as time at the rate, in
    64 ns ticks, and tc turns that back into bytes with a rounding or two."""
    return abs(burst - expected) <= 8


def shaping(host, link: str) -> dict:
    """What the kernel has that shapes the endpoint whose host link is `link`:
    {"ingress": bit/s of its root tbf or None, "egress": bit/s of its ifb's tbf
    or None, "redirect": its ingress qdisc and a filter are there}."""
    seen = qdiscs(host, link)
    ifb = ifb_of(link)
    found = {"ingress": seen["tbf"]["options"]["rate"] * 8 if "tbf" in seen else None, "egress": None,
             "redirect": "ingress" in seen}
    if found["redirect"]:
        filters = host.run(["tc", "-j", "filter", "show", "dev", link, "ingress"], check=True).stdout
        found["redirect"] = any(f.get("options", {}).get("actions", [{}])[0].get("to_dev") == ifb
                                for f in json.loads(filters or "[]"))
    if ifb in host.links():
        tbf = qdiscs(host, ifb).get("tbf")
        found["egress"] = tbf["options"]["rate"] * 8 if tbf else None
    return found


def throughput(host, direction: str) -> float:
    """Bit/s of one iperf3 TCP run between sandbox a and the host: ingress
    is host -> sandbox (iperf3 -R), egress sandbox -> host."""
    server = host.popen(["timeout", "20", "iperf3", "-s", "-1", "-B", GATEWAY, "-p", str(PORT)],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # iperf3 says "Server listening" a moment before it listens: wait for the socket itself
    for _ in range(100):
        if host.run(["ss", "-Htln", f"sport = :{PORT}"]).stdout.strip():
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the iperf3 server did not start")
    # -O 1: TCP's slow start (the first second) is left out of the figure
    client = ["ip", "netns", "exec", "a", "iperf3", "-c", GATEWAY, "-p", str(PORT), "-t", str(SECONDS), "-O", "1",
              "-J"]
    result = json.loads(ok(host.run(client + (["-R"] if direction == "ingress" else []), timeout=30)))
    server.wait(timeout=10)
    assert "error" not in result, f"{direction}: {result['error']}"
    return result["end"]["sum_received"]["bits_per_second"]


def assert_shaped_to(host, rate: float) -> None:
    for direction in ("ingress", "egress"):
        got = throughput(host, direction)
        assert abs(got - rate) <= TOLERANCE * rate, f"{direction}: {got / 1e6:.1f} mbit/s, set {rate / 1e6:.0f}"


def test_both_directions_are_shaped_changed_live_and_cleared(net):
    host, link = net, host_link("a")
    ok(host.cnet("attach", "a", "br0", "--ingress-rate", "20mbit", "--egress-rate", "20mbit"))
    assert shaping(host, link) == {"ingress": 20e6, "egress": 20e6, "redirect": True}
    assert_shaped_to(host, 20e6)

    assert ok(host.cnet("limit", "a", "br0", "--ingress-rate", "100mbit", "--egress-rate", "100mbit")) == \
        "ingress 100mbit (burst 125000b), egress 100mbit (burst 125000b)\n"
    assert shaping(host, link) == {"ingress": 100e6, "egress": 100e6, "redirect": True}
    assert_shaped_to(host, 100e6)

    assert ok(host.cnet("limit", "a", "br0", "--clear")) == "-\n"
    assert shaping(host, link) == {"ingress": None, "egress": None, "redirect": False}
    assert ifb_of(link) not in host.links()
    for direction in ("ingress", "egress"):  # a veth carries gigabits; 3x the last limit says "not shaped"
        assert throughput(host, direction) > 3 * 100e6
    assert "limits" not in host.read(STATE)


def test_the_kernel_state_and_listings_agree(net):
    host, link = net, host_link("a")
    ok(host.cnet("attach", "a", "br0", "--ingress-rate", "10mbit", "--egress-rate", "5mbit",
                 "--egress-burst", "32kb"))
    root = qdiscs(host, link)["tbf"]
    assert (root["handle"], root["options"]["rate"]) == ("1:", 10**7 // 8)
    assert about(root["options"]["burst"], 12_500)
    ifb = host.links()[ifb_of(link)]
    assert ifb["linkinfo"]["info_kind"] == "ifb" and "UP" in ifb["flags"]
    assert (ifb["group"], ifb["ifalias"]) == (str(CNET_GROUP), "cnet endpoint a br0")
    tbf = qdiscs(host, ifb_of(link))["tbf"]
    assert tbf["options"]["rate"] == 5 * 10**6 // 8 and about(tbf["options"]["burst"], 32768)

    (record,) = yaml.safe_load(host.read(STATE))["endpoints"]
    assert record["limits"] == {"ingress_rate": 10**7, "ingress_burst": 12_500,
                                "egress_rate": 5 * 10**6, "egress_burst": 32768}
    (listed,) = json.loads(ok(host.cnet("ls", "endpoints", "--json")))
    assert listed["limits"] == record["limits"]
    assert "in 10mbit out 5mbit" in ok(host.cnet("ls", "endpoints"))
    assert "limits:     eth0 ingress 10mbit (burst 12500b), egress 5mbit (burst 32kb)" in ok(host.cnet("inspect", "a"))
    assert ok(host.cnet("check")) == ""


def test_one_direction_alone(net):
    host, link = net, host_link("a")
    ok(host.cnet("attach", "a", "br0", "--egress-rate", "20mbit"))
    assert shaping(host, link) == {"ingress": None, "egress": 20e6, "redirect": True}
    ok(host.cnet("limit", "a", "br0", "--ingress-rate", "30mbit"))  # the egress limit is kept
    assert shaping(host, link) == {"ingress": 30e6, "egress": 20e6, "redirect": True}
    ok(host.cnet("limit", "a", "br0", "--egress-burst", "64kb"))
    assert about(qdiscs(host, ifb_of(link))["tbf"]["options"]["burst"], 65536)
    assert ok(host.cnet("check")) == ""


def test_detach_and_delete_leave_no_qdisc_nor_ifb(net):
    host, link = net, host_link("a")
    ok(host.cnet("attach", "a", "br0", "--ingress-rate", "20mbit", "--egress-rate", "20mbit"))
    ok(host.cnet("detach", "a", "br0"))
    assert not {link, ifb_of(link)} & host.links().keys()
    ok(host.cnet("attach", "a", "br0", "--ingress-rate", "20mbit", "--egress-rate", "20mbit"))
    ok(host.cnet("delete", "ns", "a"))
    assert not {link, ifb_of(link)} & host.links().keys()
    kinds = {q["kind"] for q in json.loads(host.run(["tc", "-j", "qdisc", "show"], check=True).stdout)}
    assert not kinds & {"tbf", "ingress"}
    assert ok(host.cnet("check")) == ""


@pytest.mark.parametrize("breakage, problem", [
    ("tc qdisc del dev {link} root", "missing tbf qdisc (20mbit) on link {link}"),
    ("tc qdisc del dev {link} ingress", "missing ingress qdisc on link {link}"),
    ("tc qdisc del dev {ifb} root", "missing tbf qdisc (10mbit) on ifb device {ifb}"),
    ("ip link del {ifb}", "missing ifb device {ifb}"),
    ("tc qdisc replace dev {link} root tbf rate 1mbit burst 10kb latency 50ms",
     "tbf qdisc on link {link} shapes to 1mbit"),
    ("ip netns delete a", "missing link {link}: the sandbox's namespace is gone"),
])
def test_check_finds_lost_shaping_and_restore_makes_it_again(net, breakage, problem):
    host, link = net, host_link("a")
    ok(host.cnet("attach", "a", "br0", "--ingress-rate", "20mbit", "--egress-rate", "10mbit"))
    names = {"link": link, "ifb": ifb_of(link)}
    host.sh(breakage.format(**names), check=True)
    r = host.cnet("check")
    assert r.returncode == 5 and problem.format(**names) in r.stdout, (r.returncode, r.stdout, r.stderr)
    ok(host.cnet("restore"))
    assert shaping(host, link) == {"ingress": 20e6, "egress": 10e6, "redirect": True}
    assert ok(host.cnet("check")) == ""
    assert ok(host.cnet("restore")) == "nothing to restore: the kernel holds what the state says\n"


def test_a_shaping_check_needs_no_sandbox(net):
    """`check` of a limited endpoint looks at the host only (it still reads the qdiscs by netlink)."""
    host = net
    ok(host.cnet("attach", "a", "br0", "--ingress-rate", "20mbit"))
    assert ifb_of(host_link("a")) not in host.links()  # no egress limit, no ifb
    assert ok(host.cnet("check")) == ""


def test_gc_removes_a_stray_ifb_of_ours_and_leaves_others(net):
    host = net
    ok(host.cnet("attach", "a", "br0", "--egress-rate", "20mbit"))
    host.run(["ip", "link", "add", "cbstray", "group", str(CNET_GROUP), "type", "ifb"], check=True)
    host.run(["ip", "link", "add", "cbnotours", "type", "ifb"], check=True)
    assert "extra link cbstray" in host.cnet("check").stdout
    assert ok(host.cnet("gc")) == "removed: extra link cbstray (tagged by cnet: link cut short; not in the state)\n"
    links = host.links()
    assert "cbstray" not in links and "cbnotours" in links and ifb_of(host_link("a")) in links


@pytest.mark.parametrize("option, value", [("--ingress-rate", "fast"), ("--egress-rate", "0"),
                                           ("--egress-burst", "32kb"), ("--ingress-rate", "99gbit")])
def test_bad_limits_on_attach_exit_2_and_create_nothing(net, option, value):
    host = net
    before = host.read(STATE)
    r = host.cnet("attach", "a", "br0", option, value)
    assert r.returncode == 2 and r.stderr.startswith("cnet: error: "), r.stderr
    assert host.read(STATE) == before
    assert not [n for n in host.links() if n.startswith(("cn", "cb"))]


def test_an_attach_whose_shaping_fails_is_rolled_back(net):
    host, link = net, host_link("a")
    host.run(["ip", "link", "add", ifb_of(link), "type", "ifb"], check=True)  # the ifb's name is taken
    before = host.read(STATE)
    r = host.cnet("attach", "a", "br0", "--ingress-rate", "20mbit", "--egress-rate", "20mbit")
    assert r.returncode == 4, r.stderr
    assert ifb_of(link) in r.stderr
    assert host.read(STATE) == before
    assert link not in host.links()
    assert qdiscs(host, ifb_of(link)).get("tbf") is None  # the other's ifb left as it was


def test_a_limit_that_fails_keeps_the_limits_there_were(net):
    host, link = net, host_link("a")
    ok(host.cnet("attach", "a", "br0", "--ingress-rate", "20mbit"))
    host.run(["ip", "link", "add", ifb_of(link), "type", "ifb"], check=True)
    before = host.read(STATE)
    r = host.cnet("limit", "a", "br0", "--ingress-rate", "50mbit", "--egress-rate", "10mbit")
    assert r.returncode == 4, r.stderr
    assert host.read(STATE) == before
    assert shaping(host, link) == {"ingress": 20e6, "egress": None, "redirect": False}


SANDBOX_SIDE = """
import json, sys
from cnet.core.base import Undo
from cnet.drivers.base import shape_endpoint, survey_limits, unshape_endpoint
from cnet.kernel.netlink import Netlink
from cnet.model import Limits

limits = Limits(ingress_rate=20_000_000, ingress_burst=25_000, egress_rate=10_000_000, egress_burst=12_500)
alias = lambda name: (lambda v: None if v is None else v["alias"] or "")(nl.link_view(name))
with Netlink("/run/netns/sb") as nl, Undo() as undo:
    index = nl.link_index("eth0")
    shape_endpoint(nl, "eth0", index, limits, mtu=1500, group=42, tag="t", undo=undo, host_side=False)
    undo.pop_all()
    before = survey_limits(nl, "eth0", index, limits, tag="t", link_alias=alias, host_side=False)
    print(json.dumps(before), flush=True)
    sys.stdin.readline()  # the test looks with tc, then lets go
    unshape_endpoint(nl, "eth0", index, 42)
    print(json.dumps(survey_limits(nl, "eth0", index, limits, tag="t", link_alias=alias, host_side=False)))
"""


def test_the_sandbox_side_helper_for_drivers_without_a_host_side(host):
    """What macvlan and hostdev endpoints are to use (drivers/base.py, host_side=False): the tbf at the
    root of the sandbox's interface shapes egress, an ifb inside the sandbox ingress."""
    host.sh("ip netns add sb && ip link add v0 type veth peer name eth0 netns sb && ip link set v0 up && "
            "ip -n sb link set eth0 up", check=True)
    proc = host.popen([sys.executable, "-c", SANDBOX_SIDE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert json.loads(proc.stdout.readline()) == []  # the survey finds it as planned
    seen = json.loads(host.run(["tc", "-n", "sb", "-j", "qdisc", "show", "dev", "eth0"], check=True).stdout)
    assert {q["kind"]: q["options"].get("rate") for q in seen} == {"tbf": 10**7 // 8, "ingress": None}
    ifb = json.loads(host.run(["tc", "-n", "sb", "-j", "qdisc", "show", "dev", "cb-eth0"], check=True).stdout)
    assert [(q["kind"], q["options"]["rate"]) for q in ifb] == [("tbf", 20_000_000 // 8)]
    assert not qdiscs(host, "v0").keys() & {"tbf", "ingress"}  # nothing on the host side
    proc.stdin.write("\n")
    proc.stdin.flush()
    problems = json.loads(proc.stdout.readline())
    assert problems == ["missing tbf qdisc (10mbit) on link eth0", "missing ifb device cb-eth0 (shaping what "
                        "arrives on link eth0)"]
    assert proc.wait(timeout=10) == 0


def test_create_ns_with_a_network_takes_limits_too(net):
    host = net
    ok(host.cnet("create", "ns", "b", "--network", "br0", "--ingress-rate", "10mbit", "--egress-rate", "5mbit"))
    assert shaping(host, host_link("b")) == {"ingress": 10e6, "egress": 5e6, "redirect": True}
    r = host.cnet("create", "ns", "c", "--ingress-rate", "10mbit")
    assert r.returncode == 2 and "need --network" in r.stderr and "c" not in ok(host.cnet("ls", "ns", "-q")).split()
