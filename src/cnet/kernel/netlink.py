"""Links, addresses and routes of one network namespace, through pyroute2.

One `Netlink` is opened per command per namespace and closed with `with`.
A handle for another namespace is opened by entering that namespace in this
process (setns) and opening pyroute2's `IPRoute` there: its socket stays
bound to the namespace it was made in. That costs ~0.5 ms, where
`IPRoute(netns=...)` forks a helper process (~12 ms) and, by default, creates
a namespace that is missing (see docs/design-notes.md).

This module imports pyroute2 (through pyroute.py, at the least cost), which
is most of a command's start-up (bench/results/kernel-access.md): it is
imported only where a handle is opened (handles.py), never by commands that
only read the state.
"""

from __future__ import annotations

import errno
import functools
import ipaddress
import os
import socket

from .. import verbose
from ..errors import Conflict, NotFound, OperationFailed
from .pyroute import IPRoute, NetlinkError

IFA_F_NODAD = 0x02  # an address usable at once, without duplicate address detection
RT_TABLE_MAIN = 254
RTN_UNICAST, RTN_LOCAL = 1, 2
RT_SCOPE_LINK = 253
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


def _inside_handle():
    """An IPRoute for the namespace this thread is in, bound to a netlink port
    id of its own. pyroute2 0.9.7 leaves its socket unbound, so the kernel
    gives it the process id as port id on first use, in each namespace: the
    host handle's id. And the kernel sends the echo (NLM_F_ECHO) of a host
    request that changes a link in another namespace (a veth peer made or
    deleted there) to the requester's port id *in that namespace*: the
    sandbox's handle would take it for the answer to its next request."""
    while True:
        ipr = IPRoute(nlm_echo=True, groups=0)
        port = _next_port[0]
        _next_port[0] = port % 511 + 1
        try:
            ipr.asyncore.socket.bind(((os.getpid() & 0x3FFFFF) | (port << 22), 0))
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
        # nlm_echo: the kernel answers a new link with its description, index included.
        # groups=0: IPRoute joins the link, address and route multicast groups by
        # default, and pyroute2 0.9.7 can hand such a notification (the RTM_DELLINK
        # of a veth peer deleted from another namespace) to the next request as its
        # answer; besides, every event on the host would be queued and parsed.
        if netns_path is None:
            self.ipr = IPRoute(nlm_echo=True, groups=0)
        else:
            from .netns import entered

            with entered(netns_path):
                self.ipr = _inside_handle()

    def close(self) -> None:
        self.ipr.close()

    def __enter__(self) -> Netlink:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- links -------------------------------------------------------------

    def _get_link(self, **which):
        """One RTM_GETLINK by name or index (a dump would grow with sandboxes); None if there is none."""
        try:
            return self.ipr.link("get", **which)[0]
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

    def _new_link(self, what: str, **spec) -> int:
        try:
            index = next((link["index"] for link in self.ipr.link("add", **spec) if link.get("index")), None)
            if index is None:
                index = self.ipr.link("get", ifname=spec["ifname"])[0]["index"]  # no echo: ask
        except NetlinkError as e:
            raise _failed(what, e) from e
        self._names[index] = spec["ifname"]
        peer = spec.get("peer")
        verbose.made(f"link {spec['ifname']}{self._where} ({spec['kind']}"
                     + (f", peer {peer['ifname']} in the sandbox" if peer else "") + ")")
        return index

    def add_bridge(self, name: str, mtu: int, group: int) -> int:
        """Create a bridge (forward delay 0, so ports forward at once), down,
        in link group `group`: set by the request that creates it (an ifalias
        is not: the kernel takes it from RTM_SETLINK only), so a process
        killed right after still leaves a link it can tell is its own."""
        return self._new_link(f"cannot create bridge {name}", ifname=name, kind="bridge", mtu=mtu,
                              br_forward_delay=0, group=group)

    def add_veth(self, name: str, peer: str, peer_netns_fd: int, mtu: int, peer_mac: str,
                 master: int, group: int) -> int:
        """A veth pair in one request: `name` here, enslaved to master, up and
        in link group `group` (see add_bridge); its peer born inside the other
        namespace (never here, where its name could clash), down, with its
        MAC and MTU."""
        return self._new_link(
            f"cannot create veth pair {name}/{peer}", ifname=name, kind="veth", mtu=mtu,
            master=master, state="up", group=group,
            peer={"ifname": peer, "net_ns_fd": peer_netns_fd, "address": peer_mac, "mtu": mtu})

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
            return self._new_link(what, **spec)
        try:
            self.ipr.link("add", net_ns_fd=netns_fd, **spec)
        except NetlinkError as e:
            raise _failed(what, e) from e
        return None

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
        return {link.get("ifname") for link in self.ipr.link("dump")}

    def _name(self, index: int) -> str:
        """A link's name for -v, as far as this handle has seen it (lo is index 1 everywhere)."""
        return "lo" if index == 1 else self._names.get(index, f"link #{index}")

    @_guarded("cannot set a link's alias")
    def set_alias(self, index: int, alias: str) -> None:
        self.ipr.link("set", index=index, ifalias=alias)
        verbose.changed(f"link {self._name(index)}{self._where}: alias {alias!r}")

    @_guarded("cannot set hairpin mode on a bridge port")
    def set_hairpin(self, index: int) -> None:
        """Let frames leave a bridge port by the port they came in: with
        br_netfilter, a sandbox's connection to its own published port is
        bridged back to it."""
        self.ipr.brport("set", index=index, mode=BRIDGE_MODE_HAIRPIN)

    @_guarded("cannot set a link's MTU")
    def set_mtu(self, index: int, mtu: int) -> None:
        self.ipr.link("set", index=index, mtu=mtu)
        verbose.changed(f"link {self._name(index)}{self._where}: mtu {mtu}")

    @_guarded("cannot set a link's MAC address")
    def set_mac(self, index: int, mac: str) -> None:
        self.ipr.link("set", index=index, address=mac)
        verbose.changed(f"link {self._name(index)}{self._where}: mac {mac}")

    @_guarded("cannot bring a link down")
    def set_down(self, index: int) -> None:
        self.ipr.link("set", index=index, state="down")
        verbose.changed(f"link {self._name(index)}{self._where} down")

    @_guarded("cannot rename a link")
    def set_name(self, index: int, name: str) -> None:
        """Rename a link (the kernel renames only links that are down)."""
        old = self._name(index)
        self.ipr.link("set", index=index, ifname=name)
        self._names[index] = name
        verbose.changed(f"link {old}{self._where} renamed {name}")

    def move_link(self, index: int, netns_fd: int, ifname: str, where: str) -> None:
        """Move the link at index into the namespace open at netns_fd, named
        ifname there, in one request (`ip link set ... netns N name NAME`:
        the kernel moves it, down, then renames it there). where: that
        namespace, for messages ("sandbox web", "the host")."""
        name = self._name(index)
        try:
            self.ipr.link("set", index=index, net_ns_fd=netns_fd, ifname=ifname)
        except NetlinkError as e:
            raise _failed(f"cannot move link {name} into {where} as {ifname}", e) from e
        self._names.pop(index, None)
        verbose.changed(f"link {name}{self._where} moved into {where} as {ifname}")

    @_guarded("cannot list links")
    def aliases(self) -> dict[str, str]:
        """{name: ifalias} of the links that have an ifalias."""
        return {link.get("ifname"): link.get("ifalias") for link in self.ipr.link("dump") if link.get("ifalias")}

    @_guarded("cannot bring a link up")
    def set_up(self, index: int) -> None:
        self.ipr.link("set", index=index, state="up")
        verbose.changed(f"link {self._name(index)}{self._where} up")

    def delete_link(self, name: str) -> bool:
        """Delete a link; False if it was already gone (teardown is repeatable)."""
        self._bridges.pop(name, None)
        try:
            self.ipr.link("del", ifname=name)
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
        for msg in self.ipr.addr("dump"):
            if index is None or msg["index"] == index:
                address = msg.get("local") or msg.get("address")
                if address:
                    found.append(f"{address}/{msg['prefixlen']}")
        return found

    def add_address(self, index: int, cidr: str) -> None:
        iface = ipaddress.ip_interface(cidr)
        spec = {"index": index, "address": str(iface.ip), "prefixlen": iface.network.prefixlen}
        if iface.version == 6:
            spec["flags"] = IFA_F_NODAD
        elif iface.network.prefixlen < 31:  # as `ip address add ... brd +` and Docker do
            spec["broadcast"] = str(iface.network.broadcast_address)
        try:
            self.ipr.addr("add", **spec)
        except NetlinkError as e:
            raise _failed(f"cannot add address {cidr}", e) from e
        verbose.made(f"address {cidr} on {self._name(index)}{self._where}")

    def add_default_route(self, gateway: str) -> None:
        family = socket.AF_INET6 if ":" in gateway else socket.AF_INET
        try:
            self.ipr.route("add", family=family, dst="::/0" if family == socket.AF_INET6 else "0.0.0.0/0",
                           gateway=gateway)
        except NetlinkError as e:
            if e.code == errno.EEXIST:
                return  # the namespace has a default route of its own: keep it
            raise _failed(f"cannot add a default route via {gateway}", e) from e
        verbose.made(f"route default via {gateway}{self._where}")

    def add_route(self, dst: str, gateway: str) -> None:
        """A route to subnet dst via gateway (one there already is fine)."""
        family = socket.AF_INET6 if ":" in gateway else socket.AF_INET
        try:
            self.ipr.route("replace", family=family, dst=dst, gateway=gateway)
        except NetlinkError as e:
            raise _failed(f"cannot add a route to {dst} via {gateway}", e) from e
        verbose.made(f"route {dst} via {gateway}{self._where}")

    def delete_route(self, dst: str, gateway: str) -> None:
        """Take the route to dst via gateway out; gone already is fine."""
        family = socket.AF_INET6 if ":" in gateway else socket.AF_INET
        try:
            self.ipr.route("del", family=family, dst=dst, gateway=gateway)
        except NetlinkError as e:
            if e.code not in (errno.ESRCH, errno.ENOENT):
                raise _failed(f"cannot delete the route to {dst} via {gateway}", e) from e
            return
        verbose.removed(f"route {dst} via {gateway}{self._where}")

    def add_link_route(self, dst: str, index: int, source: str) -> None:
        """A route to dst (a CIDR) straight out of link `index` (scope link), from
        the address `source` of that link."""
        family = socket.AF_INET6 if ":" in dst else socket.AF_INET
        try:
            self.ipr.route("add", family=family, dst=dst, oif=index, prefsrc=source, scope=RT_SCOPE_LINK)
        except NetlinkError as e:
            raise _failed(f"cannot add a route to {dst}", e) from e

    def add_default_route_via_link(self, index: int, family: int) -> None:
        """A default route out of link `index` without a gateway (a link that
        does no ARP: an ipvlan in l3 mode); kept when there is one already."""
        try:
            self.ipr.route("add", family=family, dst="::/0" if family == socket.AF_INET6 else "0.0.0.0/0",
                           oif=index, scope=RT_SCOPE_LINK)
        except NetlinkError as e:
            if e.code == errno.EEXIST:
                return
            raise _failed("cannot add a default route", e) from e

    def _routes(self):
        for family in (socket.AF_INET, socket.AF_INET6):
            yield from self.ipr.route("dump", family=family)

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
