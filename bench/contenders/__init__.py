"""The contenders of bench/peers.py: ways to give N sandboxes a namespace, an
address on one bridge and one published TCP port, and to take them away.

Every contender runs inside a throw-away test host (peers.py checks that
before it builds one). A contender is a class with:

    name, label, family      short id (for --only), table label, "cnet"/"peer"/"script"
    one_process              True: the whole setup (and the whole teardown) is one
                             process or one series of calls, timed as a total
    missing()                None, or why it cannot run here (checked outside the test host)
    prepare()                untimed: the network itself (a bridge, base firewall tables)
    setup(i), teardown(i)    one sandbox, timed by the caller (one_process False)
    setup_all(idx), teardown_all(idx)   (one_process True) -> (total seconds,
                             per-sandbox seconds or None)
    fill(idx), unfill(idx)   optional, untimed: the same sandboxes made through
                             cnet's Python API, for the sandboxes between the
                             timed ends of a sampled cycle
    close()                  stop helper processes

Sandbox i (0-based) is called sandbox_name(i), has host port 20000+i published
to port 80, and, where the harness picks addresses (netavark, the scripts),
gets host address i+2 of the subnet (sequential, as Podman's IPAM would).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import subprocess
import sys
from pathlib import Path

BRIDGE = "br0"
SUBNET = "10.88.0.0/16"
GATEWAY = "10.88.0.1"
PREFIX = 16
CONTAINER_PORT = 80
FIRST_HOST_PORT = 20000
WORK = "/var/lib/cnet"   # tmpfs inside the test host: IPAM files, configs

BENCH_DIR = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
CNET = str(VENV_BIN / "cnet")

# Peers installed from Debian packages
CNI_DIR = "/usr/lib/cni"
NETAVARK_CANDIDATES = ("/usr/libexec/podman/netavark", "/usr/lib/podman/netavark")


class Failed(Exception):
    """A contender's command failed: the run stops and peers.py exits non-zero."""


def sandbox_name(i: int) -> str:
    return f"s{i}"


def host_port(i: int) -> int:
    return FIRST_HOST_PORT + i


def address(i: int) -> str:
    """The harness's own sequential IPAM (netavark, scripts): .2, .3, ..."""
    return str(ipaddress.ip_network(SUBNET)[i + 2])


def run(cmd: list[str], *, stdin: str | None = None, env: dict | None = None) -> str:
    """Run a command, return its stdout; raise Failed with its stderr when it fails."""
    proc = subprocess.run(cmd, input=stdin, env=env, capture_output=True, text=True,
                          stdin=None if stdin is not None else subprocess.DEVNULL)
    if proc.returncode != 0:
        shown = " ".join(cmd) if len(cmd) < 12 else " ".join(cmd[:12]) + " ..."
        raise Failed(f"`{shown}` exited {proc.returncode}: {(proc.stderr or proc.stdout).strip()[:2000]}")
    return proc.stdout


def clean_env() -> dict:
    """This environment without CNET_* variables: cnet uses its default paths,
    which inside the test host are tmpfs."""
    return {k: v for k, v in os.environ.items() if not k.startswith("CNET_")}


def cnet_source_hash() -> str | None:
    """A fingerprint of the cnet package the venv imports (its .py files), so a
    run can tell when the code changed under it (the package is installed
    editable, and others may be editing it)."""
    import hashlib
    import importlib.util

    spec = importlib.util.find_spec("cnet")  # finds, does not import
    if spec is None or not spec.origin:
        return None
    root = Path(spec.origin).parent
    h = hashlib.sha1()
    for p in sorted(root.rglob("*.py")):
        h.update(str(p.relative_to(root)).encode() + b"\0")
        try:
            h.update(p.read_bytes())
        except OSError:
            h.update(b"?")
    return h.hexdigest()[:10]


def netavark_binary() -> str | None:
    for p in NETAVARK_CANDIDATES:
        if os.access(p, os.X_OK):
            return p
    return None


# -- the firewall, counted ------------------------------------------------------

def firewall_counts() -> dict:
    """Rules and set/map elements: nft (every table, iptables-nft's included) and iptables-save."""
    doc = json.loads(run(["nft", "-j", "list", "ruleset"]) or '{"nftables": []}')
    rules = elements = 0
    tables = []
    for item in doc.get("nftables", []):
        if "rule" in item:
            rules += 1
        for kind in ("set", "map"):
            if kind in item:
                elements += len(item[kind].get("elem", []))
        if "table" in item:
            tables.append(f"{item['table']['family']} {item['table']['name']}")
    v4 = sum(1 for line in run(["iptables-save"]).splitlines() if line.startswith("-A"))
    v6 = sum(1 for line in run(["ip6tables-save"]).splitlines() if line.startswith("-A"))
    return {"nft_rules": rules, "nft_elements": elements, "iptables_rules": v4,
            "ip6tables_rules": v6, "nft_tables": tables}


def firewall_text() -> str:
    return run(["nft", "list", "ruleset"]) + run(["iptables-save"])


def ports_present(ports: list[int]) -> list[int]:
    """Which of these host ports some rule or map element names."""
    text = firewall_text()
    return [p for p in ports if re.search(rf"(?<![\w-]){p}(?![\w-])", text)]


def netns_names() -> list[str]:
    return [line.split()[0] for line in run(["ip", "netns", "list"]).splitlines() if line.strip()]


def bridge_ports() -> int:
    try:
        out = run(["ip", "-o", "link", "show", "master", BRIDGE])
    except Failed:
        return 0  # no bridge (yet)
    return len(out.splitlines())


def sandbox_address(name: str, ifname: str = "eth0") -> str | None:
    """The IPv4 address of ifname in namespace name, or None."""
    out = run(["ip", "-n", name, "-4", "-o", "addr", "show", "dev", ifname])
    m = re.search(r"inet (\S+)", out)
    return m.group(1) if m else None


# -- the API worker: cnet's Python API in a process of its own -----------------

class ApiWorker:
    """bench/contenders/api_worker.py, started once; each request runs a series
    of cnet API calls in that one process and returns the time of each."""

    def __init__(self):
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("api_worker.py"))],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=clean_env(), bufsize=1)
        self.ready = self._reply()  # {"import": seconds, "init": seconds}

    def _reply(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            err = self.proc.stderr.read()
            raise Failed(f"the cnet API worker died: {err.strip()[-2000:]}")
        reply = json.loads(line)
        if "error" in reply:
            raise Failed(f"cnet API: {reply['error']}")
        return reply

    def call(self, **request) -> dict:
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return self._reply()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write('{"op": "exit"}\n')
                self.proc.stdin.flush()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


from .registry import CONTENDERS, by_name  # noqa: E402  (the classes need the helpers above)

__all__ = ["CONTENDERS", "by_name", "Failed", "ApiWorker", "firewall_counts", "ports_present",
           "netns_names", "bridge_ports", "sandbox_address", "sandbox_name", "host_port", "address"]
