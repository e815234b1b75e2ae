"""What pyroute2 costs cnet: import time of its distributions and entry points, and the cost of each request, raw and through cnet's `Netlink`.

Issue 9 moves cnet's netlink access onto pyroute2. This script measures the
choices that move leaves open; it asserts no timing.

A. Import cost, whole processes. Each row is `subprocess.run` of
   `python -c CODE`, from call to exit, with the rows interleaved (run 1 of
   every row, then run 2, ...) after one untimed warm-up run of each. Without
   --variants only the pyroute2 installed beside this python is measured; with
   --variants the script makes one venv per candidate under a temporary
   directory (pip from PyPI, then compileall, so no row pays for compiling):
   pyroute2==0.9.7, pyroute2-minimal==0.9.7 and pyroute2==0.7.12. Per venv:
   `from pyroute2 import IPRoute, Conntrack` (0.7.12 also through
   `pyroute2.minimal`) and a "stub" entry that skips the package `__init__`:
   an empty module with the package's `__path__` is put in sys.modules as
   `pyroute2`, then `from pyroute2.iproute.linux import IPRoute` (and, in a
   second row, `from pyroute2.conntrack import Conntrack`). Baselines:
   `python -c pass` (in every venv), `import click`, `import asyncio`,
   `import cnet.kernel.pyroute` (cnet's loader, which defers the package
   `__init__` instead of stubbing it) and `import cnet.kernel.netlink`.
   (Until issue 9, cnet.kernel.netlink was a hand-written client; the
   figures committed from that time, on the measure branch, say so.) An untimed probe per row
   counts the modules loaded and looks for asyncio and multiprocessing.

B. Per-request cost, in-process, inside a throw-away test host (root;
   tools/testhost: nothing touches this machine's own network): opening a
   handle in the current namespace and in another named one (pyroute2's
   `IPRoute(netns=, flags=0)`, `pushns`/`IPRoute()`/`popns`, a ctypes
   setns(2) around `IPRoute()`, `NetNS`, and cnet's `Netlink`), their
   close(); then, pyroute2 and cnet's `Netlink` alternating, a link get, a
   lookup by name, an alias set, an address add, a default route add, a veth
   add with its peer born in the namespace, and a link dump of a namespace
   with 1 and with 200 links. Also the first requests in a fresh process.

C. Checks, in the same test host: threads, tasks, child processes and file
   descriptors an open handle holds and leaves after close(); forks per open;
   that a socket opened after setns really acts in the other namespace once
   the process is back; `IPRoute()` inside a running asyncio loop; what a
   missing namespace name does; whether every measured import entry point
   really works (IPRoute and Conntrack opened, a request made).

    .venv/bin/python bench/kernel_access.py [--quick] [--runs N] [--requests N] [--variants] [--venvs DIR]
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common
from common import INSIDE, OUTER_NETNS, TESTHOST, check_inside, check_mounts, clean_env, netns_inode

ROOT = common.BENCH_DIR.parent
THIS = str(Path(__file__).resolve())

RUNS, QUICK_RUNS = 31, 3              # whole processes per import row
REQUESTS, QUICK_REQUESTS = 100, 10    # rounds of in-process requests
COLD, QUICK_COLD = 10, 2              # fresh processes for the first-request rows
MANY_LINKS = 200

# (venv name, pip requirement, label)
VARIANTS = [
    ("pyroute2-0.9.7", "pyroute2==0.9.7", "pyroute2 0.9.7"),
    ("pyroute2-minimal-0.9.7", "pyroute2-minimal==0.9.7", "pyroute2-minimal 0.9.7"),
    ("pyroute2-0.7.12", "pyroute2==0.7.12", "pyroute2 0.7.12"),
]
REFERENCE = "pyroute2 0.9.7"  # the ratio column is against this venv's full import

# The package __init__ skipped: an empty module stands for the package.
STUB = ("import sys, types, importlib.util; "
        "s = importlib.util.find_spec('pyroute2'); m = types.ModuleType('pyroute2'); "
        "m.__path__ = list(s.submodule_search_locations); sys.modules['pyroute2'] = m; "
        "from pyroute2.iproute.linux import IPRoute")
STUB_CT = STUB + "; from pyroute2.conntrack import Conntrack"
FULL = "from pyroute2 import IPRoute, Conntrack"
MINIMAL = "from pyroute2.minimal import IPRoute, Conntrack"

PROBE = """
import sys, json, threading
_p = [n for n in sys.modules if n == 'pyroute2' or n.startswith('pyroute2.')]
print('@@bench ' + json.dumps({'pyroute2_modules': len(_p), 'modules': len(sys.modules),
    'asyncio': 'asyncio' in sys.modules, 'multiprocessing': 'multiprocessing' in sys.modules,
    'conntrack': 'pyroute2.conntrack' in sys.modules,
    'tc': 'pyroute2.netlink.rtnl.tcmsg' in sys.modules, 'threads': threading.active_count()}))
"""

# What a venv's pyroute2 has, read from its files (the package is not imported).
CONTENTS = """
import importlib.metadata, importlib.util, json, os
s = importlib.util.find_spec('pyroute2')
base = list(s.submodule_search_locations)[0]
def has(rel):
    p = os.path.join(base, *rel.split('.'))
    return os.path.isdir(p) or os.path.exists(p + '.py')
dists = sorted(f"{d.metadata['Name']} {d.version}" for d in importlib.metadata.distributions()
               if (d.metadata['Name'] or '').lower().startswith('pyroute2'))
print(json.dumps({'distributions': dists, 'path': base, 'has': {m: has(m) for m in
    ['conntrack', 'netlink.rtnl.tcmsg', 'netns', 'minimal', 'ndb', 'ipdb', 'nslink', 'nftables', 'ethtool']}}))
"""

# Appended to an import row's code, run inside the test host: does the entry point work?
WORKS = """
import json
_r = {}
try:
    with IPRoute() as _i:
        _r['iproute'] = _i.link_lookup(ifname='lo') == [1]
except Exception as e:
    _r['iproute'] = f'{type(e).__name__}: {e}'
try:
    from pyroute2.conntrack import Conntrack as _C
    _c = _C()
    _r['conntrack'] = f'dump_entries() gave {len(list(_c.dump_entries()))}'
    _c.close()
except Exception as e:
    _r['conntrack'] = f'{type(e).__name__}: {e}'
print('@@bench ' + json.dumps(_r))
"""


def fail(message: str) -> None:
    raise SystemExit(f"bench/kernel_access.py: {message}")


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=None, metavar="N",
                   help=f"whole processes per import row (default {RUNS}, {QUICK_RUNS} with --quick)")
    p.add_argument("--requests", type=int, default=None, metavar="N",
                   help=f"rounds of the in-process figures (default {REQUESTS}, {QUICK_REQUESTS} with --quick)")
    p.add_argument("--quick", action="store_true", help="a small smoke run of a few seconds")
    p.add_argument("--variants", action="store_true",
                   help="also measure pyroute2 0.9.7, pyroute2-minimal 0.9.7 and 0.7.12, each in a venv of its own")
    p.add_argument("--venvs", metavar="DIR",
                   help="with --variants: make (or reuse) the venvs in DIR and keep them (default: a temporary directory)")
    p.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    p.add_argument("--entries", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.runs is None:
        args.runs = QUICK_RUNS if args.quick else RUNS
    if args.requests is None:
        args.requests = QUICK_REQUESTS if args.quick else REQUESTS
    if args.runs < 1 or args.requests < 1:
        p.error("--runs and --requests must be at least 1")
    if args.venvs and not args.variants:
        p.error("--venvs needs --variants")
    return args


def run_checked(cmd: list[str], env: dict | None = None, cwd: str | None = None) -> str:
    proc = subprocess.run(cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if proc.returncode != 0:
        fail(f"{' '.join(cmd)[:300]} exited {proc.returncode}:\n{proc.stderr.strip()[-2000:]}")
    return proc.stdout


def bench_line(out: str) -> dict:
    for line in reversed(out.splitlines()):
        if line.startswith("@@bench "):
            return json.loads(line[len("@@bench "):])
    fail(f"a probe printed no result:\n{out[-1000:]}")


def cell(s: dict) -> str:
    return f"{common.ms(s['median'])} ({common.ms(s['min'])})"


def ms3(seconds: float) -> str:
    return f"{seconds * 1000:.3f}" if seconds < 0.01 else common.ms(seconds)


# == A: imports, whole processes =================================================

def make_venvs(where: str) -> tuple[dict, float]:
    """One venv per variant, with its pyroute2 from PyPI and every .pyc written."""
    base = getattr(sys, "_base_executable", None) or shutil.which("python3")
    pythons = {}
    t0 = time.perf_counter()
    for name, requirement, label in VARIANTS:
        d = Path(where) / name
        py = d / "bin" / "python"
        dist, _, version = requirement.partition("==")
        if py.exists():
            have = subprocess.run([str(py), "-c", f"import importlib.metadata as m; print(m.version({dist!r}))"],
                                  capture_output=True, text=True).stdout.strip()
            if have == version:
                pythons[label] = str(py)
                continue
            shutil.rmtree(d)
        print(f"making a venv for {requirement} in {d}", file=sys.stderr)
        run_checked([base, "-m", "venv", str(d)])
        run_checked([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", requirement])
        pythons[label] = str(py)
    for py in pythons.values():
        site = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              capture_output=True, text=True).stdout.strip()
        # PYTHONDONTWRITEBYTECODE may be set: write the .pyc files a wheel install would have
        subprocess.run([py, "-m", "compileall", "-q", site], stdout=subprocess.DEVNULL)
    return pythons, time.perf_counter() - t0


def import_rows(args, pythons: dict) -> list[dict]:
    """(label, venv, python, code) of every row, in table order."""
    here = sys.executable
    rows = [
        {"name": "python -c pass", "venv": "current", "python": here, "code": "pass"},
        {"name": "import click", "venv": "current", "python": here, "code": "import click"},
        {"name": "import asyncio", "venv": "current", "python": here, "code": "import asyncio"},
        {"name": "import cnet.kernel.pyroute (cnet's loader: the package __init__ deferred)", "venv": "current",
         "python": here, "code": "import cnet.kernel.pyroute"},
        {"name": "import cnet.kernel.netlink (cnet's kernel access)", "venv": "current", "python": here,
         "code": "import cnet.kernel.netlink"},
    ]
    venvs = list(pythons.items()) if args.variants else [("current", here)]
    for label, py in venvs:
        if label != "current":
            rows.append({"name": "python -c pass", "venv": label, "python": py, "code": "pass"})
        rows.append({"name": "from pyroute2 import IPRoute, Conntrack", "venv": label, "python": py, "code": FULL,
                     "entry": "full"})
        if label.endswith("0.7.12"):
            rows.append({"name": "from pyroute2.minimal import IPRoute, Conntrack", "venv": label, "python": py,
                         "code": MINIMAL, "entry": "minimal"})
        rows.append({"name": "stub pkg; from pyroute2.iproute.linux import IPRoute", "venv": label, "python": py,
                     "code": STUB, "entry": "stub"})
        rows.append({"name": "stub pkg; ... IPRoute; from pyroute2.conntrack import Conntrack", "venv": label,
                     "python": py, "code": STUB_CT, "entry": "stub+conntrack"})
    return rows


def measure_imports(args, rows: list[dict], env: dict) -> dict:
    """Interleaved whole-process runs of every row; fills samples, imports, ratio."""
    contents = {}
    with tempfile.TemporaryDirectory(prefix="cnet-bench-ka-") as cwd:
        for r in rows:
            r["imports"] = bench_line(run_checked([r["python"], "-c", r["code"] + "\n" + PROBE], env, cwd))
            if "entry" in r and r["venv"] not in contents:
                contents[r["venv"]] = json.loads(run_checked([r["python"], "-c", CONTENTS], env, cwd))
        samples = [[] for _ in rows]
        for run in range(args.runs + 1):  # run 0 is the warm-up
            for i, r in enumerate(rows):
                t0 = time.perf_counter()
                proc = subprocess.run([r["python"], "-c", r["code"]], env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                elapsed = time.perf_counter() - t0
                if proc.returncode != 0:
                    fail(f"{r['name']} ({r['venv']}) exited {proc.returncode}: {proc.stderr.decode()[-500:]}")
                if run:
                    samples[i].append(elapsed)
    for r, s in zip(rows, samples):
        r.update(common.summary(s))
    ref = next((i for i, r in enumerate(rows) if r.get("entry") == "full"
                and r["venv"] in (REFERENCE, "current")), None)
    for r, s in zip(rows, samples):
        if ref is not None and "entry" in r:
            r["ratio_to_reference"] = common.summary([a / b for a, b in zip(s, samples[ref])])
    return contents


# == B and C: inside the test host ================================================

class Forks:
    """Counts os.fork() calls of this process (multiprocessing's too)."""

    def __init__(self):
        self.n = 0
        os.register_at_fork(before=self._one)

    def _one(self):
        self.n += 1


def children() -> list[int]:
    me, found = str(os.getpid()), []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[1] == me:
                        found.append(int(p))
            except (FileNotFoundError, ProcessLookupError, IndexError):
                pass
    return found


def footprint() -> dict:
    import threading
    return {"threads": threading.active_count(), "tasks": len(os.listdir("/proc/self/task")),
            "children": len(children()), "fds": len(os.listdir("/proc/self/fd"))}


def delta(after: dict, before: dict) -> dict:
    return {k: after[k] - before[k] for k in before}


_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000


def setns_fd(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def inner(args) -> None:
    check_inside()
    started = time.perf_counter()
    forks = Forks()  # before pyroute2 is imported: it forks only when asked
    import pyroute2
    from pyroute2 import IPRoute, NetNS, netns as pnetns

    from cnet.kernel import netns as cnetns
    from cnet.kernel.netlink import Netlink

    NS, ONE, MANY = "ka-other", "ka-one", "ka-many"
    BR, ONLY = "kabr0", "ka-only"
    GATEWAY = "198.18.0.254"
    GROUP = 0x636e0000      # a link group like cnet's own (owner.Owner.group)
    for name in (NS, ONE, MANY):
        cnetns.create(name)  # in-process, untimed: the namespaces the handles go to
    path = {n: cnetns.path_of(n) for n in (NS, ONE, MANY)}

    def pushed(name):
        pnetns.pushns(name)
        try:
            return IPRoute()
        finally:
            pnetns.popns()

    host = IPRoute()
    host.link("add", ifname=BR, kind="bridge", state="up")
    (br,) = host.link_lookup(ifname=BR)
    host.addr("add", index=br, address="198.18.0.1", prefixlen=24, broadcast="198.18.0.255")
    with pushed(NS) as other:
        other.link("add", ifname=ONLY, kind="bridge")
        (only_index,) = other.link_lookup(ifname=ONLY)
    with pushed(MANY) as many:
        for i in range(MANY_LINKS - 1):
            many.link("add", ifname=f"kam{i}", kind="bridge")
        assert len(many.get_links()) == MANY_LINKS
    check_mounts()
    own_ns = netns_inode()

    # -- opening handles -------------------------------------------------------
    def ctypes_setns():
        target = os.open(path[NS], os.O_RDONLY)
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            setns_fd(target)
            try:
                return IPRoute()
            finally:
                setns_fd(own)
        finally:
            os.close(own)
            os.close(target)

    # (name, open, in NS?, client)
    opens = [
        ("IPRoute()", lambda: IPRoute(), False, "pyroute2"),
        ("IPRoute(netns=N, flags=0)", lambda: IPRoute(netns=NS, flags=0), True, "pyroute2"),
        ("pushns(N); IPRoute(); popns()", lambda: pushed(NS), True, "pyroute2"),
        ("setns(2) via ctypes; IPRoute(); setns back", ctypes_setns, True, "pyroute2"),
        ("NetNS(N, flags=0)", lambda: NetNS(NS, flags=0), True, "pyroute2"),
        ("cnet Netlink()", lambda: Netlink(), False, "cnet"),
        ("cnet Netlink(/run/netns/N)", lambda: Netlink(path[NS]), True, "cnet"),
    ]

    def sees(handle, client, name):
        if client == "cnet":
            return handle.link_index(name) is not None
        return bool(handle.link_lookup(ifname=name))

    gc.collect()
    checks = {"footprint_before_opens": footprint()}  # `host` (an IPRoute) is open throughout
    open_rows = []
    for name, opener, in_ns, client in opens:
        gc.collect()
        before, f0 = footprint(), forks.n
        h = opener()
        holding, forked = footprint(), forks.n - f0
        check = {"namespace": "N" if in_ns else "own", "back_in_own_namespace": netns_inode() == own_ns,
                 "sees_link_of_N": sees(h, client, ONLY), "sees_link_of_own": sees(h, client, BR)}
        check["right_namespace"] = (check["back_in_own_namespace"]
                                    and check["sees_link_of_N"] == in_ns and check["sees_link_of_own"] != in_ns)
        if in_ns and client == "pyroute2":
            found = h.link("get", index=only_index)[0].get("ifname")
            check["link_get_by_index_in_N"] = found
        h.close()
        gc.collect()
        open_rows.append({"part": "open", "name": name, "client": client, "forks_per_open": forked,
                          "while_open": delta(holding, before), "_opener": opener, "check": check,
                          "open_samples": [], "close_samples": []})
    for rnd in range(args.requests + 1):  # round 0: warm-up
        gc.collect()
        for row in (open_rows if rnd % 2 else reversed(open_rows)):
            t0 = time.perf_counter()
            h = row["_opener"]()
            t1 = time.perf_counter()
            h.close()
            t2 = time.perf_counter()
            if rnd:
                row["open_samples"].append(t1 - t0)
                row["close_samples"].append(t2 - t1)
        if rnd % 20 == 0:
            check_mounts()
    gc.collect()
    after_all = footprint()
    for row in open_rows:
        del row["_opener"]
        row["open"] = common.summary(row.pop("open_samples"))
        row["close"] = common.summary(row.pop("close_samples"))
    checks["footprint_after_all_opens_closed"] = after_all

    # -- requests: pyroute2 and cnet's Netlink, alternating ---------------------
    nl = Netlink()
    one_p, many_p = pushed(ONE), pushed(MANY)
    one_c, many_c = Netlink(path[ONE]), Netlink(path[MANY])
    counter = [0]

    def nxt():
        counter[0] += 1
        return counter[0]

    def addr_of(n):
        return f"198.18.{2 + (n // 250) % 50}.{n % 250 + 2}"

    state = {}

    def p_addr():
        n = state["n"] = nxt()
        host.addr("add", index=br, address=addr_of(n), prefixlen=24,
                  broadcast=addr_of(n).rsplit(".", 1)[0] + ".255")

    def c_addr():
        n = state["n"] = nxt()
        nl.add_address(br, f"{addr_of(n)}/24")

    def undo_addr():
        host.addr("del", index=br, address=addr_of(state["n"]), prefixlen=24)

    def undo_route():
        host.route("del", dst="default", gateway=GATEWAY)

    def mac(n):
        return "02:42:c6:12:%02x:%02x" % ((n >> 8) & 0xFF, n & 0xFF)

    def p_veth():
        n = state["n"] = nxt()
        host.link("add", ifname=f"kav{n}", kind="veth", mtu=1500, master=br, state="up", group=GROUP,
                  peer={"ifname": f"e{n}", "net_ns_fd": NS, "address": mac(n), "mtu": 1500})
        (state["index"],) = host.link_lookup(ifname=f"kav{n}")

    def c_veth():
        n = state["n"] = nxt()
        fd = os.open(path[NS], os.O_RDONLY)
        try:
            state["index"] = nl.add_veth(f"kav{n}", f"e{n}", fd, 1500, mac(n), master=br, group=GROUP)
        finally:
            os.close(fd)

    def undo_veth():
        host.link("del", index=state["index"])

    def alias():
        return f"cnet endpoint sb{nxt()} bench"

    # (name, pyroute2 call, cnet call, untimed cleanup after each call)
    requests = [
        ('link("get", index=)', lambda: host.link("get", index=br), lambda: nl._get_link(index=br), None),
        ("link_lookup(ifname=)", lambda: host.link_lookup(ifname=BR), lambda: nl.link_index(BR), None),
        ('link("set", index=, ifalias=)', lambda: host.link("set", index=br, ifalias=alias()),
         lambda: nl.set_alias(br, alias()), None),
        ('addr("add") IPv4 /24 with broadcast', p_addr, c_addr, undo_addr),
        ('route("add") default via gateway', lambda: host.route("add", dst="default", gateway=GATEWAY),
         lambda: nl.add_default_route(GATEWAY), undo_route),
        ("veth add, peer born in N (+ index lookup)", p_veth, c_veth, undo_veth),
        ("get_links() dump, 1 link", lambda: one_p.get_links(), lambda: one_c.link_names(), None),
        (f"get_links() dump, {MANY_LINKS} links", lambda: many_p.get_links(), lambda: many_c.link_names(), None),
    ]
    # the same result from both: checked once, untimed
    same = {}
    p_veth()
    pv = host.link("get", index=state["index"])[0]
    undo_veth()
    c_veth()
    cv = host.link("get", index=state["index"])[0]
    undo_veth()
    same["veth: master, mtu, up"] = [(x.get("master"), x.get("mtu"), bool(x["flags"] & 1)) for x in (pv, cv)]
    p_addr()
    pa = [a.get("broadcast") for a in host.get_addr(index=br) if a.get("address") == addr_of(state["n"])]
    undo_addr()
    c_addr()
    ca = [a.get("broadcast") for a in host.get_addr(index=br) if a.get("address") == addr_of(state["n"])]
    undo_addr()
    same["addr: broadcast"] = [pa, ca]
    n = nxt()
    host.addr("add", index=br, address=addr_of(n), prefixlen=24)
    checks['addr("add") without broadcast= sets'] = [
        {k: a.get(k) for k in ("address", "local", "broadcast")}
        for a in host.get_addr(index=br) if a.get("address") == addr_of(n)]
    host.addr("del", index=br, address=addr_of(n), prefixlen=24)
    assert len(many_p.get_links()) == len(many_c.link_names()) == MANY_LINKS
    checks["same_result"] = same

    req_samples = {(name, c): [] for name, *_ in requests for c in ("pyroute2", "cnet")}
    for rnd in range(args.requests + 1):
        gc.collect()
        k = rnd % len(requests)  # each request takes its turn first after the collection
        for name, p_call, c_call, undo in requests[k:] + requests[:k]:
            pair = [("pyroute2", p_call), ("cnet", c_call)]
            for client, call in (pair if rnd % 2 else reversed(pair)):
                t0 = time.perf_counter()
                call()
                elapsed = time.perf_counter() - t0
                if undo:
                    undo()
                if rnd:
                    req_samples[(name, client)].append(elapsed)
        if rnd % 20 == 0:
            check_mounts()
    request_rows = []
    for name, *_ in requests:
        p, c = req_samples[(name, "pyroute2")], req_samples[(name, "cnet")]
        request_rows.append({"part": "request", "name": name, "pyroute2": common.summary(p),
                             "cnet": common.summary(c),
                             "ratio_pyroute2_to_cnet": common.summary([a / b for a, b in zip(p, c)])})
    for h in (one_p, many_p, one_c, many_c, nl):
        h.close()

    # -- first requests in a fresh process -------------------------------------
    cold_code = """
import time, json, sys
t0 = time.perf_counter()
if sys.argv[1] == 'pyroute2':
    from pyroute2 import IPRoute as H
    lookup = lambda h: h.link_lookup(ifname='lo')
else:
    from cnet.kernel.netlink import Netlink as H
    lookup = lambda h: h.link_index('lo')
t1 = time.perf_counter(); h = H(); t2 = time.perf_counter()
lookup(h); t3 = time.perf_counter(); lookup(h); t4 = time.perf_counter(); h.close(); t5 = time.perf_counter()
print('@@bench ' + json.dumps({'import': t1 - t0, 'open': t2 - t1, 'first request': t3 - t2,
                               'second request': t4 - t3, 'close': t5 - t4}))
"""
    cold = {c: [] for c in ("pyroute2", "cnet")}
    for i in range((QUICK_COLD if args.quick else COLD) + 1):
        for client in ("pyroute2", "cnet"):
            got = bench_line(run_checked([sys.executable, "-c", cold_code, client]))
            if i:
                cold[client].append(got)
    cold_rows = []
    for client, runs in cold.items():
        cold_rows.append({"part": "cold", "name": client,
                          **{k: common.summary([r[k] for r in runs]) for k in runs[0]}})

    # -- C: the other checks ----------------------------------------------------
    import asyncio

    async def in_loop():
        out = {}
        try:
            h = IPRoute()
            out["IPRoute() in a running loop"] = "works"
            h.close()
        except Exception as e:
            out["IPRoute() in a running loop"] = f"{type(e).__name__}: {e}"
        try:
            from pyroute2 import AsyncIPRoute
            async with AsyncIPRoute() as a:
                out["AsyncIPRoute() in a running loop"] = f"works (link_lookup lo: {await a.link_lookup(ifname='lo')})"
        except Exception as e:
            out["AsyncIPRoute() in a running loop"] = f"{type(e).__name__}: {e}"
        return out

    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the un-awaited coroutine of the failed IPRoute()
        checks.update(asyncio.run(in_loop()))

    def missing(label, fn, name):
        try:
            fn(name)
            result = "no error"
        except Exception as e:
            result = f"{type(e).__name__}: {e}"
        made = os.path.exists(cnetns.path_of(name))
        checks[label] = f"{result}; /run/netns/{name} {'created' if made else 'not created'}"
        if made:
            cnetns.remove(name)

    missing("IPRoute(netns=MISSING) default flags", lambda n: IPRoute(netns=n).close(), "ka-typo1")
    missing("IPRoute(netns=MISSING, flags=0)", lambda n: IPRoute(netns=n, flags=0).close(), "ka-typo2")

    def push_missing(n):
        pnetns.pushns(n)
        pnetns.popns()

    missing("pushns(MISSING)", push_missing, "ka-typo3")

    def guarded(n):
        pnetns.pushns()
        try:
            pnetns.setns(n, flags=0)
        finally:
            pnetns.popns()

    missing("pushns(); setns(MISSING, flags=0); popns()", guarded, "ka-typo4")
    host.link("add", ifname="kaalias", kind="bridge", ifalias="set at add")
    checks['link("add", ifalias=) sets the alias'] = host.link("get", ifname="kaalias")[0].get("ifalias")
    host.link("del", ifname="kaalias")
    host.close()
    gc.collect()
    checks["footprint_at_end"] = footprint()
    checks["forks_total"] = forks.n

    # -- every import entry point of part A, for real ---------------------------
    works = []
    for e in json.loads(Path(args.entries).read_text()) if args.entries else []:
        proc = subprocess.run([e["python"], "-c", e["code"] + "\n" + WORKS], capture_output=True, text=True)
        got = bench_line(proc.stdout) if proc.returncode == 0 else {"error": proc.stderr.strip()[-300:]}
        works.append({**e, **got})
    checks["entry_points_work"] = works

    doc = {"pyroute2": pyroute2.__version__ if hasattr(pyroute2, "__version__") else "?",
           "results": open_rows + request_rows + cold_rows, "checks": checks,
           "seconds": time.perf_counter() - started}
    Path(args.out).write_text(json.dumps(doc), encoding="utf-8")


def run_inner(args, entries: list[dict]) -> dict:
    env = clean_env()
    env[OUTER_NETNS] = str(netns_inode())
    with tempfile.TemporaryDirectory(prefix="cnet-bench-ka-") as tmp:
        out, ent = os.path.join(tmp, "inner.json"), os.path.join(tmp, "entries.json")
        Path(ent).write_text(json.dumps(entries), encoding="utf-8")
        cmd = [str(TESTHOST), "env", f"{INSIDE}=1", sys.executable, THIS, "--inner", "--out", out,
               "--entries", ent, "--requests", str(args.requests), *(["--quick"] if args.quick else [])]
        rc = subprocess.run(cmd, cwd=ROOT, env=env).returncode
        if rc != 0 or not os.path.exists(out):
            fail(f"the measurements inside the test host failed (exit {rc})")
        return json.loads(Path(out).read_text(encoding="utf-8"))


# == the report ================================================================

def yn(v) -> str:
    return "yes" if v is True else "no" if v is False else str(v)


def report(args, rows, contents, inner_doc, notes) -> str:
    out = []
    w = out.append
    variants = "the three candidate venvs" if args.variants else "the current venv only"
    w(f"### A. Import cost, whole processes ({args.runs} interleaved runs each; ms; {variants})\n")
    floors = {r["venv"]: r for r in rows if r["code"] == "pass"}
    table = []
    for r in rows:
        imp = r["imports"]
        floor = floors.get(r["venv"])
        ratio = r.get("ratio_to_reference")
        table.append([
            f"`{r['name']}`", r["venv"], common.ms(r["min"]), common.ms(r["median"]), common.ms(r["max"]),
            "-" if r["code"] == "pass" else f"+{common.ms(r['min'] - floor['min'])}",
            "-" if ratio is None else f"{ratio['median']:.2f}",
            str(imp["pyroute2_modules"]) if "entry" in r else "-", str(imp["modules"]),
            yn(imp["asyncio"]), yn(imp["multiprocessing"]),
        ])
    w(common.markdown_table(
        ["import", "venv", "min", "median", "max", "min over `pass`", "vs 0.9.7 full", "pyroute2 modules",
         "all modules", "asyncio", "multiprocessing"],
        table, align=["l", "l", "r", "r", "r", "r", "r", "r", "r", "l", "l"]))
    w("")
    w("*vs 0.9.7 full*: run by run, this row's time over `from pyroute2 import IPRoute, Conntrack` of "
      f"{REFERENCE if args.variants else 'the current venv'} in the same run; the median of those ratios. "
      "*stub pkg*: an empty module with the package's `__path__` (from `importlib.util.find_spec`) is put in "
      "`sys.modules['pyroute2']` first, so the package `__init__` never runs.")
    if contents:
        w("")
        works = {(e["venv"], e["name"]): e for e in inner_doc["checks"]["entry_points_work"]} if inner_doc else {}
        keys = ["conntrack", "netlink.rtnl.tcmsg", "netns", "minimal", "ndb", "ipdb", "nslink", "nftables", "ethtool"]
        w(common.markdown_table(["venv", "distributions", *(f"`{k}`" for k in keys)],
                                [[v, ", ".join(c["distributions"]), *(yn(c["has"][k]) for k in keys)]
                                 for v, c in contents.items()], align=["l", "l"] + ["l"] * len(keys)))
        if works:
            w("")
            w("Each entry point, run in the test host (open `IPRoute()`, `link_lookup(ifname='lo')`, open "
              "`Conntrack()`, `dump_entries()`):\n")
            w(common.markdown_table(["venv", "entry", "IPRoute", "Conntrack"],
                                    [[e["venv"], f"`{e['name']}`", yn(e.get("iproute", e.get("error"))),
                                      str(e.get("conntrack", e.get("error")))] for e in works.values()],
                                    align=["l", "l", "l", "l"]))
    if inner_doc is None:
        w("\nB and C not measured: " + notes.pop("skipped"))
    else:
        res = inner_doc["results"]
        n = args.requests
        w(f"\n### B. Handles, in-process in a test host (pyroute2 {inner_doc['pyroute2']}; {n} interleaved "
          "rounds; median (min) ms)\n")
        w(common.markdown_table(
            ["open a handle", "open", "close", "forks per open", "fds held", "threads held",
             "acts in the right namespace after return"],
            [[f"`{r['name']}`", cell(r["open"]), cell(r["close"]), str(r["forks_per_open"]),
              f"+{r['while_open']['fds']}", f"+{r['while_open']['threads']}",
              yn(r["check"]["right_namespace"])]
             for r in res if r["part"] == "open"],
            align=["l", "r", "r", "r", "r", "r", "l"]))
        w("\nN is a named namespace (`/run/netns/N`) holding a link that the test host's own namespace lacks; "
          "*acts in the right namespace*: after the call returned (the process back in its own namespace), "
          "the handle finds N's link and not the host's (or, for the host handles, the other way round).")
        w(f"\n### B. Requests, in-process ({n} rounds, pyroute2 and cnet alternating; median (min) ms)\n")
        w(common.markdown_table(
            ["request", f"pyroute2 {inner_doc['pyroute2']}", "cnet `Netlink`", "pyroute2 / cnet"],
            [[f"`{r['name']}`", f"{ms3(r['pyroute2']['median'])} ({ms3(r['pyroute2']['min'])})",
              f"{ms3(r['cnet']['median'])} ({ms3(r['cnet']['min'])})", f"{r['ratio_pyroute2_to_cnet']['median']:.1f}x"]
             for r in res if r["part"] == "request"]))
        w("\nThe cnet column calls `src/cnet/kernel/netlink.py` (`_get_link`, `link_index`, `set_alias`, "
          "`add_address`, `add_default_route`, `add_veth` with `os.open` of the namespace, `link_names`). "
          "*pyroute2 / cnet* is the median of the run-by-run ratios. Cleanup after each call (address, route "
          "and veth delete) is untimed; one `gc.collect()` per round, none per call; the order of the requests "
          "rotates from round to round.")
        cold = [r for r in res if r["part"] == "cold"]
        keys = ["import", "open", "first request", "second request", "close"]
        w(f"\n### B. A fresh process: import, open, first and second `link_lookup` "
          f"({QUICK_COLD if args.quick else COLD} processes each; median (min) ms)\n")
        w(common.markdown_table(["client", *keys],
                                [[("pyroute2 `from pyroute2 import IPRoute`" if r["name"] == "pyroute2"
                                   else "cnet `Netlink`"), *(cell(r[k]) for k in keys)] for r in cold]))
        ch = inner_doc["checks"]
        w("\n### C. Checks\n")
        lines = []
        for r in res:
            if r["part"] == "open" and r["client"] == "pyroute2":
                lines.append(f"`{r['name']}` while open: fds +{r['while_open']['fds']}, threads "
                             f"+{r['while_open']['threads']}, tasks +{r['while_open']['tasks']}, children "
                             f"+{r['while_open']['children']}; forks per open {r['forks_per_open']}")
        b, a = ch["footprint_before_opens"], ch["footprint_after_all_opens_closed"]
        lines.append(f"after {n + 2} open/close cycles of every kind above: "
                     + ", ".join(f"{k} {a[k]} (before {b[k]})" for k in b)
                     + "; at the end of the run, every handle closed: "
                     + ", ".join(f"{k} {v}" for k, v in ch["footprint_at_end"].items()))
        for k in ("IPRoute() in a running loop", "AsyncIPRoute() in a running loop",
                  "IPRoute(netns=MISSING) default flags", "IPRoute(netns=MISSING, flags=0)", "pushns(MISSING)",
                  "pushns(); setns(MISSING, flags=0); popns()", 'link("add", ifalias=) sets the alias',
                  'addr("add") without broadcast= sets'):
            lines.append(f"`{k}`: {ch[k]}")
        same = ch["same_result"]
        lines.append(f"same result, pyroute2 vs cnet: veth (master, mtu, up) {same['veth: master, mtu, up']}; "
                     f"address broadcast {same['addr: broadcast']} (pyroute2 sets it only when `broadcast=` is "
                     "given; cnet always does)")
        w("\n".join(f"- {line}" for line in lines))
    w("")
    w("\n".join(f"- {v}" for v in notes.values()))
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> None:
    args = parse(sys.argv[1:] if argv is None else argv)
    if os.environ.get(INSIDE) == "1":
        if not args.inner or not args.out:
            fail(f"{INSIDE}=1 without --inner/--out")
        inner(args)
        return
    try:
        import pyroute2  # noqa: F401  (the one the test host measures)
    except ImportError:
        fail(f"no pyroute2 beside {sys.executable}: `.venv/bin/pip install pyroute2==0.9.7`")
    env = clean_env()
    notes = {}
    tmp = None
    pythons, install = {}, None
    if args.variants:
        where = args.venvs or (tmp := tempfile.mkdtemp(prefix="cnet-bench-venvs-"))
        pythons, install = make_venvs(where)
    try:
        started = time.perf_counter()
        load_before = os.getloadavg()
        rows = import_rows(args, pythons)
        contents = measure_imports(args, rows, env)
        a_seconds = time.perf_counter() - started
        entries = [{"venv": r["venv"], "name": r["name"], "python": r["python"], "code": r["code"]}
                   for r in rows if "entry" in r]
        inner_doc = None
        if os.geteuid() == 0:
            inner_doc = run_inner(args, entries)
        else:
            notes["skipped"] = "needs root (a throw-away test host: tools/testhost, unshare --net --mount)"
        wall = time.perf_counter() - started
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    load_after = os.getloadavg()
    notes["run"] = (f"{'quick' if args.quick else 'full'} run, {wall:.0f} s (imports {a_seconds:.0f} s"
                    + (f", test host {inner_doc['seconds']:.0f} s" if inner_doc else "") + ")"
                    + (f"; venvs made or checked in {install:.0f} s beforehand" if install is not None else "")
                    + f"; python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
                    f"{load_before[0]:.2f} before and {load_after[0]:.2f} after (1 min)")
    text = report(args, rows, contents, inner_doc, notes)
    print(text)
    results = [{"part": "import", **{k: v for k, v in r.items() if k != "python"}} for r in rows]
    if inner_doc:
        results += inner_doc["results"]
    path = common.write_results("kernel_access", args, {
        "variants": [v[1] for v in VARIANTS] if args.variants else None,
        "requests_rounds": args.requests,
        "many_links": MANY_LINKS,
        "pyroute2_in_test_host": inner_doc["pyroute2"] if inner_doc else None,
        "contents": contents,
        "install_seconds": install,
        "total_seconds": wall,
        "loadavg_before": load_before,
        "loadavg_after": load_after,
    }, results)
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc["checks"] = inner_doc["checks"] if inner_doc else None
    tmp_path = path.with_suffix(".json.tmp")
    tmp_path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp_path, path)
    md = ""
    if not args.quick:
        # the candidates' comparison (--variants) and cnet as it is (make bench) are kept apart
        name = "kernel-access-variants.md" if args.variants else "kernel-access.md"
        (common.RESULTS_DIR / name).write_text(text, encoding="utf-8")
        md = f"; table: bench/results/{name}"
    print(f"raw figures: {os.path.relpath(path, ROOT)}{md}")


if __name__ == "__main__":
    main()
