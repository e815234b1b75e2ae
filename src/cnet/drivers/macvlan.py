"""The macvlan driver: endpoints are macvlan links of the network's parent,
each with a MAC of its own, on the parent's LAN directly (sublink.py has
what it shares with ipvlan).

Modes as the kernel's: bridge (the sandboxes of the parent reach each other
inside the host), private (they do not, even through the LAN's switch),
vepa (only through a switch that sends frames back), passthru (one endpoint,
which takes over the parent and its MAC).

The kernel never lets a host reach its own macvlan children through their
parent. --host-access (option host_access) gives the host a macvlan of its
own on the parent, in bridge mode, tagged as the network's: it holds one
address of each subnet, the last of the pool endpoints are drawn from
(IPAM never hands it out: held_addresses), with a route to that pool
(--ip-range, else the subnet) through it. A host that is on the subnet
through the parent already has that route: then the network needs an
--ip-range, whose addresses the host reaches through its macvlan.
"""

from __future__ import annotations

import ipaddress
import zlib

from ..errors import Conflict, InvalidInput
from ..ipam import SubnetPool
from ..model import Network, replace
from .sublink import SubLinkDriver

MODES = ("bridge", "private", "vepa", "passthru")


def host_link_name(network: str) -> str:
    """The host's own macvlan of a --host-access network: 'cnh' and the CRC-32
    of the network's name (11 characters, the same every time)."""
    return f"cnh{zlib.crc32(network.encode()):08x}"


def host_addresses(net: Network) -> list[str]:
    """The address the host's macvlan takes in each subnet: the last of the
    pool endpoints are drawn from, the gateway aside."""
    found = []
    for s in net.subnets:
        pool = SubnetPool(s.subnet, s.gateway, s.ip_range)
        first, last = pool.first_last()
        pick = last if last != int(pool.gateway) else last - 1
        if pick < first:
            raise InvalidInput(f"subnet {s.subnet} has no address left for --host-access")
        found.append(str(ipaddress.ip_address(pick)))
    return found


class Macvlan(SubLinkDriver):
    def validate(self, net: Network) -> Network:
        net = super().validate(net)
        options = dict(net.options)
        if not isinstance(options.get("host_access", False), bool):
            raise InvalidInput(f"macvlan option host_access must be true or false, not {options['host_access']!r}")
        if options.pop("host_access", False):
            if options["mode"] == "passthru":
                raise InvalidInput("--host-access needs a second macvlan on the parent, which passthru mode forbids")
            options["host_access"] = True
        return replace(net, options=options)

    def single_child(self, net: Network) -> bool:
        return net.options["mode"] == "passthru"

    def shares_parent_mac(self, net: Network) -> bool:
        # passthru: the kernel gives the link the parent's MAC; setting another would change the parent's
        return net.options["mode"] == "passthru"

    def link_data(self, mode: str) -> dict:
        return {"macvlan_mode": mode}

    def held_addresses(self, net: Network) -> set[str]:
        return set(host_addresses(net)) if net.options.get("host_access") else set()

    # -- the host's own macvlan (--host-access) ----------------------------------

    def create(self, net: Network, kernel, undo) -> None:
        super().create(net, kernel, undo)
        if not net.options.get("host_access"):
            return
        nl, name = kernel.netlink, host_link_name(net.name)
        if nl.link_index(name) is not None:
            raise Conflict(f"a link named {name} (the host-access link of network {net.name}) is already on the host")
        parent = nl.link_index(net.options["parent"])
        index = nl.add_sub_link("macvlan", name, parent, net.mtu, kernel.owner.group, macvlan_mode="bridge")
        undo.callback(nl.delete_link, name)
        self._configure(net, index, nl, kernel.owner, set(), fresh=True)

    @staticmethod
    def _configure(net: Network, index: int, nl, owner, addresses: set[str], fresh: bool) -> None:
        """Addresses, up, routes and last the tag of the host's macvlan;
        addresses: those it has already. fresh: just made, so its routes are
        not there yet (a route that is means the host's own is in the way)."""
        mine = host_addresses(net)
        for address in mine:
            cidr = f"{address}/{128 if ':' in address else 32}"  # no connected route: the one below is the route
            if cidr not in addresses:
                nl.add_address(index, cidr)
        nl.set_up(index)
        for s, address in zip(net.subnets, mine):
            pool = s.ip_range or s.subnet
            try:
                nl.add_link_route(pool, index, address)
            except Conflict:
                if fresh:
                    raise Conflict(f"the host has a route to {pool} already (it is on that LAN through"
                                   f" {net.options['parent']}?): give the network an --ip-range, whose addresses"
                                   " the host then reaches through its host-access link") from None
        nl.set_alias(index, owner.network_tag(net.name))

    @staticmethod
    def _host_link_ours(view: dict, owner, net: Network) -> bool:
        return view["alias"] == owner.network_tag(net.name) or (not view["alias"] and view["group"] == owner.group)

    def delete(self, net: Network, kernel) -> bool:
        """The host's macvlan, if the network has one and it is ours; never the parent."""
        if not net.options.get("host_access"):
            return False
        view = kernel.netlink.link_view(host_link_name(net.name))
        if view is None or not self._host_link_ours(view, kernel.owner, net):
            return False
        return kernel.netlink.delete_link(host_link_name(net.name))

    def inspect(self, net: Network, kernel) -> dict | None:
        seen = super().inspect(net, kernel)
        if seen is not None and net.options.get("host_access"):
            view = kernel.netlink.sub_link_view(host_link_name(net.name))
            seen["host_link"] = None if view is None else {
                k: view[k] for k in ("ifname", "kind", "mode", "state", "mtu", "mac", "addresses")}
        return seen

    def links(self, net: Network, endpoints) -> set[str]:
        found = super().links(net, endpoints)
        return found | {host_link_name(net.name)} if net.options.get("host_access") else found

    def survey_network(self, net: Network, kernel, host_addresses_of) -> list[str]:
        from ..kernel import sysfs

        problems = super().survey_network(net, kernel, host_addresses_of)
        if problems or not net.options.get("host_access"):
            return problems
        name = host_link_name(net.name)
        link = sysfs.link(name)
        if link is None:
            return [f"missing link {name} (the host's access to the network)"]
        if link.alias != kernel.owner.network_tag(net.name):
            return [f"incomplete link {name} (its creation was cut short, or it is another's)"]
        if not link.up:
            problems.append(f"link {name} is down")
        if host_addresses_of is not None:
            have = {a.partition("/")[0] for a in host_addresses_of(name)}
            problems += [f"missing address {a} on link {name}" for a in host_addresses(net) if a not in have]
        return problems

    def repair_network(self, net: Network, kernel, undo) -> None:
        """The host's macvlan made again when it is missing, else set right where it stands."""
        if not net.options.get("host_access"):
            super().repair_network(net, kernel, undo)
            return
        nl, name = kernel.netlink, host_link_name(net.name)
        view = nl.link_view(name)
        if view is None:
            self.create(net, kernel, undo)
            return
        if not self._host_link_ours(view, kernel.owner, net):
            raise Conflict(f"a link named {name} that is not cnet's is on the host: cnet leaves it alone")
        self._configure(net, view["index"], nl, kernel.owner, set(view["addresses"]), fresh=False)

    def interface(self) -> dict:
        return {**super().interface(), "held_addresses": self.held_addresses}


# validate, create, attach, ...: the driver interface (drivers/base.py), as this module's functions
globals().update(Macvlan("macvlan", MODES, frozenset({"host_access"})).interface())
