"""The CNI reference plugins (Debian's containernetworking-plugins), run as
the CNI spec says, with this harness as the runtime.

The network configuration list is bridge (isGateway, ipMasq, host-local IPAM
over the /16, its files on the test host's tmpfs) then portmap (capability
portMappings). For ADD, each plugin in order is executed with CNI_COMMAND,
CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME and CNI_PATH in its environment and
its own configuration on stdin, with the list's name and cniVersion, the
previous plugin's result as prevResult and, for portmap, runtimeConfig with
the mapping. DEL runs the plugins in reverse order with the cached result of
the ADD as prevResult, as libcni does. The namespace is made with `ip netns
add` before the ADD and removed with `ip netns del` after the DEL.
"""

from __future__ import annotations

import json
import os

from . import (BRIDGE, CNI_DIR, CONTAINER_PORT, SUBNET, WORK, Failed, host_port, run,
               sandbox_name)

CNI_VERSION = "1.0.0"
PLUGINS = ("bridge", "host-local", "portmap")

CONFLIST = {
    "cniVersion": CNI_VERSION,
    "name": "bench",
    "plugins": [
        {
            "type": "bridge",
            "bridge": BRIDGE,
            "isGateway": True,
            "ipMasq": True,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": SUBNET}]],
                "routes": [{"dst": "0.0.0.0/0"}],
                "dataDir": f"{WORK}/cni-ipam",
            },
        },
        {"type": "portmap", "capabilities": {"portMappings": True}},
    ],
}


class Cni:
    name = "cni"
    label = "CNI plugins: bridge + host-local + portmap"
    family = "peer"
    one_process = False
    processes = "3 + 3"
    firewall = "iptables (portmap's only backend in 1.1.1; bridge's ipMasq too)"

    def __init__(self):
        self.results: dict[int, dict] = {}
        self.base_env = dict(os.environ)

    def missing(self) -> str | None:
        for p in PLUGINS:
            if not os.access(f"{CNI_DIR}/{p}", os.X_OK):
                return f"no {CNI_DIR}/{p} (package containernetworking-plugins)"
        return None

    def prepare(self) -> None:
        os.makedirs(f"{WORK}/cni-ipam", exist_ok=True)

    def _exec(self, plugin: dict, command: str, i: int, prev: dict | None) -> str:
        conf = dict(plugin, name=CONFLIST["name"], cniVersion=CONFLIST["cniVersion"])
        if prev is not None:
            conf["prevResult"] = prev
        if plugin.get("capabilities", {}).get("portMappings"):
            conf["runtimeConfig"] = {"portMappings": [
                {"hostPort": host_port(i), "containerPort": CONTAINER_PORT, "protocol": "tcp"}]}
        env = dict(self.base_env, CNI_COMMAND=command, CNI_CONTAINERID=f"bench{i:06d}",
                   CNI_NETNS=f"/run/netns/{sandbox_name(i)}", CNI_IFNAME="eth0", CNI_PATH=CNI_DIR)
        return run([f"{CNI_DIR}/{plugin['type']}"], stdin=json.dumps(conf), env=env)

    def setup(self, i: int) -> None:
        run(["ip", "netns", "add", sandbox_name(i)])
        result = None
        for plugin in CONFLIST["plugins"]:
            out = self._exec(plugin, "ADD", i, result)
            try:
                result = json.loads(out)
            except ValueError:
                raise Failed(f"CNI {plugin['type']} ADD printed no JSON result: {out[:300]!r}") from None
        if not result.get("ips"):
            raise Failed(f"CNI ADD for {sandbox_name(i)} gave no address: {result}")
        self.results[i] = result

    def teardown(self, i: int) -> None:
        result = self.results.pop(i)
        for plugin in reversed(CONFLIST["plugins"]):
            self._exec(plugin, "DEL", i, result)
        run(["ip", "netns", "del", sandbox_name(i)])

    def close(self) -> None:
        pass
