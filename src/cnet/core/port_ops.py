"""Operations on published ports: publish, unpublish."""

from __future__ import annotations

import ipaddress

from .. import portspec
from ..errors import InvalidInput, NotFound
from ..model import PortMapping
from . import ports
from .base import Change, CnetBase, firewall_needs


class PortOps(CnetBase):
    def publish(self, ns: str, spec_text: str, *, network: str | None = None) -> list[PortMapping]:
        """Publish a sandbox port on the host; returns the mappings made (one per address family)."""
        spec = portspec.parse(spec_text)
        ports.check_host_ip(spec)
        with self._change() as c:
            before = self._firewall_before(c)
            made = add_mappings(c, ns, spec, network)
            self._sync_firewall(c, before)
            self._warn_of_foreign_drops(c)
            return made

    def unpublish(self, ns: str, spec_text: str) -> list[PortMapping]:
        spec = portspec.parse(spec_text)
        with self._change() as c:
            if ns not in c.state.sandboxes:
                raise NotFound(f"sandbox {ns} not found")
            gone = ports.matching(c.state, c.state.owner(ns), spec)
            if not gone:
                raise NotFound(f"sandbox {ns} has no published port matching {spec_text}")
            before = self._firewall_before(c)
            c.state.ports = [p for p in c.state.ports if all(p is not g for g in gone)]
            self._sync_firewall(c, before)
            return gone


def add_mappings(c: Change, ns: str, spec: portspec.PortSpec, network: str | None) -> list[PortMapping]:
    """Plan the mappings of one spec, check them and record them in c.state
    (the caller syncs the firewall once for all of its specs)."""
    from ..kernel import sockets

    if ns not in c.state.sandboxes:
        raise NotFound(f"sandbox {ns} not found")
    from ..kernel import netns

    owner = c.state.owner(ns)
    if not netns.exists(owner):  # a port to nowhere: after a reboot, `cnet restore` first
        raise NotFound(f"the network namespace of sandbox {owner} is gone from /run/netns;"
                       " `cnet restore` makes it again (`cnet check` tells what else is missing)")
    ep = ports.choose_endpoint(c.state, owner, ns, network, lambda net: firewall_needs(net).publish)
    families = ports.families_of(ep, spec, ns)
    if spec.host_ip is not None:
        _check_local_address(c, spec.host_ip)
    host_port = spec.host_port or ports.pick_host_port(c.state, spec.protocol, sockets.ephemeral_range(),
                                                       sockets.port_is_free)
    made = ports.mappings_for(owner, ep, spec, families, host_port)
    ports.check_conflicts(c.state, made)
    c.state.ports.extend(made)
    return made


def _check_local_address(c: Change, address: str) -> None:
    ip = ipaddress.ip_address(address)
    if ip.is_unspecified:
        return  # 0.0.0.0 or ::, every address of its family
    if ip not in {ipaddress.ip_address(a) for a in c.kernel.netlink.local_addresses()}:
        raise InvalidInput(f"{address} is not an address of this host")
