"""Links, addresses and routes of one network namespace, over one netlink socket.

One `Netlink` is opened per command per namespace (opening a handle in
another namespace forks a helper in pyroute2, ~6 ms) and closed with `with`,
since a handle left open keeps its namespace alive.
"""

from __future__ import annotations

import errno
import ipaddress
import socket

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from ..errors import Conflict, NotFound, OperationFailed

IFA_F_NODAD = 0x02  # an address usable at once, without duplicate address detection
RTN_UNICAST, RTN_LOCAL = 1, 2


def _failed(what: str, e: NetlinkError) -> Exception:
    """Turn a netlink error into the cnet error a user should see."""
    reason = e.args[1] if len(e.args) > 1 else str(e)
    if e.code == errno.EEXIST:
        return Conflict(f"{what}: {reason}")
    if e.code == errno.ENODEV:
        return NotFound(f"{what}: {reason}")
    return OperationFailed(f"{what}: {reason}")


class Netlink:
    """Netlink access to the namespace the process runs in."""

    def __init__(self) -> None:
        self.ipr = IPRoute()

    def close(self) -> None:
        self.ipr.close()

    def __enter__(self) -> Netlink:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- links -------------------------------------------------------------

    def link_index(self, name: str) -> int | None:
        found = self.ipr.link_lookup(ifname=name)
        return found[0] if found else None

    def add_bridge(self, name: str, mtu: int) -> int:
        """Create a bridge (forward delay 0, so ports forward at once), down."""
        try:
            self.ipr.link("add", ifname=name, kind="bridge", br_forward_delay=0, mtu=mtu)
        except NetlinkError as e:
            raise _failed(f"cannot create bridge {name}", e) from e
        return self.link_index(name)

    def set_alias(self, index: int, alias: str) -> None:
        # link("add") ignores ifalias, hence a second request
        self.ipr.link("set", index=index, ifalias=alias)

    def set_up(self, index: int) -> None:
        self.ipr.link("set", index=index, state="up")

    def delete_link(self, name: str) -> bool:
        """Delete a link; False if it was already gone (teardown is repeatable)."""
        try:
            self.ipr.link("del", ifname=name)
        except NetlinkError as e:
            if e.code == errno.ENODEV:
                return False
            raise _failed(f"cannot delete link {name}", e) from e
        return True

    def link_view(self, name: str) -> dict | None:
        """What the kernel shows of a link, or None if there is none."""
        index = self.link_index(name)
        if index is None:
            return None
        (link,) = self.ipr.link("get", index=index)
        addresses = [
            f"{a.get('IFA_ADDRESS')}/{a['prefixlen']}"
            for a in self.ipr.get_addr(index=index)
            if not a.get("IFA_ADDRESS", "").startswith("fe80:")
        ]
        return {
            "ifname": name,
            "index": index,
            "kind": link.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND"),
            "state": link.get("IFLA_OPERSTATE"),
            "up": bool(link["flags"] & 1),
            "mtu": link.get("IFLA_MTU"),
            "mac": link.get("IFLA_ADDRESS"),
            "alias": link.get("IFLA_IFALIAS"),
            "addresses": addresses,
        }

    # -- addresses and routes ----------------------------------------------

    def add_address(self, index: int, cidr: str) -> None:
        iface = ipaddress.ip_interface(cidr)
        kwargs = {}
        if iface.version == 6:
            kwargs["flags"] = IFA_F_NODAD
        try:
            self.ipr.addr("add", index=index, address=str(iface.ip),
                          prefixlen=iface.network.prefixlen, **kwargs)
        except NetlinkError as e:
            raise _failed(f"cannot add address {cidr}", e) from e

    def route_networks(self) -> list:
        """Destinations of the unicast and local routes in every table (no default routes)."""
        found = []
        for family in (socket.AF_INET, socket.AF_INET6):
            for r in self.ipr.get_routes(family=family):
                if r["dst_len"] == 0 or r["type"] not in (RTN_UNICAST, RTN_LOCAL):
                    continue
                dst = r.get("RTA_DST")
                if dst:
                    found.append(ipaddress.ip_network(f"{dst}/{r['dst_len']}", strict=False))
        return found
