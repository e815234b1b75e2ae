"""cnet side by side with the CNI plugins, netavark and `ip`/`nft` scripts: the cost of one sandbox, and of many published ports.

A sandbox is a network namespace, attached to one bridge with an address from
a /16 and one published TCP port (host port 20000+i -> 80). For each
contender (bench/contenders/) and each N, one *cycle* sets up N sandboxes one
after another, timing each, then tears them all down, timing each. Every
cycle runs in a fresh throw-away test host (tools/testhost), so nothing here
touches this machine's own network, and no packet is sent anywhere.

  cnet-separate  cnet create ns + cnet attach + cnet publish (3 processes); cnet delete ns
  cnet-ns        cnet create ns NAME --network br0 --publish P:80 (1 process); cnet delete ns
  cnet-batch     one `cnet batch -` with N `create ns ...` lines; one with N `delete ns` lines
  cnet-api       Cnet().create_ns(name, network=, publish=[...]) / delete_ns(), one process
  cni            bridge (host-local IPAM, isGateway, ipMasq) + portmap, run as the CNI spec says
  netavark       netavark setup / teardown with Podman's JSON (static IPs from the harness)
  pipework       one `ip` or `nft` process per command
  floor          `ip -batch -` + `ip -n NAME -batch -` + `nft -f -` per sandbox

Also (item 2 of issue 5), in its own test host: publishing 1,000 ports on one
cnet sandbox, through the API, and through the CLI around the 1st, 100th,
500th and 1,000th publish; with the firewall's rules and elements after each.

Figures: per contender and N, the median over runs of the per-sandbox median
(one-process contenders: total / N), with min-max over runs; growth = median
of the last 10 sandboxes' setup times / median of the first 10. Ratios
between contenders are taken within the same run, then the median.

    .venv/bin/python bench/peers.py [--quick] [--runs N] [--only NAME,...]

Run as root, from the repository root. It installs containernetworking-plugins
and netavark with apt-get when missing; a contender that cannot run is
reported as skipped, with the reason. Exit status 1 if any contender failed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common
from common import INSIDE, OUTER_NETNS, TESTHOST, check_inside, check_mounts, netns_inode
import contenders as C

ROOT = common.BENCH_DIR.parent
PACKAGES = ("containernetworking-plugins", "netavark")
CYCLE_TIMEOUT = 900  # seconds; a cycle that takes longer is killed and reported as failed

GROWTH_WINDOW = 10

# What each contender runs: (N, timed ends). Timed ends None: every sandbox is
# timed. An integer E: only the first E and the last E sandboxes are set up
# (and torn down) by the contender and timed; those in between are made and
# removed through cnet's Python API, untimed, so the timed ones see the same
# state and kernel objects as in a full cycle. Used only for cnet's
# process-per-command contenders, which cost 0.3-1 s per sandbox here.
# To fit the time budget, cnet-separate and cnet-api stop at N = 200: at 500
# they would add about 95 s and 70 s per run (cnet-ns and cnet-batch show the
# process-per-sandbox and the one-process paths at N = 500).
FULL_PLAN = {
    "cnet-separate": [(1, None), (50, 10), (200, 10)],
    "cnet-ns": [(1, None), (30, None), (50, 10), (200, 10), (500, 10)],
    "cnet-batch": [(1, None), (30, None), (50, None), (200, None), (500, None)],
    "cnet-api": [(1, None), (50, None), (200, None)],
    "cnet-cni": [(1, None), (30, None)],  # issue 14: ADD / DEL against the CNI chain
    "cni": [(1, None), (30, None), (50, None), (200, None)],
    "netavark": [(1, None), (30, None), (50, None), (200, None)],
    "pipework": [(1, None), (50, None), (200, None)],
    "floor": [(1, None), (30, None), (50, None), (200, None)],
}
# --quick: every contender at N = 1 (so each one's code runs), and at N = 20
# only those the 2-minute budget allows three runs of: cnet-api (close to
# cnet-batch), pipework (between the floor and the peers) and cnet-separate
# (three times cnet-ns) are left out there.
QUICK_PLAN = {
    "cnet-separate": [(1, None)],
    "cnet-ns": [(1, None), (20, 3)],
    "cnet-batch": [(1, None), (20, None)],
    "cnet-api": [(1, None)],
    "cnet-cni": [(1, None)],
    "cni": [(1, None), (20, None)],
    "netavark": [(1, None), (20, None)],
    "pipework": [(1, None)],
    "floor": [(1, None), (20, None)],
}
# Item 2: publishes on one sandbox. Milestones, and how many publishes end at
# each (start at the first) through the CLI; all the others go through the API.
PUBLISH_FULL = {"milestones": [1, 100, 500, 1000], "cli_window": 5}
PUBLISH_QUICK = {"milestones": [1, 20, 100], "cli_window": 3}
DEFAULT_RUNS = 3      # the issue's minimum; fewer where the budget runs out
FULL_BUDGET = 360.0   # seconds: with the other scripts (~4 min), make bench stays near 10 minutes
QUICK_BUDGET = 75.0   # and --quick, with the other scripts (~35 s), under 2
API_WINDOW = 10  # API publishes next to each milestone that give its figure


def fail(message: str) -> None:
    raise SystemExit(f"bench/peers.py: {message}")


# == inside a test host ======================================================

def ends_split(n: int, ends: int | None) -> tuple[list[int], list[int], list[int]]:
    """(timed first, untimed middle, timed last) sandbox indices."""
    if ends is None or 2 * ends >= n:
        return list(range(n)), [], []
    return list(range(ends)), list(range(ends, n - ends)), list(range(n - ends, n))


def verify_setup(n: int) -> None:
    check_mounts()
    names = C.netns_names()
    if len(names) != n:
        raise C.Failed(f"after setup: {len(names)} namespaces, not {n}")
    ports = C.bridge_ports()
    if ports != n:
        raise C.Failed(f"after setup: {ports} links on {C.BRIDGE}, not {n}")
    import ipaddress
    subnet = ipaddress.ip_network(C.SUBNET)
    for i in sorted({0, n - 1}):
        addr = C.sandbox_address(C.sandbox_name(i))
        if addr is None or ipaddress.ip_interface(addr).ip not in subnet:
            raise C.Failed(f"after setup: sandbox {C.sandbox_name(i)} has address {addr}, none in {C.SUBNET}")
    want = [C.host_port(i) for i in sorted({0, n // 2, n - 1})]
    have = C.ports_present(want)
    if have != want:
        raise C.Failed(f"after setup: no firewall rule or element names host port(s) "
                       f"{sorted(set(want) - set(have))}")


def verify_teardown(n: int) -> None:
    check_mounts()
    names = C.netns_names()
    if names:
        raise C.Failed(f"after teardown: namespaces left: {' '.join(names[:10])}")
    ports = C.bridge_ports()
    if ports:
        raise C.Failed(f"after teardown: {ports} links left on {C.BRIDGE}")
    left = C.ports_present([C.host_port(i) for i in sorted({0, n // 2, n - 1})])
    if left:
        raise C.Failed(f"after teardown: the firewall still names host port(s) {left}")


def timed_each(fn, idx: list[int]) -> list[list]:
    out = []
    clock = time.perf_counter
    for i in idx:
        check_mounts()
        t = clock()
        fn(i)
        out.append([i, clock() - t])
    return out


def cycle(name: str, n: int, ends: int | None) -> dict:
    """One setup + teardown cycle of N sandboxes; returns the raw figures."""
    contender = C.by_name(name)()
    source = C.cnet_source_hash()
    started = time.perf_counter()
    try:
        contender.prepare()
        counts_prepared = C.firewall_counts()
        doc = {"contender": name, "n": n, "timed_ends": ends}
        if contender.one_process:
            idx = list(range(n))
            total, per = contender.setup_all(idx)
            if getattr(contender, "notes", None):
                doc["setup_notes"] = dict(contender.notes)
            doc["setup_total"] = total
            doc["setup"] = [[i, t] for i, t in zip(idx, per)] if per else []
        else:
            first, middle, last = ends_split(n, ends)
            doc["setup"] = timed_each(contender.setup, first)
            if middle:
                contender.fill(middle)
            doc["setup"] += timed_each(contender.setup, last)
        verify_setup(n)
        doc["counts"] = C.firewall_counts()
        if contender.one_process:
            idx = list(range(n))
            total, per = contender.teardown_all(idx)
            doc["teardown_total"] = total
            doc["teardown"] = [[i, t] for i, t in zip(idx, per)] if per else []
        else:
            first, middle, last = ends_split(n, ends)
            doc["teardown"] = timed_each(contender.teardown, first)
            if middle:
                contender.unfill(middle)
            doc["teardown"] += timed_each(contender.teardown, last)
        verify_teardown(n)
        doc["counts_prepared"] = counts_prepared
        doc["counts_after"] = C.firewall_counts()
        if hasattr(contender, "startup"):
            doc["startup"] = contender.startup
    finally:
        contender.close()
    doc["wall"] = time.perf_counter() - started
    doc["cnet_source"] = source
    if C.cnet_source_hash() != source:
        doc["cnet_source"] = f"{source}, changed during the cycle"
    return doc


def publish_cycle(milestones: list[int], window: int) -> dict:
    """Item 2: publish up to milestones[-1] ports on one cnet sandbox."""
    env = C.clean_env()
    C.run([C.CNET, "create", "bridge", C.BRIDGE, "--subnet", C.SUBNET], env=env)
    worker = C.ApiWorker()
    started = time.perf_counter()
    source = C.cnet_source_hash()
    try:
        worker.call(op="create", network=C.BRIDGE, items=[["p0", None]])  # no port yet
        top = milestones[-1]
        cli = set(range(1, window + 1))
        for m in milestones[1:]:
            cli |= set(range(m - window + 1, m + 1))
        samples, counts = [], {}

        def spec(k):
            return f"{30000 + k}:{10000 + k}"

        k = 1
        while k <= top:
            check_mounts()
            if k in cli:
                t = time.perf_counter()
                C.run([C.CNET, "publish", "p0", spec(k)], env=env)
                samples.append([k, "cli", time.perf_counter() - t])
                k += 1
            else:
                stop = k
                while stop <= top and stop not in cli:
                    stop += 1
                times = worker.call(op="publish", ns="p0", specs=[spec(j) for j in range(k, stop)])["times"]
                samples += [[j, "api", t] for j, t in zip(range(k, stop), times)]
                k = stop
            if k - 1 in milestones:
                counts[str(k - 1)] = C.firewall_counts()
        present = C.ports_present([30001, 30000 + top])
        if len(present) != 2:
            raise C.Failed(f"after {top} publishes the firewall does not name host ports 30001 and {30000 + top}")
    finally:
        worker.close()
    return {"milestones": milestones, "cli_window": window, "samples": samples, "counts": counts,
            "wall": time.perf_counter() - started,
            "cnet_source": source if C.cnet_source_hash() == source else f"{source}, changed during the cycle"}


def inside(args) -> int:
    check_inside()
    try:
        if args.inner == "cycle":
            doc = cycle(args.contender, args.n, args.ends)
        else:
            doc = publish_cycle([int(m) for m in args.milestones.split(",")], args.window)
    except C.Failed as e:
        print(f"{args.inner} {args.contender or ''} N={args.n}: {e}", file=sys.stderr)
        return 1
    Path(args.out).write_text(json.dumps(doc), encoding="utf-8")
    return 0


# == outside: packages, test hosts, figures ==================================

def package_version(pkg: str) -> str | None:
    proc = subprocess.run(["dpkg-query", "-W", "-f", "${Status}|${Version}", pkg],
                          capture_output=True, text=True)
    if proc.returncode != 0 or not proc.stdout.startswith("install ok installed"):
        return None
    return proc.stdout.split("|", 1)[1]


def ensure_packages(wanted: list[str]) -> dict[str, str]:
    """Install the peers' packages when missing; returns {package: why not} for failures."""
    missing = [p for p in wanted if package_version(p) is None]
    if not missing:
        return {}
    if shutil.which("apt-get") is None:
        return {p: "not installed and no apt-get to install it" for p in missing}
    print(f"installing {' '.join(missing)} with apt-get ...", file=sys.stderr)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    upd = subprocess.run(["apt-get", "update", "-qq"], capture_output=True, text=True, env=env)
    if upd.returncode != 0:
        why = f"apt-get update failed: {upd.stderr.strip().splitlines()[-1:]}"
        return {p: why for p in missing}
    why = {}
    for p in missing:
        inst = subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", p],
                              capture_output=True, text=True, env=env)
        if inst.returncode != 0 or package_version(p) is None:
            lines = (inst.stderr or inst.stdout).strip().splitlines()
            why[p] = f"apt-get install {p} failed: {lines[-1] if lines else inst.returncode}"
    return why


def first_line(cmd: list[str]) -> str | None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    except OSError:
        return None
    out = (proc.stdout or proc.stderr).strip()
    return out.splitlines()[0] if out else None


def versions() -> dict:
    nv = C.netavark_binary()
    return {
        "containernetworking-plugins": package_version("containernetworking-plugins"),
        "netavark": package_version("netavark"),
        "netavark --version": first_line([nv, "--version"]) if nv else None,
        "netavark binary": nv,
        "iproute2": package_version("iproute2"),
        "nftables": package_version("nftables"),
        "iptables": first_line(["iptables", "--version"]),
        "kernel": os.uname().release,
        "cnet": cnet_revision(),
    }


def cnet_revision() -> str | None:
    """The commit of the cnet checkout measured, and whether src/ differs from it."""
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"],
                               capture_output=True, text=True).stdout.strip()
    except OSError:
        return None
    return f"{head}{' + uncommitted changes in src/' if dirty else ''}" if head else None


def run_inside(inner_args: list[str], out: Path) -> tuple[dict | None, str]:
    """Run this script inside a fresh test host; (result or None, error text)."""
    env = C.clean_env()
    env[OUTER_NETNS] = str(netns_inode())
    cmd = [str(TESTHOST), "env", f"{INSIDE}=1", sys.executable, str(Path(__file__).resolve()),
           *inner_args, "--out", str(out)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=CYCLE_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the test host we started, and what runs in it
        proc.communicate()
        return None, f"timed out after {CYCLE_TIMEOUT} s"
    if proc.returncode != 0 or not out.exists():
        text = (stderr.strip() or stdout.strip() or f"exit status {proc.returncode}")
        lines = text.splitlines()
        if len(lines) > 6:  # a traceback ends with the error; a tool's message starts with it
            lines = ["...", *lines[-4:]] if lines[0].startswith("Traceback") else [*lines[:6], "..."]
        return None, "\n".join(lines)
    doc = json.loads(out.read_text(encoding="utf-8"))
    out.unlink()
    return doc, ""


# -- figures ------------------------------------------------------------------

def med(xs):
    return statistics.median(xs) if xs else None


def growth(samples: list[list]) -> float | None:
    """Median of the last GROWTH_WINDOW timed sandboxes / median of the first."""
    times = [t for _, t in sorted(samples)]
    if len(times) < 2 * GROWTH_WINDOW:
        return None
    return statistics.median(times[-GROWTH_WINDOW:]) / statistics.median(times[:GROWTH_WINDOW])


def per_sandbox(doc: dict, phase: str) -> float:
    """The run's per-sandbox figure: total / N for one-process contenders, else the median."""
    if f"{phase}_total" in doc:
        return doc[f"{phase}_total"] / doc["n"]
    return statistics.median(t for _, t in doc[phase])


def spread(xs: list[float]) -> dict:
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "samples": list(xs)}


def summarize(cycles: dict) -> list[dict]:
    """cycles[(name, n)] = [doc per run] -> one row per (contender, N)."""
    rows = []
    for (name, n), docs in cycles.items():
        setup = [per_sandbox(d, "setup") for d in docs]
        teardown = [per_sandbox(d, "teardown") for d in docs]
        g = [x for x in (growth(d["setup"]) for d in docs) if x is not None]
        tg = [x for x in (growth(d["teardown"]) for d in docs) if x is not None]
        counts = docs[-1]["counts"]
        same = all(d["counts"]["nft_rules"] == counts["nft_rules"]
                   and d["counts"]["iptables_rules"] == counts["iptables_rules"]
                   and d["counts"]["nft_elements"] == counts["nft_elements"] for d in docs)
        row = {
            "contender": name, "sandboxes": n, "runs": len(docs),
            "timed_ends": docs[0]["timed_ends"],
            "setup": spread(setup), "teardown": spread(teardown),
            "growth": spread(g) if g else None,
            "teardown_growth": spread(tg) if tg else None,
            "counts": counts, "counts_same_every_run": same,
            "counts_prepared": docs[-1]["counts_prepared"],
            "counts_after_teardown": docs[-1]["counts_after"],
            "cycle_wall": spread([d["wall"] for d in docs]),
            "per_run": [{"setup": d["setup"], "teardown": d["teardown"],
                         "setup_total": d.get("setup_total"), "teardown_total": d.get("teardown_total"),
                         "startup": d.get("startup"), "setup_notes": d.get("setup_notes"),
                         "cnet_source": d.get("cnet_source"),
                         "wall": d["wall"]} for d in docs],
        }
        rows.append(row)
    return rows


def ratio_table(rows: list[dict], ref: str, phase: str) -> dict:
    """{(name, n): spread of name/ref per run} for every N where both ran the same runs."""
    by = {(r["contender"], r["sandboxes"]): r for r in rows}
    out = {}
    for (name, n), r in by.items():
        base = by.get((ref, n))
        if base is None or name == ref:
            continue
        k = min(len(r[phase]["samples"]), len(base[phase]["samples"]))
        if k == 0:
            continue
        xs = [r[phase]["samples"][j] / base[phase]["samples"][j] for j in range(k)]
        out[(name, n)] = spread(xs)
    return out


def cell(s: dict | None, scale: float = 1000, fmt: str = "{:.1f}") -> str:
    if s is None:
        return "-"
    if len(s["samples"]) == 1:
        return fmt.format(s["median"] * scale)
    return f"{fmt.format(s['median'] * scale)} ({fmt.format(s['min'] * scale)}–{fmt.format(s['max'] * scale)})"


def xcell(s: dict | None) -> str:
    if s is None:
        return "-"
    if len(s["samples"]) == 1:
        return f"{s['median']:.2f}x"
    return f"{s['median']:.2f}x ({s['min']:.2f}–{s['max']:.2f})"


def publish_summary(docs: list[dict]) -> dict:
    milestones = docs[0]["milestones"]
    window = docs[0]["cli_window"]
    out = {"milestones": milestones, "cli_window": window, "runs": len(docs), "at": {}}
    for m in milestones:
        cli_runs, api_runs = [], []
        for d in docs:
            cli = [t for k, how, t in d["samples"] if how == "cli"
                   and ((m == milestones[0] and k <= window) or (m != milestones[0] and m - window < k <= m))]
            api = [(k, t) for k, how, t in d["samples"] if how == "api"]
            if m == milestones[0]:
                near = [t for k, t in api[:API_WINDOW]]
            else:
                near = [t for k, t in api if k < m][-API_WINDOW:]
            cli_runs.append(statistics.median(cli))
            if near:
                api_runs.append(statistics.median(near))
        out["at"][str(m)] = {
            "cli": spread(cli_runs),
            "api": spread(api_runs) if api_runs else None,
            "counts": docs[-1]["counts"][str(m)],
        }
    first, last = str(milestones[0]), str(milestones[-1])
    for how in ("cli", "api"):
        a, b = out["at"][first][how], out["at"][last][how]
        if a and b:
            ratios = [y / x for x, y in zip(a["samples"], b["samples"])]
            out[f"{how}_last_over_first"] = spread(ratios)
    out["api_curve"] = [[k, t] for k, how, t in docs[len(docs) // 2]["samples"] if how == "api"]
    out["per_run"] = docs
    return out


def one_process_notes(rows: list[dict]) -> str:
    """What the per-sandbox curve of the one-process contenders leaves out."""
    out = []
    for r in rows:
        if r["contender"] == "cnet-batch":
            first = [x["setup_notes"]["first_line"] for x in r["per_run"]
                     if x.get("setup_notes") and "first_line" in x["setup_notes"]]
            tail = [x["setup_notes"]["after_last_line"] for x in r["per_run"]
                    if x.get("setup_notes") and "after_last_line" in x["setup_notes"]]
            if first and r["sandboxes"] > 1:
                out.append(f"N={r['sandboxes']:,}: first sandbox's line {med(first) * 1000:.0f} ms after the "
                           f"start, exit {med(tail) * 1000:.0f} ms after the last line")
    text = ""
    if out:
        text += ("`cnet-batch` setup (median over runs): " + "; ".join(out) + ". The per-sandbox curve "
                 "(plot, growth) is the time between one sandbox's output line and the next; the "
                 "per-sandbox figure is the whole process / N, start-up and the work done once at "
                 "the end included.")
    imports = [x["startup"]["import"] for r in rows if r["contender"] == "cnet-api" for x in r["per_run"]
               if x.get("startup")]
    if imports:
        text += ("\n\n" if text else "") + (
            f"`cnet-api`: the per-sandbox figure is the sum of the `create_ns()` (`delete_ns()`) calls / N; "
            f"the worker process's `from cnet.core import Cnet` ({med(imports) * 1000:.0f} ms, median) is "
            f"not in it, the first call's own imports are.")
    return text


def targets(rows: list[dict], pub: dict | None) -> list[list[str]]:
    """Issue 5's targets next to the figures of this run."""
    by = {(r["contender"], r["sandboxes"]): r for r in rows}
    out = []

    def largest(name):
        ns = [n for (c, n) in by if c == name]
        return max(ns) if ns else None

    n = largest("cnet-ns")
    if n and by[("cnet-ns", n)]["growth"]:
        g = by[("cnet-ns", n)]["growth"]["median"]
        out.append([f"`cnet create ns --network --publish` flat: last 10 within 1.2x of first 10 (N={n:,})",
                    f"{g:.2f}x", "yes" if g <= 1.2 else "no"])
    rt = ratio_table(rows, "cnet-ns", "setup")
    for peer in ("cni", "netavark"):
        common_n = [m for (c, m) in rt if c == peer]
        if common_n:
            m = max(common_n)
            x = rt[(peer, m)]["median"]
            out.append([f"`cnet-ns` faster per sandbox than `{peer}` (issue: at N=500; peers run to "
                        f"N={m:,})", f"{peer} / cnet-ns = {x:.2f}x at N={m:,}", "yes" if x > 1 else "no"])
    rt = ratio_table(rows, "cnet-batch", "setup")
    cni = sorted((m, v["median"]) for (c, m), v in rt.items() if c == "cni")
    if cni:
        out.append(["`cnet batch` at least 5x faster per sandbox than the CNI chain, every N",
                    ", ".join(f"{v:.1f}x at N={m:,}" for m, v in cni),
                    "yes" if all(v >= 5 for _, v in cni) else "no"])
    floor = sorted((m, 1 / v["median"]) for (c, m), v in rt.items() if c == "floor")
    if floor:
        out.append(["`cnet batch` within 2x of `ip -batch` + `nft -f` (batch / floor)",
                    ", ".join(f"{v:.1f}x at N={m:,}" for m, v in floor),
                    "yes" if all(v <= 2 for _, v in floor) else "no"])
    rt = ratio_table(rows, "cnet-batch", "teardown")
    peers = [(c, m, v["median"]) for (c, m), v in rt.items() if c in ("cni", "netavark", "pipework", "floor")]
    if peers:
        worst = min(peers, key=lambda x: x[2])
        out.append(["teardown in `cnet batch` faster per sandbox than every peer and script, every N",
                    f"slowest margin: {worst[0]} / batch = {worst[2]:.2f}x at N={worst[1]:,}",
                    "yes" if worst[2] > 1 else "no"])
    ns_sizes = sorted(m for (c, m) in by if c == "cnet-ns")
    if len(ns_sizes) > 1:
        a, b = by[("cnet-ns", ns_sizes[0])]["teardown"]["median"], by[("cnet-ns", ns_sizes[-1])]["teardown"]["median"]
        out.append(["`cnet delete ns` flat in N (per sandbox, largest N / N=1; 1.2x taken as flat)",
                    f"{b * 1000:.0f} / {a * 1000:.0f} ms = {b / a:.2f}x", "yes" if b / a <= 1.2 else "no"])
    grows = []
    for name in ("cnet-ns", "cnet-batch", "cnet-api", "cnet-separate"):
        sizes = sorted(m for (c, m) in by if c == name)
        if len(sizes) > 1:
            a, b = by[(name, sizes[0])]["counts"], by[(name, sizes[-1])]["counts"]
            grows.append((name, sizes[0], sizes[-1], a["nft_rules"] + a["iptables_rules"],
                          b["nft_rules"] + b["iptables_rules"]))
    if grows:
        out.append(["firewall rules do not grow with sandboxes (sets and maps do)",
                    "; ".join(f"{g[0]}: {g[3]} rules at N={g[1]:,}, {g[4]} at N={g[2]:,}" for g in grows),
                    "yes" if all(g[3] == g[4] for g in grows) else "no"])
    if pub:
        ms_ = pub["milestones"]
        a, b = pub["at"][str(ms_[0])]["counts"], pub["at"][str(ms_[-1])]["counts"]
        ra, rb = a["nft_rules"] + a["iptables_rules"], b["nft_rules"] + b["iptables_rules"]
        out.append([f"rules do not grow with published ports ({ms_[0]} vs {ms_[-1]:,} ports)",
                    f"{ra} and {rb} rules; {a['nft_elements']} and {b['nft_elements']} elements",
                    "yes" if ra == rb else "no"])
        for how, label in (("api", "`Cnet.publish()`"), ("cli", "`cnet publish`")):
            x = pub.get(f"{how}_last_over_first")
            if x:
                out.append([f"publish #{ms_[-1]:,} within 1.2x of publish #1: {label}", f"{x['median']:.2f}x",
                            "yes" if x["median"] <= 1.2 else "no"])
    return out


def targets_issue9(rows: list[dict]) -> list[list[str]]:
    """Issue 9's targets (cnet on pyroute2) next to the figures of this run."""
    out = []

    def at(table, peer, n):
        return table.get((peer, n), {}).get("median")

    batch = ratio_table(rows, "cnet-batch", "setup")  # peer / batch
    for peer, limit, label in (("cni", 0.2, "the CNI chain"), ("floor", 2.0, "`ip -batch` + `nft -f`")):
        x = at(batch, peer, 200)
        if x:
            out.append([f"`cnet batch` per sandbox at N=200: at most {limit}x {label}",
                        f"batch / {peer} = {1 / x:.2f}x", "yes" if 1 / x <= limit else "no"])
    x = at(ratio_table(rows, "cnet-ns", "setup"), "cni", 30)
    if x:
        out.append(["`cnet create ns --network --publish` at N=30: at most 3x the CNI chain",
                    f"cnet-ns / cni = {1 / x:.2f}x", "yes" if 1 / x <= 3 else "no"])
    return out


def targets_issue14(rows: list[dict]) -> list[list[str]]:
    """Issue 14's targets (cnet-cni against the stock bridge + host-local +
    portmap chain, one container with one published port), run by run."""
    out = []
    for phase, limit, label in (("setup", 3, "ADD"), ("teardown", 1, "DEL")):
        ratios = ratio_table(rows, "cni", phase)
        for (name, n), x in sorted(ratios.items()):
            if name == "cnet-cni":
                out.append([f"`cnet-cni` {label} at N={n}: at most {limit}x the CNI chain",
                            f"cnet-cni / cni = {x['median']:.2f}x (runs {x['min']:.2f}–{x['max']:.2f}x)",
                            "yes" if x["median"] <= limit else "no"])
    return out


# -- the report ----------------------------------------------------------------

def report(args, plan, rows, skipped, failed, pub, vers, wall, budget_note) -> str:
    order = [c.name for c in C.CONTENDERS]
    rows = sorted(rows, key=lambda r: (order.index(r["contender"]), r["sandboxes"]))
    labels = {c.name: c for c in C.CONTENDERS}
    lines = []
    w = lines.append
    w("## cnet and its peers: one sandbox = namespace + bridge attach + IPAM + one published port\n")
    w(f"Up to {args.runs} runs{' (--quick)' if args.quick else ''} (column *runs*), each cycle in a fresh test host; "
      f"per sandbox, in ms: median over runs of each run's median (one-process contenders: "
      f"total / N), (min–max over runs; a row of one run shows its figure alone). Growth: median of the last {GROWTH_WINDOW} setups / "
      f"median of the first {GROWTH_WINDOW}. Rules and elements counted after the N setups: "
      f"nft counts every table, iptables-nft's included (iptables here is "
      f"`{vers.get('iptables')}`).\n")
    for note in budget_note:
        if note.startswith("WARNING"):
            w(f"**{note}.**\n")
    if rows:
        table = []
        for r in rows:
            c = labels[r["contender"]]
            ends = f" †{r['timed_ends']}" if r["timed_ends"] and 2 * r["timed_ends"] < r["sandboxes"] else ""
            k = r["counts"]
            table.append([f"`{r['contender']}`", f"{r['sandboxes']:,}{ends}", f"{r['runs']}",
                          cell(r["setup"]), xcell(r["growth"]), cell(r["teardown"]),
                          str(k["nft_rules"]), str(k["nft_elements"]), str(k["iptables_rules"]),
                          c.processes])
        w(common.markdown_table(["contender", "N", "runs", "setup ms/sandbox", "growth last/first 10",
                                 "teardown ms/sandbox", "nft rules", "set/map elements",
                                 "iptables -A", "processes/sandbox (setup + teardown)"], table))
        if any(r["timed_ends"] and 2 * r["timed_ends"] < r["sandboxes"] for r in rows):
            w("\n† E: only the first E and last E sandboxes were set up and torn down by the "
              "contender and timed; those in between were made and removed through cnet's Python "
              "API, untimed (same state, same kernel objects). The median is over those 2E.")
        sizes_all = sorted({n for p in plan.values() for n, _ in p})
        gaps = []
        for name in order:
            if name in plan:
                have = {n for n, _ in plan[name]}
                miss = [n for n in sizes_all if n not in have]
                if miss:
                    gaps.append(f"`{name}` at N={', '.join(f'{n:,}' for n in miss)}")
        if gaps:
            why = ("--quick keeps to 2 minutes" if args.quick else
                   "the peers and scripts stop at N=200 as the issue asks, the rest to fit the time budget")
            w(f"\nNot in the plan ({why}; see bench/README.md): " + "; ".join(gaps) + ".")
        w("\n| contender | what it runs | firewall: nft tables after setup |\n| --- | --- | --- |")
        seen = {}
        for r in rows:
            seen.setdefault(r["contender"], set()).update(r["counts"]["nft_tables"])
        for name in order:
            if name in seen:
                c = labels[name]
                w(f"| `{name}` | {c.label} | {', '.join(sorted(seen[name])) or 'none'} |")
        if any(r["counts"]["iptables_rules"] for r in rows):
            w("\nTables `ip nat`, `ip filter` (and `ip mangle`, `ip raw`) are iptables' own, "
              "made through iptables-nft; their rules are counted in both the nft and the "
              "iptables column.")

    for phase in ("setup", "teardown"):
        for ref in ("cnet-batch", "cnet-ns"):
            rt = ratio_table(rows, ref, phase)
            if not rt:
                continue
            sizes = sorted({n for (_, n) in rt})
            w(f"\n### {phase} per sandbox: contender / `{ref}`, within the same run "
              f"(median over runs, min–max); above 1 means `{ref}` is faster\n")
            body = []
            for name in order:
                if not any((name, n) in rt for n in sizes):
                    continue
                body.append([f"`{name}`", *(xcell(rt.get((name, n))) for n in sizes)])
            w(common.markdown_table(["contender", *(f"N={n:,}" for n in sizes)], body))

    if pub:
        ms_ = pub["milestones"]
        w(f"\n### publishing ports on one cnet sandbox ({pub['runs']} run{'s' if pub['runs'] > 1 else ''}; ms per publish, "
          f"median over runs (min–max); firewall after that many publishes)\n")
        body = []
        for m in ms_:
            a = pub["at"][str(m)]
            k = a["counts"]
            body.append([f"{m:,}", cell(a["cli"]), cell(a["api"]), str(k["nft_rules"]),
                         str(k["nft_elements"]), str(k["iptables_rules"])])
        w(common.markdown_table(["publishes", "`cnet publish` (process)", "`Cnet.publish()`",
                                 "nft rules", "set/map elements", "iptables -A"], body, align=["r"] * 6))
        win = pub["cli_window"]
        w(f"\nCLI: the median of the {win} `cnet publish` processes that end at each milestone "
          f"(at 1: publishes 1–{win}). API: the median of the {API_WINDOW} API publishes just "
          f"before the CLI window (at 1: the {API_WINDOW} after it). Last / first, within each "
          f"run: CLI {xcell(pub.get('cli_last_over_first'))}, API {xcell(pub.get('api_last_over_first'))}.")

    notes = one_process_notes(rows)
    if notes:
        w("\n" + notes)
    goals = targets(rows, pub) + targets_issue9(rows) + targets_issue14(rows)
    if goals:
        w("\n### issue 5's, 9's and 14's targets against these figures (a comparison, not a test)\n")
        w(common.markdown_table(["target", "measured", "holds"], goals, align=["l", "l", "l"]))

    if skipped or failed:
        w("\n### not measured\n")
        for name, why in skipped.items():
            w(f"- `{name}` skipped: {why}")
        for name, why in failed.items():
            w(f"- `{name}` FAILED: {why}")
    w("\nversions: " + "; ".join(f"{k} {v}" for k, v in vers.items() if v))
    for note in budget_note:
        if not note.startswith("WARNING"):
            w(f"\n{note}.")
    w(f"\nwhole run: {wall:.0f} s on {os.cpu_count()} CPUs.")
    return "\n".join(lines) + "\n"


# == main ======================================================================

def outside(args) -> int:
    if os.geteuid() != 0:
        fail("needs root: every cycle runs in a throw-away test host (tools/testhost, unshare)")
    started = time.perf_counter()
    load_before = os.getloadavg()
    source_before = C.cnet_source_hash()
    base = QUICK_PLAN if args.quick else FULL_PLAN
    names = list(base)
    do_publish = True
    if args.only:
        wanted = [x.strip() for x in args.only.split(",") if x.strip()]
        unknown = [x for x in wanted if x not in base and x != "publish"]
        if unknown:
            fail(f"--only: unknown contender(s) {', '.join(unknown)}; "
                 f"known: {', '.join(names)}, publish")
        names = [n for n in names if n in wanted]
        do_publish = "publish" in wanted
    plan = {n: base[n] for n in names}

    skipped: dict[str, str] = {}
    if any(n in plan for n in ("cni", "netavark")):
        why = ensure_packages([p for p, n in (("containernetworking-plugins", "cni"), ("netavark", "netavark"))
                               if n in plan])
        for pkg, n in (("containernetworking-plugins", "cni"), ("netavark", "netavark")):
            if pkg in why and n in plan:
                skipped[n] = why[pkg]
    for n in list(plan):
        if n in skipped:
            del plan[n]
            continue
        reason = C.by_name(n)().missing()
        if reason:
            skipped[n] = reason
            del plan[n]
    vers = versions()
    for name, why in skipped.items():
        print(f"skipped {name}: {why}", file=sys.stderr)

    tmp = Path(tempfile.mkdtemp(prefix="cnet-peers-"))
    cycles: dict[tuple[str, int], list[dict]] = {}
    failed: dict[str, str] = {}
    pub_docs = []
    pconf = PUBLISH_QUICK if args.quick else PUBLISH_FULL
    # A group is every cycle at one N (or the publish benchmark): it always runs
    # whole, so every ratio between two contenders pairs cycles of the same round.
    sizes = sorted({n for p in plan.values() for n, _ in p})
    groups = [f"N={n}" for n in sizes] + (["publish"] if do_publish else [])
    members = {f"N={n}": [(name, ends) for name in plan for m, ends in plan[name] if m == n] for n in sizes}
    cost: dict[str, float] = {}
    rounds: dict[str, int] = {g: 0 for g in groups}

    def cycle_in_testhost(name, n, ends, r):
        out = tmp / f"{name}-{n}-{r}.json"
        inner = ["--inner", "cycle", "--contender", name, "--n", str(n)]
        if ends is not None:
            inner += ["--ends", str(ends)]
        doc, err = run_inside(inner, out)
        if doc is None:
            failed[name] = f"run {r + 1}, N={n}: {err}"
            print(f"FAILED {name} N={n}: {err}", file=sys.stderr)
            return
        cycles.setdefault((name, n), []).append(doc)
        print(f"run {r + 1} {name:14} N={n:<4} setup {per_sandbox(doc, 'setup') * 1000:7.1f} ms/sandbox, "
              f"teardown {per_sandbox(doc, 'teardown') * 1000:7.1f} ms/sandbox ({doc['wall']:.1f} s)",
              file=sys.stderr)

    def run_group(g: str, r: int) -> float:
        t0 = time.perf_counter()
        if g == "publish":
            if "publish" not in failed:
                out = tmp / f"publish-{r}.json"
                doc, err = run_inside(["--inner", "publish", "--milestones",
                                       ",".join(map(str, pconf["milestones"])),
                                       "--window", str(pconf["cli_window"])], out)
                if doc is None:
                    failed["publish"] = f"run {r + 1}: {err}"
                    print(f"FAILED publish: {err}", file=sys.stderr)
                else:
                    pub_docs.append(doc)
                    print(f"run {r + 1} publish x{pconf['milestones'][-1]} ({doc['wall']:.1f} s)",
                          file=sys.stderr)
        else:
            todo = members[g]
            todo = todo[r % len(todo):] + todo[:r % len(todo)]  # no contender always follows the same one
            for name, ends in todo:
                if name not in failed:
                    cycle_in_testhost(name, int(g[2:]), ends, r)
        rounds[g] += 1
        return time.perf_counter() - t0

    budget_note = []
    try:
        for g in groups:  # the first run of everything, whatever the budget
            cost[g] = run_group(g, 0)
        for r in range(1, args.runs):  # more runs, cheapest group first, while the budget allows
            for g in sorted(groups, key=lambda g: cost[g]):
                elapsed = time.perf_counter() - started
                if args.budget and elapsed + cost[g] * 1.05 > args.budget:
                    continue
                run_group(g, r)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    short = [g for g in groups if rounds[g] < args.runs]
    if short:
        budget_note.append(
            f"time budget {args.budget:.0f} s (--budget): " + ", ".join(
                f"{g} ran {rounds[g]} of {args.runs} runs (one run takes {cost[g]:.0f} s)" for g in short))

    # a contender that failed in a later run keeps no half set of runs in the figures
    for name in failed:
        for key in [k for k in cycles if k[0] == name]:
            del cycles[key]
    rows = summarize(cycles)
    pub = publish_summary(pub_docs) if pub_docs and "publish" not in failed else None
    wall = time.perf_counter() - started
    load = {"before": list(load_before), "after": list(os.getloadavg())}
    sources = {"before": source_before, "after": C.cnet_source_hash()}
    seen = {}
    for (name, n), docs in cycles.items():
        for r, d in enumerate(docs):
            seen.setdefault(d.get("cnet_source"), []).append(f"{name} N={n} run {r + 1}")
    for r, d in enumerate(pub_docs):
        seen.setdefault(d.get("cnet_source"), []).append(f"publish run {r + 1}")
    sources["cycles"] = seen
    if sources["before"] != sources["after"] or len(seen) > 1:
        parts = [f"{k}: {len(v)} cycle{'s' if len(v) > 1 else ''} ({', '.join(v[:4])}{', ...' if len(v) > 4 else ''})"
                 for k, v in seen.items()]
        warning = (f"WARNING: cnet's source changed during this run ({sources['before']} at the start, "
                   f"{sources['after']} at the end); the cycles ran on: " + "; ".join(parts) +
                   ". Figures of different cycles may come from different code: run again on a quiet checkout")
        budget_note.insert(0, warning)
        print(warning, file=sys.stderr)
    budget_note.append(f"load average (1, 5, 15 min) {' '.join(f'{x:.1f}' for x in load['before'])} "
                       f"before and {' '.join(f'{x:.1f}' for x in load['after'])} after the run, "
                       f"on {os.cpu_count()} CPUs: above about 1, other work shared the CPUs "
                       f"and the figures are noisier")
    text = report(args, plan, rows, skipped, failed, pub, vers, wall, budget_note)
    print(text)

    table = common.table_path("peers", args, whole=not args.only)
    table.write_text(text, encoding="utf-8")
    path = common.write_results("peers", args, {
        "plan": {n: [list(x) for x in p] for n, p in plan.items()},
        "publish": pconf if do_publish else None,
        "bridge": C.BRIDGE, "subnet": C.SUBNET, "first_host_port": C.FIRST_HOST_PORT,
        "growth_window": GROWTH_WINDOW,
        "versions": vers,
        "skipped": skipped, "failed": failed,
        "labels": {c.name: {"label": c.label, "firewall": c.firewall, "processes": c.processes,
                            "one_process": c.one_process} for c in C.CONTENDERS if c.name in plan},
        "total_seconds": wall,
        "loadavg": load,
        "cnet_source": sources,
        "budget_seconds": args.budget,
        "group_runs": rounds, "group_seconds": cost,
    }, rows)
    if pub:
        doc = json.loads(path.read_text(encoding="utf-8"))
        doc["publish"] = pub
        path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(f"raw figures: {os.path.relpath(path, ROOT)}; table: {os.path.relpath(table, ROOT)}")
    if rows:
        import plot
        png, why = plot.plot(rows, common.table_path("peers", args, ".png", whole=not args.only), pub)
        print(f"plot: {os.path.relpath(png, ROOT)}" if png else f"plot skipped: {why}")
    if failed:
        for name, why in failed.items():
            print(f"bench/peers.py: {name} failed: {why}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    p = common.parser(__doc__.splitlines()[0])
    for action in p._actions:
        if action.dest == "runs":
            action.help = (f"runs per figure (default {DEFAULT_RUNS}, --quick too); after the first, "
                           "only as many as the time budget allows")
        if action.dest == "quick":
            action.help = "N = 1 and 20, fewer contenders at 20, a 2-minute budget: a smoke run"
    p.add_argument("--only", metavar="NAME,...",
                   help="only these contenders (and `publish` for the port benchmark): "
                        + ", ".join(c.name for c in C.CONTENDERS))
    p.add_argument("--budget", type=float, default=None, metavar="SECONDS",
                   help=f"runs after the first are made, cheapest N first, only while the whole "
                        f"run stays under this (default {FULL_BUDGET:.0f}, --quick {QUICK_BUDGET:.0f}; 0: no limit)")
    p.add_argument("--inner", choices=("cycle", "publish"), help=argparse.SUPPRESS)
    p.add_argument("--contender", help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, help=argparse.SUPPRESS)
    p.add_argument("--ends", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--milestones", help=argparse.SUPPRESS)
    p.add_argument("--window", type=int, help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.runs is None:
        args.runs = DEFAULT_RUNS
    if args.runs < 1:
        p.error("--runs must be at least 1")
    if args.budget is None:
        args.budget = QUICK_BUDGET if args.quick else FULL_BUDGET
    if os.environ.get(INSIDE) == "1":
        if not args.inner or not args.out:
            fail(f"{INSIDE}=1 without --inner/--out")
        sys.exit(inside(args))
    sys.exit(outside(args))


if __name__ == "__main__":
    main()
