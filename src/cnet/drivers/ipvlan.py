"""The ipvlan driver: endpoints are ipvlan links of the network's parent,
which share its MAC (sublink.py has what it shares with macvlan). Modes as
the kernel's: l2 (the sandboxes answer ARP on the LAN themselves), l3 and
l3s (the parent routes for them; their links do no ARP, so their default
route goes out of the link, without a gateway).

A kernel without the ipvlan module says so when the first ipvlan link is
made (EOPNOTSUPP): `create ipvlan` makes one on the parent at once, as a
probe, and fails with 1 naming the module.
"""

from __future__ import annotations

import errno
import socket
import zlib

from ..errors import OperationFailed
from ..model import Network
from .sublink import SubLinkDriver

MODES = {"l2": 0, "l3": 1, "l3s": 2}  # IFLA_IPVLAN_MODE


def probe_link_name(network: str) -> str:
    """The short-lived link `create ipvlan` makes to learn whether the kernel has ipvlan."""
    return f"cnp{zlib.crc32(network.encode()):08x}"


class Ipvlan(SubLinkDriver):
    def shares_parent_mac(self, net: Network) -> bool:
        return True

    def link_data(self, mode: str) -> dict:
        return {"ipvlan_mode": MODES[mode]}

    def create(self, net: Network, kernel, undo) -> None:
        """Nothing stays in the kernel; a probe link says whether ipvlan can be made here."""
        super().create(net, kernel, undo)
        nl, name = kernel.netlink, probe_link_name(net.name)
        parent = nl.link_index(net.options["parent"])
        try:
            nl.add_sub_link("ipvlan", name, parent, net.mtu, kernel.owner.group, **self.link_data(net.options["mode"]))
        except OperationFailed as e:
            if getattr(e.__cause__, "code", None) == errno.EOPNOTSUPP:
                raise OperationFailed(f"cannot create ipvlan network {net.name}: this kernel has no ipvlan (the"
                                      " kernel module ipvlan is missing: the kernel answered an ipvlan link on"
                                      f" {net.options['parent']} with 'Operation not supported')") from None
            raise
        undo.callback(nl.delete_link, name)
        nl.delete_link(name)

    def add_default_routes(self, net: Network, inside, index: int) -> None:
        if net.options["mode"] == "l2":
            super().add_default_routes(net, inside, index)
            return
        for s in net.subnets:
            inside.add_default_route_via_link(index, socket.AF_INET6 if ":" in s.subnet else socket.AF_INET)


# validate, create, attach, ...: the driver interface (drivers/base.py), as this module's functions
globals().update(Ipvlan("ipvlan", tuple(MODES)).interface())
