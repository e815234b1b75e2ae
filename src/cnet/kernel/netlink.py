"""Links, addresses and routes of one network namespace, over one netlink socket.

One `Netlink` is opened per command per namespace (opening a handle in
another namespace forks a helper in pyroute2, ~6 ms) and closed with `with`,
since a handle left open keeps its namespace alive.
"""

from __future__ import annotations

import errno
import functools
import ipaddress
import socket

from ..errors import Conflict, NotFound, OperationFailed

from . import _import_light

IPRoute, NetlinkError = _import_light()

IFA_F_NODAD = 0x02  # an address usable at once, without duplicate address detection
RTN_UNICAST, RTN_LOCAL = 1, 2


def _guarded(what: str):
    """For queries with no error of their own to report: a netlink failure
    becomes OperationFailed saying what was asked."""
    def wrap(method):
        @functools.wraps(method)
        def guarded(self, *args, **kwargs):
            try:
                return method(self, *args, **kwargs)
            except NetlinkError as e:
                raise _failed(what, e) from e
        return guarded
    return wrap


def _failed(what: str, e: NetlinkError) -> Exception:
    """Turn a netlink error into the cnet error a user should see."""
    reason = e.args[1] if len(e.args) > 1 else str(e)
    if e.code == errno.EEXIST:
        return Conflict(f"{what}: {reason}")
    if e.code == errno.ENODEV:
        return NotFound(f"{what}: {reason}")
    return OperationFailed(f"{what}: {reason}")


class Netlink:
    """Netlink access to the namespace the process runs in, or to the one at
    netns_path (the socket is opened inside it and stays bound to it)."""

    def __init__(self, netns_path: str | None = None) -> None:
        self._bridges: dict[str, int | None] = {}
        if netns_path is None:
            self.ipr = IPRoute()
        else:
            from .netns import entered

            with entered(netns_path):
                self.ipr = IPRoute()

    def close(self) -> None:
        self.ipr.close()

    def __enter__(self) -> Netlink:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- links -------------------------------------------------------------

    @_guarded("cannot look up a link")
    def bridge_index(self, name: str) -> int | None:
        """link_index, remembered for the life of this handle: a batch attaches
        many sandboxes to the same few bridges."""
        if name not in self._bridges:
            self._bridges[name] = self.link_index(name)
        return self._bridges[name]

    def link_index(self, name: str) -> int | None:
        # One RTM_GETLINK by name: link_lookup() would dump every link (slower with each sandbox)
        try:
            (link,) = self.ipr.link("get", ifname=name)
        except NetlinkError as e:
            if e.code == errno.ENODEV:
                return None
            raise
        return link["index"]

    def add_bridge(self, name: str, mtu: int) -> int:
        """Create a bridge (forward delay 0, so ports forward at once), down."""
        try:
            self.ipr.link("add", ifname=name, kind="bridge", br_forward_delay=0, mtu=mtu)
        except NetlinkError as e:
            raise _failed(f"cannot create bridge {name}", e) from e
        return self.link_index(name)

    def add_veth(self, name: str, peer: str, peer_netns_fd: int, mtu: int, peer_mac: str,
                 master: int) -> int:
        """A veth pair in one request: `name` here, enslaved to master and up;
        its peer born inside the other namespace (never here, where its name
        could clash), down, with its MAC and MTU."""
        try:
            self.ipr.link("add", ifname=name, kind="veth", mtu=mtu, master=master, state="up",
                          peer={"ifname": peer, "net_ns_fd": peer_netns_fd, "address": peer_mac, "mtu": mtu})
        except NetlinkError as e:
            raise _failed(f"cannot create veth pair {name}/{peer}", e) from e
        return self.link_index(name)

    @_guarded("cannot list links")
    def link_names(self) -> set[str]:
        return {link.get("IFLA_IFNAME") for link in self.ipr.get_links()}

    @_guarded("cannot set a link's alias")
    def set_alias(self, index: int, alias: str) -> None:
        # link("add") ignores ifalias, hence a second request
        self.ipr.link("set", index=index, ifalias=alias)

    def set_hairpin(self, index: int) -> None:
        """Let frames leave a bridge port by the port they came in: with
        br_netfilter, a sandbox's connection to its own published port is
        bridged back to it."""
        try:
            self.ipr.brport("set", index=index, mode=1)
        except NetlinkError as e:
            raise _failed("cannot set hairpin mode on a bridge port", e) from e

    @_guarded("cannot bring a link up")
    def set_up(self, index: int) -> None:
        self.ipr.link("set", index=index, state="up")

    def delete_link(self, name: str) -> bool:
        """Delete a link; False if it was already gone (teardown is repeatable)."""
        self._bridges.pop(name, None)
        try:
            self.ipr.link("del", ifname=name)
        except NetlinkError as e:
            if e.code == errno.ENODEV:
                return False
            raise _failed(f"cannot delete link {name}", e) from e
        return True

    @_guarded("cannot read a link")
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

    def add_default_route(self, gateway: str) -> None:
        family = socket.AF_INET6 if ":" in gateway else socket.AF_INET
        try:
            self.ipr.route("add", dst="default", gateway=gateway, family=family)
        except NetlinkError as e:
            if e.code == errno.EEXIST:
                return  # the namespace has a default route of its own: keep it
            raise _failed(f"cannot add a default route via {gateway}", e) from e

    @_guarded("cannot list routes")
    def routes_view(self) -> list[str]:
        """The main table, one route a line as `ip route` words it (roughly)."""
        shown = []
        for family in (socket.AF_INET, socket.AF_INET6):
            for r in self.ipr.get_routes(family=family, table=254):
                dst = f"{r.get('RTA_DST')}/{r['dst_len']}" if r["dst_len"] else "default"
                via = f" via {r.get('RTA_GATEWAY')}" if r.get("RTA_GATEWAY") else ""
                oif = r.get("RTA_OIF")
                dev = self.ipr.link("get", index=oif)[0].get("IFLA_IFNAME") if oif else "?"
                if not dst.startswith("fe80:"):
                    shown.append(f"{dst}{via} dev {dev}")
        return shown

    @_guarded("cannot list addresses")
    def local_addresses(self) -> set[str]:
        return {a.get("IFA_ADDRESS") for a in self.ipr.get_addr()}

    @_guarded("cannot list routes")
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
