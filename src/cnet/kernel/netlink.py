"""Links, addresses and routes of one network namespace, through pyroute2.

One `Netlink` is opened per command per namespace and closed with `with`.
A handle for another namespace is opened by entering that namespace in this
process (setns) and opening its netlink sockets there: they stay bound to
the namespace they were made in. That costs ~0.5 ms, where
`IPRoute(netns=...)` forks a helper process (~12 ms) and, by default, creates
a namespace that is missing (see docs/design-notes.md).

Links, addresses and routes go through rtnl.py: pyroute2's message classes
on a plain socket, without IPRoute, whose import is most of a command's
start-up (bench/results/kernel-access.md). The rest (a macvlan or ipvlan
link, whose modes pyroute2's request layer spells; tc in tc.py; FDB and
neighbour entries in vxlan.py) uses `self.ipr`, an IPRoute opened on first use.
Nothing here is imported by commands that only read the state (handles.py).
"""

from __future__ import annotations

import errno
import functools
import ipaddress
import os
import socket

from .. import verbose
from ..errors import Conflict, NotFound, OperationFailed
from . import pyroute
from .pyroute import NetlinkError
from .rtnl import (NEW, NLM_F_CREATE, NLM_F_ECHO, NLM_F_REPLACE, RTM_DELLINK, RTM_DELROUTE, RTM_GETADDR,
                   RTM_GETLINK, RTM_GETROUTE, RTM_NEWADDR, RTM_NEWLINK, RTM_NEWROUTE, RTM_SETLINK, Rtnl)

IFF_UP = 0x1
AF_BRIDGE = 7
NLA_F_NESTED = 0x8000
RTPROT_STATIC = 4  # how IPRoute marks the routes it adds (`ip route` shows "proto static")
IFA_F_NODAD = 0x02  # an address usable at once, without duplicate address detection
RT_TABLE_MAIN = 254
RTN_UNICAST, RTN_LOCAL = 1, 2
RT_SCOPE_LINK, RT_SCOPE_NOWHERE = 253, 255
BRIDGE_MODE_HAIRPIN = 1


def _failed(what: str, e: NetlinkError) -> Exception:
    """Turn a netlink error into the cnet error a user should see."""
    reason = os.strerror(e.code) if e.code else str(e)
    if e.code == errno.EEXIST:
        return Conflict(f"{what}: {reason}")
    if e.code == errno.ENODEV:
        return NotFound(f"{what}: {reason}")
    return OperationFailed(f"{what}: {reason}")


def _guarded(what: str):
    """A netlink failure becomes the cnet error saying what was asked."""
    def wrap(method):
        @functools.wraps(method)
        def guarded(self, *args, **kwargs):
            try:
                return method(self, *args, **kwargs)
            except NetlinkError as e:
                raise _failed(what, e) from e
        return guarded
    return wrap


_next_port = [1]


def _inside_port() -> int:
    """A netlink port id for a socket inside a sandbox's namespace, never the
    one the kernel gives a socket left unbound (the process id, in each
    namespace: the host socket's id). The kernel sends the echo (NLM_F_ECHO)
    of a host request that changes a link in another namespace (a veth peer
    made or deleted there) to the requester's port id *in that namespace*:
    the sandbox's socket would take it for the answer to its next request."""
    port = _next_port[0]
    _next_port[0] = port % 511 + 1
    return (os.getpid() & 0x3FFFFF) | (port << 22)


def _inside_rtnl() -> Rtnl:
    while True:
        try:
            return Rtnl(_inside_port())
        except OSError as e:
            if e.errno != errno.EADDRINUSE:
                raise


def _inside_handle():
    """An IPRoute for the namespace this thread is in, bound to a port id of
    its own (_inside_port; pyroute2 0.9.7 leaves its socket unbound)."""
    while True:
        ipr = pyroute.IPRoute(nlm_echo=True, groups=0)
        try:
            ipr.asyncore.socket.bind((_inside_port(), 0))
            return ipr
        except OSError as e:
            ipr.close()  # a socket whose bind failed may not bind again
            if e.errno != errno.EADDRINUSE:
                raise


class Netlink:
    """Netlink access to the namespace the process runs in, or to the one at
    netns_path."""

    def __init__(self, netns_path: str | None = None) -> None:
        self._bridges: dict[str, int | None] = {}
        # for -v: where this handle acts, and the names of the links it made (by index)
        self._where = "" if netns_path is None else f" in {os.path.basename(netns_path)}"
        self._names: dict[int, str] = {}
        self._netns_path = netns_path
        self._ipr = None
        if netns_path is None:
            self.rtnl = Rtnl()
        else:
            from .netns import entered

            with entered(netns_path):
                self.rtnl = _inside_rtnl()

    @property
    def ipr(self):
        """pyroute2's IPRoute in this handle's namespace, opened on first use.
        nlm_echo: the kernel answers a new link with its description, index
        included. groups=0: IPRoute joins the link, address and route
        multicast groups by default, and pyroute2 0.9.7 can hand such a
        notification (the RTM_DELLINK of a veth peer deleted from another
        namespace) to the next request as its answer; besides, every event on
        the host would be queued and parsed."""
        if self._ipr is None:
            if self._netns_path is None:
                self._ipr = pyroute.IPRoute(nlm_echo=True, groups=0)
            else:
                from .netns import entered

                with entered(self._netns_path):
                    self._ipr = _inside_handle()
        return self._ipr

    def close(self) -> None:
        self.rtnl.close()
        if self._ipr is not None:
            self._ipr.close()

    def _link_request(self, kind: int, index: int = 0, attrs: list | None = None, flags: int = 0,
                      up: bool | None = None, family: int = 0) -> list:
        """One link message (up: set IFF_UP on or off; None leaves it)."""
        r = self.rtnl
        fields = {"family": family, "index": index}
        if up is not None:
            fields.update(flags=IFF_UP if up else 0, change=IFF_UP)
        return r.request(r.message(r.link, fields, attrs), kind, flags)

    def _set_link(self, index: int, attrs: list | None = None, up: bool | None = None) -> None:
        self._link_request(RTM_SETLINK, index, attrs, up=up)

    def __enter__(self) -> Netlink:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- links -------------------------------------------------------------

    def _get_link(self, *, ifname: str | None = None, index: int = 0):
        """One RTM_GETLINK by name or index (a dump would grow with sandboxes); None if there is none."""
        try:
            return self._link_request(RTM_GETLINK, index, [["IFLA_IFNAME", ifname]] if ifname else [])[0]
        except NetlinkError as e:
            if e.code == errno.ENODEV:
                return None
            raise

    @_guarded("cannot look up a link")
    def link_index(self, name: str) -> int | None:
        link = self._get_link(ifname=name)
        if link is None:
            return None
        self._names[link["index"]] = name
        return link["index"]

    def bridge_index(self, name: str) -> int | None:
        """link_index, remembered for the life of this handle: a batch attaches
        many sandboxes to the same few bridges."""
        if name not in self._bridges:
            self._bridges[name] = self.link_index(name)
        return self._bridges[name]

    def _new_link(self, what: str, name: str, kind: str, attrs: list, data: list, up: bool = False,
                  peer: str | None = None) -> int:
        """RTM_NEWLINK of a link `name` of this kind (data: its IFLA_INFO_DATA
        attributes); its index from the kernel's echo of the new link. Not
        from an RTM_GETLINK after it: the kernel then settles the new link's
        pending carrier change at once, and a veth end made up, whose peer is
        still down, leaves its bridge port disabled until the next link
        event is handled (up to a second): the first frames of the sandbox
        (a router's gratuitous ARP) are dropped."""
        info = [["IFLA_INFO_KIND", kind]] + ([["IFLA_INFO_DATA", {"attrs": data}]] if data else [])
        try:
            made = self._link_request(RTM_NEWLINK, 0, [["IFLA_IFNAME", name], *attrs,
                                                       ["IFLA_LINKINFO", {"attrs": info}]],
                                      NEW | NLM_F_ECHO, up=True if up else None)
            index = next((m["index"] for m in made if m.get("ifname") == name), None)
            if index is None:
                index = self._get_link(ifname=name)["index"]
        except NetlinkError as e:
            raise _failed(what, e) from e
        self._names[index] = name
        verbose.made(f"link {name}{self._where} ({kind}" + (f", peer {peer} in the sandbox" if peer else "") + ")")
        return index

    def add_bridge(self, name: str, mtu: int, group: int) -> int:
        """Create a bridge (forward delay 0, so ports forward at once), down,
        in link group `group`: set by the request that creates it (an ifalias
        is not: the kernel takes it from RTM_SETLINK only), so a process
        killed right after still leaves a link it can tell is its own."""
        return self._new_link(f"cannot create bridge {name}", name, "bridge",
                              [["IFLA_MTU", mtu], ["IFLA_GROUP", group]], [["IFLA_BR_FORWARD_DELAY", 0]])

    def add_veth(self, name: str, peer: str, peer_netns_fd: int, mtu: int, peer_mac: str,
                 master: int, group: int) -> int:
        """A veth pair in one request: `name` here, enslaved to master, up and
        in link group `group` (see add_bridge); its peer born inside the other
        namespace (never here, where its name could clash), down, with its
        MAC and MTU."""
        peer_attrs = [["IFLA_IFNAME", peer], ["IFLA_NET_NS_FD", peer_netns_fd], ["IFLA_ADDRESS", peer_mac],
                      ["IFLA_MTU", mtu]]
        return self._new_link(
            f"cannot create veth pair {name}/{peer}", name, "veth",
            [["IFLA_MTU", mtu], ["IFLA_MASTER", master], ["IFLA_GROUP", group]],
            [["VETH_INFO_PEER", {"attrs": peer_attrs}]], up=True, peer=peer)

    def add_sub_link(self, kind: str, name: str, parent: int, mtu: int, group: int, *,
                     netns_fd: int | None = None, mac: str | None = None, **data) -> int | None:
        """A sub-interface (kind macvlan or ipvlan) of the link `parent`, down,
        in link group `group` (see add_bridge); data: its kind's settings
        (macvlan_mode="bridge", ipvlan_mode=0). With netns_fd it is born in
        that namespace (under a name that may be taken here) and its index is
        not known here: None."""
        spec = dict(ifname=name, kind=kind, link=parent, mtu=mtu, group=group, **data)
        if mac is not None:
            spec["address"] = mac
        what = f"cannot create {kind} link {name} on {self._name_of(parent)}"
        if netns_fd is None:
            return self.add_link(what, **spec)
        try:
            self.ipr.link("add", net_ns_fd=netns_fd, **spec)
        except NetlinkError as e:
            raise _failed(what, e) from e
        return None

    def add_link(self, what: str, **spec) -> int:
        """A link of any kind, spelled as IPRoute.link("add") takes it (its
        request layer knows each kind's settings: macvlan modes, VXLAN, ifb);
        returns its index. what: the error's words."""
        try:  # the index from the echo (nlm_echo), as in _new_link
            index = next((link["index"] for link in self.ipr.link("add", **spec) if link.get("index")), None)
            if index is None:
                index = self._get_link(ifname=spec["ifname"])["index"]
        except NetlinkError as e:
            raise _failed(what, e) from e
        self._names[index] = spec["ifname"]
        verbose.made(f"link {spec['ifname']}{self._where} ({spec['kind']})")
        return index

    def _name_of(self, index: int) -> str:
        link = self._get_link(index=index)
        return link.get("ifname") if link else f"link {index}"

    @_guarded("cannot read a link")
    def sub_link_view(self, name: str) -> dict | None:
        """link_view of a macvlan or ipvlan link, with its mode as the kernel
        reports it ("bridge", "private", ...; ipvlan: 0 l2, 1 l3, 2 l3s)."""
        view = self.link_view(name)
        if view is not None:
            link = self._get_link(ifname=name)
            view["mode"] = link.get(("linkinfo", "data", f"{view['kind']}_mode"))
        return view

    @_guarded("cannot list links")
    def link_names(self) -> set[str]:
        return {link.get("ifname") for link in self._links()}

    def _links(self) -> list:
        r = self.rtnl
        return r.dump(r.message(r.link), RTM_GETLINK)

    def _name(self, index: int) -> str:
        """A link's name for -v, as far as this handle has seen it (lo is index 1 everywhere)."""
        return "lo" if index == 1 else self._names.get(index, f"link #{index}")

    @_guarded("cannot set a link's alias")
    def set_alias(self, index: int, alias: str) -> None:
        self._set_link(index, [["IFLA_IFALIAS", alias]])
        verbose.changed(f"link {self._name(index)}{self._where}: alias {alias!r}")

    @_guarded("cannot set hairpin mode on a bridge port")
    def set_hairpin(self, index: int) -> None:
        """Let frames leave a bridge port by the port they came in: with
        br_netfilter, a sandbox's connection to its own published port is
        bridged back to it."""
        # as `bridge link set hairpin on`; pyroute2 encodes an attribute's flags only from a tuple
        protinfo = ("IFLA_PROTINFO", {"attrs": [["IFLA_BRPORT_MODE", BRIDGE_MODE_HAIRPIN]]}, NLA_F_NESTED)
        self._link_request(RTM_SETLINK, index, [protinfo], family=AF_BRIDGE)

    @_guarded("cannot set a link's MTU")
    def set_mtu(self, index: int, mtu: int) -> None:
        self._set_link(index, [["IFLA_MTU", mtu]])
        verbose.changed(f"link {self._name(index)}{self._where}: mtu {mtu}")

    @_guarded("cannot set a link's MAC address")
    def set_mac(self, index: int, mac: str) -> None:
        self._set_link(index, [["IFLA_ADDRESS", mac]])
        verbose.changed(f"link {self._name(index)}{self._where}: mac {mac}")

    @_guarded("cannot bring a link down")
    def set_down(self, index: int) -> None:
        self._set_link(index, up=False)
        verbose.changed(f"link {self._name(index)}{self._where} down")

    @_guarded("cannot rename a link")
    def set_name(self, index: int, name: str) -> None:
        """Rename a link (the kernel renames only links that are down)."""
        old = self._name(index)
        self._set_link(index, [["IFLA_IFNAME", name]])
        self._names[index] = name
        verbose.changed(f"link {old}{self._where} renamed {name}")

    def move_link(self, index: int, netns_fd: int, ifname: str, where: str) -> None:
        """Move the link at index into the namespace open at netns_fd, named
        ifname there, in one request (`ip link set ... netns N name NAME`:
        the kernel moves it, down, then renames it there). where: that
        namespace, for messages ("sandbox web", "the host")."""
        name = self._name(index)
        try:
            self._set_link(index, [["IFLA_NET_NS_FD", netns_fd], ["IFLA_IFNAME", ifname]])
        except NetlinkError as e:
            raise _failed(f"cannot move link {name} into {where} as {ifname}", e) from e
        self._names.pop(index, None)
        verbose.changed(f"link {name}{self._where} moved into {where} as {ifname}")

    @_guarded("cannot list links")
    def link_tags(self) -> dict[str, tuple[str | None, int | None]]:
        """{name: (ifalias, link group)} of every link here, from one dump."""
        return {link.get("ifname"): (link.get("ifalias"), link.get("group")) for link in self._links()}

    @_guarded("cannot list links")
    def aliases(self) -> dict[str, str]:
        """{name: ifalias} of the links that have an ifalias."""
        return {link.get("ifname"): link.get("ifalias") for link in self._links() if link.get("ifalias")}

    @_guarded("cannot bring a link up")
    def set_up(self, index: int) -> None:
        self._set_link(index, up=True)
        verbose.changed(f"link {self._name(index)}{self._where} up")

    def delete_link(self, name: str) -> bool:
        """Delete a link; False if it was already gone (teardown is repeatable)."""
        self._bridges.pop(name, None)
        try:
            self._link_request(RTM_DELLINK, 0, [["IFLA_IFNAME", name]])
        except NetlinkError as e:
            if e.code == errno.ENODEV:
                return False
            raise _failed(f"cannot delete link {name}", e) from e
        verbose.removed(f"link {name}{self._where}")
        return True

    @_guarded("cannot read a link")
    def link_view(self, name: str) -> dict | None:
        """What the kernel shows of a link, or None if there is none."""
        link = self._get_link(ifname=name)
        if link is None:
            return None
        index = link["index"]
        addresses = [a for a in self._addresses(index) if not a.startswith("fe80:")]
        return {
            "ifname": name,
            "index": index,
            "kind": link.get(("linkinfo", "kind")),
            "state": link.get("operstate"),
            "up": bool(link["flags"] & 1),
            "mtu": link.get("mtu"),
            "mac": link.get("address"),
            "alias": link.get("ifalias"),
            "group": link.get("group"),
            "master": link.get("master"),
            "addresses": addresses,
        }

    # -- addresses and routes ----------------------------------------------

    def _addresses(self, index: int | None = None) -> list[str]:
        """Addresses as CIDR, of one link or of all."""
        found = []
        r = self.rtnl
        for msg in r.dump(r.message(r.address), RTM_GETADDR):
            if index is None or msg["index"] == index:
                address = msg.get("local") or msg.get("address")
                if address:
                    found.append(f"{address}/{msg['prefixlen']}")
        return found

    def add_address(self, index: int, cidr: str) -> None:
        iface = ipaddress.ip_interface(cidr)
        address = str(iface.ip)
        fields = {"family": socket.AF_INET6 if iface.version == 6 else socket.AF_INET, "index": index,
                  "prefixlen": iface.network.prefixlen, "flags": IFA_F_NODAD if iface.version == 6 else 0}
        attrs = [["IFA_LOCAL", address], ["IFA_ADDRESS", address]]  # as `ip address add` sends it
        if iface.version == 4 and iface.network.prefixlen < 31:  # as `ip address add ... brd +` and Docker do
            attrs.append(["IFA_BROADCAST", str(iface.network.broadcast_address)])
        r = self.rtnl
        try:
            r.request(r.message(r.address, fields, attrs), RTM_NEWADDR, NEW)
        except NetlinkError as e:
            raise _failed(f"cannot add address {cidr}", e) from e
        verbose.made(f"address {cidr} on {self._name(index)}{self._where}")

    def _route_request(self, kind: int, flags: int, dst: str, *, gateway: str | None = None,
                       oif: int | None = None, prefsrc: str | None = None, scope: int = 0) -> None:
        """A route of the main table to dst (a CIDR), as `ip route add`
        (`ip route del`: RTM_DELROUTE, any protocol, scope and type) sends it."""
        network = ipaddress.ip_network(dst, strict=False)
        fields = {"family": socket.AF_INET6 if network.version == 6 else socket.AF_INET,
                  "dst_len": network.prefixlen, "table": RT_TABLE_MAIN}
        if kind == RTM_DELROUTE:
            fields["scope"] = RT_SCOPE_NOWHERE
        else:
            fields.update(proto=RTPROT_STATIC, scope=scope, type=RTN_UNICAST)
        attrs = [["RTA_DST", str(network.network_address)]] if network.prefixlen else []
        attrs += [[name, value] for name, value in (("RTA_GATEWAY", gateway), ("RTA_OIF", oif),
                                                     ("RTA_PREFSRC", prefsrc)) if value is not None]
        r = self.rtnl
        r.request(r.message(r.route, fields, attrs), kind, flags)

    def add_default_route(self, gateway: str) -> None:
        family = socket.AF_INET6 if ":" in gateway else socket.AF_INET
        try:
            self._route_request(RTM_NEWROUTE, NEW, "::/0" if family == socket.AF_INET6 else "0.0.0.0/0",
                                gateway=gateway)
        except NetlinkError as e:
            if e.code == errno.EEXIST:
                return  # the namespace has a default route of its own: keep it
            raise _failed(f"cannot add a default route via {gateway}", e) from e
        verbose.made(f"route default via {gateway}{self._where}")

    def add_route(self, dst: str, gateway: str) -> None:
        """A route to subnet dst via gateway (one there already is fine)."""
        try:
            self._route_request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, dst, gateway=gateway)
        except NetlinkError as e:
            raise _failed(f"cannot add a route to {dst} via {gateway}", e) from e
        verbose.made(f"route {dst} via {gateway}{self._where}")

    def delete_route(self, dst: str, gateway: str) -> None:
        """Take the route to dst via gateway out; gone already is fine."""
        try:
            self._route_request(RTM_DELROUTE, 0, dst, gateway=gateway)
        except NetlinkError as e:
            if e.code not in (errno.ESRCH, errno.ENOENT):
                raise _failed(f"cannot delete the route to {dst} via {gateway}", e) from e
            return
        verbose.removed(f"route {dst} via {gateway}{self._where}")

    def add_link_route(self, dst: str, index: int, source: str) -> None:
        """A route to dst (a CIDR) straight out of link `index` (scope link), from
        the address `source` of that link."""
        try:
            self._route_request(RTM_NEWROUTE, NEW, dst, oif=index, prefsrc=source, scope=RT_SCOPE_LINK)
        except NetlinkError as e:
            raise _failed(f"cannot add a route to {dst}", e) from e

    def add_default_route_via_link(self, index: int, family: int) -> None:
        """A default route out of link `index` without a gateway (a link that
        does no ARP: an ipvlan in l3 mode); kept when there is one already."""
        try:
            self._route_request(RTM_NEWROUTE, NEW, "::/0" if family == socket.AF_INET6 else "0.0.0.0/0",
                                oif=index, scope=RT_SCOPE_LINK)
        except NetlinkError as e:
            if e.code == errno.EEXIST:
                return
            raise _failed("cannot add a default route", e) from e

    def _routes(self):
        r = self.rtnl
        for family in (socket.AF_INET, socket.AF_INET6):
            yield from r.dump(r.message(r.route, {"family": family}), RTM_GETROUTE)

    @_guarded("cannot list routes")
    def routes_view(self) -> list[str]:
        """The main table, one route a line as `ip route` words it (roughly)."""
        names = {}
        shown = []
        for msg in self._routes():
            if msg.get("table") != RT_TABLE_MAIN:
                continue
            dst = f"{msg.get('dst')}/{msg['dst_len']}" if msg["dst_len"] else "default"
            if dst.startswith("fe80:"):
                continue
            gateway = msg.get("gateway")
            via = f" via {gateway}" if gateway else ""
            oif = msg.get("oif")
            if oif and oif not in names:
                link = self._get_link(index=oif)
                names[oif] = link.get("ifname") if link else "?"
            shown.append(f"{dst}{via} dev {names.get(oif, '?')}")
        return shown

    @_guarded("cannot list addresses")
    def local_addresses(self) -> set[str]:
        return {cidr.split("/")[0] for cidr in self._addresses()}

    @_guarded("cannot list routes")
    def connected_networks(self) -> list[tuple]:
        """(network, link name) of the main table's directly connected routes
        (no gateway, scope link): the networks this host is on."""
        found, names = [], {}
        for msg in self._routes():
            dst = msg.get("dst")
            if (msg.get("table") == RT_TABLE_MAIN and msg["type"] == RTN_UNICAST and dst and msg["dst_len"]
                    and not msg.get("gateway") and msg.get("scope") == RT_SCOPE_LINK):
                oif = msg.get("oif")
                if oif not in names:
                    link = self._get_link(index=oif) if oif else None
                    names[oif] = link.get("ifname") if link else "?"
                found.append((ipaddress.ip_network(f"{dst}/{msg['dst_len']}", strict=False), names[oif]))
        return found

    @_guarded("cannot list routes")
    def route_networks(self) -> list:
        """Destinations of the unicast and local routes in every table (no default routes)."""
        found = []
        for msg in self._routes():
            dst = msg.get("dst")
            if msg["dst_len"] and msg["type"] in (RTN_UNICAST, RTN_LOCAL) and dst:
                found.append(ipaddress.ip_network(f"{dst}/{msg['dst_len']}", strict=False))
        return found
