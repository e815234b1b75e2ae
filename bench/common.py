"""Shared helpers for the cnet benchmark scripts in this folder.

Nothing here asserts a timing: the scripts measure, print a Markdown table
and write the raw samples to bench/results/<name>.json.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"

DEFAULT_RUNS = 5
QUICK_RUNS = 3


# -- command line -----------------------------------------------------------

def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--runs", type=int, default=None, metavar="N",
                   help=f"timed runs per figure (default {DEFAULT_RUNS}, or {QUICK_RUNS} with --quick)")
    p.add_argument("--quick", action="store_true",
                   help=f"{QUICK_RUNS} runs and smaller sizes, for a fast smoke run")
    return p


def parse(p: argparse.ArgumentParser, argv: list[str] | None = None) -> argparse.Namespace:
    args = p.parse_args(argv)
    if args.runs is None:
        args.runs = QUICK_RUNS if args.quick else DEFAULT_RUNS
    if args.runs < 1:
        p.error("--runs must be at least 1")
    return args


# -- timing -----------------------------------------------------------------

def summary(samples: list[float]) -> dict:
    """Median, min and max of timings in seconds, plus the samples themselves."""
    return {
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
        "samples": list(samples),
    }


def time_call(fn: Callable[[], object], runs: int, *, warmup: int = 1,
              setup: Callable[[], object] | None = None) -> list[float]:
    """Time `fn()` `runs` times with time.perf_counter, after `warmup` untimed calls.

    `setup`, if given, runs untimed before every call. A full garbage
    collection runs before each timed call so one run's garbage is not
    charged to the next; the collector stays enabled during the call, as it
    is when cnet runs for real.
    """
    for _ in range(warmup):
        if setup is not None:
            setup()
        fn()
    samples = []
    for _ in range(runs):
        if setup is not None:
            setup()
        gc.collect()
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return samples


# -- output -----------------------------------------------------------------

def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def human_size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def markdown_table(headers: list[str], rows: list[list[str]], align: list[str] | None = None) -> str:
    """A Markdown table; `align` holds 'l' or 'r' per column (default: first left, rest right)."""
    if align is None:
        align = ["l"] + ["r"] * (len(headers) - 1)
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows)]
    widths = [max(w, 3) for w in widths]

    def line(cells):
        out = []
        for c, w, a in zip(cells, widths, align):
            out.append(str(c).rjust(w) if a == "r" else str(c).ljust(w))
        return "| " + " | ".join(out) + " |"

    rule = "| " + " | ".join(("-" * (w - 1) + ":") if a == "r" else "-" * w
                               for w, a in zip(widths, align)) + " |"
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def environment() -> dict:
    """Where the figures were taken: enough to tell two result files apart."""
    import cnet

    return {
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "cnet": cnet.__version__,
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def table_path(name: str, args: argparse.Namespace, suffix: str = ".md", whole: bool = True) -> Path:
    """Where a bench writes its table (or plot): bench/results/NAME.md, kept
    in git, for a full run of all it measures; NAME.partial.md (ignored by
    git) for a --quick run or a part of it (whole=False), so that a smoke run
    never overwrites the figures of the last full one."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    return RESULTS_DIR / (f"{name}{suffix}" if whole and not args.quick else f"{name}.partial{suffix}")


def write_results(name: str, args: argparse.Namespace, params: dict, results: list[dict]) -> Path:
    """Write bench/results/<name>.json and return its path. Times are in seconds."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    doc = {
        "benchmark": name,
        "unit": "seconds",
        "runs": args.runs,
        "quick": args.quick,
        "params": params,
        "environment": environment(),
        "results": results,
    }
    path = RESULTS_DIR / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


# -- test data --------------------------------------------------------------

def build_state(sandboxes: int, networks: int = 1, ports: int = 0):
    """A State with `sandboxes` sandboxes, each with one endpoint on one of
    `networks` bridge networks (round robin), and `ports` port mappings on the
    first sandboxes. Deterministic, so every run measures the same document."""
    from cnet.model import Endpoint, Network, PortMapping, Sandbox, State, Subnet, replace

    if networks < 1 or networks > 100:
        raise ValueError("networks must be 1..100")
    if sandboxes > networks * 65_000:
        raise ValueError("too many sandboxes for /16 subnets")
    created = "2025-01-01T00:00:00Z"
    state = State()
    nets = []
    for i in range(networks):
        net = Network(
            name=f"bench{i}",
            driver="bridge",
            subnets=[Subnet(subnet=f"10.{100 + i}.0.0/16", gateway=f"10.{100 + i}.0.1")],
            mtu=1500,
            created=created,
        )
        state.networks[net.name] = net
        nets.append(net)
    hosts_used = [1] * networks  # .1 is the gateway
    last = [None] * networks  # the IPAM cursor of each network: its last address handed out
    for i in range(sandboxes):
        name = f"sb{i:05d}"
        state.sandboxes[name] = Sandbox(name=name, created=created)
        k = i % networks
        net = nets[k]
        hosts_used[k] += 1
        h = hosts_used[k]
        addr = f"10.{100 + k}.{h >> 8}.{h & 0xFF}"
        last[k] = addr
        state.endpoints.append(Endpoint(
            sandbox=name,
            network=net.name,
            ifname="eth0",
            host_ifname=f"cv{i:08x}",
            mac="02:42:%02x:%02x:%02x:%02x" % (100 + k, (i >> 16) & 0xFF, (i >> 8) & 0xFF, i & 0xFF),
            addresses=[f"{addr}/16"],
        ))
    for net, addr in zip(nets, last):
        state.networks[net.name] = replace(net, subnets=[replace(net.subnets[0], last=addr)])
    for i in range(ports):
        e = state.endpoints[i % len(state.endpoints)]
        state.ports.append(PortMapping(
            sandbox=e.sandbox,
            network=e.network,
            protocol="udp" if i % 4 == 3 else "tcp",
            host_ip="0.0.0.0",
            host_port=20_000 + i,
            port=8080,
        ))
    return state


# == throw-away test hosts (tools/testhost): shared by the scripts that touch the kernel ==

TESTHOST = Path(__file__).resolve().parent.parent / "tools" / "testhost"
TESTHOST_DIRS = ("/run/netns", "/var/lib/cnet", "/etc/netns", "/etc/cnet")
INSIDE = "CNET_BENCH_INSIDE"             # set for the copy of a script running inside the test host
OUTER_NETNS = "CNET_BENCH_OUTER_NETNS"   # the inode of the machine's own network namespace


def netns_inode() -> int:
    return os.stat("/proc/self/ns/net").st_ino


def check_inside() -> None:
    """Refuse to touch the kernel unless this really is a test host."""
    outer = os.environ.get(OUTER_NETNS)
    if not outer or netns_inode() == int(outer):
        raise SystemExit(f"{Path(sys.argv[0]).name}: {INSIDE} is set but this process is not in a"
                         " test host; run the script without it and it starts one")
    check_mounts()


def check_mounts() -> None:
    """The test host's tmpfs mounts are still there. Checked again during a
    run: removing a directory elsewhere detaches what is mounted on it in
    every mount namespace, so another test host exiting can take them away."""
    for d in TESTHOST_DIRS:
        if not os.path.ismount(d):
            raise SystemExit(f"{Path(sys.argv[0]).name}: {d} is not a mount point (not inside"
                             " tools/testhost, or its tmpfs was detached, e.g. by another test host"
                             " removing the directory); stopping")


def find_cnet() -> str:
    """The venv's console script, next to the python running the benchmark."""
    script = Path(sys.executable).parent / "cnet"
    if not script.exists():
        name = Path(sys.argv[0]).name
        raise SystemExit(f"{name}: no cnet console script next to {sys.executable}; "
                         f"run with the venv's python (.venv/bin/python bench/{name})")
    return str(script)


def clean_env() -> dict:
    """This environment without CNET_* variables, so cnet uses its default
    paths (inside a test host, its tmpfs directories) or the arguments' ones."""
    return {k: v for k, v in os.environ.items() if not k.startswith("CNET_")}


def run_in_testhost(script: str, argv: list[str]) -> int:
    """Run `script` again with argv inside a throw-away test host (tools/testhost),
    marked INSIDE, and return its exit code: what a script that touches the kernel does first."""
    import subprocess

    if os.geteuid() != 0:
        raise SystemExit(f"{Path(script).name}: needs root: it measures inside a throw-away test host "
                         "(tools/testhost, unshare --net --mount)")
    find_cnet()
    env = clean_env()
    env[OUTER_NETNS] = str(netns_inode())
    cmd = [str(TESTHOST), "env", f"{INSIDE}=1", sys.executable, str(Path(script).resolve()), *argv]
    return subprocess.run(cmd, cwd=BENCH_DIR.parent, env=env).returncode


def measured_in_testhost(script: str, args, argv: list[str], measure) -> None:
    """The main() of a bench that touches the kernel: measure(args) when this
    is the copy running inside the test host, else run script there (exits)."""
    if os.environ.get(INSIDE) == "1":
        measure(args)
    else:
        sys.exit(run_in_testhost(script, argv))


def report(name: str, args, params: dict, results: list[dict], text: str) -> None:
    """Print a bench's Markdown text, write its raw figures, and (a full run
    only) the text as bench/results/NAME.md with the time and cores."""
    print(text)
    path = write_results(name, args, params, results)
    if not args.quick:
        (RESULTS_DIR / f"{name}.md").write_text(
            f"# bench/{name}.py\n\n{environment()['timestamp']}, {os.cpu_count()} cores\n\n{text}")
    print(f"raw figures: {path.relative_to(BENCH_DIR.parent)}")
