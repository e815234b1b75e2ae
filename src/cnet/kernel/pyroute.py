"""The parts of pyroute2 that cnet uses, imported at the least cost.

Importing any pyroute2 module first runs the package's `__init__`, which
imports every API pyroute2 has (IPVS, nl80211, WireGuard, devlink, ...):
~70 ms of the ~220 ms that `from pyroute2 import IPRoute` costs here
(bench/results/kernel-access-variants.md), for nothing cnet calls. So, unless pyroute2
is loaded already, the package is made the way the import system makes it
(`module_from_spec`) but its `__init__` is deferred: the submodules cnet
needs are imported under it, and the first time anyone asks the package for
a name that is not one of its loaded submodules (`from pyroute2 import NDB`
in a program that uses cnet's API), the real `__init__` runs in that same
module object and the name is there. The package is the real one throughout;
only the order of its initialisation changes.

This relies on pyroute2's module layout, hence the exact version pin in
pyproject.toml; tests/unit/test_pyroute.py checks both halves.
"""

from __future__ import annotations

import importlib.util
import sys


def _defer_package_init() -> None:
    if "pyroute2" in sys.modules:
        return  # someone imported it already: nothing to save
    spec = importlib.util.find_spec("pyroute2")  # finds the package without running it
    if spec is None:
        raise ImportError("pyroute2 is not installed (it is a dependency of cnet: pip install cnet)")
    package = importlib.util.module_from_spec(spec)

    def __getattr__(name: str):
        # `from pyroute2 import config`: a submodule, imported as the import
        # system would (which binds it on the package).
        if importlib.util.find_spec(f"pyroute2.{name}") is not None:
            return importlib.import_module(f"pyroute2.{name}")
        # Any other name: finish the package's initialisation now, in this
        # module object, and answer from it.
        del package.__dict__["__getattr__"]
        spec.loader.exec_module(package)
        return getattr(package, name)

    package.__getattr__ = __getattr__
    sys.modules["pyroute2"] = package


_defer_package_init()

from pyroute2.netlink.exceptions import NetlinkError  # noqa: E402

__all__ = ["IPRoute", "NetlinkError", "conntrack", "route_message"]


def __getattr__(name: str):
    # IPRoute on first use: it is most of the cost (asyncio and every rtnetlink
    # message class, ~90 ms), and links, addresses and routes do without it
    # (kernel/rtnl.py).
    if name == "IPRoute":
        from pyroute2.iproute.linux import IPRoute

        globals()["IPRoute"] = IPRoute
        return IPRoute
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def route_message(kind: str):
    """pyroute2's message class of a kind ("link": ifinfmsg, "address":
    ifaddrmsg, "route": rtmsg), imported on first use: they encode cnet's
    most common requests and decode their answers on a plain netlink socket
    (kernel/rtnl.py), and a teardown that only deletes a link needs one."""
    if kind == "link":
        from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

        return ifinfmsg
    if kind == "address":
        from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg

        return ifaddrmsg
    from pyroute2.netlink.rtnl.rtmsg import rtmsg

    return rtmsg


def conntrack():
    """(Conntrack, NFCTAttrTuple), imported on first use: only a change of
    published UDP ports needs them."""
    from pyroute2.conntrack import Conntrack
    from pyroute2.netlink.nfnetlink.nfctsocket import NFCTAttrTuple

    return Conntrack, NFCTAttrTuple
