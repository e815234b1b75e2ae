"""The requests cnet makes most, on a plain netlink route socket.

Opening pyroute2's IPRoute costs ~45 % of a `cnet-cni` ADD and of a
`cnet attach` (asyncio, pyroute2's socket machinery and every rtnetlink
message class: ~280 million of an ADD's ~600 million instructions, counted
with callgrind; bench/results/kernel-access.md). The requests of an attach
or a teardown (get, create, set and delete a link; add an address; add,
replace and delete a route; dumps of links, addresses and routes) need only
pyroute2's message classes, which encode each request and decode each
answer; this module does the exchange: send one message, read until the
acknowledgement, the error or the end of the dump. The rest (macvlan,
ipvlan, VXLAN and ifb links, tc, FDB and neighbour entries) still goes
through IPRoute, opened on first use (netlink.py).
"""

from __future__ import annotations

import errno
import os
import socket
import struct

from .pyroute import NetlinkError, route_message

NETLINK_ROUTE = 0
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_ACK, NLM_F_ECHO = 0x1, 0x4, 0x8
NLM_F_DUMP = 0x300
NLM_F_REPLACE, NLM_F_EXCL, NLM_F_CREATE = 0x100, 0x200, 0x400
NEW = NLM_F_CREATE | NLM_F_EXCL  # create, and fail with EEXIST if it is there: `ip link add`

RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_SETLINK = 16, 17, 18, 19
RTM_NEWADDR, RTM_GETADDR = 20, 22
RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE = 24, 25, 26

_HEADER = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, sequence number, port id
_ERROR_CODE = struct.Struct("=i")  # the first field of nlmsgerr (and of a dump's NLMSG_DONE)
_RECEIVE = 1 << 20  # the largest part of a dump the kernel sends is far smaller (NLMSG_GOODSIZE)


class Rtnl:
    """A NETLINK_ROUTE socket of the namespace this thread is in when it is
    made (it stays bound to it). port: the netlink port id to bind, 0 for one
    the kernel picks."""

    def __init__(self, port: int = 0) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
        try:
            self.sock.bind((port, 0))
        except OSError:
            self.sock.close()
            raise
        self._sequence = 0

    # The message classes, for message(): imported when first asked for.
    link = property(lambda self: route_message("link"))
    address = property(lambda self: route_message("address"))
    route = property(lambda self: route_message("route"))

    def close(self) -> None:
        self.sock.close()

    def message(self, kind, fields: dict | None = None, attrs: list | None = None):
        """A message of class `kind` (self.link, self.address or self.route)
        with these header fields (family, index, ...) and attributes."""
        msg = kind()
        for key, value in (fields or {}).items():
            msg[key] = value
        msg["attrs"] = attrs or []
        return msg

    def request(self, msg, kind: int, flags: int = 0) -> list:
        """Send msg as message type `kind`; return the messages of the answer,
        decoded (a get's or a dump's; [] for a plain acknowledgement). A
        refusal raises pyroute2's NetlinkError with the kernel's errno."""
        self._sequence += 1
        msg["header"]["type"] = kind
        msg["header"]["flags"] = NLM_F_REQUEST | NLM_F_ACK | flags
        msg["header"]["sequence_number"] = self._sequence
        msg.encode()
        self.sock.send(msg.data)
        decode = type(msg)
        answers = []
        while True:
            data = self.sock.recv(_RECEIVE)
            offset = 0
            while offset + _HEADER.size <= len(data):
                length, mtype, _, sequence, _ = _HEADER.unpack_from(data, offset)
                if length < _HEADER.size:
                    raise NetlinkError(errno.EBADMSG, "a netlink message shorter than its header")
                start, offset = offset, offset + ((length + 3) & ~3)
                if sequence != self._sequence:
                    continue  # not the answer to this request (there is no other here, but be sure)
                if mtype in (NLMSG_ERROR, NLMSG_DONE):
                    code = -_ERROR_CODE.unpack_from(data, start + _HEADER.size)[0] if length > _HEADER.size else 0
                    if code > 0:
                        raise NetlinkError(code, os.strerror(code))
                    return answers
                answer = decode(data[start:start + length])
                answer.decode()
                answers.append(answer)

    def dump(self, msg, kind: int) -> list:
        return self.request(msg, kind, NLM_F_DUMP)
