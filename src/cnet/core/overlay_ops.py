"""Operations on the networks that hosts share through a store (overlays):
sync this host with the store, and forget a host that is gone for good.
Which networks those are is their drivers' business (an optional `sync`,
drivers/base.py)."""

from __future__ import annotations

import socket

from .. import drivers
from ..errors import CnetError
from ..model import State
from .base import CnetBase


def shared_networks(state: State) -> list:
    """The networks of the state whose drivers sync them with a store."""
    return [net for net in state.networks.values() if hasattr(drivers.get(net.driver), "sync")]


class OverlayOps(CnetBase):
    def host_name(self) -> str:
        """This host's name among an overlay's hosts: the config's `host:`, else the host name."""
        return self.config.host or socket.gethostname()

    def sync_overlays(self, names=None, full: bool = False) -> tuple[dict[str, int], dict[str, str]]:
        """Bring this host's view of the other hosts' endpoints up to the
        store, for the shared networks named (None: all of them); full: diff
        against the kernel's tables, not what the last sync installed. Returns
        ({network: entries changed}, {network: why it could not be synced})."""
        changed, failed = {}, {}
        with self._change() as c:
            c.nothing_to_do()  # the kernel follows the store; the state file has nothing new
            for net in shared_networks(c.state):
                if names is not None and net.name not in names:
                    continue
                try:
                    changed[net.name] = drivers.get(net.driver).sync(net, c.kernel, full)
                except CnetError as e:
                    failed[net.name] = str(e)
        return changed, failed

    def store_of_overlays(self, given: str | None = None) -> str:
        """The store the agent and `overlay forget` use: --store, $CNET_STORE
        or the config's, else the one this host's overlays are on. A
        malformed one named is an error, never passed over."""
        from ..store import named_store, store_url

        if named_store(given, self.config.store) is None:
            for net in shared_networks(self.read_state()):
                return net.options["store"]
        return store_url(given, self.config.store)

    def forget_host(self, host: str, store: str | None = None) -> list[str]:
        """Release every address the store holds for host ("NETWORK IP" each)
        and its registration. Refused for a host whose agent is alive, and for
        this host itself (`cnet detach` releases its own addresses)."""
        from ..drivers import overlay_store as records
        from ..errors import Conflict

        db = records.store(self.store_of_overlays(store))
        if host == self.host_name():
            raise Conflict(f"{host} is this host: detach its sandboxes instead")
        if db.get(records.alive_key(host)) is not None:
            raise Conflict(f"host {host} is alive (its agent holds a lease): stop it first")
        return records.forget(db, host)
