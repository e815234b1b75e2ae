"""Conntrack entries, through pyroute2's ctnetlink client.

When a published UDP port is added or removed, flows already tracked for
that host port would keep their old translation (a UDP flow never ends on
its own), so cnet deletes them and the next packet is translated anew.
"""

from __future__ import annotations

import errno
import socket

PROTOCOLS = {"tcp": socket.IPPROTO_TCP, "udp": socket.IPPROTO_UDP, "sctp": socket.IPPROTO_SCTP}


def forget_ports(ports) -> int:
    """Delete the entries whose original destination is one of these
    (protocol, port) pairs; returns how many."""
    if _tracked() == 0:
        return 0  # a dump walks the whole table, shared by every namespace (~15 ms each)
    from .pyroute import NetlinkError, conntrack

    Conntrack, NFCTAttrTuple = conntrack()

    deleted = 0
    with Conntrack() as ct:
        for family in (socket.AF_INET, socket.AF_INET6):
            for protocol, port in ports:
                # the kernel filters by the tuple (5.8 and later); pyroute2 checks it again
                wanted = NFCTAttrTuple(family=family, proto=PROTOCOLS[protocol], dport=port)
                for entry in list(ct.dump_entries(tuple_orig=wanted)):
                    try:
                        ct.delete(entry)
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
