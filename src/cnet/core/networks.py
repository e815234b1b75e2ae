"""Planning networks: validate a request against the state and turn it into a
`Network`. Pure: no kernel, no files (host routes come in as a callable)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timezone

from .. import drivers
from ..config import Config, iter_pool_subnets
from ..errors import Conflict, InvalidInput
from ..ipam import SubnetPool, check_usable, overlaps, parse_cidr
from ..model import Network, State, Subnet
from ..names import check_ifname

MIN_IPV6_MTU = 1280  # below it the kernel turns IPv6 off on the link


def plan_network(state: State, config: Config, name: str, *, driver: str,
                 subnets: Iterable[str] = (), gateways: Iterable[str] = (), ip_range: str | None = None,
                 mtu: int | None = None, internal: bool = False, masquerade: bool = True,
                 options: dict | None = None, host_routes: Callable[[], list] = list,
                 host_networks: Callable[[], tuple] = lambda: ((), ()), force_subnet: bool = False) -> Network:
    """The network that `cnet create DRIVER` would make, validated in full:
    what every network has here, its driver's options by the driver.
    host_routes(): the host's route destinations (a subnet picked from the
    pools avoids them); host_networks(): (the host's own addresses, its
    directly connected (network, link) routes), which an explicit subnet may
    not hold or overlap (the routes: unless force_subnet)."""
    check_ifname(name)
    driver_module = drivers.get(driver)
    validate = driver_module.validate
    subnets, gateways = list(subnets), list(gateways)
    if len(gateways) > len(subnets):
        raise InvalidInput("each --gateway needs a --subnet it belongs to (the n-th gateway goes with the n-th subnet)")
    parsed = [parse_cidr(s) for s in subnets]
    for subnet in parsed:
        check_usable(subnet)
    versions = [n.version for n in parsed]
    if len(set(versions)) != len(versions):
        raise InvalidInput(f"a {driver} network takes at most one IPv4 and one IPv6 subnet")
    pools = [SubnetPool(str(n), gateways[i] if i < len(gateways) else None) for i, n in enumerate(parsed)]
    if ip_range is not None:
        pools = _with_ip_range(pools, ip_range)
    mtu = config.mtu if mtu is None else mtu
    if not 68 <= mtu <= 65535:
        raise InvalidInput(f"MTU {mtu} is out of range (68-65535)")
    if name in state.networks:
        raise Conflict(f"network {name} already exists")
    for pool in pools:
        _check_no_overlap(state, pool.subnet)
    explicit = bool(pools)
    if not pools:
        pools = [SubnetPool(str(_pick_subnet(state, config, host_routes())))]
    if mtu < MIN_IPV6_MTU and any(p.version == 6 for p in pools):
        raise InvalidInput(f"MTU {mtu} is below {MIN_IPV6_MTU}, the least IPv6 works with")
    net = validate(Network(
        name=name, driver=driver,
        subnets=[Subnet(str(p.subnet), str(p.gateway), str(p.ip_range) if p.ip_range else None) for p in pools],
        mtu=mtu, internal=internal, masquerade=masquerade and not internal, options=dict(options or {}),
        created=datetime.now(timezone.utc).isoformat(timespec="seconds")))
    check_in_state = getattr(driver_module, "check_in_state", None)  # optional (drivers/base.py)
    if check_in_state is not None:
        check_in_state(state, net)
    # A network the host routes to through a link of the driver's (a bridge) must not
    # be the host's own; one on the host's LAN directly (macvlan) is meant to be.
    if explicit and driver_module.firewall(net).interface is not None:
        _check_not_the_hosts(pools, *host_networks(), force_subnet)
    return net


def _with_ip_range(pools: list[SubnetPool], ip_range: str) -> list[SubnetPool]:
    """A new list of pools, the one of ip_range's family drawing from it."""
    rng = parse_cidr(ip_range, "ip-range")
    for i, p in enumerate(pools):
        if p.version == rng.version:
            return [*pools[:i], SubnetPool(str(p.subnet), str(p.gateway), ip_range), *pools[i + 1:]]
    raise InvalidInput(f"ip-range {ip_range} needs an IPv{rng.version} --subnet that contains it")


def _check_no_overlap(state: State, subnet) -> None:
    for other in state.networks.values():
        for s in other.subnets:
            if overlaps(subnet, parse_cidr(s.subnet)):
                raise Conflict(f"subnet {subnet} overlaps subnet {s.subnet} of network {other.name}")


def _check_not_the_hosts(pools, addresses, connected, force_subnet: bool) -> None:
    for pool in pools:
        mine = next((a for a in addresses if a.version == pool.version and a in pool.subnet), None)
        if mine is not None:
            raise Conflict(f"subnet {pool.subnet} holds {mine}, an address of this host: sandboxes could not"
                           " tell it from the host's own")
        clash = next(((n, dev) for n, dev in connected if overlaps(n, pool.subnet)), None)
        if clash is not None and not force_subnet:
            raise Conflict(f"subnet {pool.subnet} overlaps {clash[0]}, a network this host is on (dev {clash[1]}):"
                           " its traffic would go to the wrong side; --force-subnet uses it anyway")


def _pick_subnet(state: State, config: Config, routes: list):
    """The first pool subnet that overlaps no cnet network and no host route."""
    taken = [parse_cidr(s.subnet) for n in state.networks.values() for s in n.subnets] + list(routes)
    for candidate in iter_pool_subnets(config.address_pools):
        if not any(overlaps(candidate, t) for t in taken):
            return candidate
    raise Conflict("no free subnet left in the address pools; give one with --subnet")
