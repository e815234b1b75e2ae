"""Conntrack entries, through netlink (ctnetlink).

When a published UDP port is added or removed, flows already tracked for
that host port would keep their old translation (a UDP flow never ends on
its own), so cnet deletes them and the next packet is translated anew.
Constants are the kernel's, from linux/netfilter/nfnetlink_conntrack.h.
"""

from __future__ import annotations

import errno
import socket
import struct

from . import nlsock
from .nlsock import NetlinkError, nest, u8, u32

PROTOCOLS = {"tcp": socket.IPPROTO_TCP, "udp": socket.IPPROTO_UDP, "sctp": socket.IPPROTO_SCTP}

_CT_GET, _CT_DELETE = (1 << 8) | 1, (1 << 8) | 2  # NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_*
CTA_TUPLE_ORIG, CTA_ZONE, CTA_FILTER = 1, 18, 25
CTA_TUPLE_PROTO = 2
CTA_PROTO_NUM, CTA_PROTO_DST_PORT = 1, 3
CTA_FILTER_ORIG_FLAGS, CTA_FILTER_REPLY_FLAGS = 1, 2
_FILTER_PROTO_NUM = 1 << 3  # CTA_FILTER_FLAG(CTA_PROTO_NUM)


def _nfgen(family: int) -> bytes:
    return struct.pack("=BBH", family, 0, 0)  # family, NFNETLINK_V0, resource id


def forget_ports(ports) -> int:
    """Delete the entries whose original destination is one of these
    (protocol, port) pairs; returns how many."""
    if _tracked() == 0:
        return 0  # a dump walks the whole table, shared by every namespace (~15 ms each)
    wanted: dict[int, set[int]] = {}
    for protocol, port in ports:
        wanted.setdefault(PROTOCOLS[protocol], set()).add(port)
    deleted = 0
    with nlsock.Socket(nlsock.NETLINK_NETFILTER) as sock:
        for family in (socket.AF_INET, socket.AF_INET6):
            for number, dports in wanted.items():
                for entry in _entries(sock, family, number, dports):
                    try:
                        sock.request(_CT_DELETE, _nfgen(family) + entry)
                        deleted += 1
                    except NetlinkError as e:
                        if e.code != errno.ENOENT:  # expired meanwhile is fine
                            raise
    return deleted


def _tracked() -> int | None:
    """How many connections this namespace tracks (0 without conntrack loaded)."""
    try:
        with open("/proc/sys/net/netfilter/nf_conntrack_count") as f:
            return int(f.read())
    except FileNotFoundError:
        return 0
    except (OSError, ValueError):
        return None


def _entries(sock: nlsock.Socket, family: int, number: int, dports: set[int]) -> list[bytes]:
    """The identifying attributes (original tuple, zone) of the entries of one
    family and protocol going to one of dports. The kernel filters by
    protocol when it can (5.8 and later); the ports are matched here."""
    only = (nest(CTA_TUPLE_ORIG, nest(CTA_TUPLE_PROTO, u8(CTA_PROTO_NUM, number), flag=True), flag=True)
            + nest(CTA_FILTER, u32(CTA_FILTER_ORIG_FLAGS, _FILTER_PROTO_NUM),
                   u32(CTA_FILTER_REPLY_FLAGS, 0), flag=True))
    try:
        answers = list(sock.dump(_CT_GET, _nfgen(family) + only))
    except NetlinkError as e:
        if e.code not in (errno.EINVAL, errno.EOPNOTSUPP):
            raise
        answers = list(sock.dump(_CT_GET, _nfgen(family)))  # an older kernel: every entry
    found = []
    for _, payload in answers:
        attrs = nlsock.parse(payload, 4)
        tuple_orig = attrs.get(CTA_TUPLE_ORIG)
        if tuple_orig is None:
            continue
        proto = nlsock.parse(nlsock.parse(tuple_orig).get(CTA_TUPLE_PROTO, b""))
        num, dport = proto.get(CTA_PROTO_NUM), proto.get(CTA_PROTO_DST_PORT)
        if num and num[0] == number and dport and struct.unpack("!H", dport[:2])[0] in dports:
            entry = nlsock.attr(CTA_TUPLE_ORIG | nlsock.NLA_F_NESTED, tuple_orig)
            if CTA_ZONE in attrs:
                entry += nlsock.attr(CTA_ZONE, attrs[CTA_ZONE])
            found.append(entry)
    return found
