"""Tests for cnet.names.check_ifname: the kernel's rules for interface names.

A network's name becomes the name of its bridge, so it must be something the
kernel accepts as it is (dev_valid_name): 1-15 bytes, no '/', ':' or
whitespace, not '.' or '..'.
"""

import pytest

from cnet.errors import InvalidInput
from cnet.names import IFNAMSIZ, check_ifname


@pytest.mark.parametrize("name", [
    "a",
    "mybr0",
    "x" * 15,
    "br-front",
    "br_back",
    "br.10",
    "...",          # only "." and ".." themselves are refused
    ".hidden",
    "A-Z_0.9",
])
def test_valid_names_are_returned_unchanged(name):
    assert check_ifname(name) == name


def test_ifnamsiz_is_the_kernel_limit():
    assert IFNAMSIZ == 15


# name, substring of the message
INVALID = [
    ("", "network name must not be empty"),
    ("x" * 16, "is 16 bytes long; an interface name has at most 15"),
    ("a-very-long-bridge-name", "is 23 bytes long"),
    ("é" * 8, "is 16 bytes long"),
    (".", "'.' is not a valid interface name"),
    ("..", "'..' is not a valid interface name"),
    ("a/b", "contains '/', which an interface name cannot hold"),
    ("a:b", "contains ':', which an interface name cannot hold"),
    ("a b", "contains ' ', which an interface name cannot hold"),
    ("a\tb", "contains '\\t'"),
    ("a\nb", "contains '\\n'"),
    ("a\x00b", "contains '\\x00'"),
    ("a\x7fb", "contains '\\x7f'"),
    ("a:b/c", "contains '/', ':'"),  # every bad character is named, sorted
    ('a"b', "contains '\"': use letters, digits"),  # would break the firewall rules
    ("br;x", "contains ';': use letters"),
    ("é" * 7, "contains 'é': use letters"),
]


@pytest.mark.parametrize("name, message", INVALID, ids=[repr(n) for n, _ in INVALID])
def test_invalid_names_are_refused_with_a_reason(name, message):
    with pytest.raises(InvalidInput) as info:
        check_ifname(name)
    assert message in str(info.value)
    assert info.value.exit_code == 2
    assert "\n" not in str(info.value)  # one line, whatever the name holds


def test_the_message_names_what_was_checked():
    with pytest.raises(InvalidInput, match=r"^sandbox interface 'a/b' contains"):
        check_ifname("a/b", what="sandbox interface")
    with pytest.raises(InvalidInput, match=r"^host link must not be empty$"):
        check_ifname("", what="host link")


@pytest.mark.parametrize("name", ["br%d", "a%b"])
def test_percent_is_refused(name):
    with pytest.raises(InvalidInput):
        check_ifname(name)
