"""The host's links as /sys/class/net shows them: a read of a few small files
a link, ~20 us, where pyroute2 takes ~0.3 ms to parse one link of a netlink
dump (bench/results/lifecycle.md). So `cnet check` and `ls` see a thousand
links without loading netlink at all.

/sys/class/net lists the links of the network namespace sysfs was mounted
in: the host's, on a host (a test host mounts a sysfs of its own)."""

from __future__ import annotations

import os
from typing import NamedTuple

SYS_CLASS_NET = "/sys/class/net"
IFF_UP = 0x1


class Link(NamedTuple):
    name: str
    alias: str  # "" for none
    group: int
    master: str | None  # the bridge it is a port of
    up: bool
    mtu: int


def link_names() -> set[str]:
    try:
        return set(os.listdir(SYS_CLASS_NET))
    except FileNotFoundError:
        return set()


def exists(name: str) -> bool:
    return os.path.exists(os.path.join(SYS_CLASS_NET, name))


def _read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def link(name: str) -> Link | None:
    """What cnet checks of a link, or None when there is no such link."""
    base = os.path.join(SYS_CLASS_NET, name)
    try:
        alias = _read(base + "/ifalias")
        group = int(_read(base + "/netdev_group"))
        flags = int(_read(base + "/flags"), 16)
        mtu = int(_read(base + "/mtu"))
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        master = os.path.basename(os.readlink(base + "/master"))
    except FileNotFoundError:
        master = None
    return Link(name, alias, group, master, bool(flags & IFF_UP), mtu)
