"""Names the kernel refuses for a link are refused by cnet.names.check_ifname,
with the reason, before anything is made: a network's name (its bridge) and
`attach --ifname` (the sandbox's interface), and so a state file cannot name
one either. The kernel's own answer (EINVAL) is checked by
tests/kernel/test_kernel_refused_names.py.
"""

import json

import pytest

from cnet.errors import InvalidInput, StateFileError
from cnet.names import RESERVED_IFNAMES, check_ifname
from cnet.state import decode

# name, what the one-line reason says
REFUSED = [
    ("all", "'all' is reserved: the kernel refuses 'all' and 'default' as interface names"),
    ("default", "'default' is reserved: the kernel refuses 'all' and 'default' as interface names"),
    ("a/b", "'a/b' contains '/', which an interface name cannot hold"),
    ("a:b", "'a:b' contains ':', which an interface name cannot hold"),
    ("a b", "'a b' contains ' ', which an interface name cannot hold"),
    ("a\tb", "'a\\tb' contains '\\t', which an interface name cannot hold"),
    ("a\u00a0b", "contains '\\xa0', which an interface name cannot hold"),  # whitespace beyond ASCII
    ("a" * 16, "is 16 bytes long; an interface name has at most 15"),
    (".", "'.' is not a valid interface name"),
    ("..", "'..' is not a valid interface name"),
]


@pytest.mark.parametrize("what", ["network name", "interface name"])
@pytest.mark.parametrize("name, reason", REFUSED, ids=[repr(n) for n, _ in REFUSED])
def test_a_name_the_kernel_refuses_is_invalid_input_naming_it_and_why(what, name, reason):
    with pytest.raises(InvalidInput) as info:
        check_ifname(name, what)
    assert str(info.value).startswith(f"{what} {name!r} "), str(info.value)
    assert reason in str(info.value)
    assert info.value.exit_code == 2


def test_the_reserved_names_are_all_and_default():
    assert RESERVED_IFNAMES == ("all", "default")


@pytest.mark.parametrize("name", ["ALL", "Default", "all0", "default-br", "xall", "a.ll"])
def test_names_that_only_look_like_the_reserved_ones_are_kept(name):
    # the kernel compares them exactly: `ip link add ALL type bridge` works
    assert check_ifname(name) == name


def _state_with_network(name: str) -> str:
    return json.dumps({"version": 1, "networks": {name: {
        "name": name, "driver": "bridge", "mtu": 1500, "internal": False, "masquerade": True, "options": {},
        "created": "", "subnets": [{"subnet": "10.1.0.0/24", "gateway": "10.1.0.1"}]}}})


@pytest.mark.parametrize("name", RESERVED_IFNAMES)
def test_a_state_file_naming_a_network_all_or_default_is_refused(name):
    with pytest.raises(StateFileError) as info:
        decode(_state_with_network(name), "/var/lib/cnet/state.yaml")
    assert f"networks.{name}.name" in str(info.value) and "reserved" in str(info.value)


def test_a_state_file_naming_an_ordinary_network_is_read():
    assert list(decode(_state_with_network("all0"), "/var/lib/cnet/state.yaml").networks) == ["all0"]
