"""Whether a host port is free, asked the way a server would: by binding it."""

from __future__ import annotations

import socket

KINDS = {"tcp": (socket.SOCK_STREAM, 0), "udp": (socket.SOCK_DGRAM, 0),
         "sctp": (socket.SOCK_STREAM, socket.IPPROTO_SCTP)}


def ephemeral_range() -> tuple[int, int]:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = f.read().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def port_is_free(protocol: str, port: int) -> bool:
    kind, proto = KINDS[protocol]
    try:
        s = socket.socket(socket.AF_INET, kind, proto)
    except OSError:
        return True  # no such protocol here: nothing can be listening on it
    try:
        s.bind(("0.0.0.0", port))
        return True
    except OSError:
        return False
    finally:
        s.close()
