"""Subnets a host cannot use are refused with the reason (exit 2); a subnet
that holds one of the host's addresses or overlaps a network it is on is a
conflict (exit 4), the latter overridable with --force-subnet. Pure planning:
what the host has comes in as arguments."""

from __future__ import annotations

import ipaddress

import pytest

from cnet.config import Config
from cnet.core import networks
from cnet.core.sandboxes import plan_endpoint
from cnet.errors import Conflict, InvalidInput
from cnet.ipam import check_usable, parse_cidr
from cnet.model import Endpoint, Network, State, Subnet

UNUSABLE = {
    "127.0.0.0/24": "loopback", "127.0.0.0/8": "loopback", "224.0.0.0/24": "multicast",
    "169.254.0.0/16": "link-local", "240.0.0.0/24": "reserved", "255.255.255.255/32": "reserved",
    "0.0.0.0/0": "every address", "0.0.0.0/8": "'this network'", "0.0.0.0/1": "overlaps",
    "::/0": "every address", "::1/128": "loopback", "fe80::/64": "link-local", "::ffff:0:0/96": "IPv4-mapped",
    "ff02::/16": "multicast", "fec0::/10": "site-local", "::/96": "overlaps the loopback", "::2:0/112": "reserved",
}
USABLE = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "198.18.0.0/15", "8.8.8.0/24",
          "fd00::/8", "2001:db8::/32", "2a00:1450::/32"]


@pytest.mark.parametrize("subnet, word", UNUSABLE.items(), ids=UNUSABLE.keys())
def test_subnets_a_host_cannot_use_are_refused_with_the_reason(subnet, word):
    with pytest.raises(InvalidInput, match=word):
        check_usable(parse_cidr(subnet))


@pytest.mark.parametrize("subnet", USABLE)
def test_private_and_public_ranges_are_usable(subnet):
    check_usable(parse_cidr(subnet))


def plan(subnet, addresses=(), connected=(), force=False):
    return networks.plan_network(
        State(), Config(), "br0", driver="bridge", subnets=[subnet],
        host_networks=lambda: ([ipaddress.ip_address(a) for a in addresses],
                               [(ipaddress.ip_network(n), dev) for n, dev in connected]),
        force_subnet=force)


def test_a_subnet_holding_an_address_of_the_host_is_a_conflict_even_forced():
    for force in (False, True):
        with pytest.raises(Conflict, match="holds 192.168.1.5, an address of this host"):
            plan("192.168.0.0/16", addresses=["192.168.1.5", "127.0.0.1"], force=force)


def test_a_subnet_overlapping_a_network_the_host_is_on_needs_force():
    lan = [("192.168.1.0/24", "eth0")]
    with pytest.raises(Conflict, match="overlaps 192.168.1.0/24, a network this host is on \\(dev eth0\\)"):
        plan("192.168.0.0/16", connected=lan)
    assert plan("192.168.0.0/16", connected=lan, force=True).subnets[0].subnet == "192.168.0.0/16"
    assert plan("10.1.0.0/16", addresses=["192.168.1.5"], connected=lan).subnets[0].subnet == "10.1.0.0/16"


def test_an_unusable_subnet_is_refused_before_anything_else():
    with pytest.raises(InvalidInput, match="loopback"):
        plan("127.0.0.0/24", addresses=["127.0.0.1"])


def network_with(*macs) -> tuple[State, Network]:
    net = Network("br0", "bridge", [Subnet("10.0.0.0/24", "10.0.0.1")], 1500)
    eps = [Endpoint(f"s{i}", "br0", "eth0", "", mac, (f"10.0.0.{i + 2}/24",)) for i, mac in enumerate(macs)]
    return State(networks={"br0": net}, endpoints=eps), net


def test_a_mac_already_on_the_network_is_a_conflict():
    state, net = network_with("02:00:00:00:00:01")
    with pytest.raises(Conflict, match="MAC address 02:00:00:00:00:01 is already used on network br0 .by sandbox s0"):
        plan_endpoint(state, net, "new", mac="02:00:00:00:00:01")
    ep, _ = plan_endpoint(state, net, "new", mac="02:00:00:00:00:02")
    assert ep.mac == "02:00:00:00:00:02"


def test_a_random_mac_that_collides_is_drawn_again(monkeypatch):
    from cnet.core import sandboxes

    state, net = network_with("02:00:00:00:00:01")
    draws = iter(["02:00:00:00:00:01", "02:00:00:00:00:01", "02:00:00:00:00:09"])
    monkeypatch.setattr(sandboxes, "random_mac", lambda: next(draws))
    ep, _ = plan_endpoint(state, net, "new")
    assert ep.mac == "02:00:00:00:00:09"
