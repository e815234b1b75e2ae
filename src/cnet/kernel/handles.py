"""The kernel handles of one operation."""

from __future__ import annotations


class Kernel:
    """The kernel handles of one operation, opened on first use (so an
    operation that fails validation never loads netlink code) and closed at its
    end: netlink on the host, and netlink inside each sandbox it touches.
    owner: whose objects the operation makes (owner.Owner: the tags they get)."""

    def __init__(self, owner=None) -> None:
        from ..owner import DEFAULT

        self.owner = owner or DEFAULT
        self._host = None
        self._inside: dict[str, object] = {}

    @property
    def netlink(self):
        if self._host is None:
            from .netlink import Netlink

            self._host = Netlink()
        return self._host

    def delete_link(self, name: str) -> bool:
        """Delete a host link; False if it was gone already."""
        return self.netlink.delete_link(name)

    def inside(self, netns_path: str):
        if netns_path not in self._inside:
            from .netlink import Netlink

            self._inside[netns_path] = Netlink(netns_path)
        return self._inside[netns_path]

    def close_inside(self) -> None:
        for handle in self._inside.values():
            handle.close()
        self._inside.clear()

    def forget(self, netns_path: str) -> None:
        """Close the handle inside a namespace about to go (an open one keeps it alive)."""
        handle = self._inside.pop(netns_path, None)
        if handle is not None:
            handle.close()

    def __enter__(self) -> Kernel:
        return self

    def __exit__(self, *exc) -> None:
        for handle in [self._host, *self._inside.values()]:
            if handle is not None:
                handle.close()
