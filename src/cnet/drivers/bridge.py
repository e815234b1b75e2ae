"""The bridge driver: a network is a Linux bridge that holds the gateway
addresses, and an endpoint a veth pair with one end on the bridge.

The bridge is named after the network, carries its state file's tags
(owner.py: a link group from the start, an ifalias once it is complete, so
cnet deletes only bridges it made), forwards at once (forward delay 0), and
has IPv6 only when the network has an IPv6 subnet (otherwise not even a
link-local address). Every step is registered for undo as soon as it is done.
"""

from __future__ import annotations

import os

from .. import faults
from ..errors import Conflict, InvalidInput, OperationFailed
from ..kernel import sysctl
from ..model import Endpoint, Network, State, replace
from .base import (FirewallNeeds, add_default_routes, ifb_name, reshape_endpoint, shape_endpoint, survey_limits,
                   unshape_endpoint)

# icc: False for --no-icc; routed: True for --routed (each recorded only then)
OPTIONS = {"icc", "routed"}


# -- the network -------------------------------------------------------------

def validate(net: Network) -> Network:
    unknown = set(net.options) - OPTIONS
    if unknown:
        raise InvalidInput(f"a bridge network has no option {', '.join(sorted(unknown))}")
    for name, value in net.options.items():
        if not isinstance(value, bool):
            raise InvalidInput(f"bridge option {name} must be true or false, not {value!r}")
    options = {} if net.options.get("icc", True) else {"icc": False}
    if net.options.get("routed", False):
        if net.internal:
            raise InvalidInput("--routed and --internal do not go together: an internal network has no route")
        if net.masquerade:
            raise InvalidInput("a --routed network has no outbound NAT (masquerade must be off)")
        options["routed"] = True
    return replace(net, options=options)


def firewall(net: Network) -> FirewallNeeds:
    v4 = any(":" not in s.subnet for s in net.subnets)
    v6 = any(":" in s.subnet for s in net.subnets)
    sysctls = set()
    if not net.internal:  # routed out of the bridge
        sysctls |= {"net.ipv4.ip_forward"} if v4 else set()
        sysctls |= {"net.ipv6.conf.all.forwarding"} if v6 else set()
    icc = net.options.get("icc", True)
    if not icc:
        # --no-icc is a forward rule on bridged traffic: br_netfilter's hooks must see it
        sysctls |= {"net.bridge.bridge-nf-call-iptables"} if v4 else set()
        sysctls |= {"net.bridge.bridge-nf-call-ip6tables"} if v6 else set()
    return FirewallNeeds(interface=net.name, publish=True, icc=icc, sysctls=frozenset(sysctls),
                         routed=net.options.get("routed", False))


def create(net: Network, kernel, undo) -> None:
    nl = kernel.netlink
    if nl.link_index(net.name) is not None:
        raise Conflict(f"a link named {net.name} already exists on the host")
    index = nl.add_bridge(net.name, net.mtu, kernel.owner.group)
    undo.callback(nl.delete_link, net.name)
    _configure(net, index, nl, kernel.owner, set())


def _configure(net: Network, index: int, nl, owner, addresses: set[str]) -> None:
    """Everything of the bridge but its creation; addresses: those it has already."""
    has_ipv6 = any(":" in s.subnet for s in net.subnets)
    # The bridge is still down, so no link-local address has been made yet.
    # (A host booted without IPv6 has no such sysctl, and nothing to turn off.)
    disable_ipv6 = ("net", "ipv6", "conf", net.name, "disable_ipv6")
    if has_ipv6 or sysctl.exists(disable_ipv6):
        sysctl.write(disable_ipv6, "0" if has_ipv6 else "1")
    if has_ipv6:
        # No duplicate address detection on the bridge's link-local address:
        # while it is tentative (1-2 s after the bridge comes up) the host
        # sends no neighbour solicitation for traffic it forwards, so the
        # first connections to a published IPv6 port would go unanswered.
        sysctl.write(("net", "ipv6", "conf", net.name, "accept_dad"), "0")
    for s in net.subnets:
        if s.gateway_cidr not in addresses:
            nl.add_address(index, s.gateway_cidr)
    if not net.internal and any(":" not in s.subnet for s in net.subnets):
        # lets 127.0.0.1:PORT of a published port be carried to a sandbox
        sysctl.write(("net", "ipv4", "conf", net.name, "route_localnet"), "1")
    faults.checkpoint("bridge-addresses")
    nl.set_up(index)
    nl.set_alias(index, owner.network_tag(net.name))  # last: the bridge is complete


def _ours(net: Network, view: dict, owner) -> bool:
    """The link named after the network is this state file's bridge: its tag,
    or its group with no alias yet (its creator was stopped before the end)."""
    return view["alias"] == owner.network_tag(net.name) or (not view["alias"] and view["group"] == owner.group)


def delete(net: Network, kernel) -> bool:
    """Delete the bridge if it is there and is ours; False if there was nothing to delete."""
    view = kernel.netlink.link_view(net.name)
    if view is None or not _ours(net, view, kernel.owner):
        return False
    return kernel.netlink.delete_link(net.name)


def inspect(net: Network, kernel) -> dict | None:
    """The kernel's view of the bridge, or None when it is missing."""
    view = kernel.netlink.link_view(net.name)
    if view is not None:
        view["owned"] = _ours(net, view, kernel.owner)
        for internal in ("alias", "group", "master"):
            del view[internal]
    return view


# -- endpoints ---------------------------------------------------------------

def host_ifname(state: State, owner: str, network: str, taken) -> str:
    """The host side of a veth pair: 'cn' and 10 hex digits of a hash of
    sandbox and network, so it is the same every time and fits in 15
    characters; on the rare clash, the hash of the next salt."""
    from hashlib import sha256  # here: it loads OpenSSL (~3 ms), which only an attach needs

    in_use = {e.host_ifname for e in state.endpoints}
    for salt in range(100):
        digest = sha256(f"{owner}\0{network}\0{salt}".encode()).hexdigest()
        name = f"cn{digest[:10]}"
        if name not in in_use and not taken(name):
            return name
    raise Conflict(f"no free host-side interface name for {owner} on {network}")


def plan_endpoint(state: State, net: Network, ep: Endpoint, kernel) -> Endpoint:
    name = host_ifname(state, ep.sandbox, net.name, taken=lambda n: kernel.netlink.link_index(n) is not None)
    return replace(ep, host_ifname=name)


def attach(net: Network, ep: Endpoint, sandbox_path: str, kernel, undo, default_route: bool) -> None:
    """Plug the sandbox at sandbox_path into the bridge with a veth pair."""
    host, inside = kernel.netlink, kernel.inside(sandbox_path)
    bridge_index = host.bridge_index(net.name)
    if bridge_index is None:
        raise OperationFailed(f"the bridge of network {net.name} is missing from the kernel")
    fd = os.open(sandbox_path, os.O_RDONLY)
    try:
        index = host.add_veth(ep.host_ifname, ep.ifname, fd, net.mtu, ep.mac, master=bridge_index,
                              group=kernel.owner.group)
    finally:
        os.close(fd)
    undo.callback(host.delete_link, ep.host_ifname)  # takes the peer with it
    host.set_hairpin(index)
    peer = inside.link_index(ep.ifname)
    for cidr in ep.addresses:
        inside.add_address(peer, cidr)
    inside.set_up(peer)
    faults.checkpoint("attach-addresses")
    if default_route:
        add_default_routes(net, inside)
    tag = kernel.owner.endpoint_tag(ep.sandbox, ep.network)
    shape_endpoint(host, ep.host_ifname, index, ep.limits, mtu=net.mtu, group=kernel.owner.group, tag=tag, undo=undo)
    # Last: a host-side link with its tag is a complete endpoint (`cnet check`
    # needs no look inside the sandbox to tell one cut short).
    host.set_alias(index, tag)


def limit(net: Network, old: Endpoint, new: Endpoint, kernel, undo) -> None:
    """From the limits of old to those of new, on the live endpoint."""
    reshape_endpoint(kernel.netlink, new.host_ifname, old.limits, new.limits, mtu=net.mtu,
                     group=kernel.owner.group, tag=kernel.owner.endpoint_tag(new.sandbox, new.network), undo=undo)


def detach(net: Network, ep: Endpoint, kernel) -> None:
    """Remove the veth pair (deleting one end deletes both); gone already is fine."""
    faults.checkpoint("detach")
    kernel.delete_link(ep.host_ifname)
    if ep.limits is not None:
        unshape_endpoint(kernel.netlink, ep.host_ifname, None, kernel.owner.group)  # the veth's ifb


# -- check and restore (core/lifecycle.py) -------------------------------------

def links(net: Network, endpoints) -> set[str]:
    """The host links the network and these endpoints of it are (an egress limit's ifb too)."""
    return ({net.name} | {ep.host_ifname for ep in endpoints if ep.host_ifname}
            | {ifb_name(ep.host_ifname) for ep in endpoints if ep.limits and ep.limits.egress_rate})


def survey_network(net: Network, kernel, host_addresses) -> list[str]:
    """What is wrong with the bridge, a phrase each ("missing link br0").
    host_addresses(name): the addresses the kernel has on a host link; None
    to read sysfs only (its alias, set last, says the bridge was made whole)."""
    from ..kernel import sysfs

    link = sysfs.link(net.name)
    if link is None:
        return [f"missing link {net.name}"]
    owner = kernel.owner
    if link.alias != owner.network_tag(net.name):
        if link.alias or link.group != owner.group:
            return [f"link {net.name} is not cnet's (ifalias {link.alias!r}): cnet leaves it alone"]
        return [f"incomplete link {net.name} (its creation was cut short)"]
    problems = []
    if host_addresses is not None:
        have = set(host_addresses(net.name))
        problems += [f"missing address {s.gateway_cidr} on link {net.name}" for s in net.subnets
                     if s.gateway_cidr not in have]
    if not link.up:
        problems.append(f"link {net.name} is down")
    if link.mtu != net.mtu:
        problems.append(f"link {net.name} has MTU {link.mtu}, the state {net.mtu}")
    localnet = ("net", "ipv4", "conf", net.name, "route_localnet")
    if not net.internal and any(":" not in s.subnet for s in net.subnets) and sysctl.read(localnet) != "1":
        problems.append(f"sysctl {'.'.join(localnet)} is not 1")
    return problems


def repair_network(net: Network, kernel, undo) -> None:
    """Make the bridge what the state says: made when it is missing, else
    set right where it stands (its ports stay on it)."""
    nl = kernel.netlink
    view = nl.link_view(net.name)
    if view is None:
        create(net, kernel, undo)
        return
    if not _ours(net, view, kernel.owner):
        raise Conflict(f"a link named {net.name} that is not cnet's is on the host: cnet leaves it alone")
    if view["mtu"] != net.mtu:
        nl.set_mtu(view["index"], net.mtu)
    _configure(net, view["index"], nl, kernel.owner, set(view["addresses"]))


def survey_endpoint(net: Network, ep: Endpoint, kernel, inside) -> list[str]:
    """What is wrong with the endpoint: its veth pair, and its shaping when
    it has limits (read with netlink: an endpoint without limits needs none)."""
    problems = _survey_veth(net, ep, kernel, inside)
    if problems or ep.limits is None:
        return problems
    return _survey_shaping(ep, kernel)


def _survey_shaping(ep: Endpoint, kernel) -> list[str]:
    """What differs between the qdiscs and ifb of the endpoint's host link and its limits."""
    from ..kernel import sysfs

    def alias(name: str) -> str | None:
        link = sysfs.link(name)
        return None if link is None else link.alias

    nl = kernel.netlink
    index = nl.link_index(ep.host_ifname)
    if index is None:
        return [f"missing link {ep.host_ifname}"]
    return survey_limits(nl, ep.host_ifname, index, ep.limits, link_alias=alias,
                         tag=kernel.owner.endpoint_tag(ep.sandbox, ep.network))


def _survey_veth(net: Network, ep: Endpoint, kernel, inside) -> list[str]:
    """What is wrong with the endpoint's veth pair. inside: the netlink handle
    of the sandbox's namespace, to look there too; None to look at the host
    side only (a complete tag there means the endpoint was made whole)."""
    from ..kernel import sysfs

    link = sysfs.link(ep.host_ifname)
    if link is None:
        return [f"missing link {ep.host_ifname}"]
    if link.alias != kernel.owner.endpoint_tag(ep.sandbox, ep.network):
        return [f"incomplete link {ep.host_ifname} (its making was cut short, or it is another's)"]
    problems = []
    if link.master != net.name:
        problems.append(f"link {ep.host_ifname} is not a port of bridge {net.name}")
    if not link.up:
        problems.append(f"link {ep.host_ifname} is down")
    if inside is not None:
        view = inside.link_view(ep.ifname)
        if view is None:
            return problems + [f"missing link {ep.ifname} in the sandbox"]
        if view["mac"] != ep.mac:
            problems.append(f"link {ep.ifname} in the sandbox has MAC {view['mac']}, the state {ep.mac}")
        problems += [f"missing address {a} on {ep.ifname} in the sandbox" for a in ep.addresses
                     if a not in view["addresses"]]
        if not view["up"]:
            problems.append(f"link {ep.ifname} in the sandbox is down")
    return problems


def repair_endpoint(net: Network, ep: Endpoint, sandbox_path: str, kernel, undo, default_route: bool) -> None:
    """Make the endpoint again, with the same names, MAC, addresses and
    limits; a veth pair that is whole only gets its shaping made again."""
    if not _survey_veth(net, ep, kernel, kernel.inside(sandbox_path)):
        nl, owner = kernel.netlink, kernel.owner
        index = nl.link_index(ep.host_ifname)
        unshape_endpoint(nl, ep.host_ifname, index, owner.group)
        shape_endpoint(nl, ep.host_ifname, index, ep.limits, mtu=net.mtu, group=owner.group,
                       tag=owner.endpoint_tag(ep.sandbox, ep.network), undo=undo)
        return
    kernel.netlink.delete_link(ep.host_ifname)  # its peer goes with it
    unshape_endpoint(kernel.netlink, ep.host_ifname, None, kernel.owner.group)
    inside = kernel.inside(sandbox_path)
    if inside.link_index(ep.ifname) is not None:  # a link of that name that is not our veth's peer
        raise Conflict(f"the sandbox already has a link {ep.ifname} that is not cnet's endpoint on {net.name}")
    attach(net, ep, sandbox_path, kernel, undo, default_route)
