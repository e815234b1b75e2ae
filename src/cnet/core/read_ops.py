"""What `ls` and `inspect` show, read from the state (no lock: writes are atomic)."""

from __future__ import annotations

from ..errors import InvalidInput
from ..model import Network, Sandbox
from .base import CnetBase


class ReadOps(CnetBase):
    def network_listing(self) -> list[tuple[Network, int]]:
        """Every network with the number of endpoints on it."""
        state = self.read_state()
        counts: dict[str, int] = {}
        for e in state.endpoints:
            counts[e.network] = counts.get(e.network, 0) + 1
        return [(n, counts.get(n.name, 0)) for n in state.networks.values()]

    def sandbox_listing(self) -> list[tuple[Sandbox, list[str]]]:
        """Every sandbox with the networks its stack is on."""
        state = self.read_state()
        networks: dict[str, list[str]] = {}
        for e in state.endpoints:
            networks.setdefault(e.sandbox, []).append(e.network)
        return [(s, networks.get(state.owner(s.name), [])) for s in state.sandboxes.values()]

    def kind_of(self, name: str) -> str:
        """'network' or 'ns' for `inspect NAME` (a name that is neither is looked up as a network)."""
        state = self.read_state()
        kinds = [k for k, table in (("network", state.networks), ("ns", state.sandboxes)) if name in table]
        if len(kinds) > 1:
            raise InvalidInput(f"{name} is both a network and a sandbox; say which with --type")
        return kinds[0] if kinds else "network"
