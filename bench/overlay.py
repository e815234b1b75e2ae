"""Overlay networks on three test hosts with a real etcd cluster
(tests/overlay_cluster.py): what an overlay costs against a bridge, how fast
`cnet agent` carries a change to another host, what the agent holds in
memory and spends idle, and TCP throughput through the overlay against a
bare VXLAN tunnel between the same two hosts (the ceiling).

Rows:
- attach: `cnet attach` of a new sandbox on h1, to a bridge and to an
  overlay, interleaved (target: overlay <= bridge + 50 ms).
- propagation: from `cnet attach` on h3 returning to h1's kernel holding the
  neighbour entry of the new address, with `cnet agent` on h1 (polled with
  `ip neigh` every 5 ms, so the figure is within a poll of the truth;
  target: median < 1 s).
- agent: its resident set after syncing ENDPOINTS address records of other
  hosts (put straight into etcd), and its CPU time over IDLE seconds with
  nothing changing (target: <= 80 MB, ~0 CPU).
- throughput: iperf3 single-stream TCP, overlay sandbox on h1 -> on h2, and
  a VXLAN device made by hand between h1 and h2 (target: >= 90 %). Skipped,
  with the reason, when iperf3 is missing.

Nothing here asserts a timing. Run as root from the repository root:
    .venv/bin/python bench/overlay.py [--quick] [--runs N]
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

import common

sys.path.insert(0, str(common.BENCH_DIR.parent / "tests"))
from overlay_cluster import STORE_URL, Cluster, address, etcd_missing  # noqa: E402
from testhost import CNET  # noqa: E402

ENDPOINTS, QUICK_ENDPOINTS = 1000, 100
IDLE, QUICK_IDLE = 10, 3
SECONDS, QUICK_SECONDS = 3, 1


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


def agent_pid(h) -> int:
    """The python process of `cnet agent` running in host h."""
    out = subprocess.run(["pgrep", "-f", "-n", "cnet agent"], capture_output=True, text=True).stdout.split()
    return int(out[-1])


def propagation(c: Cluster, runs: int) -> dict:
    h1, h3 = c.host(1), c.host(3)
    samples = []
    for i in range(runs):
        must(h3.cnet("create", "ns", f"p{i}"))
        ip = must(h3.cnet("attach", f"p{i}", "ov0")).split("/")[0]
        returned = time.perf_counter()
        while f"{ip} " not in h1.run(["ip", "neigh", "show", "dev", "cnvx4096"]).stdout:
            time.sleep(0.005)
        samples.append(time.perf_counter() - returned)
    return common.summary(samples)


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
    must(h1.run([sys.executable, "-c", script], timeout=300))
    deadline = time.monotonic() + 120
    while len(h1.run(["ip", "neigh", "show", "dev", "cnvx4096"]).stdout.splitlines()) < endpoints:
        if time.monotonic() > deadline:
            raise RuntimeError("the agent did not sync the records in 120 s")
        time.sleep(0.2)
    time.sleep(1)  # the last events' syncs
    rss_kb = next(int(line.split()[1]) for line in open(f"/proc/{pid}/status") if line.startswith("VmRSS"))

    def cpu() -> int:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks

    before = cpu()
    time.sleep(idle)
    ticks = cpu() - before
    return {"endpoints": endpoints, "rss_mb": rss_kb / 1024, "idle_seconds": idle, "idle_cpu_ticks": ticks}


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


def throughput(c: Cluster, runs: int, seconds: int) -> dict:
    h1, h2 = c.host(1), c.host(2)
    for n, h in ((1, h1), (2, h2)):  # the ceiling: a VXLAN device by hand, the same underlay
        must(h.run(["ip", "link", "add", "vxbare", "type", "vxlan", "id", "99", "local", address(n),
                    "dstport", "4790", "nolearning"]))
        must(h.run(["ip", "link", "set", "vxbare", "mtu", "1450", "up"]))
        must(h.run(["ip", "addr", "add", f"10.99.0.{n}/24", "dev", "vxbare"]))
        must(h.run(["bridge", "fdb", "append", "00:00:00:00:00:00", "dev", "vxbare", "dst", address(3 - n)]))
    must(h1.cnet("create", "ns", "tp1", "--network", "ov0"))
    ip2 = must(h2.cnet("create", "ns", "tp2", "--network", "ov0")).split("/")[0]
    must(h1.cnet("create", "overlay", "ov0", "--exist-ok"))  # h1 learns of tp2
    bare, overlay = [], []
    for _ in range(runs):
        bare.append(iperf(h1, h2, "10.99.0.2", seconds))
        overlay.append(iperf(h1, h2, ip2, seconds, "tp1", "tp2"))
    return {"bare_gbps": common.summary(bare), "overlay_gbps": common.summary(overlay),
            "ratio": sorted(overlay)[len(overlay) // 2] / sorted(bare)[len(bare) // 2]}


def main() -> int:
    args = common.parse(common.parser(__doc__.splitlines()[0]))
    why_not = etcd_missing()
    if why_not:
        print(f"overlay benchmark skipped: {why_not}")
        return 0
    endpoints = QUICK_ENDPOINTS if args.quick else ENDPOINTS
    idle = QUICK_IDLE if args.quick else IDLE
    seconds = QUICK_SECONDS if args.quick else SECONDS
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
        agent = h1.popen([*CNET, "agent"], stderr=subprocess.DEVNULL)
        try:
            time.sleep(1.5)
            results["propagation"] = p = propagation(c, args.runs)
            rows.append(["propagation h3 -> h1 with the agent (ms)", common.ms(p["median"]), common.ms(p["max"]), "median, max"])
            results["agent"] = g = agent_figures(c, agent_pid(h1), endpoints, idle)
            rows.append([f"agent RSS with {endpoints} remote endpoints", f"{g['rss_mb']:.1f} MB", "",
                         f"CPU over {idle} s idle: {g['idle_cpu_ticks']} ticks"])
        finally:
            agent.terminate()
            agent.wait(timeout=10)
        if shutil.which("iperf3"):
            results["throughput"] = t = throughput(c, args.runs, seconds)
            rows.append(["TCP h1 -> h2: bare VXLAN / overlay", f"{t['bare_gbps']['median']:.2f} Gbit/s",
                         f"{t['overlay_gbps']['median']:.2f} Gbit/s", f"overlay / bare = {t['ratio']:.0%}"])
        else:
            rows.append(["TCP throughput", "skipped", "", "iperf3 is not installed (make bench-deps)"])
    finally:
        c.close()
    text = common.markdown_table(["figure", "a", "b", "note"], rows)
    common.report("overlay", args, {"endpoints": endpoints, "idle": idle, "iperf_seconds": seconds},
                  [results], text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
