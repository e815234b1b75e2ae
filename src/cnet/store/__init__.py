"""The distributed store that overlay networks live in: etcd v3.

An overlay's definition and its address allocations are shared by every
host of the overlay, so they live in etcd, not in one host's state file
(which records what this host made of them). `open_store(url)` gives a
client for `etcd://HOST:PORT[,HOST:PORT...]`; every failure to reach a
quorum is StoreUnreachable (exit 1, "store unreachable: ...").
"""

from __future__ import annotations

import os

from ..errors import InvalidInput, OperationFailed

STORE_ENV = "CNET_STORE"
DEFAULT_PORT = 2379


class StoreUnreachable(OperationFailed):
    """No etcd member answered (or none could reach a quorum): nothing was changed."""


def parse_url(url: str) -> list[tuple[str, int]]:
    """The endpoints of an `etcd://H1:2379,H2:2379` URL, in order."""
    scheme, sep, rest = (url or "").partition("://")
    if not sep or scheme != "etcd" or not rest.strip("/"):
        raise InvalidInput(f"store {url!r} is not an etcd://HOST[:PORT][,HOST[:PORT]...] URL")
    endpoints = []
    for part in rest.strip("/").split(","):
        host, port = part, DEFAULT_PORT
        if part.startswith("["):  # [IPv6]:port
            host, _, tail = part[1:].partition("]")
            port = tail[1:] if tail.startswith(":") else DEFAULT_PORT
        elif part.count(":") == 1:
            host, port = part.split(":")
        try:
            port = int(port)
        except ValueError:
            port = -1
        if not host or not 0 < port < 65536:
            raise InvalidInput(f"store {url!r}: {part!r} is not HOST[:PORT]")
        endpoints.append((host, port))
    return endpoints


def store_url(given: str | None, config_store: str | None) -> str:
    """The store an overlay command uses: --store, else $CNET_STORE, else the config's `store:`."""
    url = given or os.environ.get(STORE_ENV) or config_store
    if not url:
        raise InvalidInput("an overlay needs a store: --store etcd://HOST:2379, CNET_STORE, or `store:` in the config")
    parse_url(url)
    return url


def open_store(url: str):
    from .etcd import Etcd

    return Etcd(parse_url(url), url=url)
