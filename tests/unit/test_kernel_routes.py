"""kernel/routes.py: the host's routes from /proc/net, fed text recorded in a
test host (a veth uplink with default routes, a route via its gateway, an
unreachable route, IPv6 addresses)."""

from __future__ import annotations

from cnet.kernel import routes

IPV4 = """\
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
up0\t00000000\t020012C6\t0003\t0\t0\t0\t00000000\t0\t0\t0
up0\t0000000A\t020012C6\t0003\t0\t0\t5\t000000FF\t0\t0\t0
*\t000200C0\t00000000\t0201\t0\t0\t0\t00FFFFFF\t0\t0\t0
up0\t000012C6\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
"""

Z = "00000000000000000000000000000000"
IPV6 = f"""\
20010db8000000000000000000000000 20 {Z} 00 {Z} 00000400 00000001 00000000 00200200       lo
fd000018000000000000000000000000 40 {Z} 00 {Z} 00000100 00000002 00000000 00000001      up0
fd000099000000000000000000000000 30 {Z} 00 {Z} 00000400 00000001 00000000 00000001      up0
fe800000000000000000000000000000 40 {Z} 00 {Z} 00000100 00000002 00000000 00000001      up0
{Z} 00 {Z} 00 fd000018000000000000000000000002 00000400 00000001 00000000 00000003      up0
00000000000000000000000000000001 80 {Z} 00 {Z} 00000000 00000002 00000000 80200001       lo
fd000018000000000000000000000001 80 {Z} 00 {Z} 00000000 00000002 00000000 80200001      up0
ff000000000000000000000000000000 08 {Z} 00 {Z} 00000100 00000003 00000000 00000001      up0
{Z} 00 {Z} 00 {Z} ffffffff 00000001 00000000 00200200       lo
"""


def test_ipv4():
    assert [str(r) for r in routes.parse_ipv4(IPV4)] == [
        "default via 198.18.0.2 dev up0", "10.0.0.0/8 via 198.18.0.2 dev up0", "unreachable 192.0.2.0/24",
        "198.18.0.0/24 dev up0"]
    default = routes.parse_ipv4(IPV4)[0]
    assert default.default and default.dev == "up0"


def test_ipv6_without_local_link_local_multicast_and_the_null_entry():
    assert [str(r) for r in routes.parse_ipv6(IPV6)] == [
        "unreachable 2001:db8::/32", "fd00:18::/64 dev up0", "fd00:99::/48 dev up0", "default via fd00:18::2 dev up0"]


def test_an_empty_table():
    assert routes.parse_ipv4(IPV4.splitlines()[0] + "\n") == [] and routes.parse_ipv6("") == []
