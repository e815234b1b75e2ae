"""Planning sandboxes and endpoints: validate a request against the state and
say what to make. Pure: no kernel, no files; what the kernel has comes in as
arguments."""

from __future__ import annotations

import ipaddress
import os
import re
from datetime import datetime, timezone

from ..errors import Conflict, InvalidInput, NotFound
from ..ipam import SubnetPool
from ..model import Endpoint, Network, Sandbox, State, Subnet, replace
from ..names import SANDBOX_NAME, check_ifname

_MAC = re.compile(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}")


def check_sandbox_name(name: str) -> str:
    if not SANDBOX_NAME.fullmatch(name or ""):
        raise InvalidInput(
            f"sandbox name {name!r} is invalid: 1-63 characters of letters, digits, '_', '.' or '-',"
            " starting with a letter or digit")
    return name


def plan_sandbox(state: State, name: str, *, mode: str = "none", target: str | None = None,
                 dns=(), add_hosts=(), hostname: str | None = None) -> Sandbox:
    check_sandbox_name(name)
    if name in state.sandboxes:
        raise Conflict(f"sandbox {name} already exists")
    if mode == "joined":
        if target not in state.sandboxes:
            raise NotFound(f"sandbox {target} not found (--join needs an existing sandbox)")
        if state.sandboxes[target].mode == "host":
            raise InvalidInput(f"sandbox {target} is the host's namespace; use --host instead of joining it")
        if state.sandboxes[state.owner(target)].mode == "router":
            raise InvalidInput(f"sandbox {target} is a router: it cannot be joined")
        target = state.owner(target)  # joining a joiner joins the stack's owner
    for ip in dns:
        _check_ip(ip, "--dns")
    for entry in add_hosts:
        host, sep, ip = entry.partition(":")
        if not sep or not host or any(c.isspace() for c in host):
            raise InvalidInput(f"--add-host {entry!r} is not HOST:IP")
        _check_ip(ip, f"--add-host {entry}")
    if hostname is not None and not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9-]+)*", hostname):
        raise InvalidInput(f"hostname {hostname!r} is not a valid host name")
    return Sandbox(name=name, mode=mode, target=target, dns=tuple(dns), hosts=tuple(add_hosts),
                   hostname=hostname, created=datetime.now(timezone.utc).isoformat(timespec="seconds"))


def _check_ip(text: str, what: str) -> None:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise InvalidInput(f"{what}: {text!r} is not an IP address") from None


def random_mac() -> str:
    first, *rest = os.urandom(6)  # os, not secrets: the same source, without importing random
    return ":".join(f"{b:02x}" for b in [(first & 0xFC) | 0x02, *rest])  # locally administered, unicast


def check_mac(mac: str) -> str:
    if not _MAC.fullmatch(mac):
        raise InvalidInput(f"MAC address {mac!r} is not six hex pairs separated by ':'")
    if int(mac[:2], 16) & 1:
        raise InvalidInput(f"MAC address {mac} is a multicast address")
    if mac.replace(":", "").strip("0") == "":
        raise InvalidInput("MAC address 00:00:00:00:00:00 is not usable")
    return mac.lower()


def plan_endpoint(state: State, net: Network, owner: str, *, ips=(), mac: str | None = None,
                  ifname: str | None = None, present: set[str] = frozenset(),
                  held: set[str] = frozenset()) -> tuple[Endpoint, Network]:
    """The endpoint that attaching owner's stack to net would make, and net
    with the IPAM cursors of its subnets moved past the addresses drawn (a
    new Network: state and net are left as they are; the caller records it
    if the attach succeeds). present: interface names already in the sandbox;
    held: addresses of the subnets that the network's own links hold."""
    if any(e.network == net.name for e in state.endpoints_of_sandbox(owner)):
        raise Conflict(f"sandbox {owner} is already attached to network {net.name}")
    ours = {e.ifname for e in state.endpoints_of_sandbox(owner)}
    if ifname is not None:
        check_ifname(ifname, "interface name")
        if ifname in present or ifname in ours:
            raise Conflict(f"interface {ifname} is already present in sandbox {owner}")
    else:
        ifname = next(f"eth{i}" for i in range(len(present) + len(ours) + 1)
                      if f"eth{i}" not in present and f"eth{i}" not in ours)
    macs = {e.mac for e in state.endpoints_of_network(net.name)}
    if mac:
        mac = check_mac(mac)
        if mac in macs:
            owner_of = next(e.sandbox for e in state.endpoints_of_network(net.name) if e.mac == mac)
            raise Conflict(f"MAC address {mac} is already used on network {net.name} (by sandbox {owner_of})")
    else:
        mac = random_mac()
        while mac in macs:  # one chance in 2^46 a draw: drawn again
            mac = random_mac()
    addresses, subnets = _addresses(state, net, ips, held)
    ep = Endpoint(sandbox=owner, network=net.name, ifname=ifname, host_ifname="",
                  mac=mac, addresses=addresses)
    return ep, replace(net, subnets=subnets)


def _addresses(state: State, net: Network, ips, held=frozenset()) -> tuple[list[str], list[Subnet]]:
    """The endpoint's addresses, one per subnet, and the subnets with their
    cursors after it (a pinned --ip leaves its subnet's cursor where it was)."""
    pools = [SubnetPool(s.subnet, s.gateway, s.ip_range) for s in net.subnets]
    pinned = {}
    for text in ips:
        try:
            version = ipaddress.ip_address(text).version
        except ValueError:
            raise InvalidInput(f"--ip {text!r} is not an IP address") from None
        if not any(p.version == version for p in pools):
            raise InvalidInput(f"--ip {text}: network {net.name} has no IPv{version} subnet")
        if version in pinned:
            raise InvalidInput(f"--ip given twice for IPv{version}; one address per subnet")
        pinned[version] = text
    used = {a.partition("/")[0] for e in state.endpoints_of_network(net.name) for a in e.addresses} | set(held)
    found, subnets = [], []
    for pool, subnet in zip(pools, net.subnets):
        if pool.version in pinned:
            ip = pool.check_request(pinned[pool.version], used)
        else:
            try:
                ip = pool.allocate(used, subnet.last)
            except Conflict as e:
                raise Conflict(f"network {net.name}: {e}") from None
            subnet = replace(subnet, last=str(ip))
        found.append(f"{ip}/{pool.prefixlen}")
        subnets.append(subnet)
    return found, subnets


def default_route_endpoint(state: State, owner: str, networks: dict[str, Network]) -> Endpoint | None:
    """The endpoint whose gateways are the sandbox's default routes: its first
    endpoint on a network that is not internal. A router has none: it routes
    between its networks only."""
    if state.sandboxes[owner].mode == "router":
        return None
    for ep in state.endpoints_of_sandbox(owner):
        if not networks[ep.network].internal:
            return ep
    return None
