"""Bandwidth limits of endpoints: `cnet limit` on a live endpoint, and the
limits `cnet attach` gives a new one (planned by cnet.bandwidth, made by the
network's driver; see drivers/base.py)."""

from __future__ import annotations


from .. import bandwidth, drivers
from ..errors import InvalidInput, NotFound
from ..model import Endpoint, Limits, Network, replace
from .base import CnetBase

LIMIT_OPTIONS = ("ingress_rate", "ingress_burst", "egress_rate", "egress_burst")


def parse_limits(values: dict | None, *, new_endpoint: bool = False) -> dict:
    """The texts of --ingress-rate and the rest ({"ingress_rate": "10mbit",
    ...}, a missing key or None for an option not given) as numbers;
    InvalidInput for a bad one, before anything is done."""
    values = dict(values or {})
    unknown = set(values) - set(LIMIT_OPTIONS)
    if unknown:
        raise InvalidInput(f"no limit option {', '.join(sorted(unknown))}")
    parsed = bandwidth.options(values)
    if new_endpoint:
        bandwidth.check_new(parsed)
    return parsed


def plan_limits(net: Network, parsed: dict) -> Limits | None:
    """The limits of a new endpoint on net, from parse_limits' numbers."""
    limits = bandwidth.plan(parsed, net.mtu)
    if limits is not None:
        _driver_that_limits(net)
    return limits


def _driver_that_limits(net: Network):
    driver = drivers.get(net.driver)
    if getattr(driver, "limit", None) is None:
        raise InvalidInput(f"network {net.name} ({net.driver}) has no bandwidth limits: its driver cannot shape")
    return driver


class LimitOps(CnetBase):
    def limit(self, ns: str, network: str, *, clear: bool = False, **values) -> Endpoint:
        """Change the limits of the endpoint of ns on network: each direction
        given is replaced, the other kept; clear: no limits at all. Returns
        the endpoint as it is now."""
        parsed = parse_limits(values)
        if not clear and all(v is None for v in parsed.values()):
            raise InvalidInput("nothing to change: give --ingress-rate or --egress-rate (with their bursts), "
                               "or --clear")
        with self._change() as c:
            if ns not in c.state.sandboxes:
                raise NotFound(f"sandbox {ns} not found")
            owner = c.state.owner(ns)
            net = c.state.networks.get(network)
            if net is None:
                raise NotFound(f"network {network} not found")
            found = [e for e in c.state.endpoints_of_sandbox(owner) if e.network == network]
            if not found:
                raise NotFound(f"sandbox {ns} is not attached to network {network}")
            ep = found[0]
            limits = bandwidth.change(ep.limits, parsed, net.mtu, clear=clear)
            if limits == ep.limits:
                c.nothing_to_do()
                return ep
            new = replace(ep, limits=limits)
            _driver_that_limits(net).limit(net, ep, new, c.kernel, c.undo)
            c.state.endpoints[c.state.endpoints.index(ep)] = new
            return new
