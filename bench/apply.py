"""`cnet apply` of N sandboxes from nothing against `cnet batch` of the same, a second apply, and `--dry-run` on a big topology.

This script touches the kernel, so it re-executes itself inside a throw-away
test host (tools/testhost), as bench/lifecycle.py does; it needs root.

- batch: `cnet batch` makes one bridge and N sandboxes with one published
  port each (timed); everything is then deleted.
- apply: the same topology as a file, `cnet apply` from nothing (timed);
  target of issue #15: at most 1.2x the batch.
- again: `cnet apply` of the same file, nothing to do; target: 0.5 s.
- dry-run: `cnet apply --dry-run` of a file of M sandboxes against a state
  that already holds them (made by `cnet export` of a state file written
  directly, so no kernel work is needed for it); target: 1 s at M = 1,000.
Sizes: N = 200, M = 1,000 (--quick: 20 and 100). One run each for the
kernel figures (they take seconds); --runs for the dry-run.

    .venv/bin/python bench/apply.py [--quick] [--runs N]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

import common
from common import check_inside, clean_env, find_cnet

SIZE, QUICK_SIZE = 200, 20
DRY_SIZE, QUICK_DRY_SIZE = 1000, 100


def fail(message: str) -> None:
    raise SystemExit(f"bench/apply.py: {message}")


def cnet(*args: str, stdin: str | None = None, ok=(0,), env: dict | None = None) -> tuple[float, str]:
    """Run a cnet process; (its wall time in seconds, its stdout)."""
    began = time.perf_counter()
    proc = subprocess.run([find_cnet(), *args], input=stdin, capture_output=True, text=True,
                          env={**clean_env(), **(env or {})})
    took = time.perf_counter() - began
    if proc.returncode not in ok:
        fail(f"cnet {' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()[:500]}")
    return took, proc.stdout


def topology(n: int) -> str:
    """One bridge and n sandboxes, each with one published port: the batch's topology as a file."""
    lines = ["version: 1", "networks:", "  bench0: {subnet: 10.200.0.0/16}", "sandboxes:"]
    lines += [f"  s{i}: {{networks: [bench0], publish: [\"{20000 + i}:80\"]}}" for i in range(n)]
    return "\n".join(lines) + "\n"


def batch_lines(n: int) -> str:
    return "create bridge bench0 --subnet 10.200.0.0/16\n" + "".join(
        f"create ns s{i} --network bench0 --publish {20000 + i}:80\n" for i in range(n))


def wipe() -> None:
    subprocess.run(["sh", "-c", "ip -all netns delete; ip link delete bench0; nft flush ruleset; "
                    "rm -rf /var/lib/cnet/* /var/lib/cnet/.state* /etc/netns/*"], capture_output=True)


def measure(args) -> None:
    check_inside()
    n = QUICK_SIZE if args.quick else SIZE
    m = QUICK_DRY_SIZE if args.quick else DRY_SIZE
    rows, results = [], []
    with tempfile.TemporaryDirectory(prefix="cnet-bench-apply-") as tmp:
        file = os.path.join(tmp, "topology.yaml")
        with open(file, "w") as f:
            f.write(topology(n))

        made, _ = cnet("batch", "-", stdin=batch_lines(n))
        wipe()
        applied, _ = cnet("apply", file)
        again, out = cnet("apply", file)
        dry_same, _ = cnet("apply", "--dry-run", file)
        wipe()
        for label, took in (("`cnet batch`", made), ("`cnet apply` from nothing", applied),
                            ("`cnet apply` again (no changes)", again), ("`cnet apply --dry-run` (no changes)", dry_same)):
            rows.append([label, f"{n:,}", common.ms(took), "", ""])
            results.append({"figure": label, "sandboxes": n, "seconds": took})

        # --dry-run on a big topology: a state file written directly, exported to a file
        from cnet.state import StateStore

        state_file = os.path.join(tmp, "big.yaml")
        StateStore(state_file).save(common.build_state(m, networks=1))
        _, exported = cnet("--state", state_file, "export")
        big = os.path.join(tmp, "big-topology.yaml")
        with open(big, "w") as f:
            f.write(exported)
        samples = [cnet("--state", state_file, "apply", "--dry-run", big, ok=(0, 5))[0] for _ in range(args.runs)]
        s = common.summary(samples)
        rows.append(["`cnet apply --dry-run` of an export", f"{m:,}", common.ms(s["median"]), common.ms(s["min"]),
                     common.ms(s["max"])])
        results.append({"figure": "apply --dry-run of an export", "sandboxes": m, **s})

    ratio = applied / made
    table = common.markdown_table(["operation", "sandboxes", "median ms", "min ms", "max ms"], rows,
                                  ["l", "r", "r", "r", "r"])
    text = (f"{table}\n\napply / batch = {ratio:.2f}x (target: at most 1.2x); second apply {again:.2f} s "
            f"(target: at most 0.5 s); dry-run at {m:,} sandboxes {s['median']:.2f} s (target: at most 1 s)\n")
    common.report("apply", args, {"size": n, "dry_run_size": m}, results, text)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = common.parse(common.parser(__doc__.splitlines()[0]), argv)
    common.measured_in_testhost(__file__, args, argv, measure)


if __name__ == "__main__":
    main()
