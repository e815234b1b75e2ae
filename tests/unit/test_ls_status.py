"""`cnet ls` STATUS: "ok" or "missing" for each record, from /sys/class/net and
/run/netns alone. Both are directories of the test's own here: a link is an
entry under the first, a namespace a name under the second that resolves to a
real namespace file (a symlink to /proc/self/ns/net, on nsfs), a stale name
an empty file (what a namespace leaves when it is unmounted behind cnet's back)."""

from __future__ import annotations

import json
import os

import pytest

from cnet.cli import main
from cnet.kernel import netns, sysfs
from cnet.model import Endpoint, HostDevice, Network, PortMapping, Sandbox, State, Subnet
from cnet.state import StateStore


@pytest.fixture
def host(monkeypatch, tmp_path):
    """(links dir, netns dir), empty, standing for /sys/class/net and /run/netns."""
    for var in ("CNET_STATE", "CNET_FIREWALL"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "config.yaml").write_text("")
    monkeypatch.setenv("CNET_CONFIG", str(tmp_path / "config.yaml"))
    links, names = tmp_path / "sys-class-net", tmp_path / "run-netns"
    links.mkdir()
    names.mkdir()
    monkeypatch.setattr(sysfs, "SYS_CLASS_NET", str(links))
    monkeypatch.setattr(netns, "NETNS_RUN_DIR", str(names))
    return links, names


def add_link(host, name: str) -> None:
    (host[0] / name).mkdir()


def add_netns(host, name: str) -> None:
    os.symlink("/proc/self/ns/net", host[1] / name)


def stale_netns(host, name: str) -> None:
    (host[1] / name).write_text("")


@pytest.fixture
def state_file(tmp_path):
    net = lambda name, subnet: Network(name, "bridge", [Subnet(subnet, subnet.replace("0/24", "1"))], 1500)
    state = State(
        networks={"up0": net("up0", "10.1.0.0/24"), "gone0": net("gone0", "10.2.0.0/24")},
        sandboxes={"web": Sandbox("web"), "db": Sandbox("db"), "side": Sandbox("side", mode="joined", target="web"),
                   "stale": Sandbox("stale"), "me": Sandbox("me", mode="host")},
        endpoints=[Endpoint("web", "up0", "eth0", "cnaaaa", "02:00:00:00:00:01", ["10.1.0.2/24"]),
                   Endpoint("web", "gone0", "eth1", "cnbbbb", "02:00:00:00:00:02", ["10.2.0.2/24"]),
                   Endpoint("db", "up0", "eth0", "cncccc", "02:00:00:00:00:03", ["10.1.0.3/24"])],
        ports=[PortMapping("web", "up0", "tcp", "0.0.0.0", 8080, 80),
               PortMapping("db", "up0", "tcp", "0.0.0.0", 5432, 5432)],
    )
    path = tmp_path / "state.yaml"
    StateStore(str(path)).save(state)
    return path


@pytest.fixture
def half_gone(host):
    """up0 and web are there with web's link on up0; gone0, db, stale are not."""
    add_link(host, "up0")
    add_link(host, "cnaaaa")
    add_link(host, "cncccc")  # db's host link is there, its namespace is not
    add_netns(host, "web")
    stale_netns(host, "stale")
    return host


def ls(capsys, state_file, *argv) -> str:
    with pytest.raises(SystemExit) as info:
        main(["--state", str(state_file), "ls", *argv])
    out, err = capsys.readouterr()
    assert (info.value.code or 0, err) == (0, "")
    return out


def statuses(capsys, state_file, what: str) -> dict:
    items = json.loads(ls(capsys, state_file, what, "--json"))
    key = {"networks": "name", "ns": "name"}.get(what)
    return {(item[key] if key else f"{item['sandbox']}/{item['network']}"): item["status"] for item in items}


def test_networks(capsys, state_file, half_gone):
    assert statuses(capsys, state_file, "networks") == {"up0": "ok", "gone0": "missing"}


def test_sandboxes(capsys, state_file, half_gone):
    # joined: a name of its own under /run/netns (a bind of the owner's); host: always there
    assert statuses(capsys, state_file, "ns") == {"web": "ok", "db": "missing", "side": "missing",
                                                   "stale": "missing", "me": "ok"}
    add_netns(half_gone, "side")
    assert statuses(capsys, state_file, "ns")["side"] == "ok"


def test_endpoints_need_their_namespace_and_their_host_link(capsys, state_file, half_gone):
    assert statuses(capsys, state_file, "endpoints") == {"web/up0": "ok", "web/gone0": "missing", "db/up0": "missing"}


def test_ports_follow_their_endpoint(capsys, state_file, half_gone):
    assert statuses(capsys, state_file, "ports") == {"web/up0": "ok", "db/up0": "missing"}


def test_everything_there(capsys, state_file, host):
    for link in ("up0", "gone0", "cnaaaa", "cnbbbb", "cncccc"):
        add_link(host, link)
    for name in ("web", "db", "side", "stale"):
        add_netns(host, name)
    for what in ("networks", "ns", "endpoints", "ports"):
        assert set(statuses(capsys, state_file, what).values()) == {"ok"}, what


def test_the_tables_end_with_status(capsys, state_file, half_gone):
    assert ls(capsys, state_file, "ns") == (
        "NAME   MODE    TARGET  NETWORKS   STATUS\n"
        "web    none    -       up0,gone0  ok\n"
        "db     none    -       up0        missing\n"
        "side   joined  web     up0,gone0  missing\n"
        "stale  none    -       -          missing\n"
        "me     host    -       -          ok\n")
    assert ls(capsys, state_file, "endpoints").splitlines()[:2] == [
        "SANDBOX  NETWORK  IFNAME  ADDRESSES    HOST-LINK  LIMITS  STATUS",
        "web      up0      eth0    10.1.0.2/24  cnaaaa     -       ok"]
    assert ls(capsys, state_file, "ports").splitlines()[0].split() == ["SANDBOX", "NETWORK", "MAPPING", "STATUS"]


def test_quiet_output_is_names_only(capsys, state_file, half_gone):
    assert ls(capsys, state_file, "-q") == "up0\ngone0\n"
    assert ls(capsys, state_file, "ns", "-q") == "web\ndb\nside\nstale\nme\n"
    assert ls(capsys, state_file, "endpoints", "-q") == "web:up0\nweb:gone0\ndb:up0\n"
    assert ls(capsys, state_file, "ports", "-q") == "web:0.0.0.0:8080->80/tcp\ndb:0.0.0.0:5432->5432/tcp\n"


def test_quiet_ports_name_each_mapping_once(capsys, tmp_path, host):
    """One line a mapping record, each different: a dual-stack publish (two
    records, one sandbox: `web` twice before), a range (one record, one line)."""
    path = tmp_path / "ports.yaml"
    StateStore(str(path)).save(State(
        networks={"ds0": Network("ds0", "bridge", [Subnet("10.3.0.0/24", "10.3.0.1"),
                                                   Subnet("fd00:3::/64", "fd00:3::1")], 1500)},
        sandboxes={"web": Sandbox("web")},
        endpoints=[Endpoint("web", "ds0", "eth0", "cndddd", "02:00:00:00:00:04", ["10.3.0.2/24", "fd00:3::2/64"])],
        ports=[PortMapping("web", "ds0", "tcp", "0.0.0.0", 8080, 80), PortMapping("web", "ds0", "tcp", "::", 8080, 80),
               PortMapping("web", "ds0", "udp", "127.0.0.1", 9000, 90, count=11)]))
    assert ls(capsys, path, "ports", "-q") == (
        "web:0.0.0.0:8080->80/tcp\nweb:[::]:8080->80/tcp\nweb:127.0.0.1:9000-9010->90-100/udp\n")


def test_status_is_the_last_json_field(capsys, state_file, half_gone):
    for what in ("networks", "ns", "endpoints", "ports"):
        for item in json.loads(ls(capsys, state_file, what, "--json")):
            assert list(item)[-1] == "status"


def test_a_hostdev_endpoint_shows_the_host_link_it_moved(capsys, tmp_path, host):
    """Its link is in the sandbox, no host side (host_ifname ""): HOST-LINK and
    `device` name the host's link as it was (what detach gives it back as)."""
    path = tmp_path / "hostdev.yaml"
    StateStore(str(path)).save(State(
        networks={"hd": Network("hd", "hostdev", [Subnet("192.168.60.0/24", "192.168.60.1")], 1500,
                                masquerade=False, options={"parent": "lan0"})},
        sandboxes={"a": Sandbox("a")},
        endpoints=[Endpoint("a", "hd", "eth0", "", "52:54:00:60:00:10", ["192.168.60.2/24"],
                            device=HostDevice("lan0", 1400, "52:54:00:60:00:10", True))]))
    add_netns(host, "a")
    assert ls(capsys, path, "endpoints").splitlines()[1].split() == [
        "a", "hd", "eth0", "192.168.60.2/24", "lan0", "-", "ok"]
    (item,) = json.loads(ls(capsys, path, "endpoints", "--json"))
    assert (item["host_ifname"], item["device"]) == ("", {"name": "lan0", "mtu": 1400, "mac": "52:54:00:60:00:10",
                                                           "up": True})
