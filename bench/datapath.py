"""The data path through cnet: iperf3 single-stream TCP throughput and a 1-byte TCP ping-pong, against a plain veth (the ceiling).

Item 4 of issue 5. Every packet stays inside a throw-away test host
(tools/testhost): one per firewall backend, one after the other. In each, the
same eight paths are measured, run after run, interleaved (run 1 of every
path, then run 2, ...):

  veth          two namespaces joined by a veth pair, no bridge (`ip netns add`): the ceiling
  plain-bridge  two namespaces on a Linux bridge in a third, no firewall: a reference, not cnet
  bridge        sandbox a -> sandbox b on a cnet bridge
  lan           a "LAN" namespace -> a published port of sandbox srv (DNAT)
  host-addr     the host itself -> the published port on its LAN address 198.18.0.1
  host-lo       the host itself -> the published port on 127.0.0.1
  hairpin-self  sandbox srv -> 198.18.0.1, published to srv itself
  hairpin-other sandbox a -> 198.18.0.1, published to srv on the same bridge
  router-plain  a router namespace between two plain bridges, made with `ip`: issue 12's reference
  router        sandbox ra -> cnet router rt -> sandbox rb, on two cnet bridges
  macvlan-parent, macvlan-parent-in
                the host's end of a veth (the macvlan parent) -> its peer in a "LAN"
                namespace, and back: issue 12's reference, the parent's own rate
  macvlan, macvlan-in
                a sandbox on `cnet create macvlan` over that parent -> the LAN peer, and back

Inside each test host (CNET_FIREWALL=nftables, then iptables):

  ip netns add dp-ceil-a dp-ceil-b + a veth pair, 198.18.1.1/24 - 198.18.1.2/24
  ip netns add dp-plain-br dp-plain-a dp-plain-b: a bridge in the first, a veth from it
    to each of the others, 198.18.2.1/24 - 198.18.2.2/24
  ip netns add dp-lan + a veth pair to the host: host 198.18.0.1/24, LAN client 198.18.0.2/24
  ip netns add dp-rt-br dp-rt dp-rt-a dp-rt-b: two bridges in the first, a router between them
  ip netns add dp-mvlan + a veth pair to the host: the parent dp-mv0 198.18.5.1/24, LAN peer 198.18.5.2/24
  cnet batch: create bridge br0 --subnet 198.18.100.0/24
              create ns a --network br0; create ns b --network br0
              create ns srv --network br0 --publish 5201:5201 --publish 5202:5202
              create bridge rta, rtb; create ns ra, rb on them; create router rt --network rta --network rtb
              create macvlan mv --parent dp-mv0 ...; create ns mva --network mv

All addresses are in 198.18.0.0/15, the range RFC 2544 sets aside for
benchmarks, and exist only inside the test host.

Per path and run: `iperf3 -s -1` (one test, then exit) where the server
lives, `iperf3 -c ADDR -p 5201 -t T -J` where the client lives (T = 2 s, 1 s
with --quick; the *-in paths add -R, so the server sends), throughput = the
receiver's bits per second; then (not on the -R paths) a ping-pong
server (this file, `_pingpong-serve`) on port 5202 and a client doing N
round trips of 1 byte over one TCP connection (TCP_NODELAY; 200 untimed round
trips first). Every process is started under `timeout`, so each stops by
itself even if this script dies.

Before the timed runs, each path gets one untimed 1 s iperf3 run (with
--quick, the timed run itself is used) during which `ps` lists every process
in the test host's namespaces and `ss -p` every socket on ports 5201/5202
in the host's and the path's namespaces:
with kernel NAT only iperf3 holds them and nothing listens on the published
port in the host's namespace (a userland proxy would).

Figures: per path and backend, the median throughput over runs with min-max;
the ratio to the veth ceiling taken run by run in the same test host
(median, min-max); round-trip median and p99 over all round trips of all runs,
and the RTT median against the ceiling's, run by run.

    .venv/bin/python bench/datapath.py [--quick] [--runs N] [--paths KEY,...]

--paths measures only the paths named (by the keys above), each with the
ceiling and its reference, so more runs of a few paths fit in the time.

Run as root, from the repository root. Installs iperf3 with apt-get when
missing. Exit status 1 if any path failed (the reason is printed), or if this
machine's own links, namespaces or firewall rules changed during the run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common
from common import (INSIDE, OUTER_NETNS, TESTHOST, check_inside, check_mounts, clean_env, find_cnet,
                    netns_inode)

ROOT = common.BENCH_DIR.parent
THIS = str(Path(__file__).resolve())

BACKENDS = ("nftables", "iptables")
DEFAULT_RUNS = 3
SECONDS, QUICK_SECONDS = 2, 1      # iperf3 -t of a timed run
WARMUP_SECONDS = 1                 # the untimed run that also looks for a proxy
ROUND_TRIPS, QUICK_ROUND_TRIPS = 2000, 1000   # per run
PINGPONG_WARMUP = 200
# seconds per test host (a backend that takes longer is killed): set-up, then per path and run
# an iperf3 test and a ping-pong, a few seconds each on a busy machine
INNER_TIMEOUT_BASE, INNER_TIMEOUT_PER_TEST = 120, 10

PORT, LAT_PORT = 5201, 5202
BRIDGE, BRIDGE_SUBNET = "br0", "198.18.100.0/24"
CEIL_A, CEIL_B = "dp-ceil-a", "dp-ceil-b"
CEIL_ADDR_A, CEIL_ADDR_B = "198.18.1.1", "198.18.1.2"
PLAIN_BR, PLAIN_A, PLAIN_B = "dp-plain-br", "dp-plain-a", "dp-plain-b"
PLAIN_ADDR_A, PLAIN_ADDR_B = "198.18.2.1", "198.18.2.2"
LAN_NS, LAN_HOST_IF = "dp-lan", "dp-lan0"
# a router namespace between two plain bridges, made with `ip` (issue 12's reference)
RT_BR, RT_NS, RT_A, RT_B = "dp-rt-br", "dp-rt", "dp-rt-a", "dp-rt-b"
RT_NET_A, RT_NET_B = "198.18.3", "198.18.4"   # .1: the router, .2: the sandbox
CNET_RT_A, CNET_RT_B = "198.18.101.0/24", "198.18.102.0/24"
# a veth whose host end is the parent of a cnet macvlan network and whose peer is a "LAN" namespace
MV_LAN, MV_PARENT, MV_NET = "dp-mvlan", "dp-mv0", "198.18.5"  # .1: the host's end, .2: the LAN peer (the gateway)
MV_PEER = f"{MV_NET}.2"
HOST_ADDR, LAN_ADDR = "198.18.0.1", "198.18.0.2"
TARGET = 0.90                      # issue 5: a cnet bridge >= 90 % of the veth ceiling, published ports the same

# (key, label, client namespace (None: the host), server namespace, address the client connects to)
# An address None is sandbox b's own address, read after it is made.
PATHS = [
    ("veth", "veth direct (ceiling)", CEIL_A, CEIL_B, CEIL_ADDR_B),
    ("plain-bridge", "plain Linux bridge, no firewall (reference)", PLAIN_A, PLAIN_B, PLAIN_ADDR_B),
    ("bridge", "sandbox → sandbox, same cnet bridge", "a", "b", None),
    ("lan", f"LAN → published port ({HOST_ADDR})", LAN_NS, "srv", HOST_ADDR),
    ("host-addr", f"host → published port ({HOST_ADDR})", None, "srv", HOST_ADDR),
    ("host-lo", "host → published port (127.0.0.1)", None, "srv", "127.0.0.1"),
    ("hairpin-self", f"hairpin: srv → {HOST_ADDR} → srv", "srv", "srv", HOST_ADDR),
    ("hairpin-other", f"hairpin: a → {HOST_ADDR} → srv", "a", "srv", HOST_ADDR),
    ("router-plain", "router namespace between two plain bridges, made with ip (reference)", RT_A, RT_B,
     f"{RT_NET_B}.2"),
    ("router", "sandbox → cnet router → sandbox, two cnet bridges", "ra", "rb", None),
    ("macvlan-parent", f"host's parent veth → LAN peer {MV_PEER} (reference)", None, MV_LAN, MV_PEER),
    ("macvlan", f"macvlan sandbox → LAN peer {MV_PEER}", "mva", MV_LAN, MV_PEER),
    ("macvlan-parent-in", f"LAN peer {MV_PEER} → host's parent veth (reference)", None, MV_LAN, MV_PEER),
    ("macvlan-in", f"LAN peer {MV_PEER} → macvlan sandbox", "mva", MV_LAN, MV_PEER),
]
PUBLISHED = {"lan", "host-addr", "host-lo", "hairpin-self", "hairpin-other"}
REFERENCES = {"veth", "plain-bridge", "router-plain", "macvlan-parent", "macvlan-parent-in"}
CNET_PATHS = {key for key, *_ in PATHS} - REFERENCES
# iperf3 -R on these (the server, in the LAN, sends); no ping-pong: it would repeat the forward path's
REVERSED = {"macvlan-parent-in", "macvlan-in"}
OWN_NAMESPACES = (CEIL_A, CEIL_B, PLAIN_BR, PLAIN_A, PLAIN_B, LAN_NS, RT_BR, RT_NS, RT_A, RT_B, MV_LAN)
# issue 12: each of these cnet paths >= 90 % of its reference in the same run
ISSUE12_TARGET = 0.90
ISSUE12_REFERENCE = {"router": "router-plain", "macvlan": "macvlan-parent", "macvlan-in": "macvlan-parent-in"}

# Processes that may run in the test host's namespaces while iperf3 traffic flows,
# besides this script itself and tools/testhost (its parent): iperf3 under
# `timeout`, and the `ps`/`ss` looking (`ip` for the instant before it execs).
ALLOWED_PROCESSES = {"iperf3", "timeout", "ps", "ss", "ip"}
CARRIERS = {"iperf3"}  # what may hold a socket on the ports during an iperf3 transfer


class PathFailed(Exception):
    pass


def fail(message: str) -> None:
    raise SystemExit(f"bench/datapath.py: {message}")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# == the ping-pong, run as `python datapath.py _pingpong-serve|_pingpong ...` ==

def pingpong_serve(port: int, timeout: float) -> None:
    """Accept one connection, echo it byte by byte until it closes, exit."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(1)
    s.settimeout(timeout)
    print("ready", flush=True)
    conn, peer = s.accept()
    s.close()
    print(f"peer {peer[0]}", flush=True)
    conn.settimeout(timeout)
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while True:
        b = conn.recv(1)
        if not b:
            break
        conn.sendall(b)
    conn.close()


def pingpong_client(address: str, port: int, n: int, warmup: int) -> None:
    """n timed round trips of one byte; prints their durations (ns) as JSON."""
    c = socket.create_connection((address, port), timeout=5)
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    clock = time.perf_counter_ns
    samples = []
    for i in range(warmup + n):
        t0 = clock()
        c.sendall(b"x")
        if c.recv(1) != b"x":
            raise SystemExit("ping-pong: the server closed the connection")
        if i >= warmup:
            samples.append(clock() - t0)
    c.close()
    print(json.dumps(samples))


# == inside a test host =======================================================

def in_ns(ns: str | None, cmd: list[str]) -> list[str]:
    return cmd if ns is None else ["ip", "netns", "exec", ns, *cmd]


def run(cmd: list[str], *, env: dict | None = None, input: str | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env=env, input=input, capture_output=True, text=True, timeout=timeout,
                          stdin=None if input is not None else subprocess.DEVNULL)


def must(cmd: list[str], **kw) -> str:
    proc = run(cmd, **kw)
    if proc.returncode != 0:
        raise PathFailed(f"`{' '.join(cmd)}` exited {proc.returncode}: "
                         f"{(proc.stderr or proc.stdout).strip()}")
    return proc.stdout


STARTED: list[subprocess.Popen] = []


class Server:
    """A background process (under `timeout`) whose output is read as it comes."""

    def __init__(self, cmd: list[str], ns: str | None):
        self.proc = subprocess.Popen(in_ns(ns, cmd), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        STARTED.append(self.proc)
        self.buf = b""
        self.eof = False

    def _read(self, deadline: float) -> bool:
        """Read what is there, waiting until deadline; False at EOF or time out."""
        remaining = deadline - time.monotonic()
        if self.eof or remaining <= 0:
            return False
        ready, _, _ = select.select([self.proc.stdout], [], [], remaining)
        if not ready:
            return False
        chunk = os.read(self.proc.stdout.fileno(), 65536)
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def wait_for(self, marker: bytes, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while marker not in self.buf:
            if not self._read(deadline):
                return marker in self.buf
        return True

    def finish(self, timeout: float) -> str:
        """Wait for it to exit by itself (killed after timeout); its whole output."""
        deadline = time.monotonic() + timeout
        while self._read(deadline):
            pass
        try:
            self.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.kill()
        self.kill()
        return self.buf.decode(errors="replace")

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)  # `timeout` and its child
            except ProcessLookupError:
                pass
            self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()


def kill_all_started() -> None:
    for proc in STARTED:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()


def start_iperf_server(ns: str, seconds: float) -> Server:
    srv = Server(["timeout", str(int(seconds + 30)), "iperf3", "-s", "-1", "-p", str(PORT), "--forceflush"], ns)
    if not srv.wait_for(b"Server listening", 10):
        text = srv.finish(1).strip()
        raise PathFailed(f"iperf3 server in {ns} did not start: {text or 'no output'}")
    return srv


def iperf_client_cmd(ns: str | None, address: str, seconds: float, reverse: bool = False) -> list[str]:
    return in_ns(ns, ["timeout", str(int(seconds + 20)), "iperf3", "-c", address, "-p", str(PORT),
                      "-t", str(seconds), "-J", "--connect-timeout", "3000", *(["-R"] if reverse else [])])


def parse_iperf(stdout: str, stderr: str, rc: int) -> dict:
    try:
        doc = json.loads(stdout)
    except ValueError:
        raise PathFailed(f"iperf3 client exited {rc} without a JSON report: "
                         f"{(stderr or stdout).strip()[:300] or 'no output'}") from None
    if doc.get("error"):
        raise PathFailed(f"iperf3 client: {doc['error']}")
    end = doc.get("end", {})
    try:
        bps = end["sum_received"]["bits_per_second"]
    except KeyError:
        raise PathFailed("iperf3 client: no sum_received in its report") from None
    conn = (doc.get("start", {}).get("connected") or [{}])[0]
    cpu = end.get("cpu_utilization_percent", {})
    return {
        "bps": bps,
        "retransmits": end.get("sum_sent", {}).get("retransmits"),
        "cpu_client": cpu.get("host_total"),
        "cpu_server": cpu.get("remote_total"),
        "client_local": conn.get("local_host"),
        "client_remote": conn.get("remote_host"),
    }


def accepted_from(server_output: str) -> str | None:
    m = re.search(r"Accepted connection from ([0-9a-fA-F.:]+), port", server_output)
    return m.group(1) if m else None


def iperf_once(path: tuple, address: str, seconds: float, check=None) -> dict:
    """One iperf3 test; `check()`, if given, is called while the data flows."""
    key, _, client_ns, server_ns, _ = path
    srv = start_iperf_server(server_ns, seconds)
    try:
        cmd = iperf_client_cmd(client_ns, address, seconds, reverse=key in REVERSED)
        if check is None:
            proc = run(cmd, timeout=seconds + 40)
            stdout, stderr, rc = proc.stdout, proc.stderr, proc.returncode
            looked = None
        else:
            client = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True, start_new_session=True)
            STARTED.append(client)
            time.sleep(min(0.4, seconds / 3))
            looked = check()
            looked["during_transfer"] = client.poll() is None
            try:
                stdout, stderr = client.communicate(timeout=seconds + 40)
            except subprocess.TimeoutExpired:
                os.killpg(client.pid, signal.SIGKILL)
                stdout, stderr = client.communicate()
            rc = client.returncode
        result = parse_iperf(stdout, stderr, rc)
        out = srv.finish(10)
    finally:
        srv.kill()
    result["server_saw"] = accepted_from(out)
    if looked is not None:
        result["proxy_check"] = looked
    return result


def latency_once(path: tuple, address: str, n: int) -> dict:
    key, _, client_ns, server_ns, _ = path
    srv = Server(["timeout", "60", sys.executable, THIS, "_pingpong-serve", str(LAT_PORT), "20"], server_ns)
    try:
        if not srv.wait_for(b"ready\n", 10):
            raise PathFailed(f"ping-pong server in {server_ns} did not start: {srv.finish(1).strip()[:300]}")
        proc = run(in_ns(client_ns, ["timeout", "60", sys.executable, THIS, "_pingpong", address,
                                     str(LAT_PORT), str(n), str(PINGPONG_WARMUP)]), timeout=90)
        if proc.returncode != 0:
            raise PathFailed(f"ping-pong client exited {proc.returncode}: {proc.stderr.strip()[-300:]}")
        samples = json.loads(proc.stdout)
        out = srv.finish(10)
    finally:
        srv.kill()
    m = re.search(r"peer (\S+)", out)
    return {"samples_ns": samples, "server_saw": m.group(1) if m else None}


def percentile(sorted_xs: list, q: float):
    return sorted_xs[max(0, math.ceil(q * len(sorted_xs)) - 1)]


def latency_summary(samples_ns: list[int]) -> dict:
    xs = sorted(samples_ns)
    return {"round_trips": len(xs), "median_us": statistics.median(xs) / 1000,
            "p99_us": percentile(xs, 0.99) / 1000, "min_us": xs[0] / 1000, "max_us": xs[-1] / 1000,
            "mean_us": statistics.fmean(xs) / 1000}


# -- looking for a proxy --------------------------------------------------------

def testhost_namespaces() -> dict[int, str]:
    """Network namespace inode -> name, for the host and every namespace in /run/netns."""
    found = {netns_inode(): "host"}
    for name in sorted(os.listdir("/run/netns")):
        try:
            found[os.stat(f"/run/netns/{name}").st_ino] = name
        except OSError:
            pass
    return found


def proxy_check(path_namespaces: set[str]) -> dict:
    """Who runs in the test host (`ps`), and who holds a socket on the ports in the
    host's namespace and the path's client and server namespaces (`ss -p`): a
    proxy for a published port would have to listen in the host's."""
    t0 = time.perf_counter()
    spaces = testhost_namespaces()
    procs = []
    for line in run(["ps", "-e", "-o", "pid=,comm="]).stdout.splitlines():
        pid, _, comm = line.strip().partition(" ")
        try:
            inode = os.stat(f"/proc/{pid}/ns/net").st_ino
        except OSError:
            continue
        if inode in spaces:
            procs.append({"pid": int(pid), "comm": comm.strip(), "netns": spaces[inode]})
    sockets = []
    for name in sorted(set(spaces.values()) & path_namespaces):
        cmd = ["ss", "-Htanp"] if name == "host" else ["ss", "-N", name, "-Htanp"]
        for line in run(cmd).stdout.splitlines():
            f = line.split()
            if len(f) < 5:
                continue
            lport, pport = f[3].rsplit(":", 1)[1], f[4].rsplit(":", 1)[1]
            if not {lport, pport} & {str(PORT), str(LAT_PORT)}:
                continue
            owners = sorted(set(re.findall(r'\("([^"]+)",pid=', " ".join(f[5:]))))
            sockets.append({"netns": name, "state": f[0], "local": f[3], "peer": f[4], "owners": owners})
    ours = {os.getpid(), os.getppid()}  # this script and the tools/testhost running it
    unexpected = sorted({f"{p['comm']} (pid {p['pid']})" for p in procs
                         if p["comm"] not in ALLOWED_PROCESSES and p["pid"] not in ours})
    owners = sorted({o for s in sockets for o in s["owners"]})
    host_listeners = [s for s in sockets if s["netns"] == "host" and s["state"] == "LISTEN"]
    flowing = [s for s in sockets if s["state"] == "ESTAB"]
    problems = []
    if unexpected:
        problems.append(f"processes other than iperf3 and this script's in the test host: {', '.join(unexpected)}")
    if set(owners) - CARRIERS:
        problems.append(f"sockets on port {PORT}/{LAT_PORT} held by {', '.join(sorted(set(owners) - CARRIERS))}")
    if host_listeners:
        problems.append(f"a listener on port {PORT}/{LAT_PORT} in the host's namespace "
                        f"(a userland proxy?): {host_listeners[0]['local']} {host_listeners[0]['owners']}")
    if not flowing:
        problems.append("no established connection on the port seen (looked too early or too late)")
    return {"processes": sorted({p["comm"] for p in procs if p["pid"] not in ours}), "socket_owners": owners,
            "sockets": sockets, "host_listeners": len(host_listeners), "problems": problems,
            "seconds": time.perf_counter() - t0}


# -- set-up and teardown ---------------------------------------------------------

def measured_paths(keys: list[str] | None) -> list[tuple]:
    """The paths of --paths (all without it), with the ceiling and the reference of each."""
    if keys is None:
        return PATHS
    wanted = {"veth", *keys, *(ISSUE12_REFERENCE[k] for k in keys if k in ISSUE12_REFERENCE)}
    if "bridge" in wanted:
        wanted.add("plain-bridge")
    return [path for path in PATHS if path[0] in wanted]


def ipv4_of(ns: str, ifname: str = "eth0") -> str:
    doc = json.loads(must(["ip", "-n", ns, "-j", "-4", "addr", "show", "dev", ifname]) or "[]")
    for link in doc:
        for a in link.get("addr_info", []):
            return a["local"]
    raise PathFailed(f"no IPv4 address on {ifname} in {ns}")


def sysctl(key: str) -> str | None:
    try:
        with open(f"/proc/sys/{key.replace('.', '/')}") as f:
            return f.read().strip()
    except OSError:
        return None


def setup_plain() -> None:
    """The ceiling's two namespaces, the plain bridge and the LAN client, with `ip` only."""
    for ns in OWN_NAMESPACES:
        must(["ip", "netns", "add", ns])
        must(["ip", "-n", ns, "link", "set", "lo", "up"])
    must(["ip", "link", "add", "dp-ceil", "netns", CEIL_A, "type", "veth", "peer", "name", "dp-ceil",
          "netns", CEIL_B])
    for ns, addr in ((CEIL_A, CEIL_ADDR_A), (CEIL_B, CEIL_ADDR_B)):
        must(["ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", "dp-ceil"])
        must(["ip", "-n", ns, "link", "set", "dp-ceil", "up"])
    # a bridge of its own in a namespace of its own: no rules, no conntrack there
    must(["ip", "-n", PLAIN_BR, "link", "add", "name", "dp-br", "type", "bridge"])
    must(["ip", "-n", PLAIN_BR, "link", "set", "dp-br", "up"])
    for ns, addr, port in ((PLAIN_A, PLAIN_ADDR_A, "pa"), (PLAIN_B, PLAIN_ADDR_B, "pb")):
        must(["ip", "link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", port, "netns", PLAIN_BR])
        must(["ip", "-n", PLAIN_BR, "link", "set", port, "master", "dp-br", "up"])
        must(["ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", "eth0"])
        must(["ip", "-n", ns, "link", "set", "eth0", "up"])
    must(["ip", "link", "add", LAN_HOST_IF, "type", "veth", "peer", "name", "eth0", "netns", LAN_NS])
    must(["ip", "addr", "add", f"{HOST_ADDR}/24", "dev", LAN_HOST_IF])
    must(["ip", "link", "set", LAN_HOST_IF, "up"])
    must(["ip", "-n", LAN_NS, "addr", "add", f"{LAN_ADDR}/24", "dev", "eth0"])
    must(["ip", "-n", LAN_NS, "link", "set", "eth0", "up"])
    setup_plain_router()
    setup_macvlan_lan()


def setup_plain_router() -> None:
    """RT_A -- bridge -- RT_NS (forwarding) -- bridge -- RT_B, the bridges in RT_BR (no firewall there)."""
    must(["ip", "netns", "exec", RT_NS, "sysctl", "-qw", "net.ipv4.ip_forward=1"])
    for side, ns, net in (("a", RT_A, RT_NET_A), ("b", RT_B, RT_NET_B)):
        bridge = f"dp-rb{side}"
        must(["ip", "-n", RT_BR, "link", "add", "name", bridge, "type", "bridge"])
        must(["ip", "-n", RT_BR, "link", "set", bridge, "up"])
        for inside, port, addr in ((ns, f"rs{side}", f"{net}.2"), (RT_NS, f"rr{side}", f"{net}.1")):
            ifname = "eth0" if inside == ns else f"eth{side}"
            must(["ip", "link", "add", ifname, "netns", inside, "type", "veth", "peer", "name", port,
                  "netns", RT_BR])
            must(["ip", "-n", RT_BR, "link", "set", port, "master", bridge, "up"])
            must(["ip", "-n", inside, "addr", "add", f"{addr}/24", "dev", ifname])
            must(["ip", "-n", inside, "link", "set", ifname, "up"])
    must(["ip", "-n", RT_A, "route", "add", f"{RT_NET_B}.0/24", "via", f"{RT_NET_A}.1"])
    must(["ip", "-n", RT_B, "route", "add", f"{RT_NET_A}.0/24", "via", f"{RT_NET_B}.1"])


def setup_macvlan_lan() -> None:
    """The macvlan network's parent: a veth, its host end with an address of the LAN, its peer the LAN."""
    must(["ip", "link", "add", MV_PARENT, "type", "veth", "peer", "name", "eth0", "netns", MV_LAN])
    must(["ip", "addr", "add", f"{MV_NET}.1/24", "dev", MV_PARENT])
    must(["ip", "link", "set", MV_PARENT, "up"])
    must(["ip", "-n", MV_LAN, "addr", "add", f"{MV_PEER}/24", "dev", "eth0"])
    must(["ip", "-n", MV_LAN, "link", "set", "eth0", "up"])


SETUP_BATCH = f"""\
create bridge {BRIDGE} --subnet {BRIDGE_SUBNET}
create ns a --network {BRIDGE}
create ns b --network {BRIDGE}
create ns srv --network {BRIDGE} --publish {PORT}:{PORT} --publish {LAT_PORT}:{LAT_PORT}
create bridge rta --subnet {CNET_RT_A}
create bridge rtb --subnet {CNET_RT_B}
create ns ra --network rta
create ns rb --network rtb
create router rt --network rta --network rtb
create macvlan mv --parent {MV_PARENT} --subnet {MV_NET}.0/24 --gateway {MV_PEER} --ip-range {MV_NET}.64/26
create ns mva --network mv
"""
TEARDOWN_BATCH = f"""\
delete ns a
delete ns b
delete ns srv
delete bridge {BRIDGE}
delete router rt
delete ns ra
delete ns rb
delete bridge rta
delete bridge rtb
delete ns mva
delete network mv
"""


def firewall_text() -> str:
    parts = []
    for cmd in (["nft", "list", "ruleset"], ["iptables-save"], ["ip6tables-save"]):
        if shutil.which(cmd[0]):
            parts.append(run(cmd).stdout)
    return "\n".join(parts)


def leftovers(sysctls_before: dict) -> list[str]:
    """What cnet left in the test host after deleting everything it made."""
    found = []
    text = firewall_text()
    if "cnet" in text.lower():
        found.append("firewall: " + "; ".join(sorted({l.strip() for l in text.splitlines()
                                                      if "cnet" in l.lower()}))[:300])
    links = [l.split(":")[1].strip().split("@")[0] for l in run(["ip", "-o", "link", "show"]).stdout.splitlines()]
    extra = [l for l in links if l not in ("lo", LAN_HOST_IF, MV_PARENT)]
    if extra:
        found.append(f"links: {', '.join(extra)}")
    names = [n for n in os.listdir("/run/netns") if n not in OWN_NAMESPACES]
    if names:
        found.append(f"namespaces: {', '.join(names)}")
    for key, old in sysctls_before.items():
        now = sysctl(key)
        if now != old:
            found.append(f"sysctl {key} = {now} (was {old})")
    return found


# -- the measurement, in one test host -------------------------------------------

def inner(args) -> int:
    check_inside()
    # stopped from outside (Ctrl-C there): end through the `finally` that kills the servers
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    backend = args.inner
    env = clean_env()
    env["CNET_FIREWALL"] = backend
    cnet = find_cnet()
    quick = args.quick
    seconds = QUICK_SECONDS if quick else SECONDS
    trips = QUICK_ROUND_TRIPS if quick else ROUND_TRIPS
    started = time.perf_counter()
    tag = f"[{backend}]"

    watched = ("net.ipv4.ip_forward", "net.ipv4.conf.all.route_localnet",
               "net.bridge.bridge-nf-call-iptables")
    sysctls_before = {k: sysctl(k) for k in watched}
    watched += (f"net.ipv4.conf.{BRIDGE}.route_localnet",)
    doc = {"backend": backend, "seconds": seconds, "round_trips_per_run": trips,
           "sysctls_before": sysctls_before, "paths": {}, "setup_error": None}
    errors: dict[str, str] = {}

    try:
        setup_plain()
    except PathFailed as e:
        for key, *_ in PATHS:
            errors[key] = f"setting up the namespaces with `ip`: {e}"
    if not errors:
        t0 = time.perf_counter()
        proc = run([cnet, "batch", "-"], env=env, input=SETUP_BATCH)
        doc["cnet_setup_seconds"] = time.perf_counter() - t0
        if proc.returncode != 0:
            why = f"cnet batch (set-up) exited {proc.returncode}: {proc.stderr.strip()}"
            doc["setup_error"] = why
            for key in CNET_PATHS:
                errors[key] = why
        elif proc.stderr.strip():
            doc["cnet_setup_warnings"] = proc.stderr.strip()
    doc["sysctls_during"] = {k: sysctl(k) for k in watched}

    addresses = {}
    for path in PATHS:
        key, _, _, _, address = path
        if key in errors:
            continue
        try:
            addresses[key] = address or ipv4_of(path[3])
        except PathFailed as e:
            errors[key] = str(e)
    doc["addresses"] = dict(addresses, b=addresses.get("bridge"), srv=None)
    try:
        doc["addresses"]["srv"] = ipv4_of("srv")
    except PathFailed:
        pass

    figures = {key: {"runs": [], "latency_runs": [], "latency_ns": []} for key, *_ in PATHS}

    def measure(path, run_no: int, check) -> None:
        key = path[0]
        got = iperf_once(path, addresses[key], WARMUP_SECONDS if run_no < 0 else seconds, check)
        if run_no < 0:
            figures[key]["warmup"] = got
            return
        figures[key]["runs"].append(got)
        rtt = ""
        if key not in REVERSED:
            lat = latency_once(path, addresses[key], trips)
            figures[key]["latency_runs"].append({**latency_summary(lat["samples_ns"]),
                                                 "server_saw": lat["server_saw"]})
            figures[key]["latency_ns"].extend(lat["samples_ns"])
            rtt = f"RTT median {figures[key]['latency_runs'][-1]['median_us']:6.1f} µs  "
        log(f"{tag} run {run_no + 1}/{args.runs} {key:17} {got['bps'] / 1e9:6.2f} Gbit/s  {rtt}"
            f"(server saw {got['server_saw']})")

    try:
        rounds = list(range(args.runs)) if quick else [-1, *range(args.runs)]
        for run_no in rounds:
            check_mounts()
            for path in measured_paths(args.paths):
                key = path[0]
                if key in errors:
                    continue
                look = None
                if run_no == rounds[0]:  # the warm-up, or with --quick the only timed run
                    look = lambda p=path: proxy_check({"host", p[2] or "host", p[3]})  # noqa: E731
                try:
                    measure(path, run_no, look)
                except (PathFailed, subprocess.TimeoutExpired, ValueError) as e:
                    errors[key] = f"run {run_no + 1 if run_no >= 0 else '0 (warm-up)'}: {e}"
                    log(f"{tag} FAILED {key}: {errors[key]}")
    finally:
        kill_all_started()

    # teardown through cnet, and what it left behind
    doc["teardown_error"], doc["leftovers"] = None, []
    if "cnet_setup_seconds" in doc and doc["setup_error"] is None:
        t0 = time.perf_counter()
        proc = run([cnet, "batch", "-"], env=env, input=TEARDOWN_BATCH)
        doc["cnet_teardown_seconds"] = time.perf_counter() - t0
        if proc.returncode != 0:
            doc["teardown_error"] = f"cnet batch (teardown) exited {proc.returncode}: {proc.stderr.strip()}"
        doc["leftovers"] = leftovers(sysctls_before)

    for key, f in figures.items():
        lookup = f.get("warmup") or (f["runs"][0] if f["runs"] else None)
        doc["paths"][key] = {
            "error": errors.get(key),
            "throughput_bps": [r["bps"] for r in f["runs"]],
            "iperf": f["runs"],
            "warmup": f.get("warmup"),
            "proxy_check": (lookup or {}).get("proxy_check"),
            "latency_runs": f["latency_runs"],
            "latency": latency_summary(f["latency_ns"]) if f["latency_ns"] else None,
        }
    doc["wall"] = time.perf_counter() - started
    Path(args.out).write_text(json.dumps(doc), encoding="utf-8")
    return 0


# == outside: install, test hosts, figures ====================================

def ensure_iperf3() -> str | None:
    """Install iperf3 if missing; None when it is there, else why not."""
    if shutil.which("iperf3"):
        return None
    if shutil.which("apt-get") is None:
        return "iperf3 is not installed and there is no apt-get to install it"
    log("installing iperf3 with apt-get ...")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "iperf3"]):
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            lines = (proc.stderr or proc.stdout).strip().splitlines()
            return f"{' '.join(cmd)} failed: {lines[-1] if lines else proc.returncode}"
    if not shutil.which("iperf3"):
        return "apt-get installed iperf3 but there is no iperf3 on PATH"
    return None


def machine_snapshot() -> dict:
    """This machine's own network, as the brief's check reads it."""
    def out(cmd):
        if not shutil.which(cmd[0]):
            return f"({cmd[0]} not installed)"
        p = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        return p.stdout if p.returncode == 0 else f"({' '.join(cmd)} failed)"

    def rules(text):  # no timestamps, no packet counters
        return [re.sub(r"\[\d+:\d+\]", "", l) for l in text.splitlines() if not l.startswith("#")]

    return {
        "ip netns list": out(["ip", "netns", "list"]).splitlines(),
        "links": sorted(l.split()[0] for l in out(["ip", "-br", "link"]).splitlines() if l.strip()),
        "nft list ruleset": out(["nft", "list", "ruleset"]).splitlines(),
        "iptables-save": rules(out(["iptables-save"])),
        "ip6tables-save": rules(out(["ip6tables-save"])),
    }


def stop_testhost(proc: subprocess.Popen) -> None:
    """SIGTERM to the test host's process group (the script inside then kills its
    servers), SIGKILL if it is still there after 10 s. Anything left under
    `timeout` stops by itself within its limit."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.communicate(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            pass


def run_inside(backend: str, args, out: Path) -> tuple[dict | None, str]:
    env = clean_env()
    env[OUTER_NETNS] = str(netns_inode())
    cmd = [str(TESTHOST), "env", f"{INSIDE}=1", sys.executable, THIS, "--inner", backend,
           "--out", str(out), "--runs", str(args.runs), *(["--quick"] if args.quick else []),
           *(["--paths", ",".join(args.paths)] if args.paths else [])]
    tests = len(measured_paths(args.paths)) * (args.runs + (0 if args.quick else 1))
    time_limit = INNER_TIMEOUT_BASE + INNER_TIMEOUT_PER_TEST * tests
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=None, text=True, start_new_session=True)
    try:
        stdout, _ = proc.communicate(timeout=time_limit)
    except BaseException as e:  # the time limit, or Ctrl-C here
        stop_testhost(proc)
        if isinstance(e, subprocess.TimeoutExpired):
            return None, f"timed out after {time_limit} s"
        raise
    if proc.returncode != 0 or not out.exists():
        return None, (stdout.strip() or f"the test host exited {proc.returncode} (see above)")
    doc = json.loads(out.read_text(encoding="utf-8"))
    out.unlink()
    return doc, ""


def spread(xs: list[float]) -> dict | None:
    return common.summary(xs) if xs else None


def summarize(docs: dict[str, dict]) -> tuple[list[dict], dict[str, str]]:
    """One row per (path, backend): throughput, ratio to the ceiling run by run, latency."""
    rows, failed = [], {}
    for key, label, client_ns, server_ns, _ in PATHS:
        for backend in BACKENDS:
            d = docs.get(backend)
            if d is None:
                continue
            p = d["paths"][key]
            if not p["throughput_bps"] and not p["error"]:
                continue  # not measured (--paths)
            ceil = d["paths"]["veth"]
            row = {"path": key, "label": label, "backend": backend,
                   "client": client_ns or "host", "server": server_ns, "error": p["error"],
                   "throughput_bps": spread(p["throughput_bps"]),
                   "retransmits": [r["retransmits"] for r in p["iperf"]],
                   "cpu_percent": [[r["cpu_client"], r["cpu_server"]] for r in p["iperf"]],
                   "server_saw": sorted({r["server_saw"] for r in p["iperf"] if r["server_saw"]}),
                   "ratio_to_ceiling": None, "latency": p["latency"], "latency_runs": p["latency_runs"],
                   "latency_ratio_to_ceiling": None, "proxy_check": p["proxy_check"]}
            if p["error"]:
                failed[f"{key} ({backend})"] = p["error"]
            n = min(len(p["throughput_bps"]), len(ceil["throughput_bps"]))
            if n and key != "veth":  # run i of the path against run i of the ceiling
                row["ratio_to_ceiling"] = spread([p["throughput_bps"][i] / ceil["throughput_bps"][i]
                                                  for i in range(n)])
            m = min(len(p["latency_runs"]), len(ceil["latency_runs"]))
            if m and key != "veth":
                row["latency_ratio_to_ceiling"] = spread([p["latency_runs"][i]["median_us"]
                                                          / ceil["latency_runs"][i]["median_us"] for i in range(m)])
            rows.append(row)
    return rows, failed


def gbit(bps: float) -> str:
    return f"{bps / 1e9:.2f}"


def grouped(failed: dict[str, str]) -> list[str]:
    """`what: why` lines, one per distinct reason."""
    by_reason: dict[str, list[str]] = {}
    for what, why in failed.items():
        by_reason.setdefault(why, []).append(what)
    return [f"{', '.join(whats)}: {why}" for why, whats in by_reason.items()]


def report(args, docs, rows, failed, notes, wall) -> str:
    seconds = QUICK_SECONDS if args.quick else SECONDS
    trips = QUICK_ROUND_TRIPS if args.quick else ROUND_TRIPS
    lines = [f"### Data path: iperf3, one TCP stream, {args.runs} run(s) x {seconds} s; "
             f"ping-pong, {args.runs} x {trips} round trips of 1 byte "
             f"({'quick' if args.quick else 'full'} run)", ""]
    table = []
    for r in rows:
        t = r["throughput_bps"]
        if r["error"] and not t:
            table.append([f"`{r['path']}` {r['label']}", r["backend"], "FAILED", "", "", "", "", ""])
            continue
        thr = "-" if not t else gbit(t["median"]) if len(t["samples"]) == 1 else \
            f"{gbit(t['median'])} ({gbit(t['min'])}–{gbit(t['max'])})"
        if r["path"] == "veth":
            ratio, met = "(ceiling)", ""
        elif r["ratio_to_ceiling"]:
            q = r["ratio_to_ceiling"]
            ratio = f"{q['median'] * 100:.1f} %"
            if len(q["samples"]) > 1:
                ratio += f" ({q['min'] * 100:.0f}–{q['max'] * 100:.0f})"
            met = "" if r["path"] in REFERENCES | set(ISSUE12_REFERENCE) else \
                "yes" if q["median"] >= TARGET else "no"
        else:
            ratio, met = "-", ""
        lat = r["latency"]
        rtt = f"{lat['median_us']:.0f}" if lat else "-"
        p99 = f"{lat['p99_us']:.0f}" if lat else "-"
        lr = f"{r['latency_ratio_to_ceiling']['median']:.2f}x" if r["latency_ratio_to_ceiling"] else ""
        saw = ", ".join(r["server_saw"]) or "-"
        if r["error"]:
            thr += " FAILED"
        table.append([f"`{r['path']}` {r['label']}", r["backend"], thr, ratio, met, rtt, p99, lr, saw])
    lines.append(common.markdown_table(
        ["path", "firewall", "Gbit/s median (min–max)", "of ceiling, median % (min–max)", "≥ 90 %",
         "RTT median µs", "RTT p99 µs", "RTT vs ceiling", "server saw the client as"],
        [row + [""] * (9 - len(row)) for row in table],
        ["l", "l", "r", "r", "l", "r", "r", "r", "l"]))
    lines.append("")
    lines += [f"- {n}" for n in target_notes(docs, rows) + notes]
    if failed:
        lines.append("")
        lines += [f"- FAILED {line}" for line in grouped(failed)]
    lines.append(f"- whole run {wall:.0f} s; raw figures in bench/results/datapath.json")
    return "\n".join(lines) + "\n"


def target_notes(docs: dict, rows: list[dict]) -> list[str]:
    """Issue 5's target, the cnet bridge against the plain bridge, and issue 12's paths against their
    references, all run by run."""
    notes = []
    cnet_rows = [r for r in rows if r["path"] in CNET_PATHS - set(ISSUE12_REFERENCE) and r["ratio_to_ceiling"]]
    below = [f"{r['path']} ({r['backend']}) {r['ratio_to_ceiling']['median'] * 100:.1f} %"
             for r in cnet_rows if r["ratio_to_ceiling"]["median"] < TARGET]
    if cnet_rows:
        notes.append(f"Target (issue 5: a cnet bridge ≥ {TARGET * 100:.0f} % of the veth ceiling, published ports "
                     f"the same): {len(cnet_rows) - len(below)} of {len(cnet_rows)} cnet rows meet it"
                     + (f"; below: {', '.join(below)}." if below else "."))
    parts = []
    for backend, d in docs.items():
        cnet_br = d["paths"]["bridge"]["throughput_bps"]
        plain = d["paths"]["plain-bridge"]["throughput_bps"]
        ceil = d["paths"]["veth"]["throughput_bps"]
        n = min(len(cnet_br), len(plain), len(ceil))
        if n:
            r1 = statistics.median(cnet_br[i] / plain[i] for i in range(n))
            r2 = statistics.median(plain[i] / ceil[i] for i in range(n))
            parts.append(f"{backend}: cnet bridge / plain bridge {r1 * 100:.0f} %, plain bridge / veth {r2 * 100:.0f} %")
    if parts:
        notes.append("The bridge itself, run by run (median): " + "; ".join(parts) + ".")
    for key, reference in ISSUE12_REFERENCE.items():
        found = []
        for backend, d in docs.items():
            cnet_bps = d["paths"].get(key, {}).get("throughput_bps") or []
            ref_bps = d["paths"].get(reference, {}).get("throughput_bps") or []
            n = min(len(cnet_bps), len(ref_bps))
            if n:
                q = common.summary([cnet_bps[i] / ref_bps[i] for i in range(n)])
                span = f" ({q['min'] * 100:.0f}–{q['max'] * 100:.0f})" if n > 1 else ""
                found.append(f"{backend} {q['median'] * 100:.0f} %{span} "
                             f"({'met' if q['median'] >= ISSUE12_TARGET else 'not met'})")
        if found:
            notes.append(f"Issue 12, {key} ≥ {ISSUE12_TARGET * 100:.0f} % of {reference} (run by run, "
                         f"median (min–max)): " + "; ".join(found) + ".")
    return notes


def proxy_notes(rows: list[dict]) -> tuple[list[str], dict[str, str]]:
    notes, problems = [], {}
    looked = [r for r in rows if r["proxy_check"]]
    for r in looked:
        for p in r["proxy_check"]["problems"]:
            problems[f"{r['path']} ({r['backend']})"] = p
    published = [r for r in looked if r["path"] in PUBLISHED]
    if not looked:
        return notes, problems
    procs = sorted({p for r in looked for p in r["proxy_check"]["processes"]})
    owners = sorted({o for r in looked for o in r["proxy_check"]["socket_owners"]})
    if published and not any(f"{r['path']} ({r['backend']})" in problems for r in published):
        notes.append(f"No userland proxy: during a transfer on each of the {len(published)} published-port "
                     f"paths, `ps` showed only {', '.join(procs)} in the test host's namespaces (besides this "
                     f"script and tools/testhost), every socket "
                     f"on port {PORT} belonged to {', '.join(owners) or 'nothing'}, and nothing listened "
                     f"on the published port in the host's namespace: the kernel's NAT carries the traffic.")
    return notes, problems


def outside(args) -> int:
    if os.geteuid() != 0:
        fail("needs root: it measures inside throw-away test hosts (tools/testhost, unshare --net --mount)")
    find_cnet()
    why_not = ensure_iperf3()
    if why_not and args.quick:
        # a smoke run (CI) should not fail on a package mirror; it says what it skipped
        log(f"bench/datapath.py: SKIPPED, no data path figures: {why_not}")
        return 0
    if why_not:
        fail(why_not)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # as Ctrl-C: stop the test host first
    started = time.perf_counter()
    load_before = os.getloadavg()
    before = machine_snapshot()
    tmp = Path(tempfile.mkdtemp(prefix="cnet-datapath-"))
    docs, host_failed = {}, {}
    try:
        for backend in BACKENDS:
            log(f"[{backend}] starting a test host ...")
            doc, err = run_inside(backend, args, tmp / f"{backend}.json")
            if doc is None:
                host_failed[backend] = err
                log(f"[{backend}] FAILED: {err}")
            else:
                docs[backend] = doc
                log(f"[{backend}] done in {doc['wall']:.0f} s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    after = machine_snapshot()
    wall = time.perf_counter() - started

    rows, failed = summarize(docs)
    for backend, err in host_failed.items():
        failed[f"every path ({backend})"] = err
    notes, proxy_problems = proxy_notes(rows)
    for k, v in proxy_problems.items():
        failed[f"{k}, proxy check"] = v
    for backend, d in docs.items():
        if d.get("teardown_error"):
            notes.append(f"{backend}: {d['teardown_error']}")
        if d.get("leftovers"):
            notes.append(f"{backend}: after cnet deleted everything, the test host still had: "
                         + "; ".join(d["leftovers"]))
        if d.get("cnet_setup_warnings"):
            notes.append(f"{backend}: cnet set-up warned: {d['cnet_setup_warnings']}")
    if docs:
        d = next(iter(docs.values()))
        bnf = d["sysctls_during"].get("net.bridge.bridge-nf-call-iptables")
        how = ("bridged IPv4 traffic passes the IP netfilter hooks, and conntrack where cnet's NAT "
               "loaded it" if bnf == "1" else "bridged traffic skips the IP netfilter hooks")
        notes.append(f"In the test hosts net.bridge.bridge-nf-call-iptables = {bnf} ({how}); the ceiling "
                     "and plain-bridge namespaces have no firewall rules.")
    if load_before[0] > 0.5:
        notes.append(f"The machine was busy before the run (load average {load_before[0]:.2f} over 1 min, "
                     f"{os.cpu_count()} CPUs): something else competed for the CPUs, so the spread is wider "
                     "than on an idle machine.")
    changed = [k for k in before if before[k] != after[k]]
    if changed:
        failed["this machine"] = (f"its own {', '.join(changed)} changed during the run "
                                  "(by this script or something running at the same time)")
    else:
        notes.append("This machine's own namespace after the run: `ip netns list`, `ip -br link`, "
                     "`nft list ruleset`, `iptables-save` and `ip6tables-save` as before it.")

    text = report(args, docs, rows, failed, notes, wall)
    print(text)
    table = common.table_path("datapath", args, whole=not args.paths)
    table.write_text(text, encoding="utf-8")
    version = subprocess.run(["iperf3", "--version"], capture_output=True, text=True).stdout.splitlines()
    path = common.write_results("datapath", args, {
        "seconds": QUICK_SECONDS if args.quick else SECONDS,
        "warmup_seconds": None if args.quick else WARMUP_SECONDS,
        "round_trips_per_run": QUICK_ROUND_TRIPS if args.quick else ROUND_TRIPS,
        "pingpong_warmup": PINGPONG_WARMUP,
        "backends": list(BACKENDS),
        "bridge": BRIDGE, "bridge_subnet": BRIDGE_SUBNET,
        "host_address": HOST_ADDR, "lan_address": LAN_ADDR,
        "ceiling": [CEIL_ADDR_A, CEIL_ADDR_B], "ports": [PORT, LAT_PORT],
        "paths": {key: {"label": label, "client": c or "host", "server": s}
                  for key, label, c, s, _ in PATHS},
        "iperf3": version[0] if version else None,
        "kernel": os.uname().release,
        "target_ratio": TARGET,
        "issue12_target_ratio": ISSUE12_TARGET, "issue12_reference": ISSUE12_REFERENCE,
        "macvlan": {"parent": MV_PARENT, "host_end": f"{MV_NET}.1", "lan_peer": MV_PEER},
        "test_hosts": {b: {k: v for k, v in d.items() if k != "paths"} for b, d in docs.items()},
        "failed": failed,
        "machine_unchanged": not changed,
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "total_seconds": wall,
    }, rows)
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc["unit"] = ("throughput_bps: bits per second (iperf3 receiver); latency: microseconds "
                   "(one round trip of 1 byte); ratios: plain numbers")
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(f"raw figures: {os.path.relpath(path, ROOT)}; table: {os.path.relpath(table, ROOT)}")
    if failed:
        for line in grouped(failed):
            print(f"bench/datapath.py: failed: {line}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_pingpong-serve"]:
        return pingpong_serve(int(argv[1]), float(argv[2]))
    if argv[:1] == ["_pingpong"]:
        return pingpong_client(argv[1], int(argv[2]), int(argv[3]), int(argv[4]))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=None, metavar="N",
                   help=f"timed runs per path (default {DEFAULT_RUNS}; 1 with --quick)")
    p.add_argument("--quick", action="store_true",
                   help=f"1 run of {QUICK_SECONDS} s per path and no separate warm-up: a smoke run")
    p.add_argument("--paths", type=lambda text: text.split(","), metavar="KEY,...",
                   help="measure only these paths (with the ceiling and each one's reference): "
                        + ", ".join(key for key, *_ in PATHS))
    p.add_argument("--inner", choices=BACKENDS, help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.runs is None:
        args.runs = 1 if args.quick else DEFAULT_RUNS
    unknown = sorted(set(args.paths or ()) - {key for key, *_ in PATHS})
    if unknown:
        p.error(f"--paths: no such path: {', '.join(unknown)}")
    if args.runs < 1:
        p.error("--runs must be at least 1")
    if os.environ.get(INSIDE) == "1":
        if not args.inner or not args.out:
            fail(f"{INSIDE}=1 without --inner/--out")
        sys.exit(inner(args))
    try:
        code = outside(args)
    except KeyboardInterrupt:
        print("bench/datapath.py: interrupted; the test host was stopped", file=sys.stderr)
        code = 130
    sys.exit(code)


if __name__ == "__main__":
    main()
