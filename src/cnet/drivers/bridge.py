"""The bridge driver: a network is a Linux bridge that holds the gateway addresses.

The bridge is named after the network, carries cnet's tag in its ifalias (so
cnet deletes only bridges it made), forwards at once (forward delay 0), and
has IPv6 only when the network has an IPv6 subnet (otherwise not even a
link-local address). Every step is registered for undo as soon as it is done.
"""

from __future__ import annotations

from contextlib import ExitStack

from .. import faults
from ..kernel import sysctl
from ..kernel.netlink import Netlink
from ..model import Network


def owner_tag(name: str) -> str:
    return f"cnet network {name}"


def create(net: Network, nl: Netlink, undo: ExitStack) -> None:
    index = nl.add_bridge(net.name, net.mtu)
    undo.callback(nl.delete_link, net.name)
    has_ipv6 = any(":" in s.subnet for s in net.subnets)
    # The bridge is still down, so no link-local address has been made yet.
    sysctl.write(f"net.ipv6.conf.{net.name}.disable_ipv6", "0" if has_ipv6 else "1")
    nl.set_alias(index, owner_tag(net.name))
    for s in net.subnets:
        nl.add_address(index, s.gateway_cidr)
    faults.checkpoint("bridge-addresses")
    nl.set_up(index)


def delete(net: Network, nl: Netlink) -> bool:
    """Delete the bridge if it is there and is ours; False if there was nothing to delete."""
    view = nl.link_view(net.name)
    if view is None or view["alias"] != owner_tag(net.name):
        return False
    return nl.delete_link(net.name)


def inspect(net: Network, nl: Netlink) -> dict | None:
    """The kernel's view of the bridge, or None when it is missing."""
    view = nl.link_view(net.name)
    if view is not None:
        view["owned"] = view.pop("alias") == owner_tag(net.name)
    return view
