"""Operations on routers: create, delete, list (see routers.py for the model)."""

from __future__ import annotations

import ipaddress

from ..errors import InvalidInput, NotFound
from ..model import Endpoint, State
from . import routers, sandboxes
from .base import Change, CnetBase


def parse_network_arg(text: str) -> tuple[str, str | None]:
    """NET or NET:IP (an IPv6 address after the first colon is fine: NET holds no colon)."""
    network, sep, ip = text.partition(":")
    if not network:
        raise InvalidInput(f"--network {text!r} is not NET or NET:IP")
    if sep:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise InvalidInput(f"--network {text!r}: {ip!r} is not an IP address") from None
    return network, (ip if sep else None)


def forwarding_keys(endpoints) -> list[str]:
    """The sysctls a router with these endpoints needs at 1."""
    keys = ["net.ipv4.ip_forward"]
    if any(":" in a for e in endpoints for a in e.addresses):
        keys.append("net.ipv6.conf.all.forwarding")
    return keys


def prepare_router_namespace(name: str) -> None:
    """Before a router's links exist: no duplicate address detection on them.
    While a link-local address is tentative (1-2 s) the router sends no
    neighbour solicitation, so the first IPv6 packets it forwards would wait.
    And a gratuitous ARP as each link comes up: a router made again at the
    same address (`cnet apply` replacing it) has new MACs, which the
    sandboxes' neighbour caches would otherwise miss for half a minute."""
    from ..kernel import netns, sysctl

    with netns.entered(netns.path_of(name)):
        sysctl.write("net.ipv4.conf.default.arp_notify", "1")
        if sysctl.exists("net.ipv6.conf.default.accept_dad"):  # a kernel booted without IPv6 has none
            sysctl.write("net.ipv6.conf.default.accept_dad", "0")


def change_routes(c: Change, sandbox: str, gone, added) -> None:
    """Take routes out of and put routes into sandbox's namespace (an owner's
    name); each addition is undone if the operation fails later."""
    from ..kernel import netns

    if not (gone or added) or not netns.exists(sandbox):
        return
    inside = c.kernel.inside(netns.path_of(sandbox))
    for dst, via in sorted(gone):
        inside.delete_route(dst, via)
        c.undo.callback(inside.add_route, dst, via)
    for dst, via in sorted(added):
        inside.add_route(dst, via)
        c.undo.callback(inside.delete_route, dst, via)


class RouterOps(CnetBase):
    def create_router(self, name: str, networks: list[str]) -> tuple[object, list[Endpoint]]:
        """A router sandbox on each network (NET or NET:IP), with forwarding
        on, and the routes through it in every other sandbox of those networks."""
        from ..kernel import netns, sysctl

        wanted = [parse_network_arg(n) for n in networks]
        with self._change() as c:
            state = c.state
            routers.check_new_router(state, name, [n for n, _ in wanted])
            neighbours = self._sandboxes_on(state, {n for n, _ in wanted})
            before = {s: routers.routes_of(state, s) for s in neighbours}
            sb = sandboxes.plan_sandbox(state, name, mode=routers.MODE)
            self._make_namespace(c, sb, None)
            prepare_router_namespace(name)
            present = {"lo"}
            endpoints = []
            for network, ip in wanted:
                ep = self._attach(c, name, network, ips=(ip,) if ip else (), present=present)
                present.add(ep.ifname)
                endpoints.append(ep)
            with netns.entered(netns.path_of(name)):
                for key in forwarding_keys(endpoints):
                    sysctl.write(key, "1")
            for s in neighbours:
                change_routes(c, s, set(), routers.routes_of(state, s) - before[s])
            c.refresh_hosts([n for n, _ in wanted], [name])
            return sb, endpoints

    def delete_router(self, name: str, *, if_exists: bool = False) -> bool:
        state = self.read_state()
        if name in state.sandboxes and not routers.is_router(state, name):
            raise NotFound(f"router {name} not found (sandbox {name} is no router: cnet delete ns {name})")
        if name not in state.sandboxes and not if_exists:
            raise NotFound(f"router {name} not found")
        return self.delete_ns(name, if_exists=if_exists, router=True)

    def router_listing(self) -> list[tuple[str, list[Endpoint]]]:
        state = self.read_state()
        return [(r, routers.networks_of(state, r)) for r in routers.routers(state)]

    @staticmethod
    def _sandboxes_on(state: State, networks: set[str]) -> list[str]:
        return sorted({e.sandbox for e in state.endpoints if e.network in networks})

    def _withdrawal(self, state: State, name: str):
        """While router name is still in state: the work that takes the routes
        it gave out of every other sandbox, to run once its record is gone
        (best effort: a namespace may be gone already)."""
        neighbours = [s for s in self._sandboxes_on(state, {e.network for e in routers.networks_of(state, name)})
                      if s != name]
        without = State(networks=state.networks, sandboxes={k: v for k, v in state.sandboxes.items() if k != name},
                        endpoints=[e for e in state.endpoints if e.sandbox != name], ports=state.ports)
        gone = {s: routers.routes_of(state, s) - routers.routes_of(without, s) for s in neighbours}

        def withdraw(c: Change) -> None:
            for s, routes in gone.items():
                c.best_effort(f"removing the routes via router {name} from sandbox {s}",
                              change_routes, c, s, routes, set())

        return withdraw
