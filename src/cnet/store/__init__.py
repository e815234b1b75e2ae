"""The distributed store that overlay networks live in: etcd v3.

An overlay's definition and its address allocations are shared by every
host of the overlay, so they live in etcd, not in one host's state file
(which records what this host made of them). `open_store(url)` gives a
client for `etcd://HOST:PORT[,HOST:PORT...]`; every failure to reach a
quorum is StoreUnreachable (exit 1, "store unreachable: ...").
"""

from __future__ import annotations

import ipaddress
import os
import re

from ..errors import InvalidInput, OperationFailed

STORE_ENV = "CNET_STORE"
DEFAULT_PORT = 2379
HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?")  # a name or an IPv4 address
PORT = re.compile(r"[0-9]{1,5}")


class StoreUnreachable(OperationFailed):
    """No etcd member answered (or none could reach a quorum): nothing was changed."""


def parse_url(url: str) -> list[tuple[str, int]]:
    """The endpoints of an `etcd://H1:2379,H2:2379` URL, in order."""
    scheme, sep, rest = (url or "").partition("://")
    if not sep or scheme != "etcd" or not rest.strip("/"):
        raise InvalidInput(f"store {url!r} is not an etcd://HOST[:PORT][,HOST[:PORT]...] URL")
    return [_endpoint(url, part.strip()) for part in rest.rstrip("/").split(",")]


def _endpoint(url: str, part: str) -> tuple[str, int]:
    """HOST, HOST:PORT, [IPv6] or [IPv6]:PORT as (host, port)."""
    if part.startswith("["):
        host, bracket, tail = part[1:].partition("]")
        good_host = bool(bracket) and _is_ipv6(host) and (not tail or tail.startswith(":"))
        port = tail[1:] if tail else str(DEFAULT_PORT)
    elif part.count(":") > 1:
        raise InvalidInput(f"store {url!r}: write an IPv6 HOST as [ADDRESS] or [ADDRESS]:PORT, not {part!r}")
    else:
        host, colon, port = part.partition(":")
        good_host = bool(HOSTNAME.fullmatch(host))
        port = port if colon else str(DEFAULT_PORT)
    if not good_host or not PORT.fullmatch(port) or not 0 < int(port) < 65536:
        raise InvalidInput(f"store {url!r}: {part!r} is not HOST[:PORT]")
    return host, int(port)


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def named_store(given: str | None, config_store: str | None) -> str | None:
    """--store, else $CNET_STORE, else the config's `store:`; None when none names one."""
    return given or os.environ.get(STORE_ENV) or config_store


def store_url(given: str | None, config_store: str | None) -> str:
    """The store an overlay command uses: named_store's, checked."""
    url = named_store(given, config_store)
    if not url:
        raise InvalidInput("an overlay needs a store: --store etcd://HOST:2379, CNET_STORE, or `store:` in the config")
    parse_url(url)
    return url


def open_store(url: str):
    from .etcd import Etcd

    return Etcd(parse_url(url), url=url)
