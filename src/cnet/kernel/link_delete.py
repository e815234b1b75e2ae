"""Deleting a link with one netlink request, without opening IPRoute.

A teardown whose only kernel work is deleting links (the veth of a
`cnet-cni` DEL, whose namespace is the runtime's and outlives it) would pay
~90 ms for importing IPRoute (asyncio and every rtnetlink message class) to
send one RTM_DELLINK. Here pyroute2 still encodes the request and decodes
the answer (its ifinfmsg and nlmsgerr classes, ~30 ms to import); only the
exchange is done here, on a plain socket: one request, one acknowledgement.
An open Netlink handle does the same with delete_link (kernel/handles.py
picks).
"""

from __future__ import annotations

import errno
import os
import socket

from .. import verbose
from ..errors import OperationFailed
from .pyroute import link_messages

NETLINK_ROUTE = 0
RTM_DELLINK = 17
NLMSG_ERROR = 2
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4


def delete_link(name: str) -> bool:
    """Delete a link of the namespace this process is in; False if it was
    already gone (teardown is repeatable), as Netlink.delete_link."""
    ifinfmsg, nlmsgerr = link_messages()
    request = ifinfmsg()
    request["header"]["type"] = RTM_DELLINK
    request["header"]["flags"] = NLM_F_REQUEST | NLM_F_ACK
    request["header"]["sequence_number"] = 1
    request["attrs"] = [["IFLA_IFNAME", name]]
    request.encode()
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE) as sock:
        sock.bind((0, 0))  # a port id the kernel picks: no other handle's answers come here
        sock.send(request.data)
        answer = nlmsgerr(sock.recv(65536))
        answer.decode()
    if answer["header"]["type"] != NLMSG_ERROR or answer["header"]["sequence_number"] != 1:
        raise OperationFailed(f"cannot delete link {name}: an answer that is not the acknowledgement")
    code = -answer["error"]
    if code == errno.ENODEV:
        return False
    if code:
        raise OperationFailed(f"cannot delete link {name}: {os.strerror(code)}")
    verbose.removed(f"link {name}")
    return True
