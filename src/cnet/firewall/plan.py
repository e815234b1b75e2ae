"""What cnet's firewall must hold, computed from the state. Pure.

Both backends render the same plan: the cnet bridges (for isolation), the
subnets to masquerade, the internal and no-icc bridges, and one DNAT entry
per published host port. The plan's `structure` changes only with networks;
published ports change only `dnat`, which the nftables backend keeps in maps
so a publish is one element added, whatever the number of ports.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from ..model import State


@dataclass(frozen=True, order=True)
class Dnat:
    """One host port sent to one sandbox port."""

    family: int  # 4 or 6
    protocol: str
    host_port: int
    host_ip: str | None  # None: any address of the host
    target_ip: str
    target_port: int


@dataclass(frozen=True)
class Structure:
    bridges: tuple[str, ...] = ()
    internal: tuple[str, ...] = ()  # no traffic in or out but their own
    no_icc: tuple[str, ...] = ()  # no traffic between their sandboxes but to published ports
    subnets4: tuple[str, ...] = ()  # every cnet IPv4 subnet (hairpin flows are masqueraded)
    subnets6: tuple[str, ...] = ()
    masquerade4: tuple[str, ...] = ()  # subnets whose outbound traffic is masqueraded
    masquerade6: tuple[str, ...] = ()


@dataclass(frozen=True)
class FirewallPlan:
    structure: Structure = Structure()
    dnat: frozenset[Dnat] = field(default_factory=frozenset)

    @property
    def empty(self) -> bool:
        return not self.structure.bridges


def plan(state: State) -> FirewallPlan:
    bridges, internal, no_icc = [], [], []
    subnets = {4: [], 6: []}
    masq = {4: [], 6: []}
    for net in state.networks.values():
        if net.driver != "bridge":
            continue
        bridges.append(net.name)
        if net.internal:
            internal.append(net.name)
        if net.options.get("icc") is False:
            no_icc.append(net.name)
        for s in net.subnets:
            version = ipaddress.ip_network(s.subnet).version
            subnets[version].append(s.subnet)
            if net.masquerade and not net.internal:
                masq[version].append(s.subnet)
    structure = Structure(tuple(sorted(bridges)), tuple(sorted(internal)), tuple(sorted(no_icc)),
                          tuple(subnets[4]), tuple(subnets[6]), tuple(masq[4]), tuple(masq[6]))
    return FirewallPlan(structure, frozenset(dnat_entries(state)))


def dnat_entries(state: State) -> list[Dnat]:
    if not state.ports:
        return []
    addresses = {(e.sandbox, e.network): e.addresses for e in state.endpoints}
    found = []
    for p in state.ports:
        family = 6 if ":" in p.host_ip else 4
        target = next((a.partition("/")[0] for a in addresses.get((p.sandbox, p.network), ())
                       if (":" in a) == (family == 6)), None)
        if target is None:
            continue  # its endpoint is gone; the mapping goes with the next change
        host_ip = None if p.host_ip in ("0.0.0.0", "::") else p.host_ip
        found.extend(Dnat(family, p.protocol, p.host_port + i, host_ip, target, p.port + i)
                     for i in range(p.count))
    return found
