"""What `ls` and `inspect` show, read from the state (no lock: writes are atomic).

`ls` marks each record whose kernel object is gone: a network without its
link, a sandbox without its namespace, an endpoint without either, a port
without its endpoint. It reads /sys/class/net (one listing) and /run/netns
(one listing, and a stat a name there) only: no netlink, so no pyroute2 to import.
"""

from __future__ import annotations

from .. import drivers
from ..errors import InvalidInput
from ..model import Endpoint, Network, PortMapping, Sandbox
from .base import CnetBase

OK, MISSING = "ok", "missing"


class _Presence:
    """Which kernel objects are there, each looked up once."""

    def __init__(self) -> None:
        from ..kernel import sysfs

        self.links = sysfs.link_names()
        self._netns: set[str] | None = None  # read on first use: `ls networks` needs none

    def netns(self, name: str) -> bool:
        if self._netns is None:
            from ..kernel import netns

            self._netns = netns.handles()
        return name in self._netns

    def network(self, net: Network) -> str:
        return OK if drivers.get(net.driver).links(net, ()) <= self.links else MISSING

    def sandbox(self, sb: Sandbox) -> str:
        return OK if sb.mode == "host" or self.netns(sb.name) else MISSING

    def endpoint(self, ep: Endpoint) -> str:
        there = self.netns(ep.sandbox) and (not ep.host_ifname or ep.host_ifname in self.links)
        return OK if there else MISSING


class ReadOps(CnetBase):
    def network_listing(self) -> list[tuple[Network, int, str]]:
        """Every network with the number of endpoints on it and its status ("ok" or "missing")."""
        state = self.read_state()
        present = _Presence()
        counts: dict[str, int] = {}
        for e in state.endpoints:
            counts[e.network] = counts.get(e.network, 0) + 1
        return [(n, counts.get(n.name, 0), present.network(n)) for n in state.networks.values()]

    def sandbox_listing(self) -> list[tuple[Sandbox, list[str], str]]:
        """Every sandbox with the networks its stack is on and its status."""
        state = self.read_state()
        present = _Presence()
        networks: dict[str, list[str]] = {}
        for e in state.endpoints:
            networks.setdefault(e.sandbox, []).append(e.network)
        return [(s, networks.get(state.owner(s.name), []), present.sandbox(s)) for s in state.sandboxes.values()]

    def endpoint_listing(self) -> list[tuple[Endpoint, str]]:
        """Every endpoint with its status: missing when its sandbox's namespace or its host link is gone."""
        state = self.read_state()
        present = _Presence()
        return [(e, present.endpoint(e)) for e in state.endpoints]

    def port_listing(self) -> list[tuple[PortMapping, str]]:
        """Every port mapping with its status: missing when its endpoint is."""
        state = self.read_state()
        present = _Presence()
        endpoints = {(e.sandbox, e.network): e for e in state.endpoints}
        return [(p, _port_status(p, endpoints, present)) for p in state.ports]

    def kind_of(self, name: str) -> str:
        """'network' or 'ns' for `inspect NAME` (a name that is neither is looked up as a network)."""
        state = self.read_state()
        kinds = [k for k, table in (("network", state.networks), ("ns", state.sandboxes)) if name in table]
        if len(kinds) > 1:
            raise InvalidInput(f"{name} is both a network and a sandbox; say which with --type")
        return kinds[0] if kinds else "network"


def _port_status(p: PortMapping, endpoints: dict, present: _Presence) -> str:
    ep = endpoints.get((p.sandbox, p.network))
    return MISSING if ep is None else present.endpoint(ep)
