"""Router sandboxes: what a router asks of the other sandboxes. Pure.

A router is a sandbox of mode "router": a namespace cnet made, with
forwarding on and one endpoint on each network it joins, and no default
route (it routes between its networks and nowhere else, so one on an
--internal network is no way out). Every other sandbox on one of its
networks gets a route to the subnets of the router's other networks via the
router's address on its own network, of the same family. The routes are
derived from the state, never recorded: a sandbox attached later gets them
at its attach, and they go with the link they leave by.

cnet's isolation between networks needs no opening: the path through a
router is bridged on each network (sandbox -> router on A's bridge, router
-> sandbox on B's bridge), and only traffic the host itself would route
from one cnet bridge to another is dropped. Source addresses are kept.
"""

from __future__ import annotations

import ipaddress

from ..errors import Conflict, InvalidInput, NotFound
from ..model import Endpoint, State

MODE = "router"


def is_router(state: State, name: str) -> bool:
    sb = state.sandboxes.get(name)
    return sb is not None and sb.mode == MODE


def routers(state: State) -> list[str]:
    return [name for name, sb in state.sandboxes.items() if sb.mode == MODE]


def routes_of(state: State, sandbox: str, extra: Endpoint | None = None) -> set[tuple[str, str]]:
    """{(destination subnet, via address)} that routers give sandbox (an
    owner's name, not a joiner's); extra: an endpoint about to be added.
    A subnet of a network the sandbox is on itself is reached directly."""
    if is_router(state, sandbox):
        return set()
    endpoints = state.endpoints + ([extra] if extra is not None else [])
    # the families the sandbox has on each of its networks: a route needs a source address
    own = {}
    for e in endpoints:
        if e.sandbox == sandbox:
            own[e.network] = {ipaddress.ip_interface(a).version for a in e.addresses}
    own_networks = set(own)
    routes = set()
    for router in routers(state):
        mine = [e for e in endpoints if e.sandbox == router]
        by_network = {e.network: e for e in mine}
        for network in own_networks & by_network.keys():
            gateways = {ipaddress.ip_interface(a).version: a.partition("/")[0]
                        for a in by_network[network].addresses
                        if ipaddress.ip_interface(a).version in own[network]}
            for far in by_network:
                if far in own_networks:
                    continue
                for s in state.networks[far].subnets:
                    via = gateways.get(ipaddress.ip_network(s.subnet).version)
                    if via is not None:
                        routes.add((s.subnet, via))
    return routes


def check_new_router(state: State, name: str, networks: list[str]) -> None:
    """A router named name on these networks can be made (raises if not)."""
    if len(networks) < 2:
        raise InvalidInput("a router joins two networks or more: give --network at least twice")
    twice = sorted({n for n in networks if networks.count(n) > 1})
    if twice:
        raise InvalidInput(f"network {twice[0]} is given twice")
    for network in networks:
        net = state.networks.get(network)
        if net is None:
            raise NotFound(f"network {network} not found")
        if not net.subnets:
            raise InvalidInput(f"network {network} has no subnet to route")
        if net.options.get("icc", True) is False:
            raise Conflict(f"network {network} is --no-icc: its sandboxes could not reach a router on it")
    # One route per subnet in every sandbox: no two routers may lead one
    # network's sandboxes to the same (or an overlapping) subnet.
    for network in networks:
        new = [ipaddress.ip_network(s.subnet) for far in networks if far != network
               for s in state.networks[far].subnets]
        for other in routers(state):
            theirs = {e.network for e in state.endpoints if e.sandbox == other}
            if network not in theirs:
                continue
            old = [ipaddress.ip_network(s.subnet) for far in theirs - {network}
                   for s in state.networks[far].subnets]
            for a in new:
                clash = next((b for b in old if a.version == b.version and a.overlaps(b)), None)
                if clash is not None:
                    raise Conflict(f"router {other} already routes {network}'s sandboxes to {clash};"
                                   f" a second route to {a} would conflict")


def networks_of(state: State, router: str) -> list[Endpoint]:
    return [e for e in state.endpoints if e.sandbox == router]
