"""Names and MACs cnet makes up for an endpoint (core/sandboxes.py): pure."""

import hashlib
import re

import pytest

from cnet.core.sandboxes import random_mac
from cnet.drivers.bridge import host_ifname
from cnet.errors import Conflict
from cnet.model import Endpoint, State


def nothing_taken(name):
    return False


def test_the_host_side_name_is_a_hash_of_sandbox_and_network():
    name = host_ifname(State(), "web", "mybr0", nothing_taken)
    assert name == "cn" + hashlib.sha256(b"web\0mybr0\0" + b"0").hexdigest()[:10]
    assert len(name) <= 15  # IFNAMSIZ - 1
    assert host_ifname(State(), "web", "mybr0", nothing_taken) == name  # the same every time
    assert host_ifname(State(), "web", "other", nothing_taken) != name


def test_a_clash_takes_the_next_salt():
    first = host_ifname(State(), "web", "mybr0", nothing_taken)
    state = State(endpoints=[Endpoint("db", "mybr0", "eth0", first, "02:00:00:00:00:01", [])])
    second = host_ifname(state, "web", "mybr0", nothing_taken)
    assert second != first and second.startswith("cn")
    assert host_ifname(State(), "web", "mybr0", lambda n: n == first) == second  # a link of the host's own


def test_no_free_name_is_a_conflict():
    with pytest.raises(Conflict):
        host_ifname(State(), "web", "mybr0", lambda n: True)


def test_macs_are_random_locally_administered_and_unicast():
    macs = {random_mac() for _ in range(200)}
    assert len(macs) == 200
    for mac in macs:
        assert re.fullmatch(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}", mac)
        first = int(mac[:2], 16)
        assert first & 0x02 and not first & 0x01
