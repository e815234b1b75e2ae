"""A state file that cannot lie: every record is checked when it is read, a
bad one is reported with its place in the file, and the file is left as it was."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

import pytest

from cnet.errors import StateFileError
from cnet.state import decode


def good() -> dict:
    return {
        "version": 1,
        "networks": {"br0": {"name": "br0", "driver": "bridge", "mtu": 1500, "internal": False, "masquerade": True,
                             "options": {}, "created": "",
                             "subnets": [{"subnet": "172.26.0.0/16", "gateway": "172.26.0.1", "ip_range": None,
                                          "last": "172.26.0.3"},
                                         {"subnet": "fd00:26::/64", "gateway": "fd00:26::1"}]}},
        "sandboxes": {"web": {"name": "web", "mode": "none", "target": None, "dns": ["1.1.1.1"],
                              "hosts": ["db:10.0.0.5"], "hostname": None, "created": ""},
                      "side": {"name": "side", "mode": "joined", "target": "web"},
                      "pid": {"name": "pid", "mode": "adopted", "target": "/proc/42/ns/net"},
                      "root": {"name": "root", "mode": "host"}},
        "endpoints": [{"sandbox": "web", "network": "br0", "ifname": "eth0", "host_ifname": "cn0123456789",
                       "mac": "02:42:ac:1a:00:02", "addresses": ["172.26.0.2/16", "fd00:26::2/64"]},
                      {"sandbox": "pid", "network": "br0", "ifname": "eth0", "host_ifname": "cn0123456780",
                       "mac": "02:42:ac:1a:00:03", "addresses": ["172.26.0.3/16"]}],
        "ports": [{"sandbox": "web", "network": "br0", "protocol": "tcp", "host_ip": "0.0.0.0", "host_port": 8080,
                   "port": 80, "count": 1},
                  {"sandbox": "web", "network": "br0", "protocol": "udp", "host_ip": "127.0.0.1", "host_port": 5353,
                   "port": 53, "count": 10}],
        "host": {"firewall": "nftables", "sysctls": {"net.ipv4.ip_forward": "0"}},
    }


def test_a_good_file_of_every_kind_of_record_is_read():
    state = decode(json.dumps(good()), "state.yaml")
    assert set(state.sandboxes) == {"web", "side", "pid", "root"} and len(state.ports) == 2


def _set(path: str, value):
    """A change of good(): path "a.b[0].c" set to value (DELETE removes it)."""
    def change(doc):
        *parents, last = path.replace("]", "").replace("[", ".").split(".")
        node = doc
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if isinstance(node, list):
            last = int(last)
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
    return change


DELETE = object()

BAD = {  # what: (change, the place the message names, a word of the problem)
    "subnet banana": (_set("networks.br0.subnets[0].subnet", "banana"), "networks.br0.subnets[0].subnet", "CIDR"),
    "host bits set": (_set("networks.br0.subnets[0].subnet", "172.26.0.1/16"), "subnets[0].subnet", "CIDR"),
    "gateway outside": (_set("networks.br0.subnets[0].gateway", "10.0.0.1"), "subnets[0].gateway", "host address"),
    "gateway is the network": (_set("networks.br0.subnets[0].gateway", "172.26.0.0"), "gateway", "host address"),
    "range outside": (_set("networks.br0.subnets[0].ip_range", "10.0.0.0/24"), "ip_range", "inside"),
    "cursor outside": (_set("networks.br0.subnets[0].last", "10.0.0.9"), ".last", "inside"),
    "mtu a string": (_set("networks.br0.mtu", "1500"), "networks.br0.mtu", "integer"),
    "mtu too big": (_set("networks.br0.mtu", 70000), "networks.br0.mtu", "MTU"),
    "internal a number": (_set("networks.br0.internal", 1), "networks.br0.internal", "true or false"),
    "key differs from name": (_set("networks.br0.name", "br1"), "networks.br0.name", "differs"),
    "bad network name": (_set("networks.br0.name", "br 0"), "networks.br0.name", "differs"),
    "driver weird": (_set("networks.br0.driver", "Bridge!"), "networks.br0.driver", "driver"),
    "unknown field": (_set("networks.br0.colour", "red"), "networks.br0", "unknown field"),
    "sandbox mode": (_set("sandboxes.web.mode", "zombie"), "sandboxes.web.mode", "one of"),
    "joined to nobody": (_set("sandboxes.side.target", "ghost"), "sandboxes.side.target", "owns its stack"),
    "adopted without path": (_set("sandboxes.pid.target", None), "sandboxes.pid.target", "path"),
    "target on none": (_set("sandboxes.web.target", "x"), "sandboxes.web.target", "no target"),
    "dns not an address": (_set("sandboxes.web.dns", ["one.one"]), "sandboxes.web.dns[0]", "IP address"),
    "hosts entry": (_set("sandboxes.web.hosts", ["db"]), "sandboxes.web.hosts[0]", "HOST:IP"),
    "sandbox name": (_set("sandboxes.web.name", "-web"), "sandboxes.web.name", "differs"),
    "endpoint of unknown network": (_set("endpoints[0].network", "nope"), "endpoints[0].network", "not a network"),
    "endpoint of unknown sandbox": (_set("endpoints[0].sandbox", "nope"), "endpoints[0].sandbox", "not a sandbox"),
    "endpoint of a joiner": (_set("endpoints[0].sandbox", "side"), "endpoints[0].sandbox", "joined"),
    "bad mac": (_set("endpoints[0].mac", "zz:42:ac:1a:00:02"), "endpoints[0].mac", "MAC"),
    "address outside": (_set("endpoints[0].addresses", ["10.1.0.2/16"]), "endpoints[0].addresses[0]", "subnet"),
    "address wrong prefix": (_set("endpoints[0].addresses", ["172.26.0.2/24"]), "addresses[0]", "subnet"),
    "address twice": (_set("endpoints[1].addresses", ["172.26.0.2/16"]), "endpoints[1].addresses[0]", "also"),
    "host link twice": (_set("endpoints[1].host_ifname", "cn0123456789"), "endpoints[1].host_ifname", "two"),
    "bad ifname": (_set("endpoints[0].ifname", "eth/0"), "endpoints[0].ifname", "interface"),
    "port abc": (_set("ports[0].host_port", "abc"), "ports[0].host_port", "integer"),
    "port zero": (_set("ports[0].port", 0), "ports[0].port", "1-65535"),
    "range past 65535": (_set("ports[1].host_port", 65530), "ports[1].host_port", "1-65535"),
    "count -5": (_set("ports[0].count", -5), "ports[0].count", "number of ports"),
    "protocol": (_set("ports[0].protocol", "icmp"), "ports[0].protocol", "one of"),
    "host ip": (_set("ports[0].host_ip", "localhost"), "ports[0].host_ip", "IP address"),
    "port without endpoint": (_set("ports[0].sandbox", "side"), "ports[0]", "no endpoint"),
    "published twice": (_set("ports[1]", {"sandbox": "pid", "network": "br0", "protocol": "tcp",
                                          "host_ip": "127.0.0.1", "host_port": 8080, "port": 81}),
                        "ports[1]", "published twice"),
    "missing field": (_set("ports[0].port", DELETE), "ports[0]", "has no 'port'"),
    "unknown driver": (_set("networks.br0.driver", "ovs"), "networks.br0.driver", "network driver"),
    "driver that is the interface": (_set("networks.br0.driver", "base"), "networks.br0.driver", "network driver"),
    "subnets overlap": (_set("networks.br0.subnets[1].subnet", "172.26.1.0/24"), "subnets[1].subnet", "overlaps"),
    "subnet not a mapping": (_set("networks.br0.subnets[1]", "fd00:26::/64"), "networks.br0.subnets[1]",
                             "not a mapping"),
    "range of the other family": (_set("networks.br0.subnets[0].ip_range", "fd00:26::/80"), "ip_range", "inside"),
    "gateway is the broadcast": (_set("networks.br0.subnets[0].gateway", "172.26.255.255"), "gateway",
                                 "host address"),
    "joined to the host": (_set("sandboxes.side.target", "root"), "sandboxes.side.target", "owns its stack"),
    "endpoint of the host": (_set("endpoints[1].sandbox", "root"), "endpoints[1].sandbox", "host"),
    "host with a target": (_set("sandboxes.root.target", "/proc/1/ns/net"), "sandboxes.root.target", "no target"),
    "joined to itself": (_set("sandboxes.side.target", "side"), "sandboxes.side.target", "owns its stack"),
    "dns a number": (_set("sandboxes.web.dns", [1]), "sandboxes.web.dns[0]", "not a string"),
    "endpoint not a mapping": (_set("endpoints[1]", "web"), "endpoints[1]", "not a mapping"),
    "endpoint field unknown": (_set("endpoints[0].vlan", 5), "endpoints[0]", "unknown field 'vlan'"),
    "endpoint twice": (_set("endpoints[1].sandbox", "web"), "endpoints[1]", "second endpoint"),
    "host link '.'": (_set("endpoints[0].host_ifname", "."), "endpoints[0].host_ifname", "interface name"),
    "address of the gateway": (_set("endpoints[0].addresses", ["172.26.0.1/16"]), "endpoints[0].addresses[0]",
                               "gateway"),
    "address of the network": (_set("endpoints[0].addresses", ["172.26.0.0/16"]), "endpoints[0].addresses[0]",
                               "network"),
    "address without prefix": (_set("endpoints[0].addresses", ["172.26.0.2"]), "endpoints[0].addresses[0]",
                               "subnet"),
    "address a number": (_set("endpoints[0].addresses", [1]), "endpoints[0].addresses[0]", "not a string"),
    "any address clashes": (_set("ports[1]", {"sandbox": "pid", "network": "br0", "protocol": "tcp",
                                              "host_ip": "127.0.0.1", "host_port": 8079, "port": 81, "count": 2}),
                            "ports[1]", "published twice"),
    "count true": (_set("ports[0].count", True), "ports[0].count", "integer"),
    "networks a list": (_set("networks", []), "networks", "not a mapping"),
    "endpoints a mapping": (_set("endpoints", {}), "endpoints", "not a list"),
    "serial a number": (_set("serial", 5), "serial", "not a string"),
    "unknown section": (_set("colours", {}), "colours", "not a part"),
    "firewall": (_set("host.firewall", "pf"), "host.firewall", "one of"),
    "sysctls": (_set("host.sysctls", {"net.ipv4.ip_forward": 0}), "host.sysctls", "mapping"),
}


def _rename_network(new: str):
    def change(doc):
        net = doc["networks"].pop("br0")
        doc["networks"][new] = dict(net, name=new)
        for record in doc["endpoints"] + doc["ports"]:
            record["network"] = new
    return change


BAD["network name no interface can have"] = (_rename_network("br 0"), "networks.br 0.name", "interface name")


@pytest.mark.parametrize("case", BAD.values(), ids=BAD.keys())
def test_a_bad_record_is_refused_with_its_place_in_the_file(case):
    change, where, word = case
    doc = copy.deepcopy(good())
    change(doc)
    with pytest.raises(StateFileError) as info:
        decode(json.dumps(doc), "/var/lib/cnet/state.yaml")
    message = str(info.value)
    assert message.startswith("state file /var/lib/cnet/state.yaml: "), message
    assert where in message and word in message, message
    assert info.value.exit_code == 1


def test_a_version_of_true_is_not_version_1():
    doc = dict(good(), version=True)
    with pytest.raises(StateFileError, match="has version True"):
        decode(json.dumps(doc), "f")


def _leaves(node, path=()):
    yield path
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in children:
        yield from _leaves(child, path + (key,))


ODD_VALUES = [None, 0, -1, True, 1.5, "", ".", "x", "fd00:26::/64", "fd00:26::5", "::", "172.26.0.0/16",
              "172.26.0.5", "255.255.255.255", [], {}, ["x"], [1], [{}], "web", "side", "host", "/x", 65536]


def test_any_value_anywhere_is_read_or_refused_naming_the_file():
    """Never a traceback (a TypeError of ipaddress, a KeyError of from_dict):
    every field of a good file set to each of a few odd values."""
    base = good()
    for path in list(_leaves(base))[1:]:
        for value in ODD_VALUES:
            doc = copy.deepcopy(base)
            node = doc
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = value
            try:
                decode(json.dumps(doc), "f")
            except StateFileError as e:
                assert str(e).startswith("state file f"), (path, value, e)
                assert "malformed" not in str(e), (path, value, e)  # statecheck let nothing through to from_dict


def cnet(*args, state) -> subprocess.CompletedProcess:
    """The CLI, with a state file of the test's; nothing it is asked here reaches the kernel."""
    return subprocess.run([sys.executable, "-m", "cnet", "--state", str(state), *args], capture_output=True,
                          text=True, timeout=60)


def test_commands_refuse_a_bad_file_and_leave_it_byte_identical(tmp_path):
    state = tmp_path / "state.yaml"
    doc = good()
    doc["networks"]["br0"]["subnets"][0]["subnet"] = "banana"
    state.write_text(json.dumps(doc))
    before = state.read_bytes()
    for argv in (["ls"], ["ls", "ns"], ["create", "bridge", "x", "--subnet", "10.9.0.0/24"],
                 ["delete", "ns", "web"], ["publish", "web", "9000:80"]):
        result = cnet(*argv, state=state)
        assert result.returncode == 1, (argv, result.stderr)
        assert result.stderr.startswith(f"cnet: error: state file {state}: networks.br0.subnets[0].subnet: "), \
            result.stderr  # the file is blamed, never the user's valid --subnet
        assert state.read_bytes() == before


@pytest.mark.parametrize("text", ["", "   \n\n"])
def test_an_empty_file_is_refused_and_kept(tmp_path, text):
    state = tmp_path / "state.yaml"
    state.write_text(text)
    result = cnet("create", "bridge", "x", "--subnet", "10.9.0.0/24", state=state)
    assert result.returncode == 1 and "is empty" in result.stderr
    assert state.read_text() == text


def test_a_command_waits_for_the_lock_a_bounded_time_and_names_its_holder(tmp_path):
    state = tmp_path / "state.yaml"
    state.write_text(json.dumps(good()))
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\n"
                               "from cnet.state import StateStore\n"
                               "with StateStore(sys.argv[1]).locked():\n"
                               "    print('holding', flush=True)\n"
                               "    time.sleep(60)\n", str(state)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "holding\n"
        # subprocess's timeout is below the default wait of 30 s: CNET_LOCK_TIMEOUT is what ends the wait
        result = subprocess.run([sys.executable, "-m", "cnet", "--state", str(state), "create", "bridge", "x",
                                 "--subnet", "10.9.0.0/24"], capture_output=True, text=True, timeout=25,
                                env={**os.environ, "CNET_LOCK_TIMEOUT": "0.5"})
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith(f"cnet: error: state file {state} is locked by process {holder.pid} (")
    assert "for 0.5 s" in result.stderr and "CNET_LOCK_TIMEOUT" in result.stderr
    assert result.stderr.count("\n") == 1
    assert json.loads(state.read_text()) == good()


def test_a_holder_that_is_gone_or_unknown_is_said_to_be(tmp_path, monkeypatch):
    import fcntl

    from cnet.state import StateStore

    path = str(tmp_path / "state.yaml")
    with open(path + ".lock", "w") as lock:
        lock.write("not a pid\n")
        lock.flush()
        fcntl.flock(lock, fcntl.LOCK_EX)  # another open file: it conflicts with this process's own flock
        monkeypatch.setenv("CNET_LOCK_TIMEOUT", "0")
        with pytest.raises(StateFileError, match="locked by another process [(]its pid is not known, or it is gone[)]"):
            with StateStore(path).locked():
                pytest.fail("the lock was taken while it was held")
