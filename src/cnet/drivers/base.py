"""The interface every network driver implements, and what drivers share.

A driver is a module with these functions (see bridge.py). `core` validates
what every network has (name, subnets and gateways, MTU, internal,
masquerade) and calls the driver for everything that depends on the kind of
network. Kernel work gets the operation's `Kernel` handles and its undo
stack, on which a driver registers the undo of each step as soon as the step
is done.

    validate(net) -> Network
        the network as this driver makes it: its options checked (InvalidInput)
        and settled (defaults filled in, fields it does not support refused).
    firewall(net) -> FirewallNeeds
        what the network asks of the host's firewall and sysctls.
    create(net, kernel, undo)         make the network's kernel objects.
    delete(net, kernel) -> bool       delete them if they are there and ours.
    inspect(net, kernel) -> dict|None what the kernel has of the network.
    plan_endpoint(state, net, ep, kernel) -> Endpoint
        ep with the host-side fields this driver records (its host link's name).
    attach(net, ep, sandbox_path, kernel, undo, default_route)
        plug the sandbox at sandbox_path in, with ep's name, MAC and addresses,
        and (default_route) the default routes via the network's gateways.
    detach(net, ep, kernel)           unplug it; gone already is fine.
    limit(net, old, new, kernel, undo)
        change a live endpoint's bandwidth limits from old.limits to
        new.limits (model.Limits, None for none); attach and repair_endpoint
        make ep.limits too. A driver without it has no limits: core refuses
        them on its networks. shape_endpoint and its kin below do the work.

Optional, for drivers that need them:

    check_in_state(state, net)
        what the network may not share with the state's other networks (a
        macvlan's parent): Conflict. Called when a network is planned.
    held_addresses(net) -> set[str]
        addresses of the network's subnets that its own links hold (the host's
        macvlan of a --host-access network): IPAM never hands them out.
    default_mac(net, kernel) -> str | None
        the MAC of an endpoint attached without --mac (a hostdev link keeps
        its own); None: a random one.

For a network that hosts share through a store (overlay: its definition
and addresses live in etcd, so that every host makes the same network):

    join(name, request, config, kernel) -> request
        create_network's request (a dict of its arguments) completed from the
        store: the network's definition when another host recorded it
        (Conflict if the request says otherwise), this host's options.
    define(net, undo)                  record the network in the store if new,
        and this host as one of its members.
    leave(net, undo)                   before a delete: take this host off the
        network's members (the last one out deletes it from the store).
    reserve(net, ep, pinned, undo) -> Endpoint
        ep with addresses unique across hosts, recorded in the store (pinned:
        the addresses asked for); called before plan_endpoint.
    sync(net, kernel, full=False)      make this host's view of the other
        hosts' endpoints what the store says (`cnet agent` calls it too);
        full: look at the kernel's view, not the driver's record of it.
    stray_records(net, endpoints) -> list[(what, release)]
        this host's records in the store that none of the state's endpoints
        holds (`cnet gc` calls each release).
    held_elsewhere(net) -> list[str]
        the other hosts that hold the network: `apply` refuses to replace
        it while there are any, before it does anything.

For `cnet check` and `cnet restore` (core/lifecycle.py):

    links(net, endpoints) -> set[str]
        the host links that the network and these endpoints of it are, or
        stand on (a macvlan's parent): `ls` says "missing" without one of them.
    survey_network(net, kernel, host_addresses) -> list[str]
        what is wrong with the network's kernel objects, a phrase each;
        host_addresses(name): the addresses on a host link (None: look
        without netlink, as `cnet check` does unless --deep).
    repair_network(net, kernel, undo)  make them what the state says.
    survey_unused(net, kernel) -> list[str]
        optional: what is wrong with a network no endpoint is on that restore
        cannot repair, a phrase each (a hostdev network's link gone from the host).
    survey_endpoint(net, ep, kernel, inside) -> list[str]
        the same for one endpoint; inside: a netlink handle in the sandbox to
        look there too, or None for the host side only.
    repair_endpoint(net, ep, sandbox_path, kernel, undo, default_route)
        make the endpoint again, with its names, MAC and addresses.
"""

from __future__ import annotations

from collections import namedtuple

from ..model import Network


class FirewallNeeds(namedtuple("FirewallNeeds", "interface publish icc sysctls routed", defaults=(False,))):
    """What one network asks of the host's firewall.

    interface: the host link that the network's traffic crosses (a bridge),
    named in its isolation, masquerade and DNAT rules; None when the host's
    firewall has nothing to do for it (a macvlan network is on the parent's
    LAN directly). publish: its endpoints can have published ports (DNAT).
    icc: its sandboxes may reach each other. sysctls: host sysctls that must
    be 1 while the network exists (cnet restores their old values after the
    last network that needs them). routed: new connections from outside the
    host may enter the network by routing (otherwise only published ports
    and replies come in)."""

    __slots__ = ()


NO_FIREWALL = FirewallNeeds(None, False, True, frozenset())


def add_default_routes(net: Network, inside) -> None:
    """Default routes via the network's gateways, one per family."""
    for s in net.subnets:
        inside.add_default_route(s.gateway)


# -- bandwidth limits (model.Limits) ---------------------------------------------

def ifb_name(link: str) -> str:
    """The ifb device that shapes what arrives on `link`: named after it, so
    it is found from the endpoint's record ("cn1a2b3c4d5e" -> "cb1a2b3c4d5e";
    another name gets "cb-" in front, cut to the kernel's 15 characters)."""
    return f"cb{link[2:]}" if link.startswith("cn") else f"cb-{link}"[:15]


def _directions(limits, host_side: bool):
    """((rate, burst) of what leaves the shaped link, (rate, burst) of what
    arrives on it), each None when not limited. On the host side of an
    endpoint what leaves the link enters the sandbox; on the sandbox's own
    interface it is the other way round."""
    ingress = (limits.ingress_rate, limits.ingress_burst) if limits and limits.ingress_rate else None
    egress = (limits.egress_rate, limits.egress_burst) if limits and limits.egress_rate else None
    return (ingress, egress) if host_side else (egress, ingress)


def shape_endpoint(nl, link: str, index: int, limits, *, mtu: int, group: int, tag: str, undo,
                   host_side: bool = True) -> None:
    """Shape an endpoint as its limits say (nothing for None), each step's
    undo registered at once. nl: the netlink handle of the namespace that
    `link` (at index) is in; what arrives on it is shaped by an ifb device
    there, ifb_name(link), in link group `group` and with ifalias `tag`
    once it is complete.

    host_side: link is the endpoint's host side (a bridge's veth end), so
    the tbf at its root shapes ingress and the ifb egress. Drivers whose
    endpoints have no host side (macvlan, hostdev: the sandbox's interface
    is the only link) call this with host_side=False, nl the sandbox's
    handle and link its interface: the tbf at its root then shapes egress,
    and the ifb, inside the sandbox, ingress (it goes with the namespace)."""
    from ..kernel import tc

    leaving, arriving = _directions(limits, host_side)
    if leaving:
        tc.shape_outgoing(nl, index, *leaving)
        undo.callback(tc.remove_outgoing, nl, index)
    if arriving:
        ifb = ifb_name(link)
        ifb_index = tc.add_ifb(nl, ifb, mtu, group)
        undo.callback(nl.delete_link, ifb)
        tc.shape_outgoing(nl, ifb_index, *arriving)
        tc.redirect_incoming(nl, index, ifb_index)
        undo.callback(tc.remove_incoming, nl, index)
        nl.set_alias(ifb_index, tag)  # last: the ifb is complete


def unshape_endpoint(nl, link: str, index: int | None, group: int) -> None:
    """Remove what shape_endpoint made (what is gone already is fine); index
    None: the link itself is gone (its qdiscs with it), only the ifb is left.
    A link with the ifb's name that is not in our link group is left alone."""
    from ..kernel import tc

    if index is not None:
        tc.remove_incoming(nl, index)
        tc.remove_outgoing(nl, index)
    ifb = nl.link_view(ifb_name(link))
    if ifb is not None and ifb["group"] == group:
        nl.delete_link(ifb["ifname"])


def reshape_endpoint(nl, link: str, old, new, *, mtu: int, group: int, tag: str, undo,
                     host_side: bool = True) -> None:
    """From limits `old` (what the link has) to `new`, with the undo that
    puts `old` back."""
    index = nl.link_index(link)
    if index is None:
        from ..errors import NotFound

        raise NotFound(f"link {link} of the endpoint is missing (`cnet restore` makes it again)")
    unshape_endpoint(nl, link, index, group)
    undo.callback(shape_endpoint, nl, link, index, old, mtu=mtu, group=group, tag=tag, undo=_Discard(),
                  host_side=host_side)
    shape_endpoint(nl, link, index, new, mtu=mtu, group=group, tag=tag, undo=undo, host_side=host_side)


class _Discard:
    """The undo stack of an undo step: nothing to take back there."""

    def callback(self, *args, **kwargs) -> None:
        pass


def survey_limits(nl, link: str, index: int, limits, *, tag: str, link_alias, host_side: bool = True) -> list[str]:
    """What differs between the shaping of `link` and the endpoint's limits,
    a phrase each. link_alias(name): a link's ifalias, None when it is
    missing (sysfs on the host, netlink inside a sandbox)."""
    from ..bandwidth import format_rate, format_size
    from ..kernel import tc

    leaving, arriving = _directions(limits, host_side)
    seen = tc.view(nl, index)
    problems = []
    if leaving:
        rate, burst = leaving
        tbf = seen["tbf"]
        if tbf is None:
            problems.append(f"missing tbf qdisc ({format_rate(rate)}) on link {link}")
        elif (tbf["rate"], tbf["buffer"]) != (rate // 8 * 8, tc.buffer_ticks(rate, burst)):
            problems.append(f"tbf qdisc on link {link} shapes to {format_rate(tbf['rate'])} burst "
                            f"{format_size(tbf['burst'])}, the state {format_rate(rate)} burst {format_size(burst)}")
    elif seen["tbf"] is not None:
        problems.append(f"tbf qdisc on link {link} that the state does not have")
    ifb = ifb_name(link)
    if arriving:
        rate, burst = arriving
        alias = link_alias(ifb)
        if alias is None:
            return problems + [f"missing ifb device {ifb} (shaping what arrives on link {link})"]
        if alias != tag:
            return problems + [f"incomplete ifb device {ifb} (its making was cut short, or it is another's)"]
        ifb_index = nl.link_index(ifb)
        if not seen["ingress"]:
            problems.append(f"missing ingress qdisc on link {link}")
        elif seen["redirect"] != ifb_index:
            problems.append(f"link {link} does not redirect to ifb device {ifb}")
        tbf = tc.view(nl, ifb_index)["tbf"]
        if tbf is None:
            problems.append(f"missing tbf qdisc ({format_rate(rate)}) on ifb device {ifb}")
        elif (tbf["rate"], tbf["buffer"]) != (rate // 8 * 8, tc.buffer_ticks(rate, burst)):
            problems.append(f"tbf qdisc on ifb device {ifb} shapes to {format_rate(tbf['rate'])}, "
                            f"the state {format_rate(rate)} burst {format_size(burst)}")
    elif seen["ingress"]:
        problems.append(f"ingress qdisc on link {link} that the state does not have")
    return problems
