"""cnet-cni against the CNI spec's JSON, conformance-style: every command,
version negotiation, the error JSON, missing environment variables, bad
configurations. Each call that fails must leave nothing behind (its state
file is a temp file); no call here reaches the kernel."""

from __future__ import annotations

import io
import json
import os
import stat

import pytest

from cnet.cni import mapping, protocol, run
from cnet.cni.protocol import CniError
from cnet.cni.registry import Record, Registry

PODMAN_ID = "5d9949c0be8a" + "0" * 52  # 64 hex digits, as podman's IDs are


@pytest.fixture
def tmp(tmp_path):
    (tmp_path / "state").mkdir()
    return tmp_path


def conf(tmp, version="1.1.0", **entry) -> dict:
    return {"cniVersion": version, "name": "cnet0", "type": "cnet", "network": "cbr0",
            "state": str(tmp / "state" / "state.yaml"), **entry}


def call(command, config, tmp, **env) -> tuple[int, dict | None, str]:
    """(exit status, the JSON on stdout or None, stderr); stdout holds one JSON document or nothing."""
    environ = {"CNI_COMMAND": command, "CNI_CONTAINERID": "default-srv", "CNI_NETNS": str(tmp / "no-netns"),
               "CNI_IFNAME": "eth0", "CNI_PATH": "/opt/cni/bin", **env}
    environ = {k: v for k, v in environ.items() if v is not None}
    stdin = config if isinstance(config, str) else json.dumps(config)
    out, err = io.StringIO(), io.StringIO()
    status = run(environ, io.StringIO(stdin), out, err)
    text = out.getvalue()
    assert text.count("\n") <= 1
    return status, json.loads(text) if text else None, err.getvalue()


def nothing_made(tmp) -> None:
    assert os.listdir(tmp / "state") == []


def error(status, answer, code) -> dict:
    assert status == 1
    assert set(answer) <= {"cniVersion", "code", "msg", "details"}
    assert answer["code"] == code, answer
    assert answer["msg"] and "\n" not in answer["msg"]
    return answer


# -- VERSION -------------------------------------------------------------------

@pytest.mark.parametrize("stdin, echoed", [('{"cniVersion": "1.0.0"}', "1.0.0"), ('{"cniVersion": "0.4.0"}', "0.4.0"),
                                           ("", "1.1.0"), ("not json", "1.1.0")])
def test_version_lists_the_supported_versions(tmp, stdin, echoed):
    status, answer, _ = call("VERSION", stdin, tmp, CNI_CONTAINERID=None, CNI_NETNS=None, CNI_IFNAME=None,
                             CNI_PATH=None)
    assert status == 0
    assert answer == {"cniVersion": echoed, "supportedVersions": ["1.0.0", "1.1.0"]}
    nothing_made(tmp)


# -- the environment -------------------------------------------------------------

def test_no_command_and_an_unknown_command(tmp):
    error(*call(None, conf(tmp), tmp)[:2], protocol.INVALID_ENVIRONMENT)
    answer = error(*call("ATTACH", conf(tmp), tmp)[:2], protocol.INVALID_ENVIRONMENT)
    assert "ATTACH" in answer["msg"]
    nothing_made(tmp)


@pytest.mark.parametrize("command, var", [
    ("ADD", "CNI_CONTAINERID"), ("ADD", "CNI_NETNS"), ("ADD", "CNI_IFNAME"), ("ADD", "CNI_PATH"),
    ("DEL", "CNI_CONTAINERID"), ("DEL", "CNI_IFNAME"), ("DEL", "CNI_PATH"),
    ("CHECK", "CNI_CONTAINERID"), ("CHECK", "CNI_NETNS"), ("CHECK", "CNI_IFNAME"), ("CHECK", "CNI_PATH"),
    ("GC", "CNI_PATH"), ("STATUS", "CNI_PATH"),
])
def test_a_missing_variable_is_error_4_naming_it(tmp, command, var):
    answer = error(*call(command, conf(tmp), tmp, **{var: None})[:2], protocol.INVALID_ENVIRONMENT)
    assert var in answer["msg"]
    assert answer["cniVersion"] == "1.1.0"
    nothing_made(tmp)


def test_del_needs_no_netns(tmp):
    """containerd sends DEL with an empty CNI_NETNS once the task is gone."""
    assert call("DEL", conf(tmp), tmp, CNI_NETNS="")[:2] == (0, None)


@pytest.mark.parametrize("env", [{"CNI_CONTAINERID": "-bad"}, {"CNI_CONTAINERID": "a/b"},
                                 {"CNI_IFNAME": "a-name-too-long-for-linux"}, {"CNI_IFNAME": "eth:0"},
                                 {"CNI_ARGS": "K8S_POD_NAME"}, {"CNI_ARGS": "=x"}])
def test_invalid_variables_are_error_4(tmp, env):
    error(*call("ADD", conf(tmp), tmp, **env)[:2], protocol.INVALID_ENVIRONMENT)
    nothing_made(tmp)


def test_unknown_cni_args_need_ignore_unknown(tmp):
    answer = error(*call("ADD", conf(tmp), tmp, CNI_ARGS="FOO=1")[:2], protocol.INVALID_ENVIRONMENT)
    assert "FOO" in answer["msg"]
    # with IgnoreUnknown the request goes on, to the missing namespace
    error(*call("ADD", conf(tmp), tmp, CNI_ARGS="IgnoreUnknown=1;FOO=1")[:2], protocol.UNKNOWN_CONTAINER)
    nothing_made(tmp)


# -- the configuration -------------------------------------------------------------

@pytest.mark.parametrize("stdin, code", [
    ("{", protocol.DECODE_FAILURE), ("[1, 2]", protocol.DECODE_FAILURE), ("", protocol.DECODE_FAILURE),
    ('{"name": "n", "type": "cnet"}', protocol.INVALID_CONFIG),
    ('{"cniVersion": "1.0.0", "type": "cnet"}', protocol.INVALID_CONFIG),
    ('{"cniVersion": "1.0.0", "name": "n"}', protocol.INVALID_CONFIG),
])
def test_undecodable_or_incomplete_configurations(tmp, stdin, code):
    for command in ("ADD", "DEL", "CHECK"):
        error(*call(command, stdin, tmp)[:2], code)
    nothing_made(tmp)


@pytest.mark.parametrize("version", ["0.4.0", "0.3.1", "2.0.0", "1.0"])
def test_an_unsupported_version_is_error_1(tmp, version):
    answer = error(*call("ADD", conf(tmp, version=version), tmp)[:2], protocol.INCOMPATIBLE_VERSION)
    assert version in answer["msg"] and "1.0.0" in answer["details"]
    assert answer["cniVersion"] == "1.1.0"  # an error in a version this plugin speaks
    nothing_made(tmp)


@pytest.mark.parametrize("command", ["GC", "STATUS"])
def test_gc_and_status_need_a_1_1_configuration(tmp, command):
    answer = error(*call(command, conf(tmp, version="1.0.0"), tmp)[:2], protocol.INCOMPATIBLE_VERSION)
    assert answer["cniVersion"] == "1.0.0"


def test_errors_carry_the_configuration_version(tmp):
    answer = error(*call("ADD", conf(tmp, version="1.0.0"), tmp)[:2], protocol.UNKNOWN_CONTAINER)
    assert answer["cniVersion"] == "1.0.0"


@pytest.mark.parametrize("entry, code, word", [
    ({"bridge": "br0"}, protocol.UNSUPPORTED_FIELD, "bridge"),
    ({"ipam": {"type": "host-local"}}, protocol.UNSUPPORTED_FIELD, "ipam"),
    ({"network": ""}, protocol.INVALID_CONFIG, "network"),
    ({"network": 5}, protocol.INVALID_CONFIG, "network"),
    ({"subnet": 10}, protocol.INVALID_CONFIG, "subnet"),
    ({"subnet": []}, protocol.INVALID_CONFIG, "subnet"),
    ({"subnet": "10.1.0.0/24", "mtu": "1500"}, protocol.INVALID_CONFIG, "mtu"),
    ({"subnet": "10.1.0.0/24", "internal": 1}, protocol.INVALID_CONFIG, "internal"),
    ({"subnet": "10.1.0.0/24", "options": []}, protocol.INVALID_CONFIG, "options"),
    ({"gateway": "10.1.0.1"}, protocol.INVALID_CONFIG, "subnet"),
    ({"capabilities": []}, protocol.INVALID_CONFIG, "capabilities"),
    ({"dns": ["192.0.2.53"]}, protocol.INVALID_CONFIG, "dns"),
    ({"runtimeConfig": {"bandwidth": {"ingressRate": "fast"}}}, protocol.INVALID_CONFIG, "ingressRate"),
    ({"runtimeConfig": {"bandwidth": [1]}}, protocol.INVALID_CONFIG, "bandwidth"),
    ({"runtimeConfig": {"portMappings": [{"hostPort": "80", "containerPort": 80}]}}, protocol.INVALID_CONFIG,
     "hostPort"),
    ({"runtimeConfig": {"portMappings": [{"hostPort": 8080}]}}, protocol.INVALID_CONFIG, "containerPort"),
    ({"runtimeConfig": {"portMappings": {"hostPort": 8080}}}, protocol.INVALID_CONFIG, "portMappings"),
    ({"runtimeConfig": {"ips": ["10.1.0.300/24"]}}, protocol.INVALID_CONFIG, "ips"),
    ({"runtimeConfig": {"mac": 12}}, protocol.INVALID_CONFIG, "mac"),
    ({"runtimeConfig": []}, protocol.INVALID_CONFIG, "runtimeConfig"),
])
def test_bad_entries_are_refused_before_anything_is_made(tmp, entry, code, word):
    answer = error(*call("ADD", conf(tmp, **entry), tmp, CNI_NETNS="/proc/self/ns/net")[:2], code)
    assert word in answer["msg"]
    nothing_made(tmp)


def test_add_to_a_namespace_that_is_not_there_is_error_3(tmp):
    answer = error(*call("ADD", conf(tmp), tmp)[:2], protocol.UNKNOWN_CONTAINER)
    assert "no-netns" in answer["msg"]
    nothing_made(tmp)


def test_add_to_a_missing_network_without_subnet(tmp):
    """cnet's own errors are 100 + the exit code `cnet` would give (3: not found)."""
    answer = error(*call("ADD", conf(tmp), tmp, CNI_NETNS="/proc/self/ns/net")[:2], protocol.PLUGIN_ERRORS + 3)
    assert "cbr0" in answer["msg"] and "subnet" in answer["details"]
    nothing_made(tmp)


def test_an_unreadable_state_file_is_a_cnet_error(tmp):
    (tmp / "state" / "state.yaml").write_text("version: 99\n")
    answer = error(*call("ADD", conf(tmp), tmp, CNI_NETNS="/proc/self/ns/net")[:2], protocol.PLUGIN_ERRORS + 1)
    assert "version" in answer["msg"] and answer["details"] == "StateFileError"
    assert (tmp / "state" / "state.yaml").read_text() == "version: 99\n"


# -- DEL, CHECK, GC, STATUS without a container ------------------------------------

def test_del_of_an_unknown_container_succeeds_twice(tmp):
    for _ in range(2):
        assert call("DEL", conf(tmp), tmp)[:2] == (0, None)
    nothing_made(tmp)


def test_del_leaves_a_sandbox_not_made_by_cni(tmp):
    """A sandbox made by hand with the container's name has no record: DEL does not take it."""
    state = tmp / "state" / "state.yaml"
    state.write_text(json.dumps({"version": 1, "networks": {}, "sandboxes": {
        "default-srv": {"name": "default-srv", "mode": "none"}}, "endpoints": [], "ports": [], "host": {}}))
    before = state.read_text()
    assert call("DEL", conf(tmp), tmp)[:2] == (0, None)
    assert state.read_text() == before


def test_add_never_takes_a_sandbox_not_made_by_cni(tmp):
    state = tmp / "state" / "state.yaml"
    state.write_text(json.dumps({"version": 1, "networks": {}, "sandboxes": {
        "default-srv": {"name": "default-srv", "mode": "none"}}, "endpoints": [], "ports": [], "host": {}}))
    answer = error(*call("ADD", conf(tmp), tmp, CNI_NETNS="/proc/self/ns/net")[:2], protocol.PLUGIN_ERRORS + 4)
    assert "default-srv" in answer["msg"]
    assert os.listdir(tmp / "state") == ["state.yaml"]


def test_check_of_an_unknown_container_is_error_3(tmp):
    error(*call("CHECK", conf(tmp, prevResult={"cniVersion": "1.1.0", "ips": []}), tmp,
                CNI_NETNS="/proc/self/ns/net")[:2], protocol.UNKNOWN_CONTAINER)
    nothing_made(tmp)


def test_gc(tmp):
    valid = [{"containerID": "default-srv", "ifname": "eth0"}]
    assert call("GC", conf(tmp, **{"cni.dev/valid-attachments": valid}), tmp)[:2] == (0, None)
    error(*call("GC", conf(tmp, **{"cni.dev/valid-attachments": "all"}), tmp)[:2], protocol.INVALID_CONFIG)
    nothing_made(tmp)


def test_gc_removes_the_records_of_attachments_not_listed(tmp):
    """Records whose sandbox is not in the state (a killed ADD) go without kernel work;
    another CNI network's records stay."""
    registry = Registry(str(tmp / "state" / "state.yaml"))
    gone = Record("gone", "eth0", "cnet0", "cbr0", "gone", "/run/netns/x")
    kept = Record("kept", "eth0", "cnet0", "cbr0", "kept", "/run/netns/y")
    other = Record("other", "eth0", "othernet", "cbr1", "other", "/run/netns/z")
    for record in (gone, kept, other):
        registry.write(record)
    valid = [{"containerID": "kept", "ifname": "eth0"}]
    assert call("GC", conf(tmp, **{"cni.dev/valid-attachments": valid}), tmp)[:2] == (0, None)
    assert registry.all() == [kept, other]


@pytest.fixture
def firewall_tool(tmp, monkeypatch):
    """A PATH with only a stand-in `nft`, which STATUS looks for and never runs."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    nft = bin_dir / "nft"
    nft.write_text("#!/bin/sh\nexit 1\n")
    nft.chmod(nft.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", str(bin_dir))
    return nft


def test_status(tmp, firewall_tool):
    assert call("STATUS", conf(tmp, subnet="10.1.0.0/24"), tmp)[:2] == (0, None)
    answer = error(*call("STATUS", conf(tmp), tmp)[:2], protocol.NOT_AVAILABLE)
    assert "cbr0" in answer["msg"]
    (tmp / "state" / "state.yaml").write_text("{")
    error(*call("STATUS", conf(tmp, subnet="10.1.0.0/24"), tmp)[:2], protocol.NOT_AVAILABLE)
    firewall_tool.unlink()
    (tmp / "state" / "state.yaml").unlink()
    answer = error(*call("STATUS", conf(tmp, subnet="10.1.0.0/24"), tmp)[:2], protocol.NOT_AVAILABLE)
    assert "nft" in answer["msg"]
    nothing_made(tmp)


# -- the pure parts ------------------------------------------------------------------

def test_error_json():
    e = CniError(7, "bad", "why")
    assert e.to_json("1.0.0") == {"cniVersion": "1.0.0", "code": 7, "msg": "bad", "details": "why"}
    assert CniError(4, "x").to_json("1.1.0") == {"cniVersion": "1.1.0", "code": 4, "msg": "x"}


def test_sandbox_names():
    assert mapping.sandbox_name("default-srv") == "default-srv"  # containerd: as it is
    name = mapping.sandbox_name(PODMAN_ID)
    assert name.startswith("5d9949c0be8a-") and len(name) == 21
    assert mapping.sandbox_name(PODMAN_ID) == name
    assert mapping.sandbox_name(PODMAN_ID[:-1] + "1") != name  # the same first 12, another sandbox
    assert len(mapping.sandbox_name("cnitool-" + "ab" * 40)) <= 63


@pytest.mark.parametrize("entry, spec", [
    ({"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}, "8080:80/tcp"),
    ({"hostPort": 53, "containerPort": 5353, "protocol": "UDP", "hostIP": "127.0.0.1"}, "127.0.0.1:53:5353/udp"),
    ({"hostPort": 8080, "containerPort": 80, "hostIP": "::1"}, "[::1]:8080:80/tcp"),
    ({"hostPort": 8080, "containerPort": 80, "hostIP": ""}, "8080:80/tcp"),
])
def test_port_mappings_become_publish_specs(entry, spec):
    assert mapping.attachment({"runtimeConfig": {"portMappings": [entry]}}, {}).publish == (spec,)


def test_runtime_config_counts_for_the_declared_capabilities_only():
    config = {"capabilities": {"ips": True, "portMappings": False},
              "runtimeConfig": {"ips": ["10.1.0.5/24", "fd00::5/64"], "mac": "02:00:00:00:00:05",
                                "portMappings": [{"hostPort": 1, "containerPort": 1}]}}
    got = mapping.attachment(config, {"IgnoreUnknown": "1", "K8S_POD_NAME": "nifty_pike"})
    assert got == mapping.Attachment(ips=("10.1.0.5", "fd00::5"), mac=None, publish=(), hostname="nifty-pike")
    assert mapping.attachment({}, {"IP": "10.1.0.7", "MAC": "02:00:00:00:00:07"}) == mapping.Attachment(
        ips=("10.1.0.7",), mac="02:00:00:00:00:07")


def test_the_entry_in_cnet_terms():
    got = mapping.plugin_config({"name": "podnet", "subnet": ["10.1.0.0/24", "fd00:1::/64"], "no-icc": True,
                                 "gateway": "10.1.0.254", "mtu": 1400, "state": "/tmp/s.yaml"})
    assert got.network == "podnet"  # the configuration's name when no "network" is given
    assert got.state == "/tmp/s.yaml"
    assert got.create == mapping.NetworkRequest(driver="bridge", subnets=("10.1.0.0/24", "fd00:1::/64"),
                                                gateways=("10.1.0.254",), mtu=1400, options={"icc": False})
    routed = mapping.plugin_config({"name": "n", "network": "r", "subnet": "10.2.0.0/24", "routed": True})
    assert routed.create.masquerade is False and routed.create.options == {"routed": True}
    assert mapping.plugin_config({"name": "n", "network": "r"}).create is None


def test_results_and_chaining():
    mine = protocol.result("1.1.0", [{"name": "cn1"}, {"name": "eth0", "mac": "02:00:00:00:00:01", "sandbox": "/x"}],
                           [{"address": "10.1.0.2/24", "gateway": "10.1.0.1", "interface": 1}],
                           [{"dst": "0.0.0.0/0", "gw": "10.1.0.1"}], {})
    assert list(mine) == ["cniVersion", "interfaces", "ips", "routes", "dns"]
    assert protocol.chained(None, mine) is mine
    previous = {"cniVersion": "1.1.0", "interfaces": [{"name": "tap0"}],
                "ips": [{"address": "192.0.2.2/24", "interface": 0}], "dns": {"nameservers": ["192.0.2.53"]}}
    merged = protocol.chained(previous, mine)
    assert [i["name"] for i in merged["interfaces"]] == ["tap0", "cn1", "eth0"]
    assert [ip["interface"] for ip in merged["ips"]] == [0, 2]
    assert merged["routes"] == mine["routes"] and merged["dns"] == {"nameservers": ["192.0.2.53"]}
    with pytest.raises(CniError):
        protocol.chained(["not", "a", "result"], mine)


def test_registry(tmp):
    registry = Registry(str(tmp / "state" / "state.yaml"))
    record = Record("default-srv", "eth0", "cnet0", "cbr0", "default-srv", "/proc/1/ns/net")
    assert registry.get("default-srv", "eth0") is None and registry.all() == []
    registry.write(record)
    assert registry.get("default-srv", "eth0") == record
    assert registry.of_sandbox("default-srv") == [record]
    (tmp / "state" / "state.yaml.cni" / "cut@eth0").write_text('{"container_id": ')  # a write cut short
    (tmp / "state" / "state.yaml.cni" / ".x@eth0.1.tmp").write_text(json.dumps(record._asdict()))
    assert registry.all() == [record]
    registry.remove(record)
    registry.remove(record)
    assert registry.get("default-srv", "eth0") is None
