"""VXLAN devices and their static forwarding entries, through pyroute2.

An overlay's VXLAN port carries frames for the other hosts' endpoints. It
learns nothing and floods nothing: each remote endpoint is one static FDB
entry (its MAC -> the underlay address of its host, the VTEP) and one
permanent neighbour entry (its IP -> its MAC), from which the device answers
ARP and neighbour solicitations itself (`proxy`). A frame for a MAC without
an entry, broadcasts included, goes nowhere: there is no all-zero entry.

Every function takes a netlink handle (netlink.Netlink) of the host.
"""

from __future__ import annotations

import errno
import socket

from .. import verbose
from .netlink import _failed
from .pyroute import NetlinkError

VXLAN_PORT = 4789  # IANA's, as Docker and Linux's own default for `dstport`
NUD_PERMANENT = 0x80
NTF_SELF = 0x02  # an FDB entry of the device itself (a VXLAN destination), not of its bridge


def add_vxlan(nl, name: str, vni: int, local: str, mtu: int, group: int, master: int) -> int:
    """The VXLAN device, a port of bridge `master`, down, in link group `group`."""
    local_key = "vxlan_local6" if ":" in local else "vxlan_local"
    return nl.add_link(f"cannot create VXLAN device {name} (VNI {vni})", ifname=name, kind="vxlan",
                       vxlan_id=vni, vxlan_port=VXLAN_PORT, vxlan_learning=0, vxlan_proxy=1,
                       mtu=mtu, group=group, master=master, **{local_key: local})


def vxlan_view(nl, name: str) -> dict | None:
    """VNI, local address and port of the VXLAN device, or None if there is none."""
    try:
        links = nl.ipr.link("get", ifname=name)
    except NetlinkError as e:
        if e.code == errno.ENODEV:
            return None
        raise _failed(f"cannot read link {name}", e) from e
    data = links[0].get(("linkinfo", "data")) if links else None
    if links[0].get(("linkinfo", "kind")) != "vxlan" or data is None:
        return {"vni": None, "local": None, "port": None}
    return {"vni": data.get("IFLA_VXLAN_ID"),
            "local": data.get("IFLA_VXLAN_LOCAL") or data.get("IFLA_VXLAN_LOCAL6"),
            "port": data.get("IFLA_VXLAN_PORT")}


def remotes(nl, index: int) -> set[tuple[str, str]]:
    """(MAC, VTEP) of the device's static destination entries."""
    try:
        return {(m.get("lladdr"), m.get("dst")) for m in nl.ipr.fdb("dump", ifindex=index)
                if m["ifindex"] == index and m["flags"] & NTF_SELF and m.get("dst")}
    except NetlinkError as e:
        raise _failed("cannot list VXLAN destinations", e) from e


def neighbours(nl, index: int) -> set[tuple[str, str]]:
    """(IP, MAC) of the device's permanent neighbour entries."""
    found = set()
    try:
        for family in (socket.AF_INET, socket.AF_INET6):
            found |= {(m.get("dst"), m.get("lladdr")) for m in nl.ipr.neigh("dump", ifindex=index, family=family)
                      if m["ifindex"] == index and m["state"] & NUD_PERMANENT and m.get("lladdr")}
    except NetlinkError as e:
        raise _failed("cannot list VXLAN neighbours", e) from e
    return found


def add_remote(nl, index: int, mac: str, vtep: str) -> None:
    try:
        nl.ipr.fdb("append", ifindex=index, lladdr=mac, dst=vtep)
    except NetlinkError as e:
        if e.code != errno.EEXIST:
            raise _failed(f"cannot add VXLAN destination {mac} -> {vtep}", e) from e
    verbose.made(f"fdb {mac} dst {vtep} on {nl._name(index)}")


def delete_remote(nl, index: int, mac: str, vtep: str) -> None:
    try:
        nl.ipr.fdb("del", ifindex=index, lladdr=mac, dst=vtep)
    except NetlinkError as e:
        if e.code not in (errno.ENOENT, errno.ENODEV):
            raise _failed(f"cannot delete VXLAN destination {mac} -> {vtep}", e) from e
    verbose.removed(f"fdb {mac} dst {vtep} on {nl._name(index)}")


def add_neighbour(nl, index: int, ip: str, mac: str) -> None:
    try:
        nl.ipr.neigh("replace", ifindex=index, dst=ip, lladdr=mac, state=NUD_PERMANENT)
    except NetlinkError as e:
        raise _failed(f"cannot add neighbour {ip} -> {mac}", e) from e
    verbose.made(f"neighbour {ip} lladdr {mac} on {nl._name(index)}")


def delete_neighbour(nl, index: int, ip: str, mac: str) -> None:
    try:
        nl.ipr.neigh("del", ifindex=index, dst=ip, lladdr=mac)
    except NetlinkError as e:
        if e.code not in (errno.ENOENT, errno.ENODEV):
            raise _failed(f"cannot delete neighbour {ip}", e) from e
    verbose.removed(f"neighbour {ip} on {nl._name(index)}")


def route_source(nl, destination: str) -> tuple[str, int] | None:
    """(the source address the host uses toward destination, the MTU of the
    link it leaves by); None when there is no route."""
    try:
        routes = nl.ipr.route("get", dst=destination)
    except NetlinkError as e:
        if e.code in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return None
        raise _failed(f"cannot look up the route to {destination}", e) from e
    if not routes or not routes[0].get("prefsrc"):
        return None
    link = nl._get_link(index=routes[0].get("oif"))
    return routes[0].get("prefsrc"), (link.get("mtu") if link else 1500)


def address_link_mtu(nl, address: str) -> int | None:
    """The MTU of the host link holding address, None if no link holds it."""
    for msg in nl.ipr.addr("dump"):
        if (msg.get("local") or msg.get("address")) == address:
            link = nl._get_link(index=msg["index"])
            return link.get("mtu") if link else None
    return None


def first_address(nl, ifname: str, family: int = socket.AF_INET) -> tuple[str, int] | None:
    """(the first address of that family on the link, the link's MTU); None
    if the link is missing or has none."""
    link = nl._get_link(ifname=ifname)
    if link is None:
        return None
    for msg in nl.ipr.addr("dump", family=family):
        if msg["index"] == link["index"] and not (msg.get("address") or "").startswith("fe80:"):
            return msg.get("local") or msg.get("address"), link.get("mtu")
    return None
