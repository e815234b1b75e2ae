"""Planning published ports: which endpoint, which host addresses, which host
port, and whether it clashes with a mapping already there. Pure: what the
host has (its addresses, its free ports) comes in as callables."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from ..errors import Conflict, InvalidInput, NotFound
from ..model import Endpoint, Network, PortMapping, State
from ..portspec import PortSpec, format_mapping

ANY = {4: "0.0.0.0", 6: "::"}


def check_host_ip(spec: PortSpec) -> None:
    if spec.host_ip is not None and ipaddress.ip_address(spec.host_ip) == ipaddress.ip_address("::1"):
        raise InvalidInput(
            "[::1] cannot be published: IPv6 has no route_localnet, so the kernel will not carry"
            " a connection to ::1 into a sandbox; publish on the host's own IPv6 addresses instead"
            " (e.g. [::]:PORT:PORT or [2001:db8::1]:PORT:PORT)")


def choose_endpoint(state: State, owner: str, ns: str, network: str | None,
                    publishable: Callable[[Network], bool] = lambda net: True) -> Endpoint:
    """The endpoint a port is published on: the one on `network`, else the
    first that can have published ports. publishable(net): its driver allows them."""
    mine = state.endpoints_of_sandbox(owner)
    if network is not None:
        if network not in state.networks:
            raise NotFound(f"network {network} not found")
        mine = [e for e in mine if e.network == network]
        if not mine:
            raise InvalidInput(f"sandbox {ns} is not attached to network {network}")
    if not mine:
        raise InvalidInput(f"sandbox {ns} has no endpoint to publish on; attach it to a network first")
    usable = [e for e in mine if not state.networks[e.network].internal]
    if not usable:
        raise InvalidInput(f"network {mine[0].network} is internal: nothing from outside reaches it")
    allowed = [e for e in usable if publishable(state.networks[e.network])]
    if not allowed:
        net = state.networks[usable[0].network]
        raise InvalidInput(f"network {net.name} is a {net.driver} network, whose sandboxes are on its"
                           " LAN directly: nothing is published there (attach a bridge network to publish)")
    return allowed[0]


def families_of(ep: Endpoint, spec: PortSpec, ns: str) -> list[int]:
    have = sorted({6 if ":" in a else 4 for a in ep.addresses})
    if spec.host_ip is None:
        return have
    family = ipaddress.ip_address(spec.host_ip).version
    if family not in have:
        raise InvalidInput(f"sandbox {ns} has no IPv{family} address on network {ep.network}"
                           f" to publish {spec.host_ip} to")
    return [family]


def _overlap(a: PortMapping, b: PortMapping) -> bool:
    if a.protocol != b.protocol or (":" in a.host_ip) != (":" in b.host_ip):
        return False
    wildcard = (ANY[4], ANY[6])
    if a.host_ip != b.host_ip and a.host_ip not in wildcard and b.host_ip not in wildcard:
        return False
    return a.host_port < b.host_port + b.count and b.host_port < a.host_port + a.count


def check_conflicts(state: State, new: list[PortMapping]) -> None:
    for m in new:
        first, end = m.host_port, m.host_port + m.count
        for p in state.ports:
            # the port ranges first: most mappings fail that, and it is the cheap test
            if p.host_port < end and first < p.host_port + p.count and _overlap(m, p):
                raise Conflict(f"host port {m.host_port}/{m.protocol} on {m.host_ip} is already"
                               f" published for sandbox {p.sandbox}"
                               f" ({format_mapping(p.host_ip, p.host_port, p.port, p.protocol)})")


def pick_host_port(state: State, protocol: str, port_range: tuple[int, int],
                   is_free: Callable[[str, int], bool]) -> int:
    """The lowest port of the ephemeral range that no mapping holds and nothing on the host is bound to."""
    held = {(p.host_port + i) for p in state.ports if p.protocol == protocol for i in range(p.count)}
    for candidate in range(port_range[0], port_range[1] + 1):
        if candidate not in held and is_free(protocol, candidate):
            return candidate
    raise Conflict(f"no free {protocol} host port left in {port_range[0]}-{port_range[1]}")


def mappings_for(owner: str, ep: Endpoint, spec: PortSpec, families: list[int],
                 host_port: int) -> list[PortMapping]:
    return [PortMapping(sandbox=owner, network=ep.network, protocol=spec.protocol,
                        host_ip=spec.host_ip or ANY[f], host_port=host_port, port=spec.port, count=spec.count)
            for f in families]


def matching(state: State, owner: str, spec: PortSpec) -> list[PortMapping]:
    """The mappings of a sandbox that an `unpublish` spec names."""
    found = []
    for p in state.ports:
        if p.sandbox != owner or p.protocol != spec.protocol or p.port != spec.port or p.count != spec.count:
            continue
        if spec.host_port is not None and p.host_port != spec.host_port:
            continue
        if spec.host_ip is not None and ipaddress.ip_address(p.host_ip) != ipaddress.ip_address(spec.host_ip):
            continue
        found.append(p)
    return found
