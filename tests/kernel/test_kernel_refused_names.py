"""Names the kernel refuses for a link are refused by cnet first: exit 2, one
line naming the value and why, and nothing made (no link, no namespace, the
state file byte-identical). Before this, `create bridge all` and
`attach --ifname default` reached the kernel and failed with exit 1 and
"Invalid argument"."""

from __future__ import annotations

import pytest

STATE = "/var/lib/cnet/state.yaml"

# name, what the error line says of it
REFUSED = [
    ("all", "is reserved: the kernel refuses 'all' and 'default' as interface names"),
    ("default", "is reserved: the kernel refuses 'all' and 'default' as interface names"),
    ("a/b", "contains '/', which an interface name cannot hold"),
    ("a:b", "contains ':', which an interface name cannot hold"),
    ("a b", "contains ' ', which an interface name cannot hold"),
    ("x" * 16, "is 16 bytes long; an interface name has at most 15"),
    (".", "is not a valid interface name"),
    ("..", "is not a valid interface name"),
]
IDS = [repr(name) for name, _ in REFUSED]


def ok(result) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def made(host) -> tuple:
    """What a command could have made: the links, the namespaces, the state file."""
    return set(host.links()), host.run(["ls", "/run/netns"], check=True).stdout, host.read(STATE)


def the_error(result) -> str:
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("cnet: error: "), result.stderr
    return result.stderr


@pytest.mark.parametrize("name", ["all", "default"])
def test_the_kernel_itself_refuses_all_and_default_but_not_their_capitals(host, name):
    """What names.RESERVED_IFNAMES stands for: EINVAL from the kernel, for a
    bridge as for a veth peer; 'ALL', 'Default' are fine."""
    refused = host.run(["ip", "link", "add", name, "type", "bridge"])
    assert refused.returncode != 0 and "Invalid argument" in refused.stderr
    refused = host.run(["ip", "link", "add", "v0", "type", "veth", "peer", "name", name])
    assert refused.returncode != 0 and "Invalid argument" in refused.stderr
    host.run(["ip", "link", "add", name.capitalize(), "type", "bridge"], check=True)
    assert set(host.links()) == {"lo", name.capitalize()}


@pytest.mark.parametrize("name, reason", REFUSED, ids=IDS)
def test_create_bridge_with_a_name_the_kernel_refuses_is_exit_2_and_makes_nothing(host, name, reason):
    ok(host.cnet("create", "bridge", "br0", "--subnet", "10.40.0.0/24"))
    before = made(host)
    result = host.cnet("create", "bridge", name, "--subnet", "10.41.0.0/24")
    assert result.returncode == 2, result.stderr
    assert f"network name {name!r} {reason}" in the_error(result)
    assert result.stdout == ""
    assert made(host) == before


@pytest.mark.parametrize("name, reason", REFUSED, ids=IDS)
def test_attach_with_an_ifname_the_kernel_refuses_is_exit_2_and_makes_nothing(host, name, reason):
    ok(host.cnet("create", "bridge", "br0", "--subnet", "10.40.0.0/24"))
    ok(host.cnet("create", "ns", "web"))
    before = made(host)
    result = host.cnet("attach", "web", "br0", "--ifname", name)
    assert result.returncode == 2, result.stderr
    assert f"interface name {name!r} {reason}" in the_error(result)
    assert made(host) == before
    inside = host.run(["ip", "netns", "exec", "web", "ip", "-o", "link", "show"], check=True).stdout
    assert [line.split(":")[1].strip() for line in inside.splitlines()] == ["lo"]
    # and the sandbox is still good for an attach with a name the kernel takes
    assert ok(host.cnet("attach", "web", "br0", "--ifname", "ALL")) == "10.40.0.2/24\n"
