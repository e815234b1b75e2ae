"""Podman's netavark (Debian package netavark), run as Podman runs it:
`netavark --config DIR setup /run/netns/NAME` with the network options as JSON
on stdin, and `teardown` with the same JSON.

netavark does no IPAM itself (Podman does it and passes static_ips), so this
harness hands out addresses sequentially from the subnet: sandbox i gets host
address i+2 (the gateway is .1). Its firewall driver is left at its default
(no NETAVARK_FW): iptables when firewalld is not running. The namespace is
made with `ip netns add` and removed with `ip netns del` after the teardown.
"""

from __future__ import annotations

import json
import os

from . import (BRIDGE, CONTAINER_PORT, GATEWAY, SUBNET, WORK, address, host_port, netavark_binary, run,
               sandbox_name)

NETWORK = {
    "name": "bench",
    "id": "b3" * 32,
    "driver": "bridge",
    "network_interface": BRIDGE,
    "subnets": [{"subnet": SUBNET, "gateway": GATEWAY}],
    "ipv6_enabled": False,
    "internal": False,
    "dns_enabled": False,
    "ipam_options": {"driver": "host-local"},
}


def options(i: int) -> str:
    return json.dumps({
        "container_id": f"{i:064x}",
        "container_name": sandbox_name(i),
        "port_mappings": [{"host_ip": "", "container_port": CONTAINER_PORT, "host_port": host_port(i),
                           "range": 1, "protocol": "tcp"}],
        "networks": {"bench": {"static_ips": [address(i)], "interface_name": "eth0"}},
        "network_info": {"bench": NETWORK},
    })


class Netavark:
    name = "netavark"
    label = "netavark (Podman), static IPs from the harness"
    family = "peer"
    one_process = False
    processes = "2 + 2"
    firewall = "iptables (netavark's default driver without firewalld)"

    def __init__(self):
        self.binary = netavark_binary()
        self.config = f"{WORK}/netavark"
        env = dict(os.environ)
        env.pop("NETAVARK_FW", None)
        self.env = env

    def missing(self) -> str | None:
        if self.binary is None:
            return "no netavark binary (package netavark)"
        return None

    def prepare(self) -> None:
        os.makedirs(self.config, exist_ok=True)

    def _run(self, command: str, i: int) -> str:
        return run([self.binary, "--config", self.config, command, f"/run/netns/{sandbox_name(i)}"],
                   stdin=options(i), env=self.env)

    def setup(self, i: int) -> None:
        run(["ip", "netns", "add", sandbox_name(i)])
        self._run("setup", i)

    def teardown(self, i: int) -> None:
        self._run("teardown", i)
        run(["ip", "netns", "del", sandbox_name(i)])

    def close(self) -> None:
        pass
