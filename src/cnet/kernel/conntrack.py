"""Conntrack entries, through netlink.

When a published port is added or removed, connections already tracked for
that host port would keep their old translation (a UDP flow never ends on
its own), so cnet deletes them and the next packet is translated anew.
"""

from __future__ import annotations

import socket

PROTOCOLS = {"tcp": socket.IPPROTO_TCP, "udp": socket.IPPROTO_UDP, "sctp": socket.IPPROTO_SCTP}


def forget_ports(ports) -> int:
    """Delete the entries whose original destination is one of these
    (protocol, port) pairs; returns how many. One socket per family."""
    from . import load_pyroute2

    load_pyroute2()
    from pyroute2.conntrack import Conntrack
    from pyroute2.netlink.exceptions import NetlinkError
    from pyroute2.netlink.nfnetlink.nfctsocket import NFCTAttrTuple

    deleted = 0
    wanted_ports: dict[str, set[int]] = {}
    for protocol, port in ports:
        wanted_ports.setdefault(protocol, set()).add(port)
    for family in (socket.AF_INET, socket.AF_INET6):
        with Conntrack(nfgen_family=family) as ct:  # a dump shows one family only
            for protocol, wanted in wanted_ports.items():
                # one dump per protocol (each costs ~10 ms here), the ports matched here
                only = NFCTAttrTuple(family=family, proto=PROTOCOLS[protocol])
                for entry in list(ct.dump_entries(tuple_orig=only)):
                    if entry.tuple_orig.dport not in wanted:
                        continue
                    try:
                        ct.delete(entry)
                        deleted += 1
                    except (OSError, NetlinkError):
                        pass  # expired meanwhile
    return deleted
