"""docs/cnet-output.schema.json is valid JSON Schema, cli/views.py's objects validate against it,
and every command with --json has its entry (the kernel tests validate real output:
tests/kernel/test_json_output.py)."""

import io
import json
from pathlib import Path

import click
import jsonschema
import pytest

from cnet.cli import cli, main, views
from cnet.core.explain import Explanation, Step
from cnet.core.lifecycle import Difference
from cnet.kernel import netns, sysfs
from cnet.model import Endpoint, HostDevice, Limits, Network, PortMapping, Sandbox, State, Subnet
from cnet.state import StateStore

SCHEMA = json.loads((Path(__file__).parents[2] / "docs" / "cnet-output.schema.json").read_text())
# The commands without --json: exec becomes another program, completion prints a shell script,
# apply/export/graph (cli/topology.py) are to come (docs/json.md).
NO_JSON = {"exec", "completion", "graph", "agent"}  # a command, a shell script, a picture, a log


def validate(entry: str, document) -> None:
    """Raises unless document is what `cnet ENTRY --json` may print (entry: "ls ports", "attach")."""
    schema = {"$ref": f"#/$defs/command-{entry.replace(' ', '-')}", "$defs": SCHEMA["$defs"]}
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(document)


NET = Network("br0", "bridge", [Subnet("10.7.0.0/24", "10.7.0.1", None, "10.7.0.2")], 1500,
              options={"icc": False}, created="2026-01-01T00:00:00+00:00")
SANDBOX = Sandbox("web", dns=("1.1.1.1",), hosts=("db:10.7.0.3",), created="2026-01-01T00:00:00+00:00")
PLAIN = Endpoint("web", "br0", "eth0", "cn0123456789", "02:00:00:00:00:01", ("10.7.0.2/24",))
LIMITED = Endpoint("db", "br0", "eth0", "cn9876543210", "02:00:00:00:00:02", ("10.7.0.3/24",),
                   Limits(egress_rate=10_000_000, egress_burst=12_500))
RANGE = PortMapping("web", "br0", "udp", "::", 9000, 90, count=3)


def test_the_schema_file_is_valid_draft_2020_12():
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["x-cnet-schema"] == views.SCHEMA_VERSION == 1


def test_every_ref_resolves():
    validator = jsonschema.Draft202012Validator(SCHEMA)
    for name in SCHEMA["$defs"]:
        validator.evolve(schema={"$ref": f"#/$defs/{name}", "$defs": SCHEMA["$defs"]}).is_valid(None)


def _leaf_commands(group: click.Group, prefix=()):
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _leaf_commands(command, (*prefix, name))
        else:
            yield (*prefix, name), command


def test_every_command_has_json_and_a_schema_entry():
    for path, command in _leaf_commands(cli):
        if path[0] in NO_JSON:
            continue
        assert "json_out" in {p.name for p in command.params}, f"cnet {' '.join(path)} has no --json"
        entry = " ".join(("delete", *path[1:]) if path[0] == "rm" else path)
        if path[0] in ("ls", "inspect"):  # one entry per thing they show: ls ports, inspect ns
            continue
        assert f"command-{entry.replace(' ', '-')}" in SCHEMA["$defs"], entry
    for what in ("networks", "ns", "endpoints", "ports", "routers"):
        assert f"command-ls-{what}" in SCHEMA["$defs"]


def test_listings_validate():
    validate("ls networks", [views.network(NET, 2, "ok")])
    validate("ls ns", [views.sandbox(SANDBOX, ["br0"], "missing")])
    validate("ls endpoints", [views.endpoint(PLAIN, "ok"), views.endpoint(LIMITED, "ok")])
    validate("ls ports", [views.port(RANGE, "ok")])
    validate("ls routers", [views.router("r1", [PLAIN], "ok")])


def test_a_listing_needs_its_status():
    with pytest.raises(jsonschema.ValidationError):
        validate("ls endpoints", [views.endpoint(PLAIN)])


def test_a_hostdev_endpoint_carries_its_device_and_others_null():
    moved = Endpoint("web", "hd", "eth0", "", "52:54:00:60:00:10", ("192.168.60.2/24",),
                     device=HostDevice("lan0", 1400, "52:54:00:60:00:10", False, alias="uplink"))
    assert views.endpoint(PLAIN)["device"] is None
    assert views.endpoint(moved)["device"] == {"name": "lan0", "mtu": 1400, "mac": "52:54:00:60:00:10", "up": False}
    validate("ls endpoints", [views.endpoint(moved, "ok"), views.endpoint(PLAIN, "ok")])


def test_limits_are_null_or_all_four_keys():
    assert views.endpoint(PLAIN)["limits"] is None
    assert views.endpoint(LIMITED)["limits"] == {"ingress_rate": None, "ingress_burst": None,
                                                  "egress_rate": 10_000_000, "egress_burst": 12_500}


def test_a_port_mapping_carries_its_mapping_lines():
    assert views.port(RANGE)["mappings"] == ["[::]:9000->90/udp", "[::]:9001->91/udp", "[::]:9002->92/udp"]


def test_made_objects_validate():
    kernel = {"ifname": "br0", "kind": "bridge", "state": "UP", "mtu": 1500, "addresses": ["10.7.0.1/24"],
              "owned": True}
    validate("create bridge", views.network_detail(NET, [PLAIN], kernel))
    validate("inspect network", views.network_detail(NET, [], None))
    detail = views.sandbox_detail(SANDBOX, "web", [PLAIN], [RANGE], {"links": [{"ifname": "lo"}], "routes": []})
    validate("create ns", detail)
    validate("inspect ns", {**detail, "kernel": None})
    validate("create router", views.router("r1", [PLAIN, LIMITED]))
    validate("attach", views.endpoint(LIMITED))
    validate("limit", views.endpoint(PLAIN))
    validate("publish", [views.port(RANGE)])


def test_removals_validate():
    state_like = views.removed(networks=[views.network(NET, 1)], sandboxes=[views.sandbox(SANDBOX, [])],
                               routers=[views.router("r1", [])], endpoints=[views.endpoint(PLAIN)],
                               ports=[views.port(RANGE)])
    for entry in ("delete network", "delete ns", "delete router", "detach", "unpublish"):
        validate(entry, state_like)
        validate(entry, views.removed())
    with pytest.raises(jsonschema.ValidationError):  # gone: no status
        validate("detach", views.removed(endpoints=[views.endpoint(PLAIN, "ok")]))


def test_reports_validate():
    validate("check", views.check_report([Difference("netns", "web", "missing /run/netns/web", "sandbox web")],
                                         ["ip_forward is off"], ["inet filter forward: jump cnet-accept"]))
    step = Step(1, "dnat", "dnat to 10.7.0.2:80", table="inet cnet", chain="dnat", handle=7, tool="nft", cnet=True)
    explained = Explanation(PortMapping("web", "br0", "tcp", "0.0.0.0", 8080, 80), 8080, 80, 4, "br0", [step])
    validate("explain", views.explain_report([explained], explained.verdict))
    validate("restore", views.restore_report(["made namespace web"], []))
    validate("gc", views.gc_report(["would remove: link cn0123456789"], dry_run=True))
    assert views.gc_report(["removed: link x"], dry_run=False) == {"dry_run": False, "removed": ["link x"]}


def test_a_batch_line_is_any_commands_document():
    validate("batch", views.endpoint(PLAIN))
    with pytest.raises(jsonschema.ValidationError):
        validate("batch", {"what": "else"})


@pytest.fixture
def state_file(monkeypatch, tmp_path):
    """A state file with one of each kind; /sys/class/net and /run/netns are empty directories
    of the test's own (so everything's status is "missing")."""
    for var in ("CNET_STATE", "CNET_FIREWALL"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "config.yaml").write_text("")
    monkeypatch.setenv("CNET_CONFIG", str(tmp_path / "config.yaml"))
    for name, attribute, module in (("sys-class-net", "SYS_CLASS_NET", sysfs), ("run-netns", "NETNS_RUN_DIR", netns)):
        (tmp_path / name).mkdir()
        monkeypatch.setattr(module, attribute, str(tmp_path / name))
    router = Sandbox("r1", mode="router")
    state = State(networks={"br0": NET}, sandboxes={"web": SANDBOX, "db": Sandbox("db"), "r1": router},
                  endpoints=[PLAIN, LIMITED, Endpoint("r1", "br0", "eth0", "cn5555555555", "02:00:00:00:00:05",
                                                      ("10.7.0.254/24",))],
                  ports=[RANGE])
    path = tmp_path / "state.yaml"
    StateStore(str(path)).save(state)
    return path


def cnet(capsys, monkeypatch, state_file, *argv, stdin: str = "") -> str:
    """Run cnet in-process on state_file; its stdout (it must succeed, silently on stderr)."""
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    with pytest.raises(SystemExit) as info:
        main(["--state", str(state_file), *argv])
    out, err = capsys.readouterr()
    assert (info.value.code or 0, err) == (0, ""), err
    return out


def test_what_ls_prints_validates(capsys, monkeypatch, state_file):
    for what in ("networks", "ns", "endpoints", "ports", "routers"):
        listed = json.loads(cnet(capsys, monkeypatch, state_file, "ls", what, "--json"))
        assert listed and {item["status"] for item in listed} == {"missing"}
        validate(f"ls {what}", listed)


def test_batch_json_is_one_document_a_line(capsys, monkeypatch, state_file):
    out = cnet(capsys, monkeypatch, state_file, "batch", "--json", stdin="ls\n\n# nothing\nls ports\nls routers -q\n")
    lines = out.splitlines()
    assert len(lines) == 3
    for entry, line in zip(("ls networks", "ls ports", "ls routers"), lines):
        validate(entry, json.loads(line))
        validate("batch", json.loads(line))
