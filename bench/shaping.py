"""Bandwidth limits: the rate iperf3 gets through a shaped endpoint, against the rate set, at 10 mbit, 100 mbit and 1 gbit.

Issue 12's target: the shaped rate within 10 % of the set rate. Inside a
throw-away test host (tools/testhost):

  cnet create bridge br0 --subnet 198.18.100.0/24
  cnet create ns a --network br0       (no limits yet)
  per rate R: cnet limit a br0 --ingress-rate R --egress-rate R
    ingress: iperf3 -s on the host's gateway 198.18.100.1, `iperf3 -c -R` in a (host -> sandbox)
    egress:  the same without -R (sandbox -> host)
  and once with no limit (cnet limit a br0 --clear): what the path carries unshaped.

Throughput is the receiver's bits per second of one TCP stream, T seconds a
run (2, 1 with --quick), --runs N runs per rate and direction (5; 1 with
--quick), median with min-max. The bucket is cnet's default (10 ms at the
rate, at least four packets). tbf counts whole frames and iperf3 the TCP
payload (1448 bytes of a 1514-byte frame), so ~96 % is what a rate shaped
exactly gives.

    .venv/bin/python bench/shaping.py [--quick] [--runs N]

Run as root, from the repository root; needs iperf3 (`make test` installs it).
--quick stays under ~20 s. Writes bench/results/shaping.md and shaping.json.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import common
from common import INSIDE, check_inside, clean_env, find_cnet

RATES = [("10mbit", 10**7), ("100mbit", 10**8), ("1gbit", 10**9)]
SECONDS, QUICK_SECONDS = 2, 1
QUICK_RUNS = 1
TARGET = 0.10  # within 10 % of the set rate
GATEWAY, SUBNET, PORT = "198.18.100.1", "198.18.100.0/24", 5201


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cnet(*args: str) -> str:
    proc = subprocess.run([find_cnet(), *args], capture_output=True, text=True, env=clean_env())
    if proc.returncode != 0:
        raise SystemExit(f"bench/shaping.py: cnet {' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout


def iperf3(direction: str, seconds: int) -> float:
    """Receiver bit/s of one run: ingress host -> sandbox (-R), egress sandbox -> host."""
    server = subprocess.Popen(["timeout", str(seconds + 20), "iperf3", "-s", "-1", "-B", GATEWAY, "-p", str(PORT)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):  # iperf3 says it listens a moment before it does
            if subprocess.run(["ss", "-Htln", f"sport = :{PORT}"], capture_output=True, text=True).stdout.strip():
                break
            time.sleep(0.05)
        cmd = ["timeout", str(seconds + 20), "ip", "netns", "exec", "a", "iperf3", "-c", GATEWAY, "-p", str(PORT),
               "-t", str(seconds), "-J", *(["-R"] if direction == "ingress" else [])]
        result = json.loads(subprocess.run(cmd, capture_output=True, text=True).stdout or '{"error": "no output"}')
        if "error" in result:
            raise SystemExit(f"bench/shaping.py: iperf3 {direction}: {result['error']}")
        return result["end"]["sum_received"]["bits_per_second"]
    finally:
        server.kill()
        server.wait()


def measure(args) -> None:
    check_inside()
    seconds = QUICK_SECONDS if args.quick else SECONDS
    cnet("create", "bridge", "br0", "--subnet", SUBNET)
    cnet("create", "ns", "a", "--network", "br0")
    rows, results = [], []
    started = time.perf_counter()
    for label, rate in [*RATES, ("unlimited", None)]:
        if rate is None:
            cnet("limit", "a", "br0", "--clear")
        else:
            cnet("limit", "a", "br0", "--ingress-rate", label, "--egress-rate", label)
        for direction in ("ingress", "egress"):
            samples = [iperf3(direction, seconds) for _ in range(args.runs)]
            got = common.summary(samples)
            results.append({"rate": label, "rate_bps": rate, "direction": direction, "throughput_bps": got})
            log(f"{label} {direction}: {got['median'] / 1e6:.1f} Mbit/s")
            spread = "" if len(samples) == 1 else f" ({got['min'] / 1e6:.1f}–{got['max'] / 1e6:.1f})"
            if rate is None:
                rows.append([label, direction, f"{got['median'] / 1e6:.1f}{spread}", "-", "-"])
                continue
            ratio = got["median"] / rate
            rows.append([label, direction, f"{got['median'] / 1e6:.1f}{spread}", f"{ratio * 100:.1f} %",
                         "yes" if abs(ratio - 1) <= TARGET else "no"])
    cnet("delete", "ns", "a")
    cnet("delete", "bridge", "br0")
    wall = time.perf_counter() - started
    met = sum(r[4] == "yes" for r in rows)
    shaped = sum(r[4] != "-" for r in rows)
    text = "\n".join([
        f"### Shaped rate: iperf3, one TCP stream, {args.runs} run(s) x {seconds} s per rate and direction "
        f"({'quick' if args.quick else 'full'} run)", "",
        common.markdown_table(["set rate", "direction", "Mbit/s median (min–max)", "of the set rate",
                               "within 10 %"], rows, ["l", "l", "r", "r", "l"]), "",
        f"- Target (issue 12: the shaped rate within {TARGET * 100:.0f} % of the set rate): {met} of {shaped} rows.",
        "- ingress: host -> sandbox (tbf on the veth's host end); egress: sandbox -> host (ingress qdisc, "
        "u32 + mirred to an ifb, tbf there). Default bursts (10 ms at the rate, at least 4 packets).",
        "- tbf counts whole frames, iperf3 the TCP payload (1448 of 1514 bytes): ~96 % is an exact shaping.",
        f"- whole run {wall:.0f} s; raw figures in bench/results/shaping.json", ""])
    print(text)
    common.table_path("shaping", args).write_text(text, encoding="utf-8")
    common.write_results("shaping", args, {"seconds": seconds, "rates": [r for r, _ in RATES], "target": TARGET,
                                           "kernel": os.uname().release}, results)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    p = common.parser(__doc__.splitlines()[0])
    args = common.parse(p, argv)
    if args.quick and "--runs" not in argv:
        args.runs = QUICK_RUNS
    if os.environ.get(INSIDE) == "1":
        measure(args)
    elif shutil.which("iperf3") is None:
        log("bench/shaping.py: SKIPPED, no shaping figures: iperf3 is not installed (`make system-deps` installs it)")
    else:
        sys.exit(common.run_in_testhost(__file__, argv))


if __name__ == "__main__":
    main()
