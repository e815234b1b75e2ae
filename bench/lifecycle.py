"""`cnet check` with 10 and 1,000 sandboxes, and `cnet restore` of 500 sandboxes after a simulated reboot against the `cnet batch` that made them.

This script touches the kernel, so it re-executes itself inside a throw-away
test host (tools/testhost), as bench/attach.py does; it needs root.

check: one bridge, N sandboxes on it (made with `cnet batch`), each with one
published port; `cnet check` and `cnet check --deep` as whole processes,
median of --runs (targets of issue #10: 0.3 s at N=10, 1 s at N=1,000).

restore: `cnet batch` makes M sandboxes with one published port each (timed);
then a reboot is simulated (every namespace, the bridge and the nft table are
deleted, the state file is kept) and `cnet restore` is timed; then a second
`cnet restore`, which finds nothing to do. Target: restore at most 2x the batch.
Sizes: N = 10, 1,000 and M = 500 (--quick: 10, 100 and 50).

    .venv/bin/python bench/lifecycle.py [--quick] [--runs N]
"""

from __future__ import annotations

import subprocess
import sys
import time

import common
from common import check_inside, clean_env, find_cnet

CHECK_SIZES, QUICK_CHECK_SIZES = (10, 1000), (10, 100)
RESTORE_SIZE, QUICK_RESTORE_SIZE = 500, 50


def fail(message: str) -> None:
    raise SystemExit(f"bench/lifecycle.py: {message}")


def cnet(*args: str, stdin: str | None = None, ok=(0,)) -> float:
    """Run a cnet process; its wall time in seconds."""
    began = time.perf_counter()
    proc = subprocess.run([find_cnet(), *args], input=stdin, capture_output=True, text=True, env=clean_env())
    took = time.perf_counter() - began
    if proc.returncode not in ok:
        fail(f"cnet {' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()}")
    return took


def fill(first: int, last: int, port_base: int) -> float:
    lines = "".join(f"create ns s{i} --network bench0 --publish {port_base + i}:80\n" for i in range(first, last))
    return cnet("batch", "-", stdin=lines)


def reboot() -> None:
    subprocess.run(["sh", "-c", "ip -all netns delete; ip link delete bench0; nft flush ruleset"], check=True,
                   capture_output=True)


def measure(args) -> None:
    check_inside()
    check_sizes = QUICK_CHECK_SIZES if args.quick else CHECK_SIZES
    restore_size = QUICK_RESTORE_SIZE if args.quick else RESTORE_SIZE
    rows, results = [], []

    cnet("create", "bridge", "bench0", "--subnet", "10.200.0.0/16")
    have = 0
    for n in check_sizes:
        fill(have, n, 20000)
        have = n
        for label, extra in (("`cnet check`", ()), ("`cnet check --deep`", ("--deep",))):
            samples = [cnet("check", *extra) for _ in range(args.runs)]
            s = common.summary(samples)
            rows.append([label, f"{n:,}", common.ms(s["median"]), common.ms(s["min"]), common.ms(s["max"])])
            results.append({"figure": label, "sandboxes": n, **s})
    subprocess.run(["sh", "-c", "ip -all netns delete; ip link delete bench0; nft flush ruleset; "
                    "rm -rf /var/lib/cnet/* /var/lib/cnet/.state* /etc/netns/*"], check=True)

    cnet("create", "bridge", "bench0", "--subnet", "10.200.0.0/16")
    made = fill(0, restore_size, 30000)
    reboot()
    restored = cnet("restore")
    again = cnet("restore")
    in_sync = cnet("check", ok=(0, 5))
    for label, took in (("`cnet batch` (made them)", made), ("`cnet restore` after the reboot", restored),
                        ("`cnet restore` again (nothing to do)", again), ("`cnet check` after", in_sync)):
        rows.append([label, f"{restore_size:,}", common.ms(took), "", ""])
        results.append({"figure": label, "sandboxes": restore_size, "seconds": took})
    ratio = restored / made

    table = common.markdown_table(["operation", "sandboxes", "median ms", "min ms", "max ms"], rows,
                                  ["l", "r", "r", "r", "r"])
    text = (f"{table}\n\nrestore / batch = {ratio:.2f}x (target: at most 2x); check targets: 0.3 s at 10,"
            f" 1 s at 1,000 sandboxes\n")
    common.report("lifecycle", args, {"check_sizes": check_sizes, "restore_size": restore_size}, results, text)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = common.parse(common.parser(__doc__.splitlines()[0]), argv)
    common.measured_in_testhost(__file__, args, argv, measure)


if __name__ == "__main__":
    main()
