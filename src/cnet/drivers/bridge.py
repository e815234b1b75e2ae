"""The bridge driver: a network is a Linux bridge that holds the gateway addresses.

The bridge is named after the network, carries cnet's tag in its ifalias (so
cnet deletes only bridges it made), forwards at once (forward delay 0), and
has IPv6 only when the network has an IPv6 subnet (otherwise not even a
link-local address). Every step is registered for undo as soon as it is done.
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from typing import TYPE_CHECKING

from .. import faults
from ..kernel import sysctl
from ..errors import OperationFailed
from ..model import Endpoint, Network

if TYPE_CHECKING:  # netlink is imported only where a handle is opened
    from ..kernel.netlink import Netlink


def owner_tag(name: str) -> str:
    return f"cnet network {name}"


def create(net: Network, nl: Netlink, undo: ExitStack) -> None:
    index = nl.add_bridge(net.name, net.mtu)
    undo.callback(nl.delete_link, net.name)
    has_ipv6 = any(":" in s.subnet for s in net.subnets)
    # The bridge is still down, so no link-local address has been made yet.
    # (A host booted without IPv6 has no such sysctl, and nothing to turn off.)
    disable_ipv6 = ("net", "ipv6", "conf", net.name, "disable_ipv6")
    if has_ipv6 or sysctl.exists(disable_ipv6):
        sysctl.write(disable_ipv6, "0" if has_ipv6 else "1")
    if has_ipv6:
        # No duplicate address detection on the bridge's link-local address:
        # while it is tentative (1-2 s after the bridge comes up) the host
        # sends no neighbour solicitation for traffic it forwards, so the
        # first connections to a published IPv6 port would go unanswered.
        sysctl.write(("net", "ipv6", "conf", net.name, "accept_dad"), "0")
    nl.set_alias(index, owner_tag(net.name))
    for s in net.subnets:
        nl.add_address(index, s.gateway_cidr)
    if not net.internal and any(":" not in s.subnet for s in net.subnets):
        # lets 127.0.0.1:PORT of a published port be carried to a sandbox
        sysctl.write(("net", "ipv4", "conf", net.name, "route_localnet"), "1")
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


def endpoint_tag(ep: Endpoint) -> str:
    return f"cnet endpoint {ep.sandbox} {ep.network}"


def attach(net: Network, ep: Endpoint, sandbox_path: str, host: Netlink, inside: Netlink,
           undo: ExitStack, default_route: bool) -> None:
    """Plug the sandbox at sandbox_path into the bridge with a veth pair."""
    bridge_index = host.bridge_index(net.name)
    if bridge_index is None:
        raise OperationFailed(f"the bridge of network {net.name} is missing from the kernel")
    fd = os.open(sandbox_path, os.O_RDONLY)
    try:
        index = host.add_veth(ep.host_ifname, ep.ifname, fd, net.mtu, ep.mac, master=bridge_index)
    finally:
        os.close(fd)
    undo.callback(host.delete_link, ep.host_ifname)  # takes the peer with it
    host.set_alias(index, endpoint_tag(ep))
    host.set_hairpin(index)
    peer = inside.link_index(ep.ifname)
    for cidr in ep.addresses:
        inside.add_address(peer, cidr)
    inside.set_up(peer)
    faults.checkpoint("attach-addresses")
    if default_route:
        add_default_routes(net, inside)


def add_default_routes(net: Network, inside: Netlink) -> None:
    for s in net.subnets:
        inside.add_default_route(s.gateway)


def detach(ep: Endpoint, host: Netlink) -> None:
    """Remove the veth pair (deleting one end deletes both); gone already is fine."""
    host.delete_link(ep.host_ifname)
