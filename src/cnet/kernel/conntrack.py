"""Conntrack entries, through pyroute2's ctnetlink client.

When a published UDP port is added or removed, flows already tracked for
that host port would keep their old translation (a UDP flow never ends on
its own), so cnet deletes them and the next packet is translated anew. `cnet explain`
lists the entries of one published port.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from typing import NamedTuple

PROTOCOLS = {"tcp": socket.IPPROTO_TCP, "udp": socket.IPPROTO_UDP, "sctp": socket.IPPROTO_SCTP}


def forget_ports(ports) -> int:
    """Delete the entries whose original destination is one of these
    (protocol, port) pairs; returns how many."""
    if _tracked() == 0:
        return 0  # a dump walks the whole table, shared by every namespace (~15 ms each)
    from .pyroute import NetlinkError, conntrack

    Conntrack, NFCTAttrTuple = conntrack()

    deleted = 0
    for family in (socket.AF_INET, socket.AF_INET6):
        # one handle per family: a dump lists the entries of the request's family only
        with Conntrack(nfgen_family=family) as ct:
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


class Connection(NamedTuple):
    """A tracked connection: who sent it where, and where it was translated to."""

    source: str  # "ADDRESS:PORT" of the original direction ([ADDRESS6]:PORT)
    destination: str
    translated_to: str  # the reply's source: where the connection really goes
    status: str  # pyroute2's names of the status bits, "SEEN_REPLY,ASSURED,..."


def connections_to(family: int, protocol: str, port: int, to_address: str) -> list[Connection]:
    """The entries whose original destination port is `port` and whose reply
    comes from to_address (a published port's sandbox): its connections."""
    if _tracked() == 0:
        return []
    from .pyroute import conntrack

    Conntrack, NFCTAttrTuple = conntrack()
    af = socket.AF_INET if family == 4 else socket.AF_INET6
    wanted = NFCTAttrTuple(family=af, proto=PROTOCOLS[protocol], dport=port)
    target, found = ipaddress.ip_address(to_address), []
    with Conntrack(nfgen_family=af) as ct:  # a dump lists the entries of the request's family only
        for entry in ct.dump_entries(tuple_orig=wanted):
            orig, reply = entry.tuple_orig, entry.tuple_reply
            if ipaddress.ip_address(reply.saddr) != target:
                continue
            found.append(Connection(_at(orig.saddr, orig.sport), _at(orig.daddr, orig.dport),
                                    _at(reply.saddr, reply.sport), entry.status_name()))
    return found


def _at(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _tracked() -> int | None:
    """How many connections this namespace tracks (0 without conntrack loaded)."""
    try:
        with open("/proc/sys/net/netfilter/nf_conntrack_count") as f:
            return int(f.read())
    except FileNotFoundError:
        return 0
    except (OSError, ValueError):
        return None
