"""cnet killed at random moments: the state file always reads, and `cnet
restore` then `cnet gc` bring the kernel and the state together again, as an
independent scan (tests/crashscan.py, `ip` and `nft` only) and `cnet check`
both see. SIGTERM and SIGINT roll an operation back by themselves.

A seeded random sequence of operations, each a cnet process stopped after a
random delay (some let finish). CRASH_KILLS sets how many operations (default
30; `make soak` runs 200), CRASH_SEED the seed (printed, to replay a failure).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from crashscan import STATE, differences

KILLS = int(os.environ.get("CRASH_KILLS", "30"))
SEED = int(os.environ.get("CRASH_SEED", "20261202"))


def operation(rng: random.Random) -> list[str]:
    """One cnet command line (some fail: a name taken, a sandbox not there; what matters is where they stop)."""
    s, b = f"s{rng.randrange(8)}", f"br{rng.randrange(2)}"
    port = 9000 + rng.randrange(40)
    return rng.choice([
        ["create", "bridge", b, "--subnet", f"10.7{b[-1]}.0.0/24"],
        ["delete", "bridge", b, "--force"],
        ["create", "ns", s, "--network", b, "--publish", f"{port}:80"],
        ["create", "ns", s, "--network", b, "--publish", f"{port}:80"],
        ["create", "ns", s],
        ["attach", s, b],
        ["detach", s, b],
        ["publish", s, f"{port}:81/udp"],
        ["unpublish", s, f"{port}:81/udp"],
        ["delete", "ns", s],
        ["batch", "-"],
    ])


def batch_lines(rng: random.Random) -> str:
    n = rng.randrange(8)
    return "".join(f"create ns t{n + i} --network br{rng.randrange(2)} --publish {9100 + n + i}:80\n"
                   for i in range(3)) + f"delete ns t{rng.randrange(8)}\n"


def start(host, argv: list[str]) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CNET_")} | host.env
    return host.popen([sys.executable, "-m", "cnet", *argv], env=env, stdin=subprocess.PIPE,
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)


def usual_time(host) -> float:
    """How long an operation takes here, from start to end: the kill delays are drawn around it."""
    began = time.monotonic()
    host.cnet("create", "ns", "warm", "--network", "br0", "--publish", "8999:80", check=True)
    took = time.monotonic() - began
    host.cnet("delete", "ns", "warm", check=True)
    return took


def run_stopped(host, rng: random.Random, sig: signal.Signals | None, usual: float) -> bool:
    """One operation, sent `sig` after a random delay (or let finish when sig is None,
    or when it ends first). True if the signal was sent while it ran."""
    argv = operation(rng)
    proc = start(host, argv)
    if argv[0] == "batch":
        proc.stdin.write(batch_lines(rng))
    proc.stdin.close()
    # The first ~half is Python's start and cnet's imports; the kernel work comes after it.
    delay = rng.uniform(0.3, 1.5) * usual
    sent = False
    if sig is not None:
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(sig)
            sent = True
    proc.wait(timeout=60)
    return sent


def state_reads(host) -> bool:
    text = host.run(["cat", STATE]).stdout
    try:
        json.loads(text)
        return True
    except ValueError:
        return not text and host.run(["test", "-e", STATE]).returncode != 0  # missing: the empty state


def test_killed_at_random_restore_and_gc_bring_kernel_and_state_together(host):
    rng = random.Random(SEED)
    host.run([sys.executable, "-m", "cnet", "create", "bridge", "br0", "--subnet", "10.70.0.0/24"], check=True)
    kills = unreadable = 0
    usual = usual_time(host)
    for _ in range(KILLS):
        kills += run_stopped(host, rng, signal.SIGKILL if rng.random() < 0.8 else None, usual)
        unreadable += not state_reads(host)
    before = differences(host)
    restore = host.cnet("restore")
    gc = host.cnet("gc")
    check = host.cnet("check")
    after = differences(host)
    figures = (f"seed {SEED}: {KILLS} operations (usually {usual:.2f} s each), {kills} killed; state file unreadable {unreadable} times;"
               f" differences before restore+gc: {len(before)}, after: {len(after)}")
    print(figures)
    assert unreadable == 0, figures
    assert restore.returncode == 0, f"{figures}\nrestore: {restore.stderr}"
    assert gc.returncode == 0, f"{figures}\ngc: {gc.stderr}"
    assert check.returncode == 0, f"{figures}\ncheck still finds:\n{check.stdout}{check.stderr}"
    assert after == [], f"{figures}\n" + "\n".join(after)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_sigterm_and_sigint_roll_back_by_themselves(host, sig):
    rng = random.Random(SEED + sig)
    host.run([sys.executable, "-m", "cnet", "create", "bridge", "br0", "--subnet", "10.70.0.0/24"], check=True)
    stopped = 0
    usual = usual_time(host)
    for i in range(max(KILLS // 3, 5)):
        stopped += run_stopped(host, rng, sig, usual)
        found = differences(host)
        assert found == [], f"seed {SEED + sig}, operation {i + 1}:\n" + "\n".join(found)
    print(f"{sig.name}: {stopped} operations stopped, kernel and state agreed after each")
