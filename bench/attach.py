"""Time of one `cnet attach`, as a whole process and in-process, with 1, 100 and 500 sandboxes already on the network.

This script touches the kernel (namespaces, a bridge, veth pairs), so it never
measures on this machine's own network: run from the repository root, it
re-executes itself inside a throw-away test host (tools/testhost: a new
network and mount namespace with tmpfs over /run/netns, /var/lib/cnet,
/etc/netns and /etc/cnet) and passes the exit code through. Everything it
made is freed when the test host exits. It needs root, as tools/testhost does.

Inside, it creates one bridge network (`cnet create bridge bench0 --subnet
10.200.0.0/16`) and fills it, through the Python API, up to N sandboxes with
one endpoint each (N = 1, 100, 500; --quick: 1, 50). At each N, run after run
(interleaved, after one untimed warm-up run), it times:

  cnet attach (process)     subprocess.run of the venv's `cnet attach NAME bench0`,
                            for a sandbox made just before (untimed) and
                            detached and deleted just after (untimed)
  Cnet.attach()             the same, in-process: api.attach(NAME, "bench0")
  Cnet.create_ns(network=)  namespace + attach in one call, in-process
  Cnet.delete_ns()          of that sandbox, in-process
  StateStore.save()         the state-file write alone (state loaded untimed)
  save(load())              api.store.save(api.store.load()): the state-file
                            rewrite every changing operation does

so every timed operation sees exactly N endpoints on the network. The growth
column is the median at the largest N over the median at N=1: an attach should
stay flat, doing no work in proportion to the existing endpoints beyond
rewriting the state file (the save(load()) row shows how much that is).

Once, in fresh interpreters: `python -c pass` (the floor) and the time of
importing what a whole-process attach imports before its work (cnet's CLI,
core and netlink modules) inside `python -c`.

At each N the in-process attach is also run under cProfile (untimed); the
functions whose time per attach grows most from the first N to the last are
printed when the in-process attach grows by more than 1.3x (or with --profile).

    .venv/bin/python bench/attach.py [--quick] [--runs N] [--profile]
"""

from __future__ import annotations

import cProfile
import gc
import ipaddress
import json
import os
import pstats
import re
import subprocess
import sys
import time

import common
from common import check_inside, check_mounts, clean_env, find_cnet

ROOT = common.BENCH_DIR.parent


NETWORK = "bench0"
SUBNET = "10.200.0.0/16"
SIZES = (1, 100, 500)
QUICK_SIZES = (1, 50)
GROWTH_TO_PROFILE = 1.3
PROFILE_TOP = 12

CNET_IMPORT = ("import time; t=time.perf_counter(); import cnet.cli, cnet.core, cnet.kernel.netlink; "
               "print(time.perf_counter()-t)")

# (row label, key in the samples) in the order of the table
FIGURES = [
    ("`cnet attach` (process)", "attach_process"),
    ("`Cnet.attach()`", "attach"),
    ("`Cnet.create_ns(network=)`", "create_ns"),
    ("`Cnet.delete_ns()`", "delete_ns"),
    ("`StateStore.save()`", "save"),
    ("`save(load())`", "save_load"),
]

# cnet functions whose time per attach the profile breakdown shows:
# (label, end of the file name, function name)
BREAKDOWN = [
    ("StateStore.load", "cnet/state.py", "load"),
    ("StateStore.save", "cnet/state.py", "save"),
    ("Resolver.networks_changed", "cnet/resolver.py", "networks_changed"),
    ("sandboxes.plan_endpoint", "cnet/core/sandboxes.py", "plan_endpoint"),
    ("sandboxes.host_ifname", "cnet/core/sandboxes.py", "host_ifname"),
    ("sandboxes.default_route_endpoint", "cnet/core/sandboxes.py", "default_route_endpoint"),
    ("bridge.attach (netlink)", "cnet/drivers/bridge.py", "attach"),
    ("Kernel.inside (open)", "cnet/core/base.py", "inside"),
    ("Kernel.netlink (open)", "cnet/core/base.py", "netlink"),
    ("Kernel.__exit__ (close)", "cnet/core/base.py", "__exit__"),
]


def fail(message: str) -> None:
    raise SystemExit(f"bench/attach.py: {message}")


# -- inside: measure -----------------------------------------------------------

def run_checked(cmd: list[str], env: dict) -> str:
    proc = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if proc.returncode != 0:
        fail(f"{cmd} exited {proc.returncode}:\n{proc.stderr.strip()}")
    return proc.stdout


def one_off(runs: int, env: dict) -> list[dict]:
    """Fresh interpreters, measured once per run: the floor and cnet's imports."""
    py = sys.executable
    floor, imports = [], []
    for i in range(runs + 1):  # the first is an untimed warm-up
        t0 = time.perf_counter()
        run_checked([py, "-c", "pass"], env)
        elapsed = time.perf_counter() - t0
        reported = float(run_checked([py, "-c", CNET_IMPORT], env).strip())
        if i:
            floor.append(elapsed)
            imports.append(reported)
    return [
        {"name": "python -c pass", "what": "whole process, timed from subprocess.run to exit",
         "sandboxes": None, **common.summary(floor)},
        {"name": "import cnet.cli, cnet.core, cnet.kernel.netlink", "what": "timed inside `python -c` with time.perf_counter",
         "sandboxes": None, **common.summary(imports)},
    ]


def verify(api, n: int, env: dict, when: str) -> None:
    """Not a timing: the network holds exactly n endpoints, in the state and in the kernel."""
    check_mounts()
    state = api.store.load()
    recorded = len(state.endpoints_of_network(NETWORK))
    ports = len(run_checked(["ip", "-o", "link", "show", "master", NETWORK], env).splitlines())
    if recorded != n or len(state.sandboxes) != n or ports != n:
        fail(f"{when} N={n}: {len(state.sandboxes)} sandboxes, {recorded} endpoints recorded, "
             f"{ports} bridge ports in the kernel (expected {n} of each)")


def timed(fn) -> float:
    gc.collect()  # as common.time_call: one run's garbage is not charged to the next
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def measure_at(api, cnet: str, env: dict, n: int, runs: int) -> dict[str, list[float]]:
    """One warm-up run then `runs` timed runs of every figure, interleaved."""
    subnet = ipaddress.ip_network(SUBNET)
    samples = {key: [] for _, key in FIGURES}
    for i in range(runs + 1):
        check_mounts()
        got = {}

        # (a) the whole `cnet attach` process
        name = f"a{n}x{i}"
        api.create_ns(name)
        proc = None

        def attach_process():
            nonlocal proc
            proc = subprocess.run([cnet, "attach", name, NETWORK], env=env, stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True)

        got["attach_process"] = timed(attach_process)
        if proc.returncode != 0:
            fail(f"cnet attach {name} {NETWORK} exited {proc.returncode}:\n{proc.stderr.strip()}")
        printed = proc.stdout.split()
        if len(printed) != 1 or ipaddress.ip_interface(printed[0]).ip not in subnet:
            fail(f"cnet attach {name} {NETWORK} printed {proc.stdout!r}, not one address in {SUBNET}")
        api.detach(name, NETWORK)
        api.delete_ns(name)

        # (b) the same attach, in-process
        name = f"b{n}x{i}"
        api.create_ns(name)
        got["attach"] = timed(lambda: api.attach(name, NETWORK))
        api.detach(name, NETWORK)
        api.delete_ns(name)

        # (c) namespace and attach in one call, then the delete
        name = f"c{n}x{i}"
        got["create_ns"] = timed(lambda: api.create_ns(name, network=NETWORK))
        got["delete_ns"] = timed(lambda: api.delete_ns(name))

        # (d) the state-file rewrite alone
        state = api.store.load()
        got["save"] = timed(lambda: api.store.save(state))
        got["save_load"] = timed(lambda: api.store.save(api.store.load()))

        if i:  # run 0 is the warm-up
            for key, value in got.items():
                samples[key].append(value)
    return samples


def label(key: tuple) -> str:
    """A short name for a pstats key (file, line, function)."""
    filename, line, func = key
    if filename == "~":
        return func  # a built-in, e.g. "<built-in method posix.fsync>"
    for marker in ("/site-packages/", "/src/"):
        if marker in filename:
            filename = filename.split(marker, 1)[1]
            break
    else:
        filename = re.sub(r"^.*/lib/python3\.\d+/", "", filename)  # the standard library
    return f"{filename}:{line}({func})"


def profile_attach(api, n: int, runs: int) -> dict:
    """cProfile over `runs` in-process attaches; per function and per attach:
    [calls, self seconds, cumulative seconds]."""
    prof = cProfile.Profile()
    for i in range(runs):
        check_mounts()
        name = f"p{n}x{i}"
        api.create_ns(name)
        gc.collect()
        prof.enable()
        api.attach(name, NETWORK)
        prof.disable()
        api.detach(name, NETWORK)
        api.delete_ns(name)
    stats = pstats.Stats(prof).stats
    return {key: [nc / runs, tt / runs, ct / runs] for key, (_, nc, tt, ct, _) in stats.items()}


def breakdown(profile: dict) -> dict[str, float | None]:
    """Cumulative seconds per attach of the BREAKDOWN functions (None: not called)."""
    found = {}
    for name, suffix, func in BREAKDOWN:
        found[name] = sum(v[2] for k, v in profile.items() if k[0].endswith(suffix) and k[2] == func) or None
    return found


def growing(first: dict, last: dict) -> list[dict]:
    """Functions ordered by how much their self time per attach grew."""
    rows = []
    for key in set(first) | set(last):
        a, b = first.get(key, [0, 0, 0]), last.get(key, [0, 0, 0])
        rows.append({"function": label(key), "calls": [a[0], b[0]], "self": [a[1], b[1]],
                     "cumulative": [a[2], b[2]], "self_added": b[1] - a[1]})
    rows.sort(key=lambda r: r["self_added"], reverse=True)
    return rows


def cell(s: dict) -> str:
    return f"{common.ms(s['median'])} ({common.ms(s['min'])}–{common.ms(s['max'])})"


def measure(args) -> None:
    check_inside()
    from cnet.core import Cnet

    sizes = QUICK_SIZES if args.quick else SIZES
    cnet = find_cnet()
    env = clean_env()
    started = time.perf_counter()

    api = Cnet()
    if not api.store.path.startswith("/var/lib/cnet/"):
        fail(f"the state file would be {api.store.path}, outside the test host's /var/lib/cnet")
    run_checked([cnet, "create", "bridge", NETWORK, "--subnet", SUBNET], env)

    once = one_off(args.runs, env)

    results, profiles, fill, state_bytes = [], {}, {}, {}
    filled = 0
    for n in sizes:
        t0 = time.perf_counter()
        while filled < n:
            check_mounts()
            api.create_ns(f"f{filled:04d}", network=NETWORK)
            filled += 1
        fill[n] = time.perf_counter() - t0
        verify(api, n, env, "before timing at")
        samples = measure_at(api, cnet, env, n, args.runs)
        profiles[n] = profile_attach(api, n, args.runs)
        verify(api, n, env, "after timing at")
        state_bytes[n] = os.path.getsize(api.store.path)
        for _, key in FIGURES:
            results.append({"name": key, "sandboxes": n, **common.summary(samples[key])})

    def figure(key, n):
        return next(r for r in results if r["name"] == key and r["sandboxes"] == n)

    first, last = sizes[0], sizes[-1]
    for r in results:
        r["growth_vs_first"] = r["median"] / figure(r["name"], first)["median"]

    # -- the tables ---------------------------------------------------------
    rows = []
    for title, key in FIGURES:
        lo, hi = figure(key, first), figure(key, last)
        rows.append([title, *(cell(figure(key, n)) for n in sizes),
                     f"{hi['median'] / lo['median']:.2f}x", f"{(hi['median'] - lo['median']) * 1000:+.1f}"])
    print(f"### cnet attach with N sandboxes already on the network ({args.runs} runs; "
          f"median (min–max) ms; test host, state file on tmpfs)\n")
    print(common.markdown_table(
        ["operation", *(f"N={n:,}" for n in sizes), f"growth N={last:,} / N={first}", "added ms"], rows))

    print(f"\n### once, in fresh interpreters ({args.runs} runs; ms)\n")
    attach_first = figure("attach_process", first)["median"]
    print(common.markdown_table(
        ["what", "median", "min", "max", f"share of `cnet attach` at N={first}"],
        [[f"`{r['name']}`", common.ms(r["median"]), common.ms(r["min"]), common.ms(r["max"]),
          f"{r['median'] / attach_first:.0%}"] for r in once]))

    at_first, at_last = figure("attach", first), figure("attach", last)
    sl_first, sl_last = figure("save_load", first), figure("save_load", last)
    attach_added = at_last["median"] - at_first["median"]
    rewrite_added = sl_last["median"] - sl_first["median"]
    growth = at_last["median"] / at_first["median"]
    print(f"\nstate file: {', '.join(f'{common.human_size(state_bytes[n])} at N={n:,}' for n in sizes)}; "
          f"filling to N={last:,} took {sum(fill.values()):.1f} s "
          f"({sum(fill.values()) / last * 1000:.1f} ms per sandbox)")
    print(f"in-process attach: {growth:.2f}x from N={first} to N={last:,} "
          f"({attach_added * 1000:+.1f} ms), of which the state-file rewrite save(load()) "
          f"{rewrite_added * 1000:+.1f} ms; other work {(attach_added - rewrite_added) * 1000:+.1f} ms")

    first_bd, last_bd = breakdown(profiles[first]), breakdown(profiles[last])
    grown = growing(profiles[first], profiles[last])
    if args.profile or growth > GROWTH_TO_PROFILE:
        why = "--profile" if growth <= GROWTH_TO_PROFILE else f"growth {growth:.2f}x > {GROWTH_TO_PROFILE}x"
        print(f"\n### cProfile of the in-process attach ({why}; {args.runs} attaches per N; "
              f"ms per attach, profiler overhead included)\n")

        def opt(v):
            return "-" if v is None else common.ms(v)

        print(common.markdown_table(
            ["cnet function (cumulative)", f"N={first}", f"N={last:,}", "added"],
            [[f"`{name}`", opt(first_bd[name]), opt(last_bd[name]),
              "-" if first_bd[name] is None or last_bd[name] is None
              else f"{(last_bd[name] - first_bd[name]) * 1000:+.1f}"] for name, _, _ in BREAKDOWN]))
        print()
        print(common.markdown_table(
            ["function (self time grows most)", f"calls N={first}", f"calls N={last:,}",
             f"self N={first}", f"self N={last:,}", "self added"],
            [[f"`{r['function']}`", f"{r['calls'][0]:g}", f"{r['calls'][1]:g}", f"{r['self'][0] * 1000:.2f}",
              f"{r['self'][1] * 1000:.2f}", f"{r['self_added'] * 1000:+.2f}"] for r in grown[:PROFILE_TOP]]))

    path = common.write_results("attach", args, {
        "sizes": list(sizes),
        "network": NETWORK,
        "subnet": SUBNET,
        "state_file_bytes": {str(n): b for n, b in state_bytes.items()},
        "fill_seconds": {str(n): s for n, s in fill.items()},
        "cnet": cnet,
        "state_file": api.store.path,
        "total_seconds": time.perf_counter() - started,
    }, results + once)
    # The profile is no timing of its own: it goes beside the results.
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc["profile"] = {
        "unit": "seconds per attach (cProfile, overhead included)",
        "breakdown": {name: {str(first): first_bd[name], str(last): last_bd[name]} for name, _, _ in BREAKDOWN},
        "growing": [dict(r, sizes=[first, last]) for r in grown[:50]],
    }
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    print(f"\nraw figures: {os.path.relpath(path, ROOT)} "
          f"(whole run {time.perf_counter() - started:.0f} s inside the test host)")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--profile", action="store_true",
                   help=f"print the cProfile tables even if the in-process attach grows by less than "
                        f"{GROWTH_TO_PROFILE}x")
    args = common.parse(p, argv)
    common.measured_in_testhost(__file__, args, argv, measure)


if __name__ == "__main__":
    main()
