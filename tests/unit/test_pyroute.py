"""cnet.kernel.pyroute imports pyroute2's modules without the package's
__init__ (which loads every pyroute2 API), and the package is still whole to
anyone who asks it for more. Each check runs in a fresh interpreter."""

import json
import subprocess
import sys
import textwrap

import pytest

# Modules that only the package __init__ imports: cnet uses none of them.
ONLY_INIT = ["pyroute2.ipvs", "pyroute2.iwutil", "pyroute2.wiset", "pyroute2.netlink.generic.wireguard"]


def run(code: str) -> dict:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_cnet_loads_what_it_uses_and_not_the_package_init():
    seen = run(f"""
        import json, sys
        from cnet.kernel.pyroute import IPRoute, NetlinkError, conntrack
        Conntrack, _ = conntrack()
        print(json.dumps({{"init": [m for m in {ONLY_INIT!r} if m in sys.modules],
                          "ipr": IPRoute.__module__, "ct": Conntrack.__module__}}))
    """)
    assert seen == {"init": [], "ipr": "pyroute2.iproute.linux", "ct": "pyroute2.conntrack"}


def test_the_package_is_whole_to_whoever_asks_it_for_more():
    seen = run(f"""
        import json, sys
        from cnet.kernel import pyroute
        import pyroute2
        from pyroute2 import IPRoute, Conntrack, NetlinkError, IPVS
        import pyroute2.iproute.linux
        print(json.dumps({{"same": [IPRoute is pyroute.IPRoute, Conntrack is pyroute.conntrack()[0],
                                   NetlinkError is pyroute.NetlinkError,
                                   pyroute2.iproute.linux.IPRoute is pyroute.IPRoute],
                          "version": pyroute2.__version__,
                          "init": [m for m in {ONLY_INIT!r} if m in sys.modules]}}))
    """)
    assert seen["same"] == [True] * 4 and seen["version"] == "0.9.7"
    assert seen["init"] == ONLY_INIT  # asking for IPVS ran the package's own __init__


def test_pyroute2_imported_first_is_used_as_it_is():
    seen = run("""
        import json
        import pyroute2
        from cnet.kernel.pyroute import IPRoute
        print(json.dumps({"same": IPRoute is pyroute2.IPRoute}))
    """)
    assert seen == {"same": True}


@pytest.mark.parametrize("name", ["config", "netns"])
def test_a_submodule_asked_of_the_package_is_imported_not_the_init(name):
    seen = run(f"""
        import json, sys
        from cnet.kernel import pyroute
        from pyroute2 import {name}
        print(json.dumps({{"module": {name}.__name__, "init": [m for m in {ONLY_INIT!r} if m in sys.modules]}}))
    """)
    assert seen == {"module": f"pyroute2.{name}", "init": []}


def test_netlink_handles_load_pyroute2s_messages_not_iproute_or_asyncio():
    # The requests of an attach go through kernel/rtnl.py: IPRoute (and with it asyncio)
    # is imported only when a handle needs it (tc, VXLAN, macvlan), not by opening one;
    # a message class only when a message of its kind is made (a teardown needs links only).
    seen = run("""
        import json, sys
        import cnet.kernel.netlink, cnet.kernel.handles
        from cnet.kernel.rtnl import Rtnl
        r = Rtnl()
        r.message(r.link)
        r.close()
        print(json.dumps({"loaded": [m for m in ("pyroute2.iproute.linux", "asyncio", "pyroute2.netlink.rtnl.ifinfmsg",
                                                 "pyroute2.netlink.rtnl.ifaddrmsg", "pyroute2.netlink.rtnl.rtmsg")
                                     if m in sys.modules]}))
    """)
    assert seen == {"loaded": ["pyroute2.netlink.rtnl.ifinfmsg"]}
