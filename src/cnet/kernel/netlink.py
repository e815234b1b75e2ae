"""Links, addresses and routes of one network namespace, over one netlink socket.

One `Netlink` is opened per command per namespace and closed with `with`.
The requests are rtnetlink messages built here (see nlsock.py for why not
pyroute2); the constants are the kernel's, from linux/rtnetlink.h and
linux/if_link.h.
"""

from __future__ import annotations

import errno
import functools
import ipaddress
import socket
import struct

from ..errors import Conflict, NotFound, OperationFailed
from . import nlsock
from .nlsock import NetlinkError, as_ip, as_str, as_u32, nest, string, u8, u32

RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_SETLINK = 16, 17, 18, 19
RTM_NEWADDR, RTM_GETADDR = 20, 22
RTM_NEWROUTE, RTM_GETROUTE = 24, 26

IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_MASTER = 1, 3, 4, 10
IFLA_PROTINFO, IFLA_OPERSTATE, IFLA_LINKINFO, IFLA_IFALIAS = 12, 16, 18, 20
IFLA_NET_NS_FD, IFLA_EXT_MASK = 28, 29
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
IFLA_BR_FORWARD_DELAY = 1
IFLA_BRPORT_MODE = 4  # hairpin mode
VETH_INFO_PEER = 1
RTEXT_FILTER_SKIP_STATS = 1 << 3
IFF_UP = 1
OPERSTATES = ("UNKNOWN", "NOTPRESENT", "DOWN", "LOWERLAYERDOWN", "TESTING", "DORMANT", "UP")

IFA_ADDRESS, IFA_LOCAL, IFA_BROADCAST = 1, 2, 4
IFA_F_NODAD = 0x02  # an address usable at once, without duplicate address detection

RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_TABLE = 1, 4, 5, 15
RT_TABLE_MAIN, RTPROT_BOOT = 254, 3
RTN_UNICAST, RTN_LOCAL = 1, 2

_IFINFO = struct.Struct("=BxHiII")  # family, type, index, flags, change
_IFADDR = struct.Struct("=BBBBI")  # family, prefixlen, flags, scope, index
_RTMSG = struct.Struct("=BBBBBBBBI")  # family, dst_len, src_len, tos, table, protocol, scope, type, flags


def _ifinfo(index: int = 0, up: bool = False, family: int = socket.AF_UNSPEC) -> bytes:
    return _IFINFO.pack(family, 0, index, IFF_UP if up else 0, IFF_UP if up else 0)


def _mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


class _Link:
    """A link as RTM_NEWLINK describes it."""

    def __init__(self, payload: bytes) -> None:
        _, _, self.index, self.flags, _ = _IFINFO.unpack_from(payload)
        self.attrs = nlsock.parse(payload, _IFINFO.size)

    @property
    def name(self) -> str | None:
        return as_str(self.attrs.get(IFLA_IFNAME))

    @property
    def kind(self) -> str | None:
        info = self.attrs.get(IFLA_LINKINFO)
        return as_str(nlsock.parse(info).get(IFLA_INFO_KIND)) if info else None


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
    if e.code == errno.EEXIST:
        return Conflict(f"{what}: {e.strerror}")
    if e.code == errno.ENODEV:
        return NotFound(f"{what}: {e.strerror}")
    return OperationFailed(f"{what}: {e.strerror}")


class Netlink:
    """Netlink access to the namespace the process runs in, or to the one at
    netns_path (the socket is opened inside it and stays bound to it)."""

    def __init__(self, netns_path: str | None = None) -> None:
        self._bridges: dict[str, int | None] = {}
        if netns_path is None:
            self.sock = nlsock.Socket()
        else:
            from .netns import entered

            with entered(netns_path):
                self.sock = nlsock.Socket()

    def close(self) -> None:
        self.sock.close()

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

    def _get_link(self, *, name: str | None = None, index: int = 0) -> _Link | None:
        """One RTM_GETLINK (a dump of every link would grow with sandboxes); None if there is none."""
        body = _ifinfo(index) + u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS)
        if name is not None:
            body += string(IFLA_IFNAME, name)
        try:
            answers = self.sock.request(RTM_GETLINK, body)
        except NetlinkError as e:
            if e.code == errno.ENODEV:
                return None
            raise
        return _Link(answers[0][1])

    def link_index(self, name: str) -> int | None:
        link = self._get_link(name=name)
        return None if link is None else link.index

    def _new_link(self, body: bytes, what: str) -> None:
        try:
            self.sock.request(RTM_NEWLINK, body, nlsock.F_CREATE | nlsock.F_EXCL)
        except NetlinkError as e:
            raise _failed(what, e) from e

    def add_bridge(self, name: str, mtu: int) -> int:
        """Create a bridge (forward delay 0, so ports forward at once), down."""
        self._new_link(_ifinfo() + string(IFLA_IFNAME, name) + u32(IFLA_MTU, mtu)
                       + nest(IFLA_LINKINFO, string(IFLA_INFO_KIND, "bridge"),
                              nest(IFLA_INFO_DATA, u32(IFLA_BR_FORWARD_DELAY, 0))),
                       f"cannot create bridge {name}")
        return self.link_index(name)

    def add_veth(self, name: str, peer: str, peer_netns_fd: int, mtu: int, peer_mac: str,
                 master: int) -> int:
        """A veth pair in one request: `name` here, enslaved to master and up;
        its peer born inside the other namespace (never here, where its name
        could clash), down, with its MAC and MTU."""
        peer_body = (_ifinfo() + string(IFLA_IFNAME, peer) + u32(IFLA_NET_NS_FD, peer_netns_fd)
                     + nlsock.attr(IFLA_ADDRESS, _mac(peer_mac)) + u32(IFLA_MTU, mtu))
        self._new_link(_ifinfo(up=True) + string(IFLA_IFNAME, name) + u32(IFLA_MTU, mtu)
                       + u32(IFLA_MASTER, master)
                       + nest(IFLA_LINKINFO, string(IFLA_INFO_KIND, "veth"),
                              nest(IFLA_INFO_DATA, nlsock.attr(VETH_INFO_PEER, peer_body))),
                       f"cannot create veth pair {name}/{peer}")
        return self.link_index(name)

    @_guarded("cannot list links")
    def link_names(self) -> set[str]:
        body = _ifinfo() + u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS)
        return {_Link(payload).name for _, payload in self.sock.dump(RTM_GETLINK, body)}

    @_guarded("cannot set a link's alias")
    def set_alias(self, index: int, alias: str) -> None:
        self.sock.request(RTM_SETLINK, _ifinfo(index) + string(IFLA_IFALIAS, alias))

    def set_hairpin(self, index: int) -> None:
        """Let frames leave a bridge port by the port they came in: with
        br_netfilter, a sandbox's connection to its own published port is
        bridged back to it."""
        # a bridge-family request; the port options must come flagged as nested
        body = _ifinfo(index, family=socket.AF_BRIDGE) + nest(IFLA_PROTINFO, u8(IFLA_BRPORT_MODE, 1), flag=True)
        try:
            self.sock.request(RTM_SETLINK, body)
        except NetlinkError as e:
            raise _failed("cannot set hairpin mode on a bridge port", e) from e

    @_guarded("cannot bring a link up")
    def set_up(self, index: int) -> None:
        self.sock.request(RTM_SETLINK, _ifinfo(index, up=True))

    def delete_link(self, name: str) -> bool:
        """Delete a link; False if it was already gone (teardown is repeatable)."""
        self._bridges.pop(name, None)
        try:
            self.sock.request(RTM_DELLINK, _ifinfo() + string(IFLA_IFNAME, name))
        except NetlinkError as e:
            if e.code == errno.ENODEV:
                return False
            raise _failed(f"cannot delete link {name}", e) from e
        return True

    @_guarded("cannot read a link")
    def link_view(self, name: str) -> dict | None:
        """What the kernel shows of a link, or None if there is none."""
        link = self._get_link(name=name)
        if link is None:
            return None
        addresses = [a for a in self._addresses(link.index) if not a.startswith("fe80:")]
        operstate = link.attrs.get(IFLA_OPERSTATE)
        mac = link.attrs.get(IFLA_ADDRESS)
        return {
            "ifname": name,
            "index": link.index,
            "kind": link.kind,
            "state": OPERSTATES[operstate[0]] if operstate and operstate[0] < len(OPERSTATES) else None,
            "up": bool(link.flags & IFF_UP),
            "mtu": as_u32(link.attrs.get(IFLA_MTU)),
            "mac": mac.hex(":") if mac else None,
            "alias": as_str(link.attrs.get(IFLA_IFALIAS)),
            "addresses": addresses,
        }

    # -- addresses and routes ----------------------------------------------

    def _addresses(self, index: int | None = None) -> list[str]:
        """Addresses as CIDR, of one link or of all."""
        found = []
        for _, payload in self.sock.dump(RTM_GETADDR, _IFADDR.pack(socket.AF_UNSPEC, 0, 0, 0, 0)):
            _, prefixlen, _, _, link = _IFADDR.unpack_from(payload)
            attrs = nlsock.parse(payload, _IFADDR.size)
            address = attrs.get(IFA_LOCAL) or attrs.get(IFA_ADDRESS)
            if address and (index is None or link == index):
                found.append(f"{as_ip(address)}/{prefixlen}")
        return found

    def add_address(self, index: int, cidr: str) -> None:
        iface = ipaddress.ip_interface(cidr)
        family = socket.AF_INET6 if iface.version == 6 else socket.AF_INET
        flags = IFA_F_NODAD if iface.version == 6 else 0
        packed = iface.ip.packed
        body = _IFADDR.pack(family, iface.network.prefixlen, flags, 0, index) + nlsock.attr(IFA_ADDRESS, packed)
        if iface.version == 4:
            body += nlsock.attr(IFA_LOCAL, packed)
            if iface.network.prefixlen < 31:  # as `ip address add ... brd +` and Docker do
                body += nlsock.attr(IFA_BROADCAST, iface.network.broadcast_address.packed)
        try:
            self.sock.request(RTM_NEWADDR, body, nlsock.F_CREATE | nlsock.F_EXCL)
        except NetlinkError as e:
            raise _failed(f"cannot add address {cidr}", e) from e

    def add_default_route(self, gateway: str) -> None:
        family = socket.AF_INET6 if ":" in gateway else socket.AF_INET
        body = (_RTMSG.pack(family, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, 0, RTN_UNICAST, 0)
                + nlsock.attr(RTA_GATEWAY, socket.inet_pton(family, gateway)))
        try:
            self.sock.request(RTM_NEWROUTE, body, nlsock.F_CREATE | nlsock.F_EXCL)
        except NetlinkError as e:
            if e.code == errno.EEXIST:
                return  # the namespace has a default route of its own: keep it
            raise _failed(f"cannot add a default route via {gateway}", e) from e

    def _routes(self, family: int):
        """(rtmsg fields, attributes) of every route of one family, all tables."""
        body = _RTMSG.pack(family, 0, 0, 0, 0, 0, 0, 0, 0)
        for _, payload in self.sock.dump(RTM_GETROUTE, body):
            fields = _RTMSG.unpack_from(payload)
            yield fields, nlsock.parse(payload, _RTMSG.size)

    @_guarded("cannot list routes")
    def routes_view(self) -> list[str]:
        """The main table, one route a line as `ip route` words it (roughly)."""
        main = []
        for family in (socket.AF_INET, socket.AF_INET6):
            for fields, attrs in self._routes(family):
                table = as_u32(attrs.get(RTA_TABLE)) or fields[4]
                if table == RT_TABLE_MAIN:
                    main.append((fields[1], attrs))
        shown = []
        for dst_len, attrs in main:
            dst = f"{as_ip(attrs.get(RTA_DST))}/{dst_len}" if dst_len else "default"
            via = f" via {as_ip(attrs[RTA_GATEWAY])}" if RTA_GATEWAY in attrs else ""
            oif = as_u32(attrs.get(RTA_OIF))
            link = self._get_link(index=oif) if oif else None
            if not dst.startswith("fe80:"):
                shown.append(f"{dst}{via} dev {link.name if link else '?'}")
        return shown

    @_guarded("cannot list addresses")
    def local_addresses(self) -> set[str]:
        return {cidr.split("/")[0] for cidr in self._addresses()}

    @_guarded("cannot list routes")
    def route_networks(self) -> list:
        """Destinations of the unicast and local routes in every table (no default routes)."""
        found = []
        for family in (socket.AF_INET, socket.AF_INET6):
            for fields, attrs in self._routes(family):
                dst_len, kind = fields[1], fields[7]
                if dst_len == 0 or kind not in (RTN_UNICAST, RTN_LOCAL) or RTA_DST not in attrs:
                    continue
                found.append(ipaddress.ip_network(f"{as_ip(attrs[RTA_DST])}/{dst_len}", strict=False))
        return found
