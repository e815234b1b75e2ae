"""Whole-process start-up time of cnet commands that do not touch the kernel.

Each figure is the wall time, taken with time.perf_counter in this process,
of one `subprocess.run` of a fresh process: the venv's `cnet` console script
for the commands, the venv's python for the two floor figures. The runs are
interleaved (run 1 of every command, then run 2, ...) so a slow patch of the
machine spreads over all rows instead of landing on one.

A second, untimed probe per command runs `cnet.cli.main([...])` inside
`python -c` and reports whether cnet's netlink code and yaml were imported:
commands that only read the state file should need neither.

    .venv/bin/python bench/startup.py [--quick] [--runs N]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

import common
from common import clean_env, find_cnet

SANDBOXES = 1_000
QUICK_SANDBOXES = 100

PROBE = """\
import sys
from cnet.cli import main
try:
    main({argv!r})
    code = 0
except SystemExit as e:
    code = e.code
sys.stdout.flush()
print("\\n@@bench", any(m.split(".")[0] == "pyroute2" for m in sys.modules), "yaml" in sys.modules, len(sys.modules), code)
"""

IMPORT_PROBE = """\
import sys
import cnet.cli
print("@@bench", any(m.split(".")[0] == "pyroute2" for m in sys.modules), "yaml" in sys.modules, len(sys.modules), 0)
"""


def run_once(cmd: list[str], cwd: str, env: dict) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        check(cmd, cwd, env)  # rerun with output captured to say why
        raise SystemExit(f"bench/startup.py: {cmd} exited {proc.returncode}")
    return elapsed


def check(cmd: list[str], cwd: str, env: dict) -> str:
    """Run once untimed, fail loudly on a non-zero exit, return stdout."""
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"bench/startup.py: {cmd} exited {proc.returncode}:\n{proc.stderr.strip()}")
    return proc.stdout


def probe(code: str, cwd: str, env: dict) -> dict:
    """Run a probe script; return what it found in sys.modules."""
    out = check([sys.executable, "-c", code], cwd, env)
    for line in reversed(out.splitlines()):
        if line.startswith("@@bench "):
            _, netlink, yaml, modules, exit_code = line.split()
            if exit_code not in ("0", "None"):
                raise SystemExit(f"bench/startup.py: probe exited {exit_code}:\n{out}")
            return {"netlink": netlink == "True", "yaml": yaml == "True", "modules": int(modules)}
    raise SystemExit(f"bench/startup.py: probe printed no result:\n{out}")


def main(argv: list[str] | None = None) -> None:
    args = common.parse(common.parser(__doc__.splitlines()[0]), argv)
    sandboxes = QUICK_SANDBOXES if args.quick else SANDBOXES
    py = sys.executable
    cnet = find_cnet()
    env = clean_env()

    from cnet.state import StateStore

    with tempfile.TemporaryDirectory(prefix="cnet-bench-") as tmp:
        state_file = os.path.join(tmp, "state.yaml")
        StateStore(state_file).save(common.build_state(sandboxes, networks=1))
        size = os.path.getsize(state_file)

        # (label, timed command, probe script or None, its environment)
        cases = [
            ("python -c pass", [py, "-c", "pass"], None, env),
            ('python -c "import cnet.cli"', [py, "-c", "import cnet.cli"], IMPORT_PROBE, env),
        ]
        for label, argv_ in [
            ("cnet --version", ["--version"]),
            ("cnet --help", ["--help"]),
            ("cnet --state S ls", ["--state", state_file, "ls"]),
            ("cnet --state S ls --json", ["--state", state_file, "ls", "--json"]),
            ("cnet --state S ls ns", ["--state", state_file, "ls", "ns"]),
        ]:
            cases.append((label, [cnet, *argv_], PROBE.format(argv=argv_), env))
        # what bash runs at a Tab after `cnet attach ` (click's completion protocol)
        completing = {**env, "_CNET_COMPLETE": "bash_complete", "COMP_WORDS": "cnet attach ", "COMP_CWORD": "2",
                      "CNET_STATE": state_file}
        cases.append(("Tab after `cnet attach ` (S)", [cnet], PROBE.format(argv=[]), completing))

        # Untimed warm-up: each command once (writes .pyc files, fills the
        # page cache) and a sanity check that `ls` really read the state.
        for label, cmd, _, case_env in cases:
            out = check(cmd, tmp, case_env)
            if label.startswith("Tab") and len(out.splitlines()) != sandboxes:
                raise SystemExit(f"bench/startup.py: `{label}` did not offer the {sandboxes} sandboxes: {out[:200]}")
            if label.endswith("ls --json"):
                listed = json.loads(out)
                if len(listed) != 1 or listed[0]["endpoints"] != sandboxes:
                    raise SystemExit(f"bench/startup.py: `{label}` did not list the "
                                     f"{sandboxes} endpoints written: {out[:200]}")

        found = {label: probe(code, tmp, case_env) if code else None for label, _, code, case_env in cases}

        samples = {label: [] for label, _, _, _ in cases}
        for _ in range(args.runs):
            for label, cmd, _, case_env in cases:
                samples[label].append(run_once(cmd, tmp, case_env))

    results = []
    for label, cmd, _, _ in cases:
        shown = [("S" if c == state_file else c) for c in cmd]
        shown[0] = "cnet" if cmd[0] == cnet else "python"
        results.append({"name": label, "argv": shown, **common.summary(samples[label]),
                        "imports": found[label]})

    floor = results[0]["median"]
    rows = []
    for r in results:
        imp = r["imports"]
        rows.append([
            f"`{r['name']}`",
            common.ms(r["median"]),
            common.ms(r["min"]),
            common.ms(r["max"]),
            "-" if r is results[0] else f"+{common.ms(r['median'] - floor)}",
            "-" if imp is None else ("yes" if imp["netlink"] else "no"),
            "-" if imp is None else ("yes" if imp["yaml"] else "no"),
        ])
    print(f"### cnet start-up ({args.runs} runs; S = state file with {sandboxes:,} sandboxes, "
          f"{sandboxes:,} endpoints on 1 network, {common.human_size(size)})\n")
    print(common.markdown_table(
        ["command", "median ms", "min ms", "max ms", "over floor ms", "netlink imported", "yaml imported"],
        rows, align=["l", "r", "r", "r", "r", "l", "l"]))
    path = common.write_results("startup", args, {
        "sandboxes": sandboxes,
        "endpoints": sandboxes,
        "networks": 1,
        "state_file_bytes": size,
        "cnet": cnet,
    }, results)
    print(f"\nraw figures: {os.path.relpath(path)}")


if __name__ == "__main__":
    main()
