"""Overlay networks on three test hosts with a real etcd cluster
(tests/overlay_cluster.py): what an overlay costs against a bridge, how fast
`cnet agent` carries a change to another host, what the agent holds in
memory and spends idle, and TCP throughput through the overlay against a
bare VXLAN tunnel between the same two hosts (the ceiling).

Rows:
- attach: `cnet attach` of a new sandbox on h1, to a bridge and to an
  overlay, interleaved (target: overlay <= bridge + 50 ms).
- propagation: with `cnet agent` on h1, from `cnet attach` on h3 to h1's
  kernel holding both entries of the new address (FDB: MAC -> h3's VTEP;
  neighbour: IP -> MAC), and from `cnet detach` to both gone. A watcher in
  h1 (pyroute2 on the neighbour multicast group: events, not polling) stamps
  each change with CLOCK_MONOTONIC, the clock the benchmark stamps the
  commands with. Given after the command returned (negative: h1 had it
  before the command was done) and from the command's start; first with the
  overlay nearly empty, then with ENDPOINTS remote endpoints (the agent reads
  the network's records whole on each change). Target: median < 1 s.
- agent: its resident set (VmRSS) after syncing ENDPOINTS address records
  of other hosts (put straight into etcd), its CPU time over IDLE seconds
  with nothing changing (target: <= 80 MB, ~0 CPU: it watches, it does not
  poll; its lease keep-alive every 3 s is all it should spend), and its
  resident set after CHURN seconds of attach/detach on h2 (the issue asks
  for 30 minutes flat within 10 %: --churn 1800).
- throughput: iperf3 single-stream TCP, overlay sandbox on h1 -> on h2, and
  a VXLAN device made by hand between h1 and h2 (the ceiling, same underlay,
  the same MTU; target: overlay >= 90 % of it), and the overlay's own
  topology made by hand (a namespace's veth on a bridge with a VXLAN port:
  what cnet adds beyond the topology), interleaved, each after one untimed
  warm-up run. Skipped, with the reason, when iperf3 is missing.

Nothing here asserts a timing. Run as root from the repository root:
    .venv/bin/python bench/overlay.py [--quick] [--runs N] [--churn SECONDS]
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time

import common

sys.path.insert(0, str(common.BENCH_DIR.parent / "tests"))
from overlay_cluster import STORE_URL, Cluster, address, etcd_missing  # noqa: E402
from testhost import CNET  # noqa: E402

ENDPOINTS, QUICK_ENDPOINTS = 1000, 100
IDLE, QUICK_IDLE = 10, 2
SECONDS, QUICK_SECONDS = 3, 1    # iperf3 -t of a timed run
CHURN, QUICK_CHURN = 120, 3      # seconds of attach/detach on h2 while the agent runs
VXLAN = "cnvx4096"               # the first overlay's device (VNIs start at 4096)
SETTLE_TIMEOUT = 10.0            # seconds a change may take to reach h1 before the run fails
AF_INET, AF_BRIDGE = 2, 7        # neighbour entries and FDB entries, as netlink tells them apart

# Runs in h1: one line per neighbour or FDB change, stamped on arrival.
WATCHER = """
import time
from pyroute2 import IPRoute
from pyroute2.netlink.rtnl import RTMGRP_NEIGH
ipr = IPRoute()
ipr.bind(groups=RTMGRP_NEIGH)
print("ready", flush=True)
while True:
    for m in ipr.get():
        print(time.monotonic(), m["event"], m["family"], m.get("lladdr"), m.get("dst"), flush=True)
"""


def must(result) -> str:
    if result.returncode != 0:
        raise RuntimeError(f"{result.args}: {result.stderr.strip()}")
    return result.stdout


def attach_rows(c: Cluster, runs: int) -> dict:
    h1 = c.host(1)
    bridge, overlay = [], []
    for i in range(runs + 1):  # the first of each is a warm-up
        must(h1.cnet("create", "ns", f"t{i}"))
        for net, samples in (("br0", bridge), ("ov0", overlay)):
            start = time.perf_counter()
            must(h1.cnet("attach", f"t{i}", net))
            if i:
                samples.append(time.perf_counter() - start)
    return {"bridge": common.summary(bridge), "overlay": common.summary(overlay)}


class Watch:
    """The neighbour and FDB changes of a host, as they happen, with the
    CLOCK_MONOTONIC time each arrived (the same clock in every namespace)."""

    def __init__(self, host) -> None:
        self.proc = host.popen([sys.executable, "-c", WATCHER], stdout=subprocess.PIPE, text=True)
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the netlink watcher in h1 did not start")
        self.events: list[tuple[float, str, int, str | None, str | None]] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            stamp, event, family, lladdr, dst = line.split()
            with self.lock:
                self.events.append((float(stamp), event, int(family), lladdr, dst))

    def first(self, since: float, event: str, family: int, lladdr=None, dst=None):
        """The earliest matching event after since, or None."""
        with self.lock:
            return next((e for e in self.events if e[0] >= since and e[1] == event and e[2] == family
                         and lladdr in (None, e[3]) and dst in (None, e[4])), None)

    def wait(self, since: float, event: str, family: int, lladdr=None, dst=None):
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while (found := self.first(since, event, family, lladdr, dst)) is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no {event} of family {family} for {lladdr or dst} on h1"
                                   f" within {SETTLE_TIMEOUT:.0f} s")
            time.sleep(0.002)
        return found

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def timed(h, *args: str) -> tuple[float, float, str]:
    """(start, end, stdout) of `cnet ARGS` in host h, on CLOCK_MONOTONIC."""
    start = time.monotonic()
    out = must(h.cnet(*args))
    return start, time.monotonic(), out


def propagation(c: Cluster, watch: Watch, runs: int, ns: str) -> dict:
    """Attach and detach of sandbox ns on h3 until h1's kernel holds, then
    lacks, both entries (each attach gets the network's next address)."""
    h3 = c.host(3)
    after = {"attach": [], "detach": []}
    from_start = {"attach": [], "detach": []}
    must(h3.cnet("create", "ns", ns))
    for _ in range(runs):
        start, end, out = timed(h3, "attach", ns, "ov0")
        ip = out.split("/")[0]
        neighbour = watch.wait(start, "RTM_NEWNEIGH", AF_INET, dst=ip)
        mac = neighbour[3]
        seen = max(neighbour[0], watch.wait(start, "RTM_NEWNEIGH", AF_BRIDGE, lladdr=mac)[0])
        after["attach"].append(seen - end)
        from_start["attach"].append(seen - start)
        start, end, _ = timed(h3, "detach", ns, "ov0")
        gone = max(watch.wait(start, "RTM_DELNEIGH", AF_INET, dst=ip)[0],
                   watch.wait(start, "RTM_DELNEIGH", AF_BRIDGE, lladdr=mac)[0])
        after["detach"].append(gone - end)
        from_start["detach"].append(gone - start)
    must(h3.cnet("delete", "ns", ns))
    return {kind: {"after_return": common.summary(after[kind]), "from_start": common.summary(from_start[kind])}
            for kind in after}


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def agent_figures(c: Cluster, pid: int, endpoints: int, idle: float) -> dict:
    """RSS after the agent synced `endpoints` records of h2 and h3, and its CPU over `idle` s."""
    h1 = c.host(1)
    # cnet's own client, from h1: one put per record, as the attaches of other hosts would
    script = f"""
import sys
sys.path.insert(0, {str(common.BENCH_DIR.parent / "src")!r})
from cnet.store import open_store
db = open_store({STORE_URL!r})
for i in range({endpoints}):
    host = 2 + i % 2
    db.put(f"/cnet/addrs/ov0/10.60.{{100 + i // 250}}.{{i % 250 + 1}}",
           {{"host": f"h{{host}}", "mac": "02:00:00:%02x:%02x:%02x" % (i >> 16 & 255, i >> 8 & 255, i & 255),
            "sandbox": f"fake{{i}}", "vtep": f"10.77.0.1{{host}}"}})
"""
    rss_before = rss_mb(pid)
    must(h1.run([sys.executable, "-c", script], timeout=300))
    deadline = time.monotonic() + 120
    while len(h1.run(["bridge", "fdb", "show", "dev", VXLAN]).stdout.splitlines()) < endpoints:
        if time.monotonic() > deadline:
            raise RuntimeError("the agent did not sync the records in 120 s")
        time.sleep(0.2)
    time.sleep(1)  # the last events of the watch, handled
    rss = rss_mb(pid)
    before = cpu_seconds(pid)
    time.sleep(idle)
    return {"endpoints": endpoints, "rss_mb_empty": rss_before, "rss_mb": rss, "idle_seconds": idle,
            "idle_cpu_seconds": cpu_seconds(pid) - before}


def churn(c: Cluster, pid: int, seconds: float) -> dict:
    """Attach/detach of one sandbox on h2 for that long: the agent's RSS and
    CPU through it, and the commands' own times (the overlay is full now)."""
    h2 = c.host(2)
    must(h2.cnet("create", "ns", "churn"))
    rss = [rss_mb(pid)]
    cpu = cpu_seconds(pid)
    attach, detach = [], []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        start, done, _ = timed(h2, "attach", "churn", "ov0")
        attach.append(done - start)
        start, done, _ = timed(h2, "detach", "churn", "ov0")
        detach.append(done - start)
        rss.append(rss_mb(pid))
    time.sleep(1)  # the last changes, handled
    rss.append(rss_mb(pid))
    cpu = cpu_seconds(pid) - cpu
    return {"seconds": seconds, "cycles": len(attach), "rss_mb_start": rss[0], "rss_mb_end": rss[-1],
            "rss_mb_max": max(rss), "growth": rss[-1] / rss[0] - 1, "cpu_seconds": cpu,
            "cpu_seconds_per_change": cpu / (2 * len(attach)),
            "attach": common.summary(attach), "detach": common.summary(detach)}


def iperf(client_host, server_host, address_: str, seconds: int, client_ns=None, server_ns=None) -> float:
    """Gbit/s of one iperf3 TCP stream from client_host to the server at
    address_ on server_host (each in its sandbox, when given)."""
    def wrap(ns, cmd):
        return ["ip", "netns", "exec", ns, *cmd] if ns else cmd

    server = server_host.popen(wrap(server_ns, ["iperf3", "-s", "-1", "-p", "5201"]), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    try:
        out = must(client_host.run(wrap(client_ns, ["iperf3", "-c", address_, "-p", "5201", "-t", str(seconds),
                                                    "-J"]), timeout=seconds + 30))
        return json.loads(out)["end"]["sum_received"]["bits_per_second"] / 1e9
    finally:
        server.kill()


def tunnel_by_hand(h, n: int, mtu: int) -> None:
    """On host hN: vxbare, a VXLAN device with an address (the bare tunnel),
    and the overlay's topology by hand: namespace raw, a veth pair to bridge
    brraw, whose other port is vxraw. Flooding to the other host stands in
    for the overlay's static entries."""
    def vxlan(name: str, vni: int, port: int) -> None:
        must(h.run(["ip", "link", "add", name, "type", "vxlan", "id", str(vni), "local", address(n),
                    "dstport", str(port), "nolearning"]))
        must(h.run(["ip", "link", "set", name, "mtu", str(mtu), "up"]))
        must(h.run(["bridge", "fdb", "append", "00:00:00:00:00:00", "dev", name, "dst", address(3 - n)]))

    vxlan("vxbare", 99, 4790)
    must(h.run(["ip", "addr", "add", f"10.99.0.{n}/24", "dev", "vxbare"]))
    vxlan("vxraw", 98, 4791)
    for cmd in (["ip", "netns", "add", "raw"],
                ["ip", "link", "add", "brraw", "mtu", str(mtu), "type", "bridge"],
                ["ip", "link", "set", "vxraw", "master", "brraw"],
                ["ip", "link", "set", "brraw", "up"],
                ["ip", "link", "add", "vraw", "mtu", str(mtu), "type", "veth", "peer", "eth0", "netns", "raw"],
                ["ip", "link", "set", "vraw", "master", "brraw", "up"],
                ["ip", "-n", "raw", "addr", "add", f"10.98.0.{n}/24", "dev", "eth0"],
                ["ip", "-n", "raw", "link", "set", "eth0", "up"]):
        must(h.run(cmd))


def throughput(c: Cluster, runs: int, seconds: int) -> dict:
    h1, h2 = c.host(1), c.host(2)
    mtu = h1.links()[VXLAN]["mtu"]
    for n, h in ((1, h1), (2, h2)):  # the same underlay and MTU as the overlay
        tunnel_by_hand(h, n, mtu)
    must(h1.cnet("create", "ns", "tp1", "--network", "ov0"))
    ip2 = must(h2.cnet("create", "ns", "tp2", "--network", "ov0")).split("/")[0]
    must(h1.cnet("create", "overlay", "ov0", "--exist-ok"))  # h1 learns of tp2 (no agent now)
    paths = {"bare": lambda: iperf(h1, h2, "10.99.0.2", seconds),
             "by_hand": lambda: iperf(h1, h2, "10.98.0.2", seconds, "raw", "raw"),
             "overlay": lambda: iperf(h1, h2, ip2, seconds, "tp1", "tp2")}
    for run in paths.values():
        run()  # warm-up: the first transfer of a path pays for its neighbour and route lookups
    gbps = {name: [] for name in paths}
    for _ in range(runs):
        for name, run in paths.items():
            gbps[name].append(run())
    figures = {f"{name}_gbps": common.summary(samples) for name, samples in gbps.items()}
    return {"mtu": mtu, **figures,
            "ratio": figures["overlay_gbps"]["median"] / figures["bare_gbps"]["median"],
            "ratio_by_hand": figures["overlay_gbps"]["median"] / figures["by_hand_gbps"]["median"]}


def propagation_rows(p: dict, label: str) -> list[list[str]]:
    return [[f"{kind} h3 -> h1's kernel, {label} (ms)", common.ms(p[kind]["after_return"]["median"]),
             common.ms(p[kind]["after_return"]["max"]),
             f"from the command's start: median {common.ms(p[kind]['from_start']['median'])}"]
            for kind in ("attach", "detach")]


def main() -> int:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--churn", type=float, default=None, metavar="SECONDS",
                   help=f"attach/detach churn while the agent runs (default {CHURN}, or {QUICK_CHURN} with --quick)")
    args = common.parse(p)
    why_not = etcd_missing()
    if why_not:
        print(f"overlay benchmark skipped: {why_not}")
        return 0
    # The cluster's test hosts nest in one of their own, which makes (and
    # afterwards removes) the mount points they need, as pytest's session does.
    common.measured_in_testhost(__file__, args, sys.argv[1:], measure)
    return 0


def measure(args) -> None:
    endpoints = QUICK_ENDPOINTS if args.quick else ENDPOINTS
    idle = QUICK_IDLE if args.quick else IDLE
    seconds = QUICK_SECONDS if args.quick else SECONDS
    churn_seconds = args.churn if args.churn is not None else QUICK_CHURN if args.quick else CHURN
    c = Cluster()
    results, rows = {}, []
    try:
        h1 = c.host(1)
        must(h1.cnet("create", "overlay", "ov0", "--subnet", "10.60.0.0/16"))
        for n in (2, 3):
            must(c.host(n).cnet("create", "overlay", "ov0"))
        must(h1.cnet("create", "bridge", "br0", "--subnet", "10.90.0.0/22"))
        results["attach"] = a = attach_rows(c, args.runs)
        rows.append(["attach to a bridge / to an overlay, h1 (ms)", common.ms(a["bridge"]["median"]),
                     common.ms(a["overlay"]["median"]),
                     f"overlay - bridge = {common.ms(a['overlay']['median'] - a['bridge']['median'])}"])
        watch = Watch(h1)
        # nsenter execs the command: the process is the agent's python itself
        agent = h1.popen([*CNET, "agent"], stderr=subprocess.DEVNULL)
        try:
            time.sleep(1.5)  # its first sync and its watch, started
            results["propagation"] = prop = propagation(c, watch, args.runs, "prop-empty")
            rows += propagation_rows(prop, "empty overlay")
            results["agent"] = g = agent_figures(c, agent.pid, endpoints, idle)
            rows.append([f"agent RSS: no / {endpoints} remote endpoints", f"{g['rss_mb_empty']:.1f} MB",
                         f"{g['rss_mb']:.1f} MB", f"CPU over {idle:g} s idle: {g['idle_cpu_seconds'] * 1000:.0f} ms"])
            results["propagation_full"] = prop = propagation(c, watch, args.runs, "prop-full")
            rows += propagation_rows(prop, f"{endpoints} endpoints")
            results["churn"] = ch = churn(c, agent.pid, churn_seconds)
            rows.append([f"agent RSS over {churn_seconds:g} s churn ({ch['cycles']} attach+detach on h2)",
                         f"{ch['rss_mb_start']:.1f} MB", f"{ch['rss_mb_end']:.1f} MB",
                         f"growth {ch['growth']:+.1%}, max {ch['rss_mb_max']:.1f} MB"])
            rows.append(["agent CPU through the churn, per change (ms)", common.ms(ch["cpu_seconds_per_change"]), "",
                         f"{ch['cpu_seconds']:.1f} s in all"])
            rows.append([f"attach / detach on an overlay with {endpoints} endpoints, h2 (ms)",
                         common.ms(ch["attach"]["median"]), common.ms(ch["detach"]["median"]), "medians, in the churn"])
        finally:
            agent.terminate()
            agent.wait(timeout=10)
            watch.close()
        if shutil.which("iperf3"):
            results["throughput"] = t = throughput(c, args.runs, seconds)
            rows.append([f"TCP h1 -> h2, MTU {t['mtu']}: bare VXLAN / overlay", f"{t['bare_gbps']['median']:.2f} Gbit/s",
                         f"{t['overlay_gbps']['median']:.2f} Gbit/s", f"overlay / bare = {t['ratio']:.0%}"])
            rows.append(["TCP h1 -> h2: the overlay's veth+bridge+VXLAN by hand / overlay",
                         f"{t['by_hand_gbps']['median']:.2f} Gbit/s", f"{t['overlay_gbps']['median']:.2f} Gbit/s",
                         f"overlay / by hand = {t['ratio_by_hand']:.0%}"])
        else:
            rows.append(["TCP throughput", "skipped", "", "iperf3 is not installed (make bench-deps)"])
    finally:
        c.close()
    text = common.markdown_table(["figure", "a", "b", "note"], rows)
    common.report("overlay", args, {"endpoints": endpoints, "idle": idle, "iperf_seconds": seconds,
                                    "churn_seconds": churn_seconds}, [results], text)


if __name__ == "__main__":
    sys.exit(main())
