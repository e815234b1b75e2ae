"""Deleting a link with one netlink request, without opening a Netlink handle.

A teardown whose only kernel work is deleting links (the veth of a
`cnet-cni` DEL, whose namespace is the runtime's and outlives it) sends one
RTM_DELLINK on a socket of its own (rtnl.py). An open Netlink handle does
the same with delete_link (kernel/handles.py picks).
"""

from __future__ import annotations

import errno
import os

from .. import verbose
from ..errors import OperationFailed
from .pyroute import NetlinkError
from .rtnl import RTM_DELLINK, Rtnl


def delete_link(name: str) -> bool:
    """Delete a link of the namespace this process is in; False if it was
    already gone (teardown is repeatable), as Netlink.delete_link."""
    rtnl = Rtnl()
    try:
        rtnl.request(rtnl.message(rtnl.link, attrs=[["IFLA_IFNAME", name]]), RTM_DELLINK)
    except NetlinkError as e:
        if e.code == errno.ENODEV:
            return False
        raise OperationFailed(f"cannot delete link {name}: {os.strerror(e.code)}") from None
    finally:
        rtnl.close()
    verbose.removed(f"link {name}")
    return True
