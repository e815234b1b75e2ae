"""cnet as a CNI plugin (`cnet-cni`), run as the CNI spec says with this
harness as the runtime, as contenders/cni.py runs the reference plugins: one
plugin entry {"type": "cnet", "network": br0} with the portMappings
capability, CNI_* in the environment, the configuration on stdin; DEL with
the ADD's result as prevResult. The runtime's namespace is made before the
ADD at a path of its own (`unshare --net=PATH`, as podman keeps its own under
/run/netns/cni-...) and removed after the DEL; the container ID is the
sandbox's name, so cnet's name for it is the harness's /run/netns/s<i>.
Issue 14's targets: ADD at most 3x the reference chain's, DEL at most 1x.
"""

from __future__ import annotations

import json
import os

from . import BRIDGE, CONTAINER_PORT, SUBNET, VENV_BIN, WORK, Failed, clean_env, host_port, run, sandbox_name

CNET_CNI = str(VENV_BIN / "cnet-cni")
RUNTIME_NETNS = f"{WORK}/cni-runtime"  # the runtime's namespaces, on the test host's tmpfs
CONF = {"cniVersion": "1.0.0", "name": "bench", "type": "cnet", "network": BRIDGE, "subnet": SUBNET,
        "capabilities": {"portMappings": True}}


class CnetCni:
    name = "cnet-cni"
    label = "cnet-cni: cnet as a CNI plugin (1 process)"
    family = "cnet"
    one_process = False
    processes = "1 + 1"
    firewall = "nftables (cnet's default)"

    def __init__(self):
        self.env = clean_env()
        self.results: dict[int, dict] = {}

    def missing(self) -> str | None:
        if not os.access(CNET_CNI, os.X_OK):
            return f"no cnet-cni console script at {CNET_CNI} (pip install -e . in the venv)"
        return None

    def prepare(self) -> None:
        os.makedirs(RUNTIME_NETNS, exist_ok=True)  # the first ADD makes the network from the entry's subnet

    def _call(self, command: str, i: int, extra: dict) -> str:
        env = dict(self.env, CNI_COMMAND=command, CNI_CONTAINERID=sandbox_name(i),
                   CNI_NETNS=f"{RUNTIME_NETNS}/{i}", CNI_IFNAME="eth0", CNI_PATH="/usr/lib/cni")
        return run([CNET_CNI], stdin=json.dumps({**CONF, **extra}), env=env)

    def setup(self, i: int) -> None:
        path = f"{RUNTIME_NETNS}/{i}"
        open(path, "w").close()
        run(["unshare", f"--net={path}", "true"])
        out = self._call("ADD", i, {"runtimeConfig": {"portMappings": [
            {"hostPort": host_port(i), "containerPort": CONTAINER_PORT, "protocol": "tcp"}]}})
        try:
            result = json.loads(out)
        except ValueError:
            raise Failed(f"cnet-cni ADD printed no JSON result: {out[:300]!r}") from None
        if not result.get("ips"):
            raise Failed(f"cnet-cni ADD for {sandbox_name(i)} gave no address: {result}")
        self.results[i] = result

    def teardown(self, i: int) -> None:
        self._call("DEL", i, {"prevResult": self.results.pop(i)})
        path = f"{RUNTIME_NETNS}/{i}"
        run(["umount", path])
        os.unlink(path)

    def close(self) -> None:
        pass
