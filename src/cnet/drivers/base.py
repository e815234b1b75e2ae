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

Optional, for drivers that need them:

    check_in_state(state, net)
        what the network may not share with the state's other networks (a
        macvlan's parent): Conflict. Called when a network is planned.
    held_addresses(net) -> set[str]
        addresses of the network's subnets that its own links hold (the host's
        macvlan of a --host-access network): IPAM never hands them out.

For `cnet check` and `cnet restore` (core/lifecycle.py):

    links(net, endpoints) -> set[str]
        the host links that the network and these endpoints of it are, or
        stand on (a macvlan's parent): `ls` says "missing" without one of them.
    survey_network(net, kernel, host_addresses) -> list[str]
        what is wrong with the network's kernel objects, a phrase each;
        host_addresses(name): the addresses on a host link (None: look
        without netlink, as `cnet check` does unless --deep).
    repair_network(net, kernel, undo)  make them what the state says.
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
