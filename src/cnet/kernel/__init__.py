"""Kernel access: netlink through pyroute2, sysctls through /proc/sys.

The only package that imports pyroute2, so commands that only read the state
file never pay for it. Netlink errors leave this package as cnet errors (see
errors.py) with a message naming the object.

pyroute2's package __init__ imports every part of the library (IPDB, NDB,
conntrack, ...: ~0.2 s here) although cnet needs only IPRoute; `pyroute2()`
below makes the package without running that __init__, so that importing
the submodules cnet uses costs what they cost (~0.12 s). If that ever fails
(another pyroute2 release), the ordinary import is used.
"""

import importlib.util
import sys
import types


def load_pyroute2() -> None:
    """Register the pyroute2 package without running its __init__ (idempotent)."""
    if "pyroute2" in sys.modules:
        return
    spec = importlib.util.find_spec("pyroute2")
    if spec is None or not spec.submodule_search_locations:
        return  # not installed: the import that follows says so
    package = types.ModuleType("pyroute2")
    package.__path__ = list(spec.submodule_search_locations)
    package.__spec__ = spec
    package.__file__ = spec.origin
    package.__package__ = "pyroute2"
    sys.modules["pyroute2"] = package


def _import_light():
    load_pyroute2()
    try:
        from pyroute2.iproute.linux import IPRoute
        from pyroute2.netlink.exceptions import NetlinkError
    except ImportError:  # a release laid out otherwise: the whole package, the ordinary way
        for name in [m for m in sys.modules if m == "pyroute2" or m.startswith("pyroute2.")]:
            del sys.modules[name]
        from pyroute2 import IPRoute
        from pyroute2.netlink.exceptions import NetlinkError
    return IPRoute, NetlinkError
