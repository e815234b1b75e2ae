"""Hand-written scripts: what a user would type instead of a tool.

Both make the bridge, turn on forwarding and load a small nft table with a
DNAT map in prepare() (untimed, as cnet's `create bridge` is). A sandbox is a
named namespace, a veth pair created with its sandbox end already inside
(`peer name eth0 netns NAME`, which costs nothing extra), the host end on the
bridge, an address picked by the harness (host address i+2 of the subnet,
sequential), eth0 and lo up, a default route, and one element in the DNAT map.
Teardown removes the element, deletes the veth and deletes the namespace.

  pipework  one process per command: 7 `ip` + 1 `nft` to set up, `nft` + 2 `ip` to tear down
  floor     `ip -batch -` (host side) + `ip -n NAME -batch -` (sandbox side) + `nft -f -`
            to set up; `nft -f -` + `ip -batch -` to tear down. iproute2 6.1's
            batch mode has no per-line `-n NAME`, hence the second `ip`.
"""

from __future__ import annotations

from . import (BRIDGE, CONTAINER_PORT, GATEWAY, PREFIX, SUBNET, address, host_port, run, sandbox_name)

TABLE = f"""
table ip bench {{
    map ports {{
        type inet_proto . inet_service : ipv4_addr . inet_service
    }}
    chain prerouting {{
        type nat hook prerouting priority dstnat; policy accept;
        fib daddr type local dnat to meta l4proto . th dport map @ports
    }}
    chain output {{
        type nat hook output priority -100; policy accept;
        fib daddr type local dnat to meta l4proto . th dport map @ports
    }}
    chain postrouting {{
        type nat hook postrouting priority srcnat; policy accept;
        ip saddr {SUBNET} oifname != "{BRIDGE}" masquerade
    }}
}}
"""


def veth(i: int) -> str:
    return f"vb{i}"


def element(i: int) -> str:
    return f"tcp . {host_port(i)} : {address(i)} . {CONTAINER_PORT}"


class ScriptBase:
    family = "script"
    one_process = False
    firewall = "nftables (one pre-made table with a DNAT map)"

    def missing(self) -> str | None:
        return None

    def prepare(self) -> None:
        run(["ip", "link", "add", BRIDGE, "type", "bridge"])
        run(["ip", "addr", "add", f"{GATEWAY}/{PREFIX}", "dev", BRIDGE])
        run(["ip", "link", "set", BRIDGE, "up"])
        run(["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])
        run(["nft", "-f", "-"], stdin=TABLE)

    def close(self) -> None:
        pass


class Pipework(ScriptBase):
    name = "pipework"
    label = "script: one `ip`/`nft` process per command"
    processes = "8 + 3"

    def setup(self, i: int) -> None:
        ns, v, addr = sandbox_name(i), veth(i), address(i)
        run(["ip", "netns", "add", ns])
        run(["ip", "link", "add", v, "type", "veth", "peer", "name", "eth0", "netns", ns])
        run(["ip", "link", "set", v, "master", BRIDGE, "up"])
        run(["ip", "-n", ns, "addr", "add", f"{addr}/{PREFIX}", "dev", "eth0"])
        run(["ip", "-n", ns, "link", "set", "eth0", "up"])
        run(["ip", "-n", ns, "link", "set", "lo", "up"])
        run(["ip", "-n", ns, "route", "add", "default", "via", GATEWAY])
        run(["nft", "add", "element", "ip", "bench", "ports", "{", element(i), "}"])

    def teardown(self, i: int) -> None:
        run(["nft", "delete", "element", "ip", "bench", "ports", "{", f"tcp . {host_port(i)}", "}"])
        run(["ip", "link", "del", veth(i)])
        run(["ip", "netns", "del", sandbox_name(i)])


class Floor(ScriptBase):
    name = "floor"
    label = "script: `ip -batch` + `ip -n -batch` + `nft -f`"
    processes = "3 + 2"

    def setup(self, i: int) -> None:
        ns, v, addr = sandbox_name(i), veth(i), address(i)
        run(["ip", "-batch", "-"], stdin=(
            f"netns add {ns}\n"
            f"link add {v} type veth peer name eth0 netns {ns}\n"
            f"link set {v} master {BRIDGE} up\n"))
        run(["ip", "-n", ns, "-batch", "-"], stdin=(
            f"addr add {addr}/{PREFIX} dev eth0\n"
            "link set eth0 up\n"
            "link set lo up\n"
            f"route add default via {GATEWAY}\n"))
        run(["nft", "-f", "-"], stdin=f"add element ip bench ports {{ {element(i)} }}\n")

    def teardown(self, i: int) -> None:
        run(["nft", "-f", "-"], stdin=f"delete element ip bench ports {{ tcp . {host_port(i)} }}\n")
        run(["ip", "-batch", "-"], stdin=f"link del {veth(i)}\nnetns del {sandbox_name(i)}\n")
