"""Which of cnet's sandboxes and endpoints a CNI runtime made: one small file
per attachment (a container ID and an interface name) in `STATE.cni/`, beside
the state file and its `STATE.netns/` markers.

The state model has no field for it, and GC needs it: it removes the
attachments of one CNI network that the runtime no longer lists, and must
never take a sandbox made with `cnet create ns` for a container's. A record
is written before ADD changes anything and removed after DEL is done, so a
process killed in between leaves a record of nothing, which DEL and GC
treat as done; never an attachment without its record.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import NamedTuple


class Record(NamedTuple):
    container_id: str
    ifname: str
    cni_network: str  # the "name" of the runtime's network configuration
    network: str  # the cnet network
    sandbox: str
    netns: str  # CNI_NETNS at ADD

    @property
    def key(self) -> str:
        return f"{self.sandbox}@{self.ifname}"  # '@' is in neither a sandbox name nor an interface name


class Registry:
    def __init__(self, state_path: str) -> None:
        self.dir = os.path.abspath(state_path) + ".cni"

    def _path(self, key: str) -> str:
        return os.path.join(self.dir, key)

    def get(self, sandbox: str, ifname: str) -> Record | None:
        return self._read(f"{sandbox}@{ifname}")

    def all(self, prefix: str = "") -> list[Record]:
        try:
            keys = sorted(k for k in os.listdir(self.dir)
                          if k.startswith(prefix) and not k.startswith("."))  # "." : a write under way
        except FileNotFoundError:
            return []
        return [r for r in map(self._read, keys) if r is not None]

    def of_sandbox(self, sandbox: str) -> list[Record]:
        """Its records only, by their names: an ADD does not read every container's."""
        return [r for r in self.all(prefix=f"{sandbox}@") if r.sandbox == sandbox]

    def _read(self, key: str) -> Record | None:
        try:
            with open(self._path(key), encoding="utf-8") as f:
                return Record(**json.load(f))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError):
            return None  # a record cut short (a process killed while writing it): of nothing

    def write(self, record: Record) -> None:
        """Atomically, so that a reader sees the whole record or none."""
        os.makedirs(self.dir, mode=0o755, exist_ok=True)
        tmp = self._path(f".{record.key}.{os.getpid()}.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(record._asdict(), f)
        os.replace(tmp, self._path(record.key))

    def remove(self, record: Record) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(record.key))
