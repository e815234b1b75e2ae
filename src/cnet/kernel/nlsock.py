"""A small netlink client: one socket, requests with their acks, and dumps.

cnet makes a handful of netlink requests (a veth pair, an address, a route,
a few queries, conntrack deletions). pyroute2 made them before, but importing
it cost 80-150 ms of a ~250 ms command, and each request went through an
asyncio event loop. This is the part cnet needs, on the standard library:
messages are bytes built with struct, attributes are (type, bytes) pairs.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterator

NETLINK_ROUTE, NETLINK_NETFILTER = 0, 12

NLMSG_ERROR, NLMSG_DONE = 2, 3
F_REQUEST, F_ACK, F_DUMP = 0x1, 0x4, 0x300
F_EXCL, F_CREATE = 0x200, 0x400
NLA_F_NESTED = 0x8000
_NLA_TYPE_MASK = 0x3FFF  # without the nested and byte-order flags

_SOL_NETLINK, _NETLINK_CAP_ACK, _NETLINK_EXT_ACK = 270, 10, 11
_NLM_F_ACK_TLVS = 0x200  # in an error message: extended-ack attributes follow
_NLMSGERR_ATTR_MSG = 1

_HEADER = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, sequence, port
_ATTR = struct.Struct("=HH")  # nlattr: length, type
_RECV_SIZE = 1 << 16


class NetlinkError(OSError):
    """The kernel refused a request: errno, and its reason (strerror, with the
    kernel's own message when it gave one)."""

    @property
    def code(self) -> int:
        return self.errno


# -- attributes ---------------------------------------------------------------

def attr(kind: int, payload: bytes) -> bytes:
    length = _ATTR.size + len(payload)
    return _ATTR.pack(length, kind) + payload + b"\0" * (-length % 4)


def nest(kind: int, *attrs: bytes, flag: bool = False) -> bytes:
    """Attributes inside one. `flag` sets NLA_F_NESTED, which some parsers
    require (bridge port options) and older ones do without."""
    return attr(kind | (NLA_F_NESTED if flag else 0), b"".join(attrs))


def u8(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("=B", value))


def u32(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("=I", value))


def string(kind: int, value: str) -> bytes:
    return attr(kind, value.encode() + b"\0")


def parse(data: bytes, offset: int = 0) -> dict[int, bytes]:
    """The attributes from offset to the end, by type (the last of a type wins)."""
    found = {}
    end = len(data)
    while offset + _ATTR.size <= end:
        length, kind = _ATTR.unpack_from(data, offset)
        if length < _ATTR.size:
            break
        found[kind & _NLA_TYPE_MASK] = data[offset + _ATTR.size:offset + length]
        offset += (length + 3) & ~3
    return found


def as_str(value: bytes | None) -> str | None:
    return None if value is None else value.split(b"\0", 1)[0].decode(errors="replace")


def as_u32(value: bytes | None) -> int | None:
    return None if value is None else struct.unpack_from("=I", value)[0]


def as_ip(value: bytes | None) -> str | None:
    if value is None:
        return None
    return socket.inet_ntop(socket.AF_INET6 if len(value) == 16 else socket.AF_INET, value)


# -- the socket ---------------------------------------------------------------

class Socket:
    """One netlink socket, in the namespace the process is in when it opens
    (it stays bound to that namespace)."""

    def __init__(self, protocol: int = NETLINK_ROUTE) -> None:
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, protocol)
        try:
            # errors carry the kernel's message, and not a copy of our request
            self._sock.setsockopt(_SOL_NETLINK, _NETLINK_EXT_ACK, 1)
            self._sock.setsockopt(_SOL_NETLINK, _NETLINK_CAP_ACK, 1)
            self._capped = True
        except OSError:
            self._capped = False
        self._sock.bind((0, 0))
        self._seq = 0

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> Socket:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def request(self, kind: int, body: bytes, flags: int = 0) -> list[tuple[int, bytes]]:
        """Send one request and wait for its ack; returns the messages the
        kernel answered with before it (type, payload), for a get."""
        return list(self._exchange(kind, body, flags | F_ACK))

    def dump(self, kind: int, body: bytes) -> Iterator[tuple[int, bytes]]:
        """Every message of a dump (type, payload). Read it to the end before
        the next request on this socket."""
        return self._exchange(kind, body, F_DUMP)

    def _exchange(self, kind: int, body: bytes, flags: int) -> Iterator[tuple[int, bytes]]:
        self._seq += 1
        seq = self._seq
        self._sock.send(_HEADER.pack(_HEADER.size + len(body), kind, F_REQUEST | flags, seq, 0) + body)
        while True:
            data = self._sock.recv(_RECV_SIZE)
            offset = 0
            while offset + _HEADER.size <= len(data):
                length, mtype, mflags, mseq, _ = _HEADER.unpack_from(data, offset)
                payload = data[offset + _HEADER.size:offset + length]
                offset += (length + 3) & ~3
                if mseq != seq:
                    continue  # a late answer to an earlier request
                if mtype in (NLMSG_ERROR, NLMSG_DONE):
                    code = -struct.unpack_from("=i", payload)[0] if len(payload) >= 4 else 0
                    if code:
                        raise error_of(code, payload, mflags, self._capped)
                    return
                yield mtype, payload



def error_of(code: int, payload: bytes, flags: int, capped: bool) -> NetlinkError:
    """The error of an NLMSG_ERROR answer, with the kernel's message if it sent one."""
    reason = os.strerror(code)
    if flags & _NLM_F_ACK_TLVS:
        # after the error code: our request's header, or all of the request when not capped
        echoed = _HEADER.size
        if not capped and len(payload) >= 4 + _HEADER.size:
            echoed = _HEADER.unpack_from(payload, 4)[0]
        message = as_str(parse(payload, 4 + ((echoed + 3) & ~3)).get(_NLMSGERR_ATTR_MSG))
        if message:
            reason = f"{reason} ({message})"
    return NetlinkError(code, reason)
