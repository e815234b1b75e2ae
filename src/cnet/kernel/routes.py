"""The host's unicast routes as /proc/net/route and /proc/net/ipv6_route show
them, for `cnet check`'s health warnings: one file read a family, with the
device names in it. A netlink dump costs pyroute2 ~0.1 ms a route message,
and every veth end has IPv6 link-local and multicast routes: 86 ms for the
859 IPv6 routes of a host with 300 sandboxes, against ~2 ms for reading both
files here.

/proc/net shows the namespace of the process that reads it. IPv4: the main
table. IPv6: every table (the file does not say which), without the local,
anycast, link-local and multicast routes the kernel makes for each address
and link.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from typing import NamedTuple

RTF_GATEWAY, RTF_REJECT = 0x0002, 0x0200
RTF_ANYCAST, RTF_LOCAL = 0x00100000, 0x80000000
LINK_LOCAL, MULTICAST = ipaddress.ip_network("fe80::/10"), ipaddress.ip_network("ff00::/8")


class Route(NamedTuple):
    dst: ipaddress.IPv4Network | ipaddress.IPv6Network
    dev: str  # "" for an unreachable (reject) route
    gateway: str | None

    @property
    def default(self) -> bool:
        return self.dst.prefixlen == 0

    def __str__(self) -> str:
        """As `ip route` words it."""
        if not self.dev:
            return f"unreachable {self.dst}"
        via = f" via {self.gateway}" if self.gateway else ""
        return f"{'default' if self.default else self.dst}{via} dev {self.dev}"


def _ipv4(word: str) -> str:
    return socket.inet_ntoa(struct.pack("<I", int(word, 16)))


def parse_ipv4(text: str) -> list[Route]:
    """/proc/net/route: Iface Destination Gateway Flags ... Mask ..., addresses in host byte order hex."""
    found = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8:
            continue
        dev, dst, gateway, flags, mask = fields[0], fields[1], fields[2], int(fields[3], 16), fields[7]
        network = ipaddress.ip_network(f"{_ipv4(dst)}/{_ipv4(mask)}", strict=False)
        rejects = flags & RTF_REJECT
        found.append(Route(network, "" if rejects else dev, _ipv4(gateway) if flags & RTF_GATEWAY else None))
    return found


def parse_ipv6(text: str) -> list[Route]:
    """/proc/net/ipv6_route: dst dst_len src src_len next_hop metric refcnt use flags dev, in hex."""
    found = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 10:
            continue
        flags = int(fields[8], 16)
        network = ipaddress.IPv6Network((int(fields[0], 16), int(fields[1], 16)))
        if flags & (RTF_LOCAL | RTF_ANYCAST) or network.subnet_of(LINK_LOCAL) or network.subnet_of(MULTICAST):
            continue
        rejects = flags & RTF_REJECT
        if rejects and network.prefixlen == 0:
            continue  # the kernel's null entry, listed with every table
        gateway = str(ipaddress.IPv6Address(int(fields[4], 16))) if flags & RTF_GATEWAY else None
        found.append(Route(network, "" if rejects else fields[9], gateway))
    return found


def routes(family: int) -> list[Route]:
    """The unicast routes of one family (4 or 6) in this namespace; none when
    the family is off (no such file)."""
    path, parse = ("/proc/net/route", parse_ipv4) if family == 4 else ("/proc/net/ipv6_route", parse_ipv6)
    try:
        with open(path) as f:
            return parse(f.read())
    except FileNotFoundError:
        return []
