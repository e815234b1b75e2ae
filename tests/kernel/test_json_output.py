"""Every command's --json in a test host, each document validated against its entry of
docs/cnet-output.schema.json and held against the kernel's own view (ip -j)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

pytestmark = pytest.mark.kernel

SCHEMA = json.loads((Path(__file__).parents[2] / "docs" / "cnet-output.schema.json").read_text())


def validate(entry: str, document):
    schema = {"$ref": f"#/$defs/command-{entry.replace(' ', '-')}", "$defs": SCHEMA["$defs"]}
    jsonschema.Draft202012Validator(schema).validate(document)
    return document


def run(host, entry: str, *args: str, code: int = 0, input: str | None = None):
    """`cnet ARGS --json` (entry: its schema entry); its document, validated."""
    result = host.cnet(*args, "--json", input=input)
    assert result.returncode == code, result.stderr
    return validate(entry, json.loads(result.stdout))


def kernel_addresses(host, ns: str, ifname: str) -> list[str]:
    (link,) = host.ip_json("-n", ns, "addr", "show", ifname)
    return sorted(f"{a['local']}/{a['prefixlen']}" for a in link["addr_info"] if a["scope"] == "global")


def test_every_command_on_bridges(host):
    net = run(host, "create bridge", "create", "bridge", "br0", "--subnet", "10.61.0.0/24")
    assert net["name"] == "br0" and net["kernel"]["ifname"] == "br0" and net["endpoints"] == []
    assert "br0" in host.links()
    run(host, "create bridge", "create", "bridge", "br1", "--subnet", "10.62.0.0/24")

    web = run(host, "create ns", "create", "ns", "web", "--network", "br0", "--publish", "8080:80")
    (ep,) = web["endpoints"]
    assert kernel_addresses(host, "web", ep["ifname"]) == ep["addresses"]
    assert [p["mappings"] for p in web["ports"]] == [["0.0.0.0:8080->80/tcp"]]
    assert web["networks"] == ["br0"] and web["kernel"] is not None

    run(host, "create ns", "create", "ns", "db")
    db = run(host, "attach", "attach", "db", "br0", "--egress-rate", "10mbit")
    assert kernel_addresses(host, "db", db["ifname"]) == db["addresses"]
    assert db["limits"]["egress_rate"] == 10_000_000 and db["limits"]["ingress_rate"] is None
    assert db["host_ifname"] in host.links()
    limited = run(host, "limit", "limit", "db", "br0", "--clear")
    assert limited["limits"] is None
    (made,) = run(host, "publish", "publish", "db", "5432")
    assert made["port"] == 5432 and made["mappings"] == [f"0.0.0.0:{made['host_port']}->5432/tcp"]

    router = run(host, "create router", "create", "router", "r1", "--network", "br0", "--network", "br1")
    assert sorted(n["network"] for n in router["networks"]) == ["br0", "br1"]

    for what in ("networks", "ns", "endpoints", "ports", "routers"):
        listed = run(host, f"ls {what}", "ls", what)
        assert listed and {item["status"] for item in listed} == {"ok"}
    assert run(host, "inspect network", "inspect", "br0")["endpoints"].__len__() == 3  # web, db, r1
    assert run(host, "inspect ns", "inspect", "web")["stack_owner"] == "web"
    assert run(host, "explain", "explain", "web", "80")["verdict"].startswith("should answer")
    assert run(host, "check", "check")["in_sync"] is True

    gone = run(host, "unpublish", "unpublish", "db", "5432")
    assert [p["host_port"] for p in gone["ports"]] == [made["host_port"]]
    gone = run(host, "detach", "detach", "db", "br0")
    assert [e["host_ifname"] for e in gone["endpoints"]] == [db["host_ifname"]]
    assert db["host_ifname"] not in host.links()

    lines = host.cnet("batch", "--json", input="create ns b1 --network br1\n# a comment\nls ports\ndelete ns b1\n")
    assert lines.returncode == 0, lines.stderr
    documents = [json.loads(line) for line in lines.stdout.splitlines()]
    assert len(documents) == 3  # one per command line
    for entry, document in zip(("create ns", "ls ports", "delete ns"), documents):
        validate(entry, document)
        validate("batch", document)
    assert documents[2]["sandboxes"][0]["name"] == "b1" and len(documents[2]["endpoints"]) == 1

    host.run(["ip", "netns", "del", "db"], check=True)  # something for restore to make again
    assert run(host, "check", "check", code=5)["in_sync"] is False
    restored = run(host, "restore", "restore")
    assert restored["restored"] and restored["failed"] == []
    assert run(host, "gc", "gc", "--dry-run") == {"dry_run": True, "removed": []}

    gone = run(host, "delete router", "delete", "router", "r1")
    assert gone["routers"][0]["name"] == "r1" and len(gone["endpoints"]) == 2
    gone = run(host, "delete ns", "delete", "ns", "web")
    assert len(gone["endpoints"]) == 1 and gone["ports"][0]["port"] == 80
    run(host, "delete ns", "rm", "ns", "db")
    assert run(host, "delete ns", "delete", "ns", "nothing", "--if-exists") == {
        "networks": [], "sandboxes": [], "routers": [], "endpoints": [], "ports": []}
    for name in ("br0", "br1"):
        assert run(host, "delete network", "delete", "network", name)["networks"][0]["name"] == name
    assert "br0" not in host.links()
    assert run(host, "gc", "gc") == {"dry_run": False, "removed": []}


def test_delete_force_names_the_endpoints_it_detached(host):
    run(host, "create bridge", "create", "bridge", "br0", "--subnet", "10.63.0.0/24")
    run(host, "create ns", "create", "ns", "a", "--network", "br0", "-p", "8081:81")
    gone = run(host, "delete network", "delete", "network", "br0", "--force")
    assert [e["sandbox"] for e in gone["endpoints"]] == ["a"] and gone["ports"][0]["port"] == 81
    assert run(host, "ls endpoints", "ls", "endpoints") == []


def test_errors_are_unchanged_with_json(host):
    result = host.cnet("attach", "nobody", "nowhere", "--json")
    assert result.returncode == 3 and result.stdout == ""
    assert result.stderr.startswith("cnet: error: ") and result.stderr.count("\n") == 1
    failed = host.cnet("batch", "--json", input="create bridge ok0 --subnet 10.64.0.0/24\nattach nobody ok0\n")
    assert failed.returncode == 3 and failed.stderr.startswith("cnet: error: line 2: ")
    assert [json.loads(line)["name"] for line in failed.stdout.splitlines()] == ["ok0"]  # line 1 stays done


def test_macvlan_on_a_veth_parent(host):
    host.run(["ip", "link", "add", "lan0", "type", "veth", "peer", "name", "lan0p"], check=True)
    host.run(["ip", "link", "set", "lan0", "up"], check=True)
    net = run(host, "create macvlan", "create", "macvlan", "lan", "--parent", "lan0",
              "--subnet", "192.168.61.0/24")
    assert net["driver"] == "macvlan" and net["kernel"]["parent"]["ifname"] == "lan0"
    sandbox = run(host, "create ns", "create", "ns", "m", "--network", "lan")
    (ep,) = sandbox["endpoints"]
    assert ep["host_ifname"] == "" and kernel_addresses(host, "m", ep["ifname"]) == ep["addresses"]
    assert run(host, "ls networks", "ls", "networks")[0]["driver"] == "macvlan"
    run(host, "delete ns", "delete", "ns", "m")
    assert run(host, "delete network", "delete", "network", "lan")["networks"][0]["driver"] == "macvlan"


def test_apply_and_export(host, tmp_path):
    lab = tmp_path / "lab.yaml"
    lab.write_text("version: 1\nnetworks:\n  front: {subnet: 10.1.0.0/24}\n"
                   "sandboxes:\n  web: {networks: [front], publish: [\"8080:80\"]}\n")
    planned = run(host, "apply", "apply", str(lab), "--dry-run", code=5)
    assert planned["applied"] is False and planned["steps"] == 2 and planned["changes"][0].startswith("+ create")
    done = run(host, "apply", "apply", str(lab))
    assert done["applied"] is True and "web" in host.run(["ip", "netns", "list"]).stdout
    again = run(host, "apply", "apply", str(lab), "--dry-run")
    assert again == {"changes": [], "steps": 0, "applied": False}
    exported = run(host, "export", "export")
    assert exported["sandboxes"]["web"]["publish"] == ["8080:80"]
