"""`Cnet`: cnet's operations, each one transaction.

A changing operation takes the state lock, loads the state, validates and
plans in full, then applies kernel changes, registering an undo for each as
soon as it is done. If a later step or the state write fails, the undos run
in reverse and the state file is left as it was. Reading operations take no
lock (the state file is replaced atomically) and open netlink only when they
show what the kernel has.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextlib import ExitStack

from ..config import Config, config_path, load_config, with_overrides
from ..errors import Conflict, NotFound
from ..model import Network, State
from ..state import StateStore, state_path
from . import networks


class Cnet:
    def __init__(self, state: str | None = None, config: str | None = None,
                 firewall: str | None = None):
        self.store = StateStore(state_path(state))
        self._config_arg = config
        self._firewall = firewall
        self._config: Config | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            named = self._config_arg or os.environ.get("CNET_CONFIG")
            loaded = load_config(config_path(self._config_arg), must_exist=bool(named))
            self._config = with_overrides(loaded, firewall=self._firewall)
        return self._config

    @contextlib.contextmanager
    def _change(self) -> Iterator[tuple[State, ExitStack, _Kernel]]:
        with self.store.locked(), _Kernel() as kernel:
            state = self.store.load()
            with ExitStack() as undo:
                yield state, undo, kernel
                self.store.save(state)
                undo.pop_all()  # everything held: nothing to roll back

    # -- networks ----------------------------------------------------------

    def create_bridge(self, name: str, *, subnets=(), gateways=(), ip_range=None, mtu=None,
                      internal=False, masquerade=True, exist_ok=False) -> Network:
        from ..drivers import bridge

        request = dict(subnets=subnets, gateways=gateways, ip_range=ip_range, mtu=mtu,
                       internal=internal, masquerade=masquerade)
        with self._change() as (state, undo, kernel):
            existing = state.networks.get(name)
            if existing is not None and exist_ok:
                others = State(networks={k: v for k, v in state.networks.items() if k != name})
                wanted = networks.plan_bridge(others, self.config, name, **request,
                                              host_routes=list)
                if not subnets:
                    wanted.subnets = existing.subnets
                if not existing.same_definition(wanted):
                    raise Conflict(f"network {name} exists with other settings")
                return existing
            net = networks.plan_bridge(state, self.config, name, **request,
                                       host_routes=lambda: kernel.netlink.route_networks())
            if kernel.netlink.link_index(name) is not None:
                raise Conflict(f"a link named {name} already exists on the host")
            bridge.create(net, kernel.netlink, undo)
            state.networks[name] = net
            return net

    def list_networks(self) -> list[Network]:
        return list(self.store.load().networks.values())

    def network(self, name: str) -> tuple[Network, State]:
        state = self.store.load()
        if name not in state.networks:
            raise NotFound(f"network {name} not found")
        return state.networks[name], state

    def inspect_network(self, name: str) -> dict:
        """The network as recorded, its endpoints, and what the kernel shows of it."""
        from ..drivers import bridge

        net, state = self.network(name)
        with _Kernel() as kernel:
            seen = bridge.inspect(net, kernel.netlink)
        return {"network": net, "endpoints": state.endpoints_of_network(name), "kernel": seen}

    def delete_network(self, name: str, *, if_exists=False, force=False) -> bool:
        """Delete a network; False if it did not exist and if_exists was given."""
        from ..drivers import bridge

        with self._change() as (state, undo, kernel):
            net = state.networks.get(name)
            if net is None:
                if if_exists:
                    return False
                raise NotFound(f"network {name} not found")
            attached = state.endpoints_of_network(name)
            if attached and not force:
                users = ", ".join(sorted({e.sandbox for e in attached}))
                raise Conflict(f"network {name} is in use by sandbox(es) {users} (use --force to detach them)")
            # Endpoints first, while the bridge they hang on still exists; the bridge last.
            for ep in attached:
                kernel.netlink.delete_link(ep.host_ifname)
            state.endpoints = [e for e in state.endpoints if e.network != name]
            state.ports = [p for p in state.ports if p.network != name]
            bridge.delete(net, kernel.netlink)
            del state.networks[name]
            return True


class _Kernel:
    """The kernel handles of one operation, opened on first use (so an
    operation that fails validation never imports pyroute2) and closed at its end."""

    def __init__(self) -> None:
        self._netlink = None

    @property
    def netlink(self):
        if self._netlink is None:
            from ..kernel.netlink import Netlink

            self._netlink = Netlink()
        return self._netlink

    def __enter__(self) -> _Kernel:
        return self

    def __exit__(self, *exc) -> None:
        if self._netlink is not None:
            self._netlink.close()
